//! Reading the token endpoint's response (RFC 6749 sections 5.1 and 5.2).

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{Failure, OAuthError, Unreadable};
use crate::secret::{KnownSecrets, Secret};

/// An HTTP response as the host received it.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the body, lowercase and without parameters.
    fn media_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        let essence = value.split(';').next().unwrap_or_default().trim();
        Some(essence.to_ascii_lowercase())
    }
}

/// A token response carries tokens, so Debug shows only its size.
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("content_type", &self.header("content-type"))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// An access token read from a successful token response.
#[derive(Clone)]
pub struct Token {
    /// The access token.
    pub access_token: Secret,
    /// The token type as the server named it, such as `Bearer`.
    pub token_type: String,
    /// When the token expires, unix seconds.
    pub expires_at: Option<u64>,
    /// The refresh token to keep: the one the server issued, or else the
    /// one the request presented.
    pub refresh_token: Option<Secret>,
    /// Whether the server issued a refresh token other than the one
    /// presented: the host must store it before it uses the access token.
    pub refresh_token_rotated: bool,
    /// The granted scope, if the server stated it.
    pub scope: Option<String>,
    /// Every other member of the response.
    pub extra: Map<String, Value>,
}

/// Tokens are secrets, and `extra` may hold more (an `id_token`): Debug
/// shows the members' names only.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("refresh_token_rotated", &self.refresh_token_rotated)
            .field("scope", &self.scope)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The longest snippet of a body an error shows.
const SNIPPET_CHARS: usize = 200;

/// What a member's name holds when its value is a secret: anything naming
/// a token, a secret, a password, an assertion, a code or a key.
const SECRET_NAME_PARTS: &[&str] = &["token", "secret", "password", "assertion", "code", "key"];

/// Names that contain one of those words and hold no secret.
const PUBLIC_MEMBERS: &[&str] = &["token_type", "error", "error_code", "status_code"];

