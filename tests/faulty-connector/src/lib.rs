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

use exports::oauth2::connector::{connection as wit, helpers, settings, types};

struct Faulty;

fn refused<T>() -> Result<T, types::Failure> {
    Err(types::Failure::Other(
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

    fn validate(config: String) -> Vec<types::FieldError> {
        misbehave(&config);
        Vec::new()
    }

    fn merge_layers(
        connection: String,
        _environment: Option<String>,
        _runtime: Option<String>,
    ) -> Result<String, Vec<types::FieldError>> {
        Ok(connection)
    }
}

impl helpers::Guest for Faulty {
    fn challenges(_: types::Response) -> Vec<helpers::Challenge> {
        Vec::new()
    }

    fn read_introspection_response(
        _: types::Response,
    ) -> Result<helpers::Introspection, types::Failure> {
        refused()
    }

    fn read_revocation_response(_: types::Response) -> Result<(), types::Failure> {
        refused()
    }
}

impl wit::Guest for Faulty {
    type Connection = Connection;
}

/// An opened connection: the word it was opened with is its cache key.
struct Connection {
    word: String,
}

impl wit::GuestConnection for Connection {
    fn open(config: String) -> Result<wit::Connection, types::Failure> {
        misbehave(&config);
        Ok(wit::Connection::new(Connection { word: config }))
    }

    fn cache_key(&self, _: Vec<u8>) -> String {
        self.word.clone()
    }

    fn next(
        &self,
        _: types::Request,
        _: Option<types::TokenState>,
        _: types::Context,
    ) -> Result<wit::Step, types::Failure> {
        refused()
    }

    fn token_request(&self, _: types::Context) -> Result<wit::TokenFetch, types::Failure> {
        refused()
    }

    fn took(
        &self,
        _: wit::Renewal,
        _: types::Response,
        _: Option<types::TokenState>,
        _: types::Context,
    ) -> Result<types::TokenState, wit::Refusal> {
        Err(wit::Refusal {
            failure: types::Failure::Other("the faulty test component does nothing".into()),
            fallback: None,
        })
    }

    fn judge(&self, response: types::Response, _: types::TokenState, _: bool) -> wit::Verdict {
        if response.status == 500 {
            panic!("a deliberate fault in a connection's `judge`");
        }
        wit::Verdict::Accept
    }

    fn describe(&self, _: types::TokenState) -> Result<types::Token, types::Failure> {
        refused()
    }

    fn revoked(
        &self,
        _: types::TokenState,
        _: types::TokenTypeHint,
    ) -> Result<Option<types::TokenState>, types::Failure> {
        refused()
    }

    fn keep_in_document(&self, _: String, _: types::TokenState) -> Result<String, types::Failure> {
        refused()
    }

    fn introspection_request(
        &self,
        _: String,
        _: Option<types::TokenTypeHint>,
        _: types::Context,
    ) -> Result<types::Request, types::Failure> {
        refused()
    }

    fn revocation_request(
        &self,
        _: String,
        _: Option<types::TokenTypeHint>,
        _: types::Context,
    ) -> Result<types::Request, types::Failure> {
        refused()
    }

    fn loopback_redirect(&self) -> Result<wit::Loopback, types::Failure> {
        refused()
    }

    fn begin_login(
        &self,
        _: types::Context,
        _: Option<String>,
        _: Option<String>,
        _: Option<u16>,
    ) -> Result<wit::Login, types::Failure> {
        refused()
    }

    fn finish_login(
        &self,
        _: String,
        _: wit::Login,
        _: types::Context,
    ) -> Result<wit::LoginStep, types::Failure> {
        refused()
    }
}

export!(Faulty);
