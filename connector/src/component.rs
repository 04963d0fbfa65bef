//! The WebAssembly component's exports: conversions between the WIT types
//! and the library's, nothing more.

use crate::{Config, Context, Failure, FieldError, Request, Response, Secret, Token};

wit_bindgen::generate!({
    path: "../wit",
    world: "oauth-connector",
});

use exports::oauth2::connector::{api_calls, connections, http, settings, tokens, user_login};

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

    fn merge_layers(
        connection: String,
        environment: Option<String>,
        runtime: Option<String>,
    ) -> Result<String, Vec<settings::FieldError>> {
        crate::merge_layers(&connection, environment.as_deref(), runtime.as_deref())
            .map_err(|errors| errors.into_iter().map(field_error).collect())
    }
}

impl tokens::Guest for Connector {
    fn token_request(
        config: String,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        token_request(&parse(&config)?, cx)
    }

    fn refresh_request(
        config: String,
        refresh_token: String,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refresh_request(&parse(&config)?, refresh_token, cx)
    }

    fn read_token_response(
        config: String,
        response: http::Response,
        now: u64,
        presented_refresh_token: Option<String>,
    ) -> Result<tokens::Token, tokens::Failure> {
        read_token_response(&parse(&config)?, response, now, presented_refresh_token)
    }

    fn introspection_request(
        config: String,
        token: String,
        hint: Option<tokens::TokenTypeHint>,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        introspection_request(&parse(&config)?, token, hint, cx)
    }

    fn read_introspection_response(
        response: http::Response,
    ) -> Result<tokens::Introspection, tokens::Failure> {
        crate::read_introspection_response(&response_in(response))
            .map(|i| tokens::Introspection {
                active: i.active,
                scope: i.scope,
                client_id: i.client_id,
                username: i.username,
                token_type: i.token_type,
                exp: i.exp,
                iat: i.iat,
                sub: i.sub,
                extra: serde_json::Value::Object(i.extra).to_string(),
            })
            .map_err(failure)
    }

    fn revocation_request(
        config: String,
        token: String,
        hint: Option<tokens::TokenTypeHint>,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        revocation_request(&parse(&config)?, token, hint, cx)
    }

    fn read_revocation_response(response: http::Response) -> Result<(), tokens::Failure> {
        crate::read_revocation_response(&response_in(response)).map_err(failure)
    }
}

impl user_login::Guest for Connector {
    fn finish_login(
        config: String,
        redirect_url: String,
        expected_state: String,
        code_verifier: Option<String>,
        cx: tokens::Context,
    ) -> Result<user_login::LoginStep, tokens::Failure> {
        finish_login(
            &parse(&config)?,
            redirect_url,
            expected_state,
            code_verifier,
            cx,
        )
    }

    fn authorization_url(
        config: String,
        cx: tokens::Context,
        state: Option<String>,
        code_verifier: Option<String>,
    ) -> Result<user_login::Authorization, tokens::Failure> {
        authorization_url(&parse(&config)?, cx, state, code_verifier)
    }

    fn read_redirect(
        config: String,
        redirect_url: String,
        expected_state: String,
    ) -> Result<String, tokens::Failure> {
        let config = parse(&config)?;
        crate::read_redirect(&config, &redirect_url, &expected_state).map_err(failure)
    }

    fn code_exchange_request(
        config: String,
        code: String,
        code_verifier: Option<String>,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        let config = parse(&config)?;
        crate::code_exchange_request(&config, &code, code_verifier.as_deref(), &context(cx))
            .map(request)
            .map_err(failure)
    }

    fn read_implicit_redirect(
        config: String,
        redirect_url: String,
        expected_state: String,
        now: u64,
    ) -> Result<tokens::Token, tokens::Failure> {
        let config = parse(&config)?;
        crate::read_implicit_redirect(&config, &redirect_url, &expected_state, now)
            .map(token)
            .map_err(failure)
    }
}

impl api_calls::Guest for Connector {
    fn authorize(
        config: String,
        request: http::Request,
        token_type: String,
        access_token: String,
    ) -> Result<http::Request, tokens::Failure> {
        authorize(&parse(&config)?, request, token_type, access_token)
    }

