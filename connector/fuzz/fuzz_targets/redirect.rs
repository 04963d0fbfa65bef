//! The URL a browser login was redirected to.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (url, state) = input;
    for grant in ["authorization_code", "implicit"] {
        let config = connector::Config::parse(&format!(
            r#"{{"grant_type":"{grant}","token_url":"https://as.example/token","client_id":"c","client_auth":"none",
                "authorization_url":"https://as.example/authorize","redirect_uri":"http://127.0.0.1:5000/cb"}}"#
        ))
        .expect("a valid configuration");
        let cx = connector::Context { now: 0, nonce: vec![3; 32] };
        let _ = connector::read_redirect(&config, url, state);
        let _ = connector::finish_login(&config, url, state, Some("verifier"), &cx);
        let _ = connector::read_implicit_redirect(&config, url, state, 0);
    }
});
