//! Browser logins: the authorization URL, the redirect back, and the
//! implicit grant's token in the fragment (RFC 6749 sections 4.1 and 4.2,
//! RFC 7636, RFC 8252).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::config::{Config, Grant, Pkce, UserLogin};
use crate::error::{Failure, OAuthError};
use crate::jwt;
use crate::request::{Context, Request, code_exchange_request};
use crate::response::{self, Token};
use crate::secret::KnownSecrets;

/// An authorization request for the browser, with what the host must keep
/// until the redirect comes back.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The URL to open in the browser.
    pub url: String,
    /// The `state` to expect in the redirect.
    pub state: String,
    /// The PKCE code verifier for the code exchange, when PKCE is on.
    pub code_verifier: Option<String>,
    /// The redirect URI the login uses, which its redirect must come back to.
    pub redirect_uri: String,
}

/// The verifier is what proves the code is ours: Debug hides it.
impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("url", &self.url)
            .field("state", &self.state)
            .field(
                "code_verifier",
                &self.code_verifier.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// Builds the authorization URL. `state` and `code_verifier` are derived
/// from the host's nonce unless given (fixed values make runs reproducible).
pub fn authorization_url(
    config: &Config,
    cx: &Context,
    state: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<Authorization, Failure> {
    let login = login(config)?;
    let code_flow = matches!(config.grant, Grant::AuthorizationCode(_));
    let state = match state {
        Some(state) if !state.is_empty() => state.to_owned(),
        _ => jwt::jti(&cx.nonce, "state").map_err(Failure::Other)?,
    };
    let code_verifier = match (code_flow, login.pkce, code_verifier) {
        (false, _, _) | (true, Pkce::Disabled, _) => None,
        (true, _, Some(verifier)) => Some(checked_verifier(verifier)?),
        (true, _, None) => Some(new_verifier(&cx.nonce)?),
    };

    let mut url = login.authorization_url.clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("response_type", if code_flow { "code" } else { "token" });
        if let Some(client_id) = &config.client.client_id {
            query.append_pair("client_id", client_id);
        }
        query.append_pair("redirect_uri", login.redirect_uri.as_str());
        if let Some(scope) = login_scope(config.scope.as_deref(), login) {
            query.append_pair("scope", &scope);
        }
        query.append_pair("state", &state);
        if let Some(verifier) = &code_verifier {
            match login.pkce {
                Pkce::Plain => {
                    query.append_pair("code_challenge", verifier);
                    query.append_pair("code_challenge_method", "plain");
                }
                _ => {
                    query.append_pair(
                        "code_challenge",
                        &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)),
                    );
                    query.append_pair("code_challenge_method", "S256");
                }
            }
        }
        if let Some(prompt) = &login.prompt {
            query.append_pair("prompt", prompt);
        }
        if let Some(hint) = &login.login_hint {
            query.append_pair("login_hint", hint);
        }
        query.extend_pairs(&login.extra_params.0);
    }
    Ok(Authorization {
        url: url.to_string(),
        state,
        code_verifier,
        redirect_uri: login.redirect_uri.to_string(),
    })
}

/// What a login's redirect leads to.
#[derive(Debug)]
pub enum LoginStep {
    /// Send this code exchange, then read its response as a token response.
    Exchange(Request),
    /// The implicit grant's token, complete.
    Done(Token),
}

/// Finishes a login from its redirect, whichever the grant: the code
/// exchange request for the authorization code grant, the token for the
/// implicit grant.
pub fn finish_login(
    config: &Config,
    redirect_url: &str,
    expected_state: &str,
    code_verifier: Option<&str>,
    cx: &Context,
) -> Result<LoginStep, Failure> {
    match config.grant {
        Grant::Implicit(_) => read_implicit_redirect(config, redirect_url, expected_state, cx.now)
            .map(LoginStep::Done),
        _ => {
            let code = read_redirect(config, redirect_url, expected_state)?;
            code_exchange_request(config, &code, code_verifier, cx).map(LoginStep::Exchange)
        }
    }
}