    fn judge(
        config: String,
        response: http::Response,
        retried: bool,
    ) -> Result<api_calls::Verdict, tokens::Failure> {
        Ok(judge(&parse(&config)?, response, retried))
    }

    fn challenges(response: http::Response) -> Vec<api_calls::Challenge> {
        crate::challenges(&response_in(response))
            .into_iter()
            .map(|c| api_calls::Challenge {
                scheme: c.scheme,
                token68: c.token68,
                params: c.params,
            })
            .collect()
    }

    fn falls_back_to_grant(failure: tokens::Failure) -> bool {
        crate::falls_back_to_grant(&failure_in(failure))
    }

    fn token_cache_key(config: String) -> Result<String, tokens::Failure> {
        Ok(crate::token_cache_key(&parse(&config)?))
    }
}

impl connections::Guest for Connector {
    type Connection = Connection;
}

/// What a `connection` resource holds: the configuration parsed and
/// checked once, its signing keys kept parsed inside it.
struct Connection {
    config: Config,
}

impl connections::GuestConnection for Connection {
    fn open(config: String) -> Result<connections::Connection, tokens::Failure> {
        let config =
            crate::open(&config).map_err(|errors| failure(Failure::InvalidConfig(errors)))?;
        Ok(connections::Connection::new(Connection { config }))
    }

    fn cache_key(&self) -> String {
        crate::token_cache_key(&self.config)
    }

    fn token_request(&self, cx: tokens::Context) -> Result<http::Request, tokens::Failure> {
        token_request(&self.config, cx)
    }

    fn refresh_request(
        &self,
        refresh_token: String,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        refresh_request(&self.config, refresh_token, cx)
    }

    fn read_token_response(
        &self,
        response: http::Response,
        now: u64,
        presented_refresh_token: Option<String>,
    ) -> Result<tokens::Token, tokens::Failure> {
        read_token_response(&self.config, response, now, presented_refresh_token)
    }

    fn authorize(
        &self,
        request: http::Request,
        token_type: String,
        access_token: String,
    ) -> Result<http::Request, tokens::Failure> {
        authorize(&self.config, request, token_type, access_token)
    }

    fn judge(&self, response: http::Response, retried: bool) -> api_calls::Verdict {
        judge(&self.config, response, retried)
    }

    fn introspection_request(
        &self,
        token: String,
        hint: Option<tokens::TokenTypeHint>,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        introspection_request(&self.config, token, hint, cx)
    }

    fn revocation_request(
        &self,
        token: String,
        hint: Option<tokens::TokenTypeHint>,
        cx: tokens::Context,
    ) -> Result<http::Request, tokens::Failure> {
        revocation_request(&self.config, token, hint, cx)
    }

    fn authorization_url(
        &self,
        cx: tokens::Context,
        state: Option<String>,
        code_verifier: Option<String>,
    ) -> Result<user_login::Authorization, tokens::Failure> {
        authorization_url(&self.config, cx, state, code_verifier)
    }

    fn finish_login(
        &self,
        redirect_url: String,
        expected_state: String,
        code_verifier: Option<String>,
        cx: tokens::Context,
    ) -> Result<user_login::LoginStep, tokens::Failure> {
        finish_login(
            &self.config,
            redirect_url,
            expected_state,
            code_verifier,
            cx,
        )
    }
}

// Each operation once, on a parsed configuration: the functions parse the
// document per call, a connection keeps it parsed.

fn token_request(config: &Config, cx: tokens::Context) -> Result<http::Request, tokens::Failure> {
    crate::token_request(config, &context(cx))
        .map(request)
        .map_err(failure)
}

fn refresh_request(
    config: &Config,
    refresh_token: String,
    cx: tokens::Context,
) -> Result<http::Request, tokens::Failure> {
    crate::refresh_request(config, &Secret::new(refresh_token), &context(cx))
        .map(request)
        .map_err(failure)
}

fn read_token_response(
    config: &Config,
    response: http::Response,
    now: u64,
    presented_refresh_token: Option<String>,
) -> Result<tokens::Token, tokens::Failure> {
    let presented = presented_refresh_token.map(Secret::new);
    crate::read_token_response(config, &response_in(response), now, presented.as_ref())
        .map(token)
        .map_err(failure)
}

