//! A component of the `oauth2:connector` world that misbehaves on demand,
//! so the tests can show that the host survives a guest that panics, loops
//! or exhausts its memory, reports each clearly, and serves the next call.
//!
//! `settings.schema` always panics. `settings.validate` misbehaves by its
//! argument: `loop` spins forever, `memory` allocates until the memory
//! limit stops it, `panic` panics; anything else is valid. Opening a
//! connection misbehaves by the same words; an opened connection's `judge`
//! panics for a response with status 500 and accepts any other, so a test
//! can trap a kept instance and see the next call served. Every other
//! function answers with a failure.

#![cfg(target_arch = "wasm32")]
#![allow(unsafe_code, missing_docs)]

wit_bindgen::generate!({
    path: "../../wit",
    world: "oauth-connector",
});

use exports::oauth2::connector::{api_calls, connections, http, settings, tokens, user_login};

struct Faulty;

fn refused<T>() -> Result<T, tokens::Failure> {
    Err(tokens::Failure::Other(
        "the faulty test component does nothing".into(),
    ))
}

/// Misbehaves as the module documentation says; returns for anything else.
fn misbehave(word: &str) {
    match word {
        "loop" => {
            let mut spins = 0u64;
            loop {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        "panic" => panic!("a deliberate fault for `{word}`"),
        _ => {}
    }
}

impl settings::Guest for Faulty {
    fn schema() -> String {
        panic!("a deliberate fault in `schema`")
    }

    fn validate(config: String) -> Vec<settings::FieldError> {
        misbehave(&config);
        Vec::new()
    }

    fn merge_layers(
        connection: String,
        _environment: Option<String>,
        _runtime: Option<String>,
    ) -> Result<String, Vec<settings::FieldError>> {
        Ok(connection)
    }
}

impl tokens::Guest for Faulty {
    fn token_request(_: String, _: tokens::Context) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn refresh_request(
        _: String,
        _: String,
        _: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn read_token_response(
        _: String,
        _: http::Response,
        _: u64,
        _: Option<String>,
    ) -> Result<tokens::Token, tokens::Failure> {
        refused()
    }

    fn introspection_request(
        _: String,
        _: String,
        _: Option<tokens::TokenTypeHint>,
        _: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn read_introspection_response(
        _: http::Response,
    ) -> Result<tokens::Introspection, tokens::Failure> {
        refused()
    }

    fn revocation_request(
        _: String,
        _: String,
        _: Option<tokens::TokenTypeHint>,
        _: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn read_revocation_response(_: http::Response) -> Result<(), tokens::Failure> {
        refused()
    }
}

impl user_login::Guest for Faulty {
    fn finish_login(
        _: String,
        _: String,
        _: String,
        _: Option<String>,
        _: tokens::Context,
    ) -> Result<user_login::LoginStep, tokens::Failure> {
        refused()
    }

    fn authorization_url(
        _: String,
        _: tokens::Context,
        _: Option<String>,
        _: Option<String>,
    ) -> Result<user_login::Authorization, tokens::Failure> {
        refused()
    }

    fn read_redirect(_: String, _: String, _: String) -> Result<String, tokens::Failure> {
        refused()
    }

    fn code_exchange_request(
        _: String,
        _: String,
        _: Option<String>,
        _: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn read_implicit_redirect(
        _: String,
        _: String,
        _: String,
        _: u64,
    ) -> Result<tokens::Token, tokens::Failure> {
        refused()
    }
}

impl api_calls::Guest for Faulty {
    fn authorize(
        _: String,
        _: http::Request,
        _: String,
        _: String,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn judge(_: String, _: http::Response, _: bool) -> Result<api_calls::Verdict, tokens::Failure> {
        refused()
    }

    fn challenges(_: http::Response) -> Vec<api_calls::Challenge> {
        Vec::new()
    }

    fn falls_back_to_grant(_: tokens::Failure) -> bool {
        false
    }

    fn token_cache_key(_: String) -> Result<String, tokens::Failure> {
        refused()
    }
}

impl connections::Guest for Faulty {
    type Connection = FaultyConnection;
}

/// A connection that remembers its configuration word.
struct FaultyConnection(String);

impl connections::GuestConnection for FaultyConnection {
    fn open(config: String) -> Result<connections::Connection, tokens::Failure> {
        misbehave(&config);
        Ok(connections::Connection::new(FaultyConnection(config)))
    }

    fn cache_key(&self) -> String {
        self.0.clone()
    }

    fn token_request(&self, _: tokens::Context) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn refresh_request(
        &self,
        _: String,
        _: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn read_token_response(
        &self,
        _: http::Response,
        _: u64,
        _: Option<String>,
    ) -> Result<tokens::Token, tokens::Failure> {
        refused()
    }

    fn authorize(
        &self,
        _: http::Request,
        _: String,
        _: String,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn judge(&self, response: http::Response, _: bool) -> api_calls::Verdict {
        if response.status == 500 {
            panic!("a deliberate fault in a connection's `judge`");
        }
        api_calls::Verdict::Accept
    }

    fn introspection_request(
        &self,
        _: String,
        _: Option<tokens::TokenTypeHint>,
        _: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn revocation_request(
        &self,
        _: String,
        _: Option<tokens::TokenTypeHint>,
        _: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refused()
    }

    fn authorization_url(
        &self,
        _: tokens::Context,
        _: Option<String>,
        _: Option<String>,
    ) -> Result<user_login::Authorization, tokens::Failure> {
        refused()
    }

    fn finish_login(
        &self,
        _: String,
        _: String,
        _: Option<String>,
        _: tokens::Context,
    ) -> Result<user_login::LoginStep, tokens::Failure> {
        refused()
    }
}

export!(Faulty);
