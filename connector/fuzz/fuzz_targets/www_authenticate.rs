//! `WWW-Authenticate` headers and the retry verdict on them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let headers: Vec<&str> = text.split('\n').collect();
    let _ = connector::parse_challenges(headers.iter().copied());
    let response = connector::Response {
        status: 401,
        headers: headers
            .iter()
            .map(|h| ("WWW-Authenticate".to_owned(), (*h).to_owned()))
            .collect(),
        body: Vec::new(),
    };
    let config = connector::Config::parse(
        r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"c","client_secret":"s","token_retry_check_level":2}"#,
    )
    .expect("a valid configuration");
    let _ = connector::judge(config.token_retry_check_level, &response, false);
    assert_eq!(
        connector::judge(config.token_retry_check_level, &response, true),
        connector::Verdict::Accept
    );
});
