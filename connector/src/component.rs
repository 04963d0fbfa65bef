//! The WebAssembly component's exports: conversions between the WIT types
//! and the library's, nothing more.

use crate::{Config, Context, Failure, FieldError, Request, Response, Secret, Token};

wit_bindgen::generate!({
    path: "../wit",
    world: "oauth-connector",
});

use exports::oauth2::connector::{http, settings, tokens};

struct Connector;

impl settings::Guest for Connector {
    fn schema() -> String {
        crate::schema().to_string()
    }

    fn validate(config: String) -> Vec<settings::FieldError> {
        crate::validate(&config)
            .into_iter()
            .map(field_error)
            .collect()
    }
}

impl tokens::Guest for Connector {
    fn token_request(
        config: String,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        let config = parse(&config)?;
        Ok(request(crate::token_request(&config, &context(cx))))
    }

    fn refresh_request(
        config: String,
        refresh_token: String,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        let config = parse(&config)?;
        let refresh_token = Secret::new(refresh_token);
        Ok(request(crate::refresh_request(
            &config,
            &refresh_token,
            &context(cx),
        )))
    }

    fn read_token_response(
        config: String,
        response: http::Response,
        now: u64,
    ) -> Result<tokens::Token, tokens::Failure> {
        // Parsed so that a broken configuration is reported here too; later
        // versions read provider-specific response settings from it.
        parse(&config)?;
        let response = Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        };
        crate::read_token_response(&response, now)
            .map(token)
            .map_err(failure)
    }
}

fn parse(config: &str) -> Result<Config, tokens::Failure> {
    Config::parse(config).map_err(|errors| failure(Failure::InvalidConfig(errors)))
}

fn context(cx: tokens::Context) -> Context {
    Context {
        now: cx.now,
        nonce: cx.nonce,
    }
}

fn request(request: Request) -> http::Request {
    http::Request {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body,
    }
}

fn token(token: Token) -> tokens::Token {
    tokens::Token {
        access_token: token.access_token.into_exposed(),
        token_type: token.token_type,
        expires_at: token.expires_at,
        refresh_token: token.refresh_token.map(Secret::into_exposed),
        scope: token.scope,
        extra: serde_json::Value::Object(token.extra).to_string(),
    }
}

fn field_error(error: FieldError) -> settings::FieldError {
    settings::FieldError {
        field: error.field,
        message: error.message,
        fix: error.fix,
    }
}

fn failure(failure: Failure) -> tokens::Failure {
    match failure {
        Failure::InvalidConfig(errors) => {
            tokens::Failure::InvalidConfig(errors.into_iter().map(field_error).collect())
        }
        Failure::Rejected(e) => tokens::Failure::Rejected(tokens::OauthError {
            error: e.error,
            error_description: e.error_description,
            error_uri: e.error_uri,
            status: e.status,
        }),
        Failure::Unreadable(u) => tokens::Failure::UnreadableResponse(tokens::Unreadable {
            problem: u.problem,
            location: u.location,
            status: u.status,
            snippet: u.snippet,
        }),
        other => tokens::Failure::Other(other.to_string()),
    }
}

export!(Connector);
