//! The configuration document: parsing, validation, layering, and every
//! request a valid one leads to.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = connector::validate(text);
    let _ = connector::merge_layers(text, Some(text), Some("{}"));
    if let Ok(config) = connector::Config::parse(text) {
        let cx = connector::Context { now: 1_700_000_000, nonce: vec![9; 32] };
        let _ = connector::token_request(&config, &cx);
        let _ = connector::authorization_url(&config, &cx, None, None);
        let _ = connector::token_cache_key(&config, b"secret");
    }
});
