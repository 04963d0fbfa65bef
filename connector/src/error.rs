//! Why a request or a token could not be produced.

use std::fmt;

use crate::config::FieldError;

/// The authorization server's error response (RFC 6749 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The error code, such as `invalid_client`.
    pub error: String,
    /// The server's explanation, cut, without the connection's secrets
    /// and with token-like runs redacted.
    pub error_description: Option<String>,
    /// A page about the error.
    pub error_uri: Option<String>,
    /// The HTTP status of the token response; `None` when the error came
    /// back in a login's redirect.
    pub status: Option<u16>,
}

impl OAuthError {
    /// What the standard error codes mean, for people who do not know RFC 6749.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.error.as_str() {
            "invalid_request" => "the request is missing a parameter or repeats one",
            "invalid_client" => {
                "the client id or secret is wrong, or the client may not use this authentication method"
            }
            "invalid_grant" => {
                "the grant (refresh token, code or credentials) is invalid, expired or revoked"
            }
            "unauthorized_client" => "this client may not use this grant type",
            "unsupported_grant_type" => "the server does not support this grant type",
            "invalid_scope" => "the requested scope is unknown or exceeds what the client may have",
            "invalid_target" => "the requested resource is unknown or not allowed",
            "access_denied" => "the user or the server declined the authorization",
            "unsupported_response_type" => {
                "the server does not offer this login flow to this client"
            }
            "login_required" => "the user must log in, which prompt=none does not allow",
            "consent_required" => "the user must consent, which prompt=none does not allow",
            _ => return None,
        })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(
                f,
                "the authorization server refused the request (HTTP {status}): {}",
                self.error
            )?,
            None => write!(
                f,
                "the authorization server refused the login: {}",
                self.error
            )?,
        }
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        } else if let Some(hint) = self.hint() {
            write!(f, " ({hint})")?;
        }
        if let Some(uri) = &self.error_uri {
            write!(f, " [see {uri}]")?;
        }
        Ok(())
    }
}

/// A response that is neither a token nor an OAuth error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// What was wrong.
    pub problem: String,
    /// Where it broke: a member name, a position or a header.
    pub location: String,
    /// The HTTP status of the response.
    pub status: u16,
    /// The start of the body: the connection's secrets (by value, also
    /// encoded), members named as secrets and token-like runs redacted.
    pub snippet: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unreadable token response (HTTP {}): {}",
            self.status, self.problem
        )?;
        if !self.location.is_empty() {
            write!(f, " at {}", self.location)?;
        }
        if !self.snippet.is_empty() {
            write!(f, "; the body starts: {}", self.snippet)?;
        }
        Ok(())
    }
}

/// Why no request or token could be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The configuration cannot be used.
    #[error("invalid configuration: {}", join(.0))]
    InvalidConfig(Vec<FieldError>),
    /// The authorization server said no.
    #[error("{0}")]
    Rejected(OAuthError),
    /// The response could not be read.
    #[error("{0}")]
    Unreadable(Unreadable),
    /// A login's redirect does not belong to the login: another redirect
    /// URI, a missing or different `state`, no code.
    #[error("unusable redirect: {0}")]
    BadRedirect(String),
    /// A token state handed back is not one this connector wrote.
    #[error("unknown token state: {0}")]
    UnknownState(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_renders_a_readable_message() {
        let cases = [
            (
                Failure::InvalidConfig(vec![FieldError {
                    field: "token_url".into(),
                    message: "required to reach the token endpoint".into(),
                    fix: "fill in `token_url`".into(),
                }]),
                "invalid configuration: token_url: required to reach the token endpoint (fill in `token_url`)",
            ),
            (
                Failure::Rejected(OAuthError {
                    error: "invalid_client".into(),
                    error_description: None,
                    error_uri: Some("https://as.example.com/errors".into()),
                    status: Some(401),
                }),
                "the authorization server refused the request (HTTP 401): invalid_client (the client id or secret is wrong, or the client may not use this authentication method) [see https://as.example.com/errors]",
            ),
            (
                Failure::Rejected(OAuthError {
                    error: "invalid_scope".into(),
                    error_description: Some("scope `admin` is not allowed".into()),
                    error_uri: None,
                    status: Some(400),
                }),
                "the authorization server refused the request (HTTP 400): invalid_scope: scope `admin` is not allowed",
            ),
            (
                Failure::Rejected(OAuthError {
                    error: "access_denied".into(),
                    error_description: None,
                    error_uri: None,
                    status: None,
                }),
                "the authorization server refused the login: access_denied (the user or the server declined the authorization)",
            ),
            (
                Failure::BadRedirect("the redirect carries no `state`".into()),
                "unusable redirect: the redirect carries no `state`",
            ),
            (
                Failure::Unreadable(Unreadable {
                    problem: "the body is not JSON".into(),
                    location: "line 1, column 1".into(),
                    status: 502,
                    snippet: "<html>Bad gateway</html>".into(),
                }),
                "unreadable token response (HTTP 502): the body is not JSON at line 1, column 1; the body starts: <html>Bad gateway</html>",
            ),
            (
                Failure::UnknownState("it is not JSON".into()),
                "unknown token state: it is not JSON",
            ),
            (Failure::Other("boom".into()), "boom"),
        ];
        for (failure, expected) in cases {
            assert_eq!(failure.to_string(), expected);
        }
    }
}