/// Reads the redirect of an authorization code login (RFC 6749 section
/// 4.1.2): the code, after checking that the redirect is ours and carries
/// the expected state, or the server's section 4.1.2.1 error.
pub fn read_redirect(
    config: &Config,
    redirect_url: &str,
    expected_state: &str,
) -> Result<String, Failure> {
    let login = login(config)?;
    let url = redirected_to(login, redirect_url)?;
    let parameters: Map<String, Value> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    check_issuer(login, &parameters)?;
    check_error_and_state(&parameters, expected_state, &config.known_secrets())?;
    parameters
        .get("code")
        .and_then(Value::as_str)
        .filter(|code| !code.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Failure::BadRedirect(String::from("the redirect carries no `code`")))
}

/// Reads the token from an implicit grant's redirect (RFC 6749 section
/// 4.2.2): its fragment holds the token response's members.
pub fn read_implicit_redirect(
    config: &Config,
    redirect_url: &str,
    expected_state: &str,
    now: u64,
) -> Result<Token, Failure> {
    let login = login(config)?;
    let url = redirected_to(login, redirect_url)?;
    let fragment = url.fragment().unwrap_or_default();
    let parameters: Map<String, Value> = form_urlencoded::parse(fragment.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    // Errors may come in the query or, for the implicit grant, the fragment.
    let query: Map<String, Value> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    let secrets = config.known_secrets();
    if query.contains_key("error") {
        check_issuer(login, &query)?;
        check_error_and_state(&query, expected_state, &secrets)?;
    }
    check_issuer(login, &parameters)?;
    check_error_and_state(&parameters, expected_state, &secrets)?;
    let mut members = parameters;
    members.remove("state");
    members.remove("iss");
    response::token_from_members(members, now, None)
        .map_err(|(problem, location)| Failure::BadRedirect(format!("{problem} (at {location})")))
}

fn login(config: &Config) -> Result<&UserLogin, Failure> {
    config.user_login().ok_or_else(|| {
        Failure::Other(format!(
            "grant_type `{}` has no browser login; use authorization_code or implicit",
            config.grant.name()
        ))
    })
}

/// The scope of the authorization request: the configured scope, plus
/// the refresh-token scope when a refresh token is wanted.
fn login_scope(scope: Option<&str>, login: &UserLogin) -> Option<String> {
    let mut values: Vec<&str> = scope.map(|s| s.split(' ').collect()).unwrap_or_default();
    if login.request_refresh_token && !values.contains(&login.refresh_token_scope.as_str()) {
        values.push(&login.refresh_token_scope);
    }
    (!values.is_empty()).then(|| values.join(" "))
}

/// The redirect URL, checked to be the configured redirect URI: a
/// redirect elsewhere is not this login's.
fn redirected_to(login: &UserLogin, redirect_url: &str) -> Result<Url, Failure> {
    let url = Url::parse(redirect_url.trim()).map_err(|e| {
        Failure::BadRedirect(format!("the redirect URL is not an absolute URL: {e}"))
    })?;
    let expected = &login.redirect_uri;
    let same = url.scheme() == expected.scheme()
        && url.host() == expected.host()
        && url.port_or_known_default() == expected.port_or_known_default()
        && url.path() == expected.path();
    if !same {
        return Err(Failure::BadRedirect(format!(
            "the redirect went to {}{}, not to the configured redirect_uri {expected}",
            url.origin().ascii_serialization(),
            url.path()
        )));
    }
    Ok(url)
}

/// RFC 9207: with an issuer configured, the redirect must name it, or it
/// may come from another server the user was sent to (a mix-up attack).
fn check_issuer(login: &UserLogin, parameters: &Map<String, Value>) -> Result<(), Failure> {
    let Some(expected) = &login.issuer else {
        return Ok(());
    };
    match parameters.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == expected => Ok(()),
        Some(iss) => Err(Failure::BadRedirect(format!(
            "the redirect comes from the issuer `{}`, not the configured `{expected}` (RFC 9207): another server may have answered",
            response::shown(iss, response::SHORT_TEXT)
        ))),
        None => Err(Failure::BadRedirect(format!(
            "the redirect names no issuer (`iss`), while the configured one is `{expected}` (RFC 9207): clear `issuer` if the server does not send it"
        ))),
    }
}

