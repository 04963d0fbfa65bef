//! Token, introspection and revocation responses: any status, media type
//! and body.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MEDIA_TYPES: [&str; 5] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "text/html",
    "",
];

fuzz_target!(|input: (u16, u8, u64, &[u8])| {
    let (status, media, now, body) = input;
    let response = connector::Response {
        status,
        headers: vec![(
            "Content-Type".into(),
            MEDIA_TYPES[usize::from(media) % MEDIA_TYPES.len()].into(),
        )],
        body: body.to_vec(),
    };
    let config = connector::Config::parse(
        r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","scope":"read"}"#,
    )
    .expect("a valid configuration");
    let presented = connector::Secret::new("rt");
    let _ = connector::read_token_response(&config, &response, now, Some(&presented));
    let _ = connector::read_introspection_response(&response);
    let _ = connector::read_revocation_response(&response);
});
