//! Token introspection (RFC 7662) and revocation (RFC 7009): both require
//! the client to authenticate as at the token endpoint.

use serde_json::{Value, json};

use super::token::{OAuthError, authenticated_request};
use super::{ReceivedRequest, State, unix_now};
use hyper::header::HeaderMap;

/// RFC 7662 section 2: what the server knows of a token. Any registered
/// client may ask (section 2.1 leaves who may to the server); an unknown,
/// expired or revoked token is just `{"active": false}` (section 2.2).
pub(super) fn introspect(
    state: &mut State,
    headers: &HeaderMap,
    body: &[u8],
    received: &mut ReceivedRequest,
) -> Result<Value, OAuthError> {
    let now = unix_now();
    // Any authenticated client may ask (section 2.1).
    let (parameters, _) = authenticated_request(state, headers, body, received, now)?;
    let token = parameters
        .get("token")
        .ok_or_else(|| OAuthError::new("invalid_request", "the parameter `token` is missing"))?;
    let (grant, token_type) = match state.access_tokens.get(token) {
        Some(grant) => (Some(grant), "Bearer"),
        None => (state.refresh_tokens.get(token), "refresh_token"),
    };
    Ok(match grant.filter(|grant| grant.expires_at > now) {
        Some(grant) => {
            let mut answer = json!({
                "active": true,
                "client_id": grant.client_id,
                "token_type": token_type,
            });
            if let Some(scope) = &grant.scope {
                answer["scope"] = scope.clone().into();
            }
            if let Some(user) = &grant.user {
                answer["username"] = user.clone().into();
                answer["sub"] = user.clone().into();
            }
            if grant.expires_at != u64::MAX {
                answer["exp"] = grant.expires_at.into();
            }
            answer
        }
        None => json!({"active": false}),
    })
}

/// RFC 7009 section 2: revokes an access or refresh token issued to the
/// authenticated client. An unknown token is no error (section 2.2); another
/// client's token is refused (section 2.1).
pub(super) fn revoke(
    state: &mut State,
    headers: &HeaderMap,
    body: &[u8],
    received: &mut ReceivedRequest,
) -> Result<(), OAuthError> {
    let (parameters, client) = authenticated_request(state, headers, body, received, unix_now())?;
    let token = parameters
        .get("token")
        .ok_or_else(|| OAuthError::new("invalid_request", "the parameter `token` is missing"))?;
    // The hint only says where to look first; both kinds are searched.
    for tokens in [&mut state.access_tokens, &mut state.refresh_tokens] {
        if let Some(grant) = tokens.get(token) {
            if grant.client_id != client.client_id {
                return Err(OAuthError::new(
                    "unauthorized_client",
                    "the token was issued to another client",
                ));
            }
            tokens.remove(token);
        }
    }
    Ok(())
}