/// Whether a member of this name holds a secret, by its name alone.
fn secret_member(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !PUBLIC_MEMBERS.contains(&name.as_str())
        && SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// Reads a token endpoint response received at `now` (unix seconds).
/// `presented` is the refresh token the request sent, if any: it is kept
/// when the server issues none. `secrets` are the values the connection
/// holds, never shown in an error however the server quotes them back.
pub fn read_token_response(
    response: &Response,
    now: u64,
    presented: Option<&Secret>,
    secrets: &KnownSecrets,
) -> Result<Token, Failure> {
    let members = read_members(response, secrets)?;
    token_from_members(members, now, presented)
        .map_err(|(problem, member)| unreadable(response, problem, member, secrets))
}

/// The failure for a response that is neither a token nor an error: what
/// is wrong, where, and the start of the body with `secrets` and anything
/// named or shaped like a secret removed.
pub(crate) fn unreadable(
    response: &Response,
    problem: String,
    location: String,
    secrets: &KnownSecrets,
) -> Failure {
    Failure::Unreadable(Unreadable {
        problem: secrets.redact(&problem),
        location: secrets.redact(&location),
        status: response.status,
        snippet: snippet(&response.body, secrets),
    })
}

/// The members of a successful JSON (or form-encoded) answer from an
/// endpoint of the authorization server, or its RFC 6749 section 5.2
/// error, or why it cannot be read. No text of the server's reaches the
/// failure with one of `secrets` in it.
pub(crate) fn read_members(
    response: &Response,
    secrets: &KnownSecrets,
) -> Result<Map<String, Value>, Failure> {
    let status = response.status;
    let unreadable =
        |problem: String, location: String| unreadable(response, problem, location, secrets);

    let members = match parse_members(response) {
        Ok(members) => members,
        Err((problem, location)) => {
            let problem = if (200..300).contains(&status) {
                problem
            } else {
                format!("HTTP {status} without an OAuth error: {problem}")
            };
            return Err(unreadable(problem, location));
        }
    };

    // RFC 6749 section 5.2 names 400 for errors, but servers also use 401,
    // 403 and even 200; an `error` member is the error whatever the status.
    if let Some(error) = members.get("error") {
        let Some(error) = error.as_str().filter(|e| !e.is_empty()) else {
            return Err(unreadable(
                "`error` is not a non-empty string".into(),
                "error".into(),
            ));
        };
        let text = |name: &str| {
            members
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        return Err(Failure::Rejected(OAuthError {
            error: shown(&secrets.redact(error), SHORT_TEXT),
            error_description: text("error_description").map(|text| cleaned(text, secrets)),
            error_uri: text("error_uri").map(|uri| shown(&secrets.redact(uri), SHORT_TEXT)),
            status: Some(status),
        }));
    }

    if !(200..300).contains(&status) {
        return Err(unreadable(
            format!("HTTP {status} without an OAuth error"),
            "error".into(),
        ));
    }
    Ok(members)
}

/// A server's text shown to the user: `secrets` removed, control
/// characters neutralised, cut, with token-like runs redacted.
pub(crate) fn cleaned(text: &str, secrets: &KnownSecrets) -> String {
    redact(&shown(&secrets.redact(text), 500))
}

/// The longest short server-supplied string shown (an error code, a URI).
pub(crate) const SHORT_TEXT: usize = 200;

/// A server-supplied string as it may reach a terminal or a log: every
/// control character (escape sequences, line breaks, bidirectional
/// overrides) written out as `\u{…}`, and at most `max` characters.
pub(crate) fn shown(text: &str, max: usize) -> String {
    let neutral: String = text
        .chars()
        .flat_map(|c| {
            let hidden = c.is_control() || invisible(c);
            let written: Vec<char> = if hidden {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            written
        })
        .collect();
    cut(&neutral, max)
}

/// JSON as servers write it: a number too large for a double (an
/// `expires_in` of `1e400`) would make the whole answer unreadable, and a
/// rotated refresh token with it; such a number reads as `null` instead.
fn lenient_json(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut text = std::borrow::Cow::Borrowed(body);
    // Each round mends one number; a body has few.
    for _ in 0..8 {
        match serde_json::from_slice::<Value>(&text) {
            Err(e) if e.to_string().starts_with("number out of range") => {
                let Some(mended) = null_the_number_before(&text, e.line(), e.column()) else {
                    return Err(e);
                };
                text = std::borrow::Cow::Owned(mended);
            }
            other => return other,
        }
    }
    serde_json::from_slice(&text)
}

/// `body` with the number that ends at (`line`, `column`) replaced by
/// `null`, padded to keep every other position.
fn null_the_number_before(body: &[u8], line: usize, column: usize) -> Option<Vec<u8>> {
    let line_start = if line <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    let end = (line_start + column).min(body.len());
    let is_number = |b: u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let mut start = end;
    while start > 0 && is_number(body[start - 1]) {
        start -= 1;
    }
    let mut end = end;
    while end < body.len() && is_number(body[end]) {
        end += 1;
    }
    if end - start < 4 {
        return None;
    }
    let mut mended = body.to_vec();
    mended[start..start + 4].copy_from_slice(b"null");
    mended[start + 4..end].fill(b' ');
    Some(mended)
}

/// Characters that change how a terminal lays text out without showing:
/// bidirectional marks and overrides, line and paragraph separators.
fn invisible(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The response members: a JSON object, or form fields when the server
/// answered `application/x-www-form-urlencoded` despite `Accept: application/json`.
fn parse_members(response: &Response) -> Result<Map<String, Value>, (String, String)> {
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Err(("the body is empty".into(), String::new()));
    }
    if response.media_type().as_deref() == Some("application/x-www-form-urlencoded") {
        return Ok(form_urlencoded::parse(&response.body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    match lenient_json(&response.body) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err((
            "the body is JSON but not an object".into(),
            "line 1, column 1".into(),
        )),
        Err(e) => {
            let media_type = response
                .media_type()
                .unwrap_or_else(|| "no Content-Type".into());
            Err((
                format!("the body is not JSON (Content-Type: {media_type})"),
                format!("line {}, column {}", e.line(), e.column()),
            ))
        }
    }
}

/// The refresh token a successful answer carries, when the rest of it
/// cannot be read: it may be the only live one, so it must not be lost.
pub(crate) fn salvage_refresh_token(response: &Response) -> Option<Secret> {
    if !(200..300).contains(&response.status) {
        return None;
    }
    let members = parse_members(response).ok()?;
    members
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .map(Secret::new)
}

/// RFC 6749 section 5.1: `access_token` and `token_type` are required,
/// `expires_in`, `refresh_token` and `scope` optional.
pub(crate) fn token_from_members(
    mut members: Map<String, Value>,
    now: u64,
    presented: Option<&Secret>,
) -> Result<Token, (String, String)> {
    let access_token =
        take_string(&mut members, "access_token")?.ok_or_else(|| missing("access_token"))?;
    // RFC 6749 requires `token_type`; servers that leave it out (or send
    // something other than a name) issue bearer tokens, the only kind in
    // wide use.
    let token_type = match members.remove("token_type") {
        Some(Value::String(name)) if !name.is_empty() => name,
        Some(other) if !other.is_null() => {
            members.insert("token_type".into(), other);
            "Bearer".into()
        }
        _ => "Bearer".into(),
    };
    // A lifetime is advice: one that cannot be read must not cost the token
    // (and a rotated refresh token with it). It counts as unknown, so the
    // host's default lifetime applies, and stays in `extra` for the host to
    // see; a negative one says the token is already spent.
    let expires_at = match members.get("expires_in").map(seconds) {
        None => None,
        Some(Some(lifetime)) => {
            members.remove("expires_in");
            match lifetime {
                Lifetime::Seconds(secs) => Some(now.saturating_add(secs)),
                // Below zero says nothing sane: the lifetime is unknown, and
                // the configured default applies.
                Lifetime::Negative | Lifetime::Null => None,
            }
        }
        Some(None) => None,
    };
    let issued = take_string(&mut members, "refresh_token")?;
    // Some servers send the scope as a list of values: the same scope.
    let scope = match members.remove("scope") {
        Some(Value::Array(values)) if values.iter().all(Value::is_string) => {
            let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            (!values.is_empty()).then(|| values.join(" "))
        }
        Some(Value::String(scope)) if !scope.is_empty() => Some(scope),
        Some(other) if !other.is_null() => {
            // Unreadable: kept for the host to see, the requested scope assumed.
            members.insert("scope".into(), other);
            None
        }
        _ => None,
    };
    let refresh_token_rotated = issued
        .as_deref()
        .is_some_and(|issued| presented.is_none_or(|presented| presented.expose() != issued));
    Ok(Token {
        access_token: Secret::new(access_token),
        token_type,
        expires_at,
        refresh_token: issued.map(Secret::new).or_else(|| presented.cloned()),
        refresh_token_rotated,
        scope,
        extra: members,
    })
}

fn missing(member: &str) -> (String, String) {
    (
        format!("the required member `{member}` is missing"),
        member.to_owned(),
    )
}

/// Removes a member that must be a non-empty string when present. Its value
/// is never quoted: it may be a token.
fn take_string(
    members: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<String>, (String, String)> {
    match members.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err((format!("`{name}` is not a string"), name.to_owned())),
    }
}

/// An `expires_in` that could be read.
enum Lifetime {
    /// `null`: no lifetime stated.
    Null,
    /// Whole seconds from now.
    Seconds(u64),
    /// Below zero: already expired.
    Negative,
}

/// A lifetime in whole seconds. Some servers send it as a string or with a
/// fraction; both are read.
fn seconds(value: &Value) -> Option<Lifetime> {
    let number = match value {
        Value::Null => return Some(Lifetime::Null),
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !number.is_finite() {
        return None;
    }
    // `as` saturates at the top.
    Some(if number < 0.0 {
        Lifetime::Negative
    } else {
        Lifetime::Seconds(number as u64)
    })
}

/// The start of a body for an error message, with secrets removed by the
/// name of the member that holds them — in JSON (at any depth), in a
/// form-encoded body and in text that is neither, such as JSON with a
/// trailing comma —, the connection's own `secrets` by value wherever they
/// stand (before the body is cut, so no part of one is left at the cut),
/// and, besides, every long run that looks like a token.
fn snippet(body: &[u8], secrets: &KnownSecrets) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut value @ (Value::Object(_) | Value::Array(_))) => {
            redact_members(&mut value);
            value.to_string()
        }
        // A form-encoded body (`a=b&c=d`) gets the same treatment by name.
        _ if looks_form_encoded(body) => {
            let pairs = form_urlencoded::parse(body).map(|(name, value)| {
                if secret_member(&name) {
                    (name, "[redacted]".into())
                } else {
                    (name, value)
                }
            });
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        }
        _ => redact_named_values(&String::from_utf8_lossy(body)),
    };
    let text = secrets.redact(&text);
    let flat: String = text
        .chars()
        .map(|c| {
            if c.is_control() || invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    redact(&cut(flat.trim(), SNIPPET_CHARS))
}

/// Replaces the value of every member whose name holds a secret, at any
/// depth.
fn redact_members(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, value) in members.iter_mut() {
                if secret_member(name) {
                    *value = Value::String("[redacted]".into());
                } else {
                    redact_members(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_members),
        _ => {}
    }
}

/// In text that does not parse, the value after every `"name":`, `name=`
/// and `name:` (blanks allowed around the sign, as in `client_secret =
/// x`) whose name holds a secret, up to the end of that value (a quoted
/// string, or the next delimiter), replaced by `[redacted]`.
fn redact_named_values(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    while i < chars.len() {
        // A name: quoted and followed by `:`, or bare and followed by `=`.
        let (name, after) = if chars[i] == '"' {
            let end = (i + 1..chars.len()).find(|&j| chars[j] == '"');
            match end {
                Some(end) => {
                    let mut k = end + 1;
                    while k < chars.len() && chars[k].is_whitespace() {
                        k += 1;
                    }
                    if k < chars.len() && chars[k] == ':' {
                        (chars[i + 1..end].iter().collect::<String>(), Some(k + 1))
                    } else {
                        (String::new(), None)
                    }
                }
                None => (String::new(), None),
            }
        } else if is_name(chars[i]) && (i == 0 || !is_name(chars[i - 1])) {
            let end = (i..chars.len())
                .find(|&j| !is_name(chars[j]))
                .unwrap_or(chars.len());
            // `name=value` or `name: value`, blanks allowed before the sign.
            let sign = (end..chars.len())
                .find(|&j| !matches!(chars[j], ' ' | '\t'))
                .unwrap_or(chars.len());
            if sign < chars.len() && matches!(chars[sign], '=' | ':') {
                (chars[i..end].iter().collect::<String>(), Some(sign + 1))
            } else {
                (String::new(), None)
            }
        } else {
            (String::new(), None)
        };
        match after {
            Some(mut k) if secret_member(&name) => {
                out.extend(&chars[i..k]);
                while k < chars.len() && chars[k].is_whitespace() {
                    out.push(' ');
                    k += 1;
                }
                // The value: a list or an object (to its matching bracket),
                // a quoted string (escapes included), or a run up to the
                // next delimiter.
                if k < chars.len() && matches!(chars[k], '[' | '{') {
                    let mut depth = 0usize;
                    let mut in_string = false;
                    while k < chars.len() {
                        match chars[k] {
                            '\\' if in_string => k += 1,
                            '"' => in_string = !in_string,
                            '[' | '{' if !in_string => depth += 1,
                            ']' | '}' if !in_string => {
                                depth = depth.saturating_sub(1);
                                if depth == 0 {
                                    k += 1;
                                    break;
                                }
                            }
                            _ => {}
                        }
                        k += 1;
                    }
                    out.push_str("[redacted]");
                    i = k.min(chars.len());
                } else if k < chars.len() && chars[k] == '"' {
                    k += 1;
                    while k < chars.len() && chars[k] != '"' {
                        k += if chars[k] == '\\' { 2 } else { 1 };
                    }
                    out.push_str("\"[redacted]\"");
                    i = (k + 1).min(chars.len());
                } else {
                    while k < chars.len()
                        && !matches!(chars[k], ',' | '}' | ']' | '&' | ';')
                        && !chars[k].is_whitespace()
                    {
                        k += 1;
                    }
                    out.push_str("[redacted]");
                    i = k;
                }
            }
            _ => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Whether a body reads as `name=value&…` pairs, as form-encoded token
/// responses do.
fn looks_form_encoded(body: &[u8]) -> bool {
    body.contains(&b'=')
        && body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"=&%+-._~*".contains(b))
}

/// At most `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Replaces every run of 16 or more token characters that holds both a
/// letter and a digit — the shape of access tokens, refresh tokens and
/// JWTs — with `[redacted]`. Words and numbers survive.
pub(crate) fn redact(text: &str) -> String {
    fn token_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=')
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(token_char) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !token_char(c)).unwrap_or(rest.len());
        let run = &rest[..end];
        let looks_like_token = run.len() >= 16
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_alphabetic());
        out.push_str(if looks_like_token { "[redacted]" } else { run });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Reads as a connection holding no secrets of its own would.
    fn read_token_response(
        response: &Response,
        now: u64,
        presented: Option<&Secret>,
    ) -> Result<Token, Failure> {
        super::read_token_response(response, now, presented, &KnownSecrets::default())
    }

    fn json_response(status: u16, body: Value) -> Response {
        Response {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json;charset=UTF-8".into(),
            )],
            body: body.to_string().into_bytes(),
        }
    }

    fn unreadable(result: Result<Token, Failure>) -> Unreadable {
        match result {
            Err(Failure::Unreadable(u)) => u,
            other => panic!("expected an unreadable response, got {other:?}"),
        }
    }

    #[test]
    fn a_full_token_response_is_read() {
        let response = json_response(
            200,
            json!({
                "access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "rt-1", "scope": "read write", "id_token": "x", "ext": {"a": 1}
            }),
        );
        let token = read_token_response(&response, 1_000, None).expect("token");
        assert_eq!(token.access_token.expose(), "at-1");
        assert_eq!(token.token_type, "Bearer");
        assert_eq!(token.expires_at, Some(4_600));
        assert_eq!(
            token.refresh_token.as_ref().map(Secret::expose),
            Some("rt-1")
        );
        assert_eq!(token.scope.as_deref(), Some("read write"));
        assert_eq!(
            Value::Object(token.extra),
            json!({"id_token": "x", "ext": {"a": 1}})
        );
    }

    #[test]
    fn the_presented_refresh_token_is_kept_unless_the_server_rotates_it() {
        let old = Secret::new("rt-old");
        let plain = json_response(200, json!({"access_token": "a", "token_type": "Bearer"}));
        let kept = read_token_response(&plain, 0, Some(&old)).expect("token");
        assert_eq!(
            kept.refresh_token.as_ref().map(Secret::expose),
            Some("rt-old")
        );
        assert!(!kept.refresh_token_rotated);

        let same = json_response(
            200,
            json!({"access_token": "a", "token_type": "Bearer", "refresh_token": "rt-old"}),
        );
        assert!(
            !read_token_response(&same, 0, Some(&old))
                .expect("token")
                .refresh_token_rotated
        );

        let rotated = json_response(
            200,
            json!({"access_token": "a", "token_type": "Bearer", "refresh_token": "rt-new"}),
        );
        let token = read_token_response(&rotated, 0, Some(&old)).expect("token");
        assert_eq!(
            token.refresh_token.as_ref().map(Secret::expose),
            Some("rt-new")
        );
        assert!(token.refresh_token_rotated);

        let first = read_token_response(&rotated, 0, None).expect("token");
        assert!(
            first.refresh_token_rotated,
            "a first refresh token must be stored too"
        );
    }

    #[test]
    fn a_minimal_token_response_has_no_expiry() {
        let response = json_response(200, json!({"access_token": "at", "token_type": "bearer"}));
        let token = read_token_response(&response, 5, None).expect("token");
        assert_eq!(token.expires_at, None);
        assert!(token.refresh_token.is_none());
        assert!(token.extra.is_empty());
    }

    #[test]
    fn expires_in_as_string_or_fraction_is_read() {
        for (value, expected) in [(json!("120"), 130), (json!(59.9), 69), (json!(0), 10)] {
            let response = json_response(
                200,
                json!({"access_token": "a", "token_type": "Bearer", "expires_in": value}),
            );
            assert_eq!(
                read_token_response(&response, 10, None)
                    .expect("token")
                    .expires_at,
                Some(expected)
            );
        }
        // A negative lifetime says nothing sane: unknown, so the default
        // applies; the token (and any rotated refresh token) is kept.
        let response = json_response(
            200,
            json!({"access_token": "a", "token_type": "Bearer", "expires_in": -1, "refresh_token": "rt-2"}),
        );
        let token = read_token_response(&response, 10, None).expect("token");
        assert_eq!(token.expires_at, None);
        assert_eq!(
            token.refresh_token.map(Secret::into_exposed).as_deref(),
            Some("rt-2")
        );
        // One that cannot be read is unknown, and kept for the host to see.
        for value in [json!("soon"), json!(true), json!({"s": 1})] {
            let response = json_response(
                200,
                json!({"access_token": "a", "token_type": "Bearer", "expires_in": value, "refresh_token": "rt-2"}),
            );
            let token = read_token_response(&response, 10, None).expect("token");
            assert_eq!(token.expires_at, None, "{value}");
            assert_eq!(token.extra["expires_in"], value);
            assert!(token.refresh_token.is_some());
        }
        let response = json_response(
            200,
            json!({"access_token": "a", "token_type": "Bearer", "expires_in": null}),
        );
        let token = read_token_response(&response, 10, None).expect("token");
        assert_eq!(token.expires_at, None);
        assert!(token.extra.is_empty());
    }

    #[test]
    fn a_form_encoded_token_response_is_read() {
        let response = Response {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: b"access_token=at%2B1&token_type=bearer&scope=repo".to_vec(),
        };
        let token = read_token_response(&response, 0, None).expect("token");
        assert_eq!(token.access_token.expose(), "at+1");
        assert_eq!(token.scope.as_deref(), Some("repo"));
    }

    #[test]
    fn an_error_response_is_rejected_with_its_details() {
        let response = json_response(
            401,
            json!({"error": "invalid_client", "error_description": "bad secret", "error_uri": "https://as/e"}),
        );
        match read_token_response(&response, 0, None) {
            Err(Failure::Rejected(e)) => assert_eq!(
                e,
                OAuthError {
                    error: "invalid_client".into(),
                    error_description: Some("bad secret".into()),
                    error_uri: Some("https://as/e".into()),
                    status: Some(401),
                }
            ),
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[test]
    fn an_error_member_in_a_200_is_still_an_error() {
        let response = json_response(200, json!({"error": "bad_verification_code"}));
        assert!(
            matches!(read_token_response(&response, 0, None), Err(Failure::Rejected(e)) if e.status == Some(200))
        );
    }

    #[test]
    fn missing_required_members_are_named() {
        let response = json_response(200, json!({"token_type": "Bearer"}));
        let u = unreadable(read_token_response(&response, 0, None));
        assert_eq!(u.location, "access_token");
        let response = json_response(200, json!({"refresh_token": "secret-rt-value"}));
        let u = unreadable(read_token_response(&response, 0, None));
        assert_eq!(u.location, "access_token");
        assert!(!u.snippet.contains("secret-rt-value"), "{}", u.snippet);
    }

    #[test]
    fn a_missing_token_type_is_bearer_and_any_casing_is_kept() {
        let response = json_response(200, json!({"access_token": "at"}));
        let token = read_token_response(&response, 0, None).expect("token");
        assert_eq!(token.token_type, "Bearer");
        let response = json_response(200, json!({"access_token": "at", "token_type": "BEARER"}));
        let token = read_token_response(&response, 0, None).expect("token");
        assert_eq!(token.token_type, "BEARER");
    }

    #[test]
    fn json_served_as_text_plain_and_bodies_that_are_not_utf8() {
        let response = Response {
            status: 200,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: br#"{"access_token":"at","token_type":"bearer"}"#.to_vec(),
        };
        assert!(read_token_response(&response, 0, None).is_ok());
        let response = Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: vec![0xff, 0xfe, b'{', 0x80],
        };
        assert!(
            !unreadable(read_token_response(&response, 0, None))
                .problem
                .is_empty()
        );
    }

    #[test]
    fn an_html_error_page_is_unreadable_with_its_status_and_start() {
        let response = Response {
            status: 503,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: b"<html>\n<h1>Service Unavailable</h1></html>".to_vec(),
        };
        let u = unreadable(read_token_response(&response, 0, None));
        assert_eq!(u.status, 503);
        assert!(
            u.problem.starts_with("HTTP 503 without an OAuth error"),
            "{}",
            u.problem
        );
        assert!(u.problem.contains("text/html"), "{}", u.problem);
        assert_eq!(u.snippet, "<html> <h1>Service Unavailable</h1></html>");
    }

    #[test]
    fn empty_and_non_object_bodies_are_unreadable() {
        for body in [&b""[..], b"  ", b"[1,2]", b"\"token\""] {
            let response = Response {
                status: 200,
                headers: vec![],
                body: body.to_vec(),
            };
            unreadable(read_token_response(&response, 0, None));
        }
    }

    #[test]
    fn snippets_hide_tokens_and_are_cut() {
        let body = json!({"access_token": ["eyJhbGciOiJSUzI1NiJ9.payload.sig"], "token_type": 7});
        let u = unreadable(read_token_response(&json_response(200, body), 0, None));
        assert_eq!(u.location, "access_token");
        assert!(!u.snippet.contains("eyJ"), "{}", u.snippet);

        let text = format!(
            "upstream said token=abc123def456ghi789jkl and {}",
            "x".repeat(400)
        );
        let response = Response {
            status: 500,
            headers: vec![],
            body: text.into_bytes(),
        };
        let u = unreadable(read_token_response(&response, 0, None));
        assert!(
            u.snippet
                .starts_with("upstream said token=[redacted] and xxx"),
            "{}",
            u.snippet
        );
        assert!(u.snippet.ends_with('…'));
        assert!(u.snippet.chars().count() <= SNIPPET_CHARS + 1);
    }

    #[test]
    fn form_encoded_snippets_hide_secret_members_by_name() {
        let response = Response {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: b"refresh_token=onlyletters&token_type=bearer".to_vec(),
        };
        let u = unreadable(read_token_response(&response, 0, None));
        assert_eq!(u.location, "access_token");
        assert_eq!(u.snippet, "refresh_token=%5Bredacted%5D&token_type=bearer");
    }

    #[test]
    fn debug_output_of_a_token_hides_tokens_and_extra_values() {
        let response = json_response(
            200,
            json!({"access_token": "at-secret", "token_type": "Bearer", "refresh_token": "rt-secret", "id_token": "idt-secret"}),
        );
        let shown = format!(
            "{:?}",
            read_token_response(&response, 0, None).expect("token")
        );
        for secret in ["at-secret", "rt-secret", "idt-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("id_token"), "{shown}");
    }

    #[test]
    fn redaction_keeps_words_and_numbers() {
        assert_eq!(
            redact("internationalization 1234567890123456 a1b2c3d4e5f6g7h8"),
            "internationalization 1234567890123456 [redacted]"
        );
    }

    #[test]
    fn server_strings_reach_a_terminal_neutralised_and_bounded() {
        let hostile = format!(
            "invalid_grant\u{1b}[2J\r\nFAKE: ok\u{202e}{}",
            "x".repeat(5000)
        );
        let body = json!({"error": hostile, "error_description": hostile, "error_uri": hostile});
        let Err(Failure::Rejected(e)) = read_token_response(&json_response(400, body), 0, None)
        else {
            panic!("an error response");
        };
        for text in [
            e.error.as_str(),
            e.error_description.as_deref().unwrap_or_default(),
            e.error_uri.as_deref().unwrap_or_default(),
        ] {
            assert!(
                !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{text:?}"
            );
            assert!(
                text.contains("\\u{1b}"),
                "the escape is shown, not acted on: {text:?}"
            );
            assert!(
                text.chars().count() <= 501,
                "{} characters",
                text.chars().count()
            );
        }
    }

    #[test]
    fn secrets_are_redacted_by_name_not_length_in_every_kind_of_body() {
        // RFC 6749's own example token is short; a trailing comma keeps the
        // body from parsing.
        let cases = [
            (
                r#"{"access_token":"SlAV32hkKG","token_type":"example",}"#,
                "application/json",
            ),
            (
                r#"{"ok":false,"authed_user":{"access_token":"xoxp-1"}}"#,
                "application/json",
            ),
            (
                r#"{"ok":true,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","client_secret": "hunter2", "expires_in":1e400,}"#,
                "text/plain",
            ),
            (
                "access_token=SlAV32hkKG&id_token=abc&x=1",
                "application/x-www-form-urlencoded",
            ),
            (
                "upstream: refresh_token=tGzv3JOkF0 session_key=k1; retry",
                "text/plain",
            ),
        ];
        for (body, media_type) in cases {
            let response = Response {
                status: 502,
                headers: vec![("Content-Type".into(), media_type.into())],
                body: body.as_bytes().to_vec(),
            };
            let Err(failure) = read_token_response(&response, 0, None) else {
                panic!("{body} is no token");
            };
            let shown = failure.to_string();
            for secret in ["SlAV32hkKG", "xoxp-1", "tGzv3JOkF0", "hunter2", "abc", "k1"] {
                assert!(
                    !shown.contains(secret) || !body.contains(secret),
                    "{secret} in {shown}"
                );
            }
            assert!(shown.contains("redacted"), "{shown}");
        }
    }

    #[test]
    fn named_secrets_are_redacted_whatever_the_spacing_or_shape() {
        for body in [
            "{\"access_token\":\t\"SlAV32hkKG\",}",
            "{\"access_token\":\n  \"SlAV32hkKG\",}",
            "refresh_token: SlAV32hkKG (upstream)",
            "client_secret = SlAV32hkKG",
            "password\t:SlAV32hkKG",
            "{\"tokens\": [\"one\", \"SlAV32hkKG\"],}",
            "{\"credentials\": {\"secret\": \"x\", \"key\": \"SlAV32hkKG\"},}",
        ] {
            let shown = redact_named_values(body);
            assert!(!shown.contains("SlAV32hkKG"), "{body:?} -> {shown:?}");
        }
    }
}
