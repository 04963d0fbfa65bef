//! Asking about a token and giving it up: introspection (RFC 7662) and
//! revocation (RFC 7009). Both are form `POST`s to their endpoint with the
//! client authenticated as at the token endpoint.

use serde_json::{Map, Value};

use crate::config::{Config, FieldError};
use crate::error::Failure;
use crate::request::{Context, Request, authenticated};
use crate::response::{Response, cleaned, read_members};
use crate::secret::KnownSecrets;

/// What kind of token is presented, as a hint to the server
/// (RFC 7009 section 2.1, RFC 7662 section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    /// An access token.
    AccessToken,
    /// A refresh token.
    RefreshToken,
}

impl TokenTypeHint {
    fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// The server's answer about a token (RFC 7662 section 2.2). An inactive
/// token tells nothing more: the other members are then absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Introspection {
    /// Whether the token is currently active.
    pub active: bool,
    /// Its scope.
    pub scope: Option<String>,
    /// The client it was issued to.
    pub client_id: Option<String>,
    /// The resource owner who authorized it.
    pub username: Option<String>,
    /// Its type, such as `Bearer`.
    pub token_type: Option<String>,
    /// When it expires, unix seconds.
    pub exp: Option<u64>,
    /// When it was issued, unix seconds.
    pub iat: Option<u64>,
    /// Its subject.
    pub sub: Option<String>,
    /// Every other member, as a JSON object.
    pub extra: Map<String, Value>,
}

fn endpoint<'c>(
    url: Option<&'c url::Url>,
    field: &str,
    what: &str,
) -> Result<&'c url::Url, Failure> {
    url.ok_or_else(|| {
        Failure::InvalidConfig(vec![FieldError::new(
            field,
            format!("required to {what}"),
            format!("fill in `{field}` with the server's endpoint"),
        )])
    })
}

fn form(token: &str, hint: Option<TokenTypeHint>) -> form_urlencoded::Serializer<'static, String> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token);
    if let Some(hint) = hint {
        form.append_pair("token_type_hint", hint.as_str());
    }
    form
}

/// The request asking the introspection endpoint about a token.
pub fn introspection_request(
    config: &Config,
    token: &str,
    hint: Option<TokenTypeHint>,
    cx: &Context,
) -> Result<Request, Failure> {
    let url = endpoint(
        config.introspection_url.as_ref(),
        "introspection_url",
        "introspect a token",
    )?;
    authenticated(config, cx, url, form(token, hint), false)
}

/// Reads the introspection endpoint's answer.
///
/// It is read without a connection (the WIT `helpers` take none), so an
/// error hides the secrets in the answer by their names and shapes only,
/// not by the values a connection holds.
pub fn read_introspection_response(response: &Response) -> Result<Introspection, Failure> {
    let none = KnownSecrets::default();
    let mut members = read_members(response, &none)?;
    let unreadable = |problem: &str, member: &str| {
        crate::response::unreadable(response, problem.to_owned(), member.to_owned(), &none)
    };
    let active: bool = match members.remove("active") {
        Some(Value::Bool(active)) => active,
        // Some servers send the boolean as a string.
        Some(Value::String(text)) if text == "true" || text == "false" => text == "true",
        Some(_) => return Err(unreadable("`active` is not a boolean", "active")),
        None => {
            return Err(unreadable(
                "the required member `active` is missing",
                "active",
            ));
        }
    };
    if !active {
        // RFC 7662 section 2.2: an inactive token tells nothing more, and
        // whatever a server adds is not to be relied on.
        return Ok(Introspection::default());
    }
    let mut text = |name: &str| match members.remove(name) {
        Some(Value::String(text)) if !text.is_empty() => Some(text),
        _ => None,
    };
    let scope = text("scope");
    let client_id = text("client_id");
    let username = text("username");
    let token_type = text("token_type");
    let sub = text("sub");
    let mut time = |name: &str| members.remove(name).and_then(|v| v.as_u64());
    let exp = time("exp");
    let iat = time("iat");
    Ok(Introspection {
        active,
        scope,
        client_id,
        username,
        token_type,
        exp,
        iat,
        sub,
        extra: members,
    })
}

/// The request revoking a token.
pub fn revocation_request(
    config: &Config,
    token: &str,
    hint: Option<TokenTypeHint>,
    cx: &Context,
) -> Result<Request, Failure> {
    let url = endpoint(
        config.revocation_url.as_ref(),
        "revocation_url",
        "revoke a token",
    )?;
    authenticated(config, cx, url, form(token, hint), false)
}

