//! PEM private keys, encrypted or not, with any password and algorithm.
#![no_main]

use libfuzzer_sys::fuzz_target;

const ALGORITHMS: [&str; 6] = ["RS256", "PS512", "ES256", "ES384", "EdDSA", "HS256"];

fuzz_target!(|input: (u8, &str, &str)| {
    let (alg, pem, password) = input;
    let alg = ALGORITHMS[usize::from(alg) % ALGORITHMS.len()];
    let document = serde_json::json!({
        "grant_type": "jwt_bearer",
        "token_url": "https://as.example/token",
        "client_auth": "none",
        "jwt": {
            "header": {"alg": alg},
            "issuer": "i",
            "subject": "s",
            "private_key": format!("-----BEGIN PRIVATE KEY-----\n{pem}\n-----END PRIVATE KEY-----"),
            "private_key_password": password,
        },
    });
    let _ = connector::validate(&document.to_string());
    let mut raw = document;
    raw["jwt"]["private_key"] = pem.into();
    let _ = connector::validate(&raw.to_string());
});
