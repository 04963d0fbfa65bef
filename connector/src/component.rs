//! The WebAssembly component's exports: conversions between the WIT types
//! and the library's, nothing more. Each export calls one library function.

use crate::token_state::{self, LoginNext, Refusal, Renewal, Step, TokenFetch, Verdict};
use crate::{Config, Context, Failure, FieldError, Request, Response, Token, TokenState};

wit_bindgen::generate!({
    path: "../wit",
    world: "oauth-connector",
});

use exports::oauth2::connector::{connection as wit, helpers, settings, types};

struct Connector;

impl settings::Guest for Connector {
    fn schema() -> String {
        crate::schema().to_string()
    }

    fn validate(config: String) -> Vec<types::FieldError> {
        crate::validate(&config)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    fn merge_layers(
        connection: String,
        environment: Option<String>,
        runtime: Option<String>,
    ) -> Result<String, Vec<types::FieldError>> {
        crate::merge_layers(&connection, environment.as_deref(), runtime.as_deref())
            .map_err(|errors| errors.into_iter().map(Into::into).collect())
    }
}

impl helpers::Guest for Connector {
    fn challenges(response: types::Response) -> Vec<helpers::Challenge> {
        crate::challenges(&response.into())
            .into_iter()
            .map(|c| helpers::Challenge {
                scheme: c.scheme,
                token68: c.token68,
                params: c.params,
            })
            .collect()
    }