/// Reads the revocation endpoint's answer: 200 means the token is gone or
/// was never valid (RFC 7009 section 2.2); an error names what the server
/// refused, and 503 asks to try again later (section 2.2.1). Like
/// [`read_introspection_response`], it is read without a connection.
pub fn read_revocation_response(response: &Response) -> Result<(), Failure> {
    let none = KnownSecrets::default();
    match response.status {
        200..=299 => Ok(()),
        503 => Err(Failure::Other(format!(
            "the revocation endpoint is unavailable (HTTP 503){}; try again later",
            response
                .header("Retry-After")
                .map(|after| format!(", retry after {}", cleaned(after, &none)))
                .unwrap_or_default()
        ))),
        _ => read_members(response, &none).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token",
                "introspection_url":"https://as.example/introspect","revocation_url":"https://as.example/revoke",
                "client_id":"app","client_secret":"s3cret","extra_body":{"tenant":"t"},"extra_headers":{"X-Trace":"1"}}"#,
        )
        .expect("valid")
    }

    fn cx() -> Context {
        Context {
            now: 1_700_000_000,
            nonce: vec![1; 32],
        }
    }

    fn json(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn introspection_posts_the_token_with_the_client_authenticated() {
        let request =
            introspection_request(&config(), "at-1", Some(TokenTypeHint::AccessToken), &cx())
                .expect("request");
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "https://as.example/introspect");
        assert_eq!(
            String::from_utf8(request.body.clone()).expect("UTF-8"),
            "token=at-1&token_type_hint=access_token"
        );
        assert_eq!(
            request.header("Authorization"),
            Some(crate::basic_authorization("app", "s3cret").as_str())
        );
        assert_eq!(request.header("X-Trace"), Some("1"));
        assert_eq!(
            request.header("Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
    }

    #[test]
    fn revocation_posts_to_its_own_endpoint() {
        let request =
            revocation_request(&config(), "rt-1", Some(TokenTypeHint::RefreshToken), &cx())
                .expect("request");
        assert_eq!(request.url, "https://as.example/revoke");
        assert_eq!(
            String::from_utf8(request.body).expect("UTF-8"),
            "token=rt-1&token_type_hint=refresh_token"
        );
    }

    #[test]
    fn a_missing_endpoint_is_a_field_error() {
        let config = Config::parse(
            r#"{"grant_type":"client_credentials","token_url":"https://as.example/token","client_id":"a","client_secret":"s"}"#,
        )
        .expect("valid");
        match introspection_request(&config, "t", None, &cx()) {
            Err(Failure::InvalidConfig(errors)) => assert_eq!(errors[0].field, "introspection_url"),
            other => panic!("{other:?}"),
        }
        match revocation_request(&config, "t", None, &cx()) {
            Err(Failure::InvalidConfig(errors)) => assert_eq!(errors[0].field, "revocation_url"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn introspection_answers_are_read() {
        let active = read_introspection_response(&json(
            200,
            r#"{"active":true,"scope":"read write","client_id":"app","username":"alice","token_type":"Bearer","exp":1700003600,"iat":1700000000,"sub":"alice","tenant":"t"}"#,
        ))
        .expect("active");
        assert!(active.active);
        assert_eq!(active.scope.as_deref(), Some("read write"));
        assert_eq!(active.exp, Some(1_700_003_600));
        assert_eq!(active.extra["tenant"], "t");
        let inactive =
            read_introspection_response(&json(200, r#"{"active":false}"#)).expect("read");
        assert_eq!(inactive, Introspection::default());
        assert!(matches!(
            read_introspection_response(&json(200, r#"{"scope":"x"}"#)),
            Err(Failure::Unreadable(u)) if u.location == "active"
        ));
        assert!(matches!(
            read_introspection_response(&json(401, r#"{"error":"invalid_client"}"#)),
            Err(Failure::Rejected(e)) if e.error == "invalid_client"
        ));
    }

    #[test]
    fn revocation_answers_are_read() {
        assert!(read_revocation_response(&json(200, "")).is_ok());
        assert!(matches!(
            read_revocation_response(&json(400, r#"{"error":"unsupported_token_type"}"#)),
            Err(Failure::Rejected(e)) if e.error == "unsupported_token_type"
        ));
        let mut unavailable = json(503, "");
        unavailable
            .headers
            .push(("Retry-After".into(), "30".into()));
        let error = read_revocation_response(&unavailable).expect_err("503");
        assert!(error.to_string().contains("retry after 30"), "{error}");
    }
}