fn introspection_request(
    config: &Config,
    token: String,
    hint: Option<tokens::TokenTypeHint>,
    cx: tokens::Context,
) -> Result<http::Request, tokens::Failure> {
    crate::introspection_request(config, &token, self::hint(hint), &context(cx))
        .map(request)
        .map_err(failure)
}

fn revocation_request(
    config: &Config,
    token: String,
    hint: Option<tokens::TokenTypeHint>,
    cx: tokens::Context,
) -> Result<http::Request, tokens::Failure> {
    crate::revocation_request(config, &token, self::hint(hint), &context(cx))
        .map(request)
        .map_err(failure)
}

fn hint(hint: Option<tokens::TokenTypeHint>) -> Option<crate::TokenTypeHint> {
    hint.map(|hint| match hint {
        tokens::TokenTypeHint::AccessToken => crate::TokenTypeHint::AccessToken,
        tokens::TokenTypeHint::RefreshToken => crate::TokenTypeHint::RefreshToken,
    })
}

fn authorization_url(
    config: &Config,
    cx: tokens::Context,
    state: Option<String>,
    code_verifier: Option<String>,
) -> Result<user_login::Authorization, tokens::Failure> {
    crate::authorization_url(
        config,
        &context(cx),
        state.as_deref(),
        code_verifier.as_deref(),
    )
    .map(|a| user_login::Authorization {
        url: a.url,
        state: a.state,
        code_verifier: a.code_verifier,
    })
    .map_err(failure)
}

fn finish_login(
    config: &Config,
    redirect_url: String,
    expected_state: String,
    code_verifier: Option<String>,
    cx: tokens::Context,
) -> Result<user_login::LoginStep, tokens::Failure> {
    match crate::finish_login(
        config,
        &redirect_url,
        &expected_state,
        code_verifier.as_deref(),
        &context(cx),
    ) {
        Ok(crate::LoginStep::Exchange(exchange)) => {
            Ok(user_login::LoginStep::Exchange(request(exchange)))
        }
        Ok(crate::LoginStep::Done(done)) => Ok(user_login::LoginStep::Done(token(done))),
        Err(error) => Err(failure(error)),
    }
}

fn authorize(
    config: &Config,
    request: http::Request,
    token_type: String,
    access_token: String,
) -> Result<http::Request, tokens::Failure> {
    let request = Request {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body,
    };
    crate::authorize(config, request, &token_type, &access_token)
        .map(self::request)
        .map_err(failure)
}

fn judge(config: &Config, response: http::Response, retried: bool) -> api_calls::Verdict {
    match crate::judge(
        config.token_retry_check_level,
        &response_in(response),
        retried,
    ) {
        crate::Verdict::RenewTokenAndRetry => api_calls::Verdict::RenewTokenAndRetry,
        _ => api_calls::Verdict::Accept,
    }
}

/// A failure the host hands back, as the library's type.
fn failure_in(failure: tokens::Failure) -> Failure {
    match failure {
        tokens::Failure::InvalidConfig(errors) => Failure::InvalidConfig(
            errors
                .into_iter()
                .map(|e| FieldError {
                    field: e.field,
                    message: e.message,
                    fix: e.fix,
                })
                .collect(),
        ),
        tokens::Failure::Rejected(e) => Failure::Rejected(crate::OAuthError {
            error: e.error,
            error_description: e.error_description,
            error_uri: e.error_uri,
            status: e.status,
        }),
        tokens::Failure::UnreadableResponse(u) => Failure::Unreadable(crate::Unreadable {
            problem: u.problem,
            location: u.location,
            status: u.status,
            snippet: u.snippet,
        }),
        tokens::Failure::BadRedirect(message) => Failure::BadRedirect(message),
        tokens::Failure::Other(message) => Failure::Other(message),
    }
}

fn response_in(response: http::Response) -> Response {
    Response {
        status: response.status,
        headers: response.headers,
        body: response.body,
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
        refresh_token_rotated: token.refresh_token_rotated,
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
        Failure::BadRedirect(message) => tokens::Failure::BadRedirect(message),
        other => tokens::Failure::Other(other.to_string()),
    }
}

export!(Connector);