    fn read_introspection_response(
        response: types::Response,
    ) -> Result<helpers::Introspection, types::Failure> {
        let i = crate::read_introspection_response(&response.into())?;
        Ok(helpers::Introspection {
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
    }

    fn read_revocation_response(response: types::Response) -> Result<(), types::Failure> {
        Ok(crate::read_revocation_response(&response.into())?)
    }
}

impl wit::Guest for Connector {
    type Connection = Connection;
}

/// What a `connection` resource holds: the configuration parsed and
/// checked once, its signing keys kept parsed inside it.
struct Connection {
    config: Config,
}

impl wit::GuestConnection for Connection {
    fn open(config: String) -> Result<wit::Connection, types::Failure> {
        let config = crate::open(&config).map_err(Failure::InvalidConfig)?;
        Ok(wit::Connection::new(Connection { config }))
    }

    fn cache_key(&self, store_secret: Vec<u8>) -> String {
        crate::token_cache_key(&self.config, &store_secret)
    }

    fn next(
        &self,
        api_request: types::Request,
        held: Option<types::TokenState>,
        cx: types::Context,
    ) -> Result<wit::Step, types::Failure> {
        let held = held.map(TokenState::from);
        Ok(token_state::next(&self.config, api_request.into(), held.as_ref(), &cx.into())?.into())
    }

    fn token_request(&self, cx: types::Context) -> Result<wit::TokenFetch, types::Failure> {
        Ok(token_state::token_request(&self.config, &cx.into())?.into())
    }

    fn took(
        &self,
        fetch: wit::Renewal,
        response: types::Response,
        held: Option<types::TokenState>,
        cx: types::Context,
    ) -> Result<types::TokenState, wit::Refusal> {
        let held = held.map(TokenState::from);
        token_state::took(
            &self.config,
            fetch.into(),
            &response.into(),
            held.as_ref(),
            &cx.into(),
        )
        .map(Into::into)
        .map_err(|refusal| (*refusal).into())
    }

    fn judge(
        &self,
        response: types::Response,
        used: types::TokenState,
        retried: bool,
    ) -> wit::Verdict {
        match token_state::judge(&self.config, &response.into(), &used.into(), retried) {
            Verdict::Accept => wit::Verdict::Accept,
            Verdict::RenewAndRetry(spent) => wit::Verdict::RenewAndRetry(spent.into()),
        }
    }

    fn describe(&self, state: types::TokenState) -> Result<types::Token, types::Failure> {
        Ok(token_state::describe(&state.into())?.into())
    }

    fn revoked(
        &self,
        state: types::TokenState,
        which: types::TokenTypeHint,
    ) -> Result<Option<types::TokenState>, types::Failure> {
        Ok(token_state::revoked(&self.config, &state.into(), which.into())?.map(Into::into))
    }

    fn keep_in_document(
        &self,
        document: String,
        state: types::TokenState,
    ) -> Result<String, types::Failure> {
        Ok(token_state::keep_in_document(&document, &state.into())?)
    }

    fn introspection_request(
        &self,
        token: String,
        hint: Option<types::TokenTypeHint>,
        cx: types::Context,
    ) -> Result<types::Request, types::Failure> {
        Ok(
            crate::introspection_request(&self.config, &token, hint.map(Into::into), &cx.into())?
                .into(),
        )
    }

    fn revocation_request(
        &self,
        token: String,
        hint: Option<types::TokenTypeHint>,
        cx: types::Context,
    ) -> Result<types::Request, types::Failure> {
        Ok(
            crate::revocation_request(&self.config, &token, hint.map(Into::into), &cx.into())?
                .into(),
        )
    }

    fn loopback_redirect(&self) -> Result<wit::Loopback, types::Failure> {
        let listen = token_state::loopback_redirect(&self.config)?;
        Ok(wit::Loopback {
            address: listen.address,
            port: listen.port,
            path: listen.path,
        })
    }

    fn begin_login(
        &self,
        cx: types::Context,
        state: Option<String>,
        code_verifier: Option<String>,
        port: Option<u16>,
    ) -> Result<wit::Login, types::Failure> {
        let login = token_state::begin_login(
            &self.config,
            &cx.into(),
            state.as_deref(),
            code_verifier.as_deref(),
            port,
        )?;
        Ok(wit::Login {
            url: login.url,
            state: login.state,
            code_verifier: login.code_verifier,
            redirect_uri: login.redirect_uri,
        })
    }

    fn finish_login(
        &self,
        redirect_url: String,
        login: wit::Login,
        cx: types::Context,
    ) -> Result<wit::LoginStep, types::Failure> {
        let login = crate::Authorization {
            url: login.url,
            state: login.state,
            code_verifier: login.code_verifier,
            redirect_uri: login.redirect_uri,
        };
        Ok(
            match token_state::finish_login(&self.config, &redirect_url, &login, &cx.into())? {
                LoginNext::Exchange(fetch) => wit::LoginStep::Exchange(fetch.into()),
                LoginNext::Done(state) => wit::LoginStep::Done(state.into()),
            },
        )
    }
}

// Conversions between the generated WIT types and the library's.

impl From<types::Context> for Context {
    fn from(cx: types::Context) -> Self {
        Context {
            now: cx.now,
            nonce: cx.nonce,
        }
    }
}

impl From<types::Request> for Request {
    fn from(request: types::Request) -> Self {
        Request {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        }
    }
}

impl From<Request> for types::Request {
    fn from(request: Request) -> Self {
        types::Request {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        }
    }
}

impl From<types::Response> for Response {
    fn from(response: types::Response) -> Self {
        Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    }
}

impl From<types::TokenState> for TokenState {
    fn from(state: types::TokenState) -> Self {
        TokenState {
            data: state.data,
            evict_after: state.evict_after,
        }
    }
}

impl From<TokenState> for types::TokenState {
    fn from(state: TokenState) -> Self {
        types::TokenState {
            data: state.data,
            evict_after: state.evict_after,
        }
    }
}

impl From<Token> for types::Token {
    fn from(token: Token) -> Self {
        types::Token {
            access_token: token.access_token.into_exposed(),
            token_type: token.token_type,
            expires_at: token.expires_at,
            refresh_token: token.refresh_token.map(crate::Secret::into_exposed),
            refresh_token_rotated: token.refresh_token_rotated,
            scope: token.scope,
            extra: serde_json::Value::Object(token.extra).to_string(),
        }
    }
}

impl From<types::TokenTypeHint> for crate::TokenTypeHint {
    fn from(hint: types::TokenTypeHint) -> Self {
        match hint {
            types::TokenTypeHint::AccessToken => crate::TokenTypeHint::AccessToken,
            types::TokenTypeHint::RefreshToken => crate::TokenTypeHint::RefreshToken,
        }
    }
}

impl From<wit::Renewal> for Renewal {
    fn from(renewal: wit::Renewal) -> Self {
        match renewal {
            wit::Renewal::ConfiguredGrant => Renewal::ConfiguredGrant,
            wit::Renewal::Refresh => Renewal::Refresh,
            wit::Renewal::ConfiguredGrantAfterRefusedRefresh => {
                Renewal::ConfiguredGrantAfterRefusedRefresh
            }
            wit::Renewal::CodeExchange => Renewal::CodeExchange,
        }
    }
}

impl From<TokenFetch> for wit::TokenFetch {
    fn from(fetch: TokenFetch) -> Self {
        wit::TokenFetch {
            request: fetch.request.into(),
            renewal: match fetch.renewal {
                Renewal::ConfiguredGrant => wit::Renewal::ConfiguredGrant,
                Renewal::Refresh => wit::Renewal::Refresh,
                Renewal::ConfiguredGrantAfterRefusedRefresh => {
                    wit::Renewal::ConfiguredGrantAfterRefusedRefresh
                }
                Renewal::CodeExchange => wit::Renewal::CodeExchange,
            },
        }
    }
}

impl From<Step> for wit::Step {
    fn from(step: Step) -> Self {
        match step {
            Step::Send(request) => wit::Step::Send(request.into()),
            Step::Fetch(fetch) => wit::Step::Fetch(fetch.into()),
            Step::LogIn(reason) => wit::Step::LogIn(reason),
        }
    }
}

impl From<Refusal> for wit::Refusal {
    fn from(refusal: Refusal) -> Self {
        wit::Refusal {
            failure: refusal.failure.into(),
            fallback: refusal.fallback.map(Into::into),
        }
    }
}

impl From<FieldError> for types::FieldError {
    fn from(error: FieldError) -> Self {
        types::FieldError {
            field: error.field,
            message: error.message,
            fix: error.fix,
        }
    }
}

impl From<Failure> for types::Failure {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::InvalidConfig(errors) => {
                types::Failure::InvalidConfig(errors.into_iter().map(Into::into).collect())
            }
            Failure::Rejected(e) => types::Failure::Rejected(types::OauthError {
                error: e.error,
                error_description: e.error_description,
                error_uri: e.error_uri,
                status: e.status,
            }),
            Failure::Unreadable(u) => types::Failure::UnreadableResponse(types::Unreadable {
                problem: u.problem,
                location: u.location,
                status: u.status,
                snippet: u.snippet,
            }),
            Failure::BadRedirect(message) => types::Failure::BadRedirect(message),
            Failure::UnknownState(message) => types::Failure::UnknownState(message),
            other => types::Failure::Other(other.to_string()),
        }
    }
}

export!(Connector);
