//! The authorization endpoint (RFC 6749 sections 3.1, 4.1.1, 4.1.2 and
//! 4.2; RFC 7636 section 4.3; RFC 8252 section 7.3). Logins are approved at
//! once for the user named by `login_hint`, or the first user: there is no
//! one at the browser in a test.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;
use url::Url;

use super::registry::{self, RegisteredClient, USERS};
use super::token::granted_scope;
use super::{CodeGrant, Grant, State, json_response, random_token, unix_now};

/// How long an authorization code stays valid (section 4.1.2 recommends
/// at most ten minutes).
const CODE_LIFETIME_SECS: u64 = 600;

pub(super) fn authorize(state: &mut State, query: &str) -> Response<Full<Bytes>> {
    let mut parameters: HashMap<String, String> = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if parameters
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return page(format!("the parameter `{name}` is repeated"));
        }
    }
    let get = |name: &str| {
        parameters
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };

    // Until the client and redirect URI are known good, errors go to the
    // user, never to an unverified address (section 4.1.2.1).
    let Some(client) = get("client_id").and_then(registry::client) else {
        return page("unknown or missing `client_id`".into());
    };
    let redirect_uri = match get("redirect_uri") {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|registered| redirect_matches(registered, uri)) =>
        {
            uri.to_owned()
        }
        Some(_) => return page("`redirect_uri` is not registered for this client".into()),
        None => return page("`redirect_uri` is missing".into()),
    };
    let implicit = get("response_type") == Some("token");
    let issuer = state.issuer.clone();
    let fail = |error: &str, description: &str| {
        redirect_error(
            &redirect_uri,
            implicit,
            get("state"),
            &issuer,
            error,
            description,
        )
    };

    let grant = match get("response_type") {
        Some("code") => "authorization_code",
        Some("token") => "implicit",
        _ => {
            return fail(
                "unsupported_response_type",
                "`response_type` must be `code` or `token`",
            );
        }
    };
    if !client.may_use(grant) {
        return fail(
            "unauthorized_client",
            "the client may not use this response type",
        );
    }
    let scope = match granted_scope(client, get("scope"), None) {
        Ok(scope) => scope,
        Err(_) => return fail("invalid_scope", "the requested scope is not allowed"),
    };
    let challenge = match pkce_challenge(
        client,
        grant,
        get("code_challenge"),
        get("code_challenge_method"),
    ) {
        Ok(challenge) => challenge,
        Err(description) => return fail("invalid_request", description),
    };
    let user = match get("login_hint") {
        Some(hint) => match registry::user(hint) {
            Some(user) => user.username,
            None => return fail("access_denied", "the hinted user is unknown"),
        },
        None => USERS[0].username,
    };

    let now = unix_now();
    let Ok(mut location) = Url::parse(&redirect_uri) else {
        return page("`redirect_uri` is not an absolute URI".into());
    };
    if implicit {
        let access_token = state.new_token();
        let family = state.new_family();
        state.access_tokens.insert(
            access_token.clone(),
            Grant {
                client_id: client.client_id.to_owned(),
                user: Some(user.to_owned()),
                scope: scope.clone(),
                expires_at: now + state.lifetime_secs,
                family,
            },
        );
        // Section 4.2.2: the token travels in the fragment, never to the server.
        let mut fragment = form_urlencoded::Serializer::new(String::new());
        fragment.append_pair("access_token", &access_token);
        fragment.append_pair("token_type", "Bearer");
        fragment.append_pair("expires_in", &state.lifetime_secs.to_string());
        if let Some(scope) = &scope {
            fragment.append_pair("scope", scope);
        }
        if let Some(client_state) = get("state") {
            fragment.append_pair("state", client_state);
        }
        fragment.append_pair("iss", &state.issuer);
        location.set_fragment(Some(&fragment.finish()));
    } else {
        let code = random_token();
        state.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client.client_id.to_owned(),
                redirect_uri: redirect_uri.clone(),
                user: user.to_owned(),
                scope,
                challenge,
                expires_at: now + CODE_LIFETIME_SECS,
            },
        );
        let mut query = location.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(client_state) = get("state") {
            query.append_pair("state", client_state);
        }
        // RFC 9207: the client can tell which server answered.
        query.append_pair("iss", &state.issuer);
        drop(query);
    }
    found(location.as_str())
}

/// RFC 7636 section 4.3 (and RFC 9700 section 2.1.1): public clients must
/// send a challenge; `plain` is the default method.
fn pkce_challenge(
    client: &RegisteredClient,
    grant: &str,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<(String, String)>, &'static str> {
    if grant != "authorization_code" {
        return Ok(None);
    }
    let Some(challenge) = challenge else {
        return if client.auth == registry::TokenEndpointAuth::None {
            Err("public clients must use PKCE (`code_challenge`)")
        } else {
            Ok(None)
        };
    };
    let method = method.unwrap_or("plain");
    if method != "S256" && method != "plain" {
        return Err("`code_challenge_method` must be S256 or plain");
    }
    let well_formed = (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return Err("`code_challenge` must be 43 to 128 unreserved characters");
    }
    Ok(Some((method.to_owned(), challenge.to_owned())))
}

/// Exact match, except that a loopback `http` redirect may use any port
/// (RFC 8252 section 7.3), since native apps pick a free one at login.
fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(registered), Ok(presented)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let loopback = matches!(registered.host_str(), Some("127.0.0.1" | "[::1]"));
    loopback
        && registered.scheme() == "http"
        && presented.scheme() == "http"
        && registered.host() == presented.host()
        && registered.path() == presented.path()
        && registered.query() == presented.query()
        && presented.fragment().is_none()
}

/// Section 4.1.2.1 / 4.2.2.1: the error goes back to the client.
fn redirect_error(
    redirect_uri: &str,
    implicit: bool,
    client_state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> Response<Full<Bytes>> {
    let Ok(mut location) = Url::parse(redirect_uri) else {
        return page("`redirect_uri` is not an absolute URI".into());
    };
    let mut parameters = form_urlencoded::Serializer::new(String::new());
    parameters.append_pair("error", error);
    parameters.append_pair("error_description", description);
    if let Some(client_state) = client_state {
        parameters.append_pair("state", client_state);
    }
    parameters.append_pair("iss", issuer);
    let encoded = parameters.finish();
    if implicit {
        location.set_fragment(Some(&encoded));
    } else {
        // Section 3.1.2: the redirect URI's own query is kept.
        location
            .query_pairs_mut()
            .extend_pairs(form_urlencoded::parse(encoded.as_bytes()));
    }
    found(location.as_str())
}

fn found(location: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error shown to the user instead of redirected.
fn page(description: String) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "invalid_request", "error_description": description}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_match_on_any_port_and_nothing_else_does() {
        let registered = "http://127.0.0.1/callback";
        assert!(redirect_matches(
            registered,
            "http://127.0.0.1:53682/callback"
        ));
        assert!(redirect_matches(registered, registered));
        assert!(!redirect_matches(
            registered,
            "http://127.0.0.1:53682/other"
        ));
        assert!(!redirect_matches(
            registered,
            "http://localhost:53682/callback"
        ));
        assert!(!redirect_matches(
            registered,
            "https://127.0.0.1:53682/callback"
        ));
        assert!(!redirect_matches(
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb"
        ));
    }
}