/// The redirect's error, its text without the connection's `secrets`, or
/// whether its `state` is the login's.
fn check_error_and_state(
    parameters: &Map<String, Value>,
    expected_state: &str,
    secrets: &KnownSecrets,
) -> Result<(), Failure> {
    let text = |name: &str| {
        parameters
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let same_state = text("state") == Some(expected_state);
    // An error ends the login only when it carries the login's state (RFC
    // 6749 section 4.1.2.1 requires the server to echo it): any page could
    // send the browser to the redirect URI with an error of its own.
    if text("error").is_some() && !same_state {
        return Err(Failure::BadRedirect(String::from(
            "the redirect reports an error but not this login's `state`, so it may come from another page: the login goes on waiting for its own",
        )));
    }
    if let Some(error) = text("error") {
        return Err(Failure::Rejected(OAuthError {
            error: response::shown(&secrets.redact(error), response::SHORT_TEXT),
            error_description: text("error_description")
                .map(|description| response::cleaned(description, secrets)),
            error_uri: text("error_uri")
                .map(|uri| response::shown(&secrets.redact(uri), response::SHORT_TEXT)),
            status: None,
        }));
    }
    match text("state") {
        Some(_) if same_state => Ok(()),
        Some(_) => Err(Failure::BadRedirect(String::from(
            "the redirect's `state` does not match this login's: it may be forged (CSRF) or from another login",
        ))),
        None => Err(Failure::BadRedirect(String::from(
            "the redirect carries no `state`",
        ))),
    }
}

/// RFC 7636 section 4.1: 43 to 128 unreserved characters.
fn checked_verifier(verifier: &str) -> Result<String, Failure> {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if valid {
        Ok(verifier.to_owned())
    } else {
        Err(Failure::Other(String::from(
            "a PKCE code verifier must be 43 to 128 characters of A-Z, a-z, 0-9, `-`, `.`, `_` and `~`",
        )))
    }
}

/// 32 bytes derived from the host's nonce: 43 characters of base64url.
fn new_verifier(nonce: &[u8]) -> Result<String, Failure> {
    if nonce.len() < 32 {
        return Err(Failure::Other(format!(
            "the host passed {} random bytes; a PKCE verifier needs at least 32",
            nonce.len()
        )));
    }
    let digest = Sha256::new()
        .chain_update(b"pkce-verifier\0")
        .chain_update(nonce)
        .finalize();
    Ok(URL_SAFE_NO_PAD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: Value) -> Config {
        let mut doc = json!({
            "grant_type": "authorization_code",
            "token_url": "https://as.example.com/token",
            "authorization_url": "https://as.example.com/authorize?tenant=t1",
            "redirect_uri": "http://127.0.0.1:53682/callback",
            "client_id": "app",
            "client_auth": "none",
        });
        for (k, v) in extra.as_object().expect("object") {
            doc[k] = v.clone();
        }
        Config::parse(&doc.to_string()).expect("valid")
    }

    fn cx() -> Context {
        Context {
            now: 0,
            nonce: (0u8..32).collect(),
        }
    }

    fn query(url: &str) -> Vec<(String, String)> {
        Url::parse(url)
            .expect("url")
            .query_pairs()
            .into_owned()
            .collect()
    }

    #[test]
    fn the_authorization_url_carries_every_parameter_in_order() {
        let config = config(json!({
            "scope": "read",
            "request_refresh_token": true,
            "prompt": "login consent",
            "login_hint": "alice@example.com",
            "extra_authorization_params": {"ui_locales": "de"},
        }));
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let login = authorization_url(&config, &cx(), Some("xyz"), Some(verifier)).expect("a URL");
        assert!(
            login
                .url
                .starts_with("https://as.example.com/authorize?tenant=t1&"),
            "{}",
            login.url
        );
        assert_eq!(
            query(&login.url),
            [
                ("tenant", "t1"),
                ("response_type", "code"),
                ("client_id", "app"),
                ("redirect_uri", "http://127.0.0.1:53682/callback"),
                ("scope", "read offline_access"),
                ("state", "xyz"),
                // RFC 7636 appendix B.
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                ),
                ("code_challenge_method", "S256"),
                ("prompt", "login consent"),
                ("login_hint", "alice@example.com"),
                ("ui_locales", "de"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            (login.state.as_str(), login.code_verifier.as_deref()),
            ("xyz", Some(verifier))
        );
    }

    #[test]
    fn state_and_verifier_come_from_the_nonce_and_differ_between_logins() {
        let config = config(json!({}));
        let first = authorization_url(&config, &cx(), None, None).expect("a URL");
        let verifier = first.code_verifier.clone().expect("PKCE is on by default");
        assert_eq!(verifier.len(), 43);
        assert_ne!(first.state, verifier);
        let other = Context {
            now: 0,
            nonce: vec![9; 32],
        };
        let second = authorization_url(&config, &other, None, None).expect("a URL");
        assert_ne!(first.state, second.state);
        assert_ne!(first.code_verifier, second.code_verifier);
        assert!(
            authorization_url(&config, &Context::default(), None, None).is_err(),
            "no entropy, no login"
        );
        assert!(authorization_url(&config, &cx(), None, Some("short")).is_err());
    }

    #[test]
    fn plain_and_disabled_pkce() {
        // Only a confidential client may: a public one needs S256.
        let confidential = |pkce: &str| {
            config(json!({"pkce": pkce, "client_auth": "basic", "client_secret": "s"}))
        };
        let plain = authorization_url(&confidential("plain"), &cx(), None, None).expect("a URL");
        let verifier = plain.code_verifier.clone().expect("a verifier");
        let pairs = query(&plain.url);
        assert!(pairs.contains(&("code_challenge".into(), verifier)));
        assert!(pairs.contains(&("code_challenge_method".into(), "plain".into())));
        let off = authorization_url(&confidential("none"), &cx(), None, None).expect("a URL");
        assert!(off.code_verifier.is_none());
        assert!(!off.url.contains("code_challenge"));
    }

    #[test]
    fn the_redirect_gives_the_code_only_with_the_right_state_and_place() {
        let config = config(json!({}));
        let code = read_redirect(
            &config,
            "http://127.0.0.1:53682/callback?code=c1&state=s1",
            "s1",
        )
        .expect("a code");
        assert_eq!(code, "c1");
        for (url, expected) in [
            (
                "http://127.0.0.1:53682/callback?code=c1&state=other",
                "does not match",
            ),
            ("http://127.0.0.1:53682/callback?code=c1", "no `state`"),
            ("http://127.0.0.1:53682/callback?state=s1", "no `code`"),
            (
                "http://127.0.0.1:9999/callback?code=c1&state=s1",
                "not to the configured redirect_uri",
            ),
            (
                "https://evil.example/callback?code=c1&state=s1",
                "not to the configured redirect_uri",
            ),
            ("not a url", "not an absolute URL"),
        ] {
            match read_redirect(&config, url, "s1") {
                Err(Failure::BadRedirect(message)) => {
                    assert!(message.contains(expected), "{url}: {message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_error_redirect_is_the_servers_refusal() {
        let config = config(json!({}));
        let url = "http://127.0.0.1:53682/callback?error=access_denied&error_description=user+said+no&state=s1";
        match read_redirect(&config, url, "s1") {
            Err(Failure::Rejected(e)) => {
                assert_eq!(e.error, "access_denied");
                assert_eq!(e.error_description.as_deref(), Some("user said no"));
                assert_eq!(e.status, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_error_redirect_without_the_logins_state_does_not_end_it() {
        let config = config(json!({}));
        for url in [
            "http://127.0.0.1:53682/callback?error=access_denied",
            "http://127.0.0.1:53682/callback?error=access_denied&state=another",
        ] {
            match read_redirect(&config, url, "s1") {
                Err(Failure::BadRedirect(message)) => {
                    assert!(message.contains("state"), "{message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_public_client_must_use_s256_and_a_loopback_redirect_its_literal_address() {
        for pkce in ["plain", "none"] {
            let errors = Config::parse(
                &json!({"grant_type": "authorization_code", "token_url": "https://as.example/token",
                        "client_id": "app", "client_auth": "none", "pkce": pkce,
                        "authorization_url": "https://as.example/authorize",
                        "redirect_uri": "http://127.0.0.1:53682/callback"})
                .to_string(),
            )
            .expect_err("a public client without S256");
            assert_eq!(errors[0].field, "pkce");
            assert!(
                errors[0].message.contains("RFC 9700"),
                "{}",
                errors[0].message
            );
        }
        let errors = Config::parse(
            &json!({"grant_type": "authorization_code", "token_url": "https://as.example/token",
                    "client_id": "app", "client_secret": "s",
                    "authorization_url": "https://as.example/authorize",
                    "redirect_uri": "http://localhost:53682/callback"})
            .to_string(),
        )
        .expect_err("localhost");
        assert_eq!(errors[0].field, "redirect_uri");
        assert!(errors[0].fix.contains("127.0.0.1"), "{}", errors[0].fix);
    }

    #[test]
    fn the_implicit_token_is_read_from_the_fragment() {
        let config = config(json!({"grant_type": "implicit"}));
        let url = "http://127.0.0.1:53682/callback#access_token=at1&token_type=Bearer&expires_in=60&scope=read&state=s1";
        let token = read_implicit_redirect(&config, url, "s1", 100).expect("a token");
        assert_eq!(token.access_token.expose(), "at1");
        assert_eq!(token.expires_at, Some(160));
        assert!(token.extra.is_empty(), "state is not a token member");
        let forged = "http://127.0.0.1:53682/callback#access_token=at1&token_type=Bearer&state=s2";
        assert!(matches!(
            read_implicit_redirect(&config, forged, "s1", 100),
            Err(Failure::BadRedirect(_))
        ));
        let login = authorization_url(&config, &cx(), None, None).expect("a URL");
        assert!(query(&login.url).contains(&("response_type".into(), "token".into())));
        assert!(login.code_verifier.is_none());
    }

    #[test]
    fn with_an_issuer_configured_a_redirect_must_name_it() {
        let config = config(json!({"issuer": "https://as.example.com"}));
        let ok =
            "http://127.0.0.1:53682/callback?code=c1&state=s1&iss=https%3A%2F%2Fas.example.com";
        assert_eq!(read_redirect(&config, ok, "s1").expect("a code"), "c1");
        for url in [
            "http://127.0.0.1:53682/callback?code=c1&state=s1&iss=https%3A%2F%2Fattacker.example",
            "http://127.0.0.1:53682/callback?code=c1&state=s1",
            "http://127.0.0.1:53682/callback?error=access_denied&state=s1&iss=https%3A%2F%2Fattacker.example",
        ] {
            match read_redirect(&config, url, "s1") {
                Err(Failure::BadRedirect(message)) => {
                    assert!(message.contains("RFC 9207"), "{message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        // Without one, `iss` is not required (and not checked).
        assert!(read_redirect(&self::config(json!({})), ok, "s1").is_ok());
    }
}
