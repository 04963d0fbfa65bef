//! `WWW-Authenticate` challenges (RFC 9110 section 11.6.1, RFC 6750
//! section 3).
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! Commas separate both challenges and their parameters, so a new challenge
//! is recognised by a token that is not followed by `=`. The parser never
//! fails: what it cannot read ends the challenge it is in, and reading
//! resumes at the next comma, so a damaged header yields the challenges
//! that can be read and nothing more.

/// One challenge: a scheme with either a token68 or parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent, such as `Bearer`; compare it case-insensitively.
    pub scheme: String,
    /// The token68 form of the credentials' challenge, if used.
    pub token68: Option<String>,
    /// The parameters in order, names lowercased (they are case-insensitive),
    /// quoted values unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Whether this challenge has the scheme, in any casing.
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first value of a parameter, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Every challenge in the values of all `WWW-Authenticate` headers, in order.
pub fn parse_challenges<'a>(header_values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut challenges = Vec::new();
    for value in header_values {
        Parser {
            input: value.as_bytes(),
            at: 0,
        }
        .challenges(&mut challenges);
    }
    challenges
}

/// RFC 9110 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn is_token68_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte)
}

struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// Skips whitespace and empty list elements (`#rule` allows `, ,`).
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.input[start..self.at]).into_owned())
    }

    /// A quoted-string, unescaped; `None` when it is not closed.
    fn quoted_string(&mut self) -> Option<String> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.at += 1;
        let mut value = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(String::from_utf8_lossy(&value).into_owned());
                }
                b'\\' => {
                    self.at += 1;
                    value.push(self.peek()?);
                    self.at += 1;
                }
                byte => {
                    value.push(byte);
                    self.at += 1;
                }
            }
        }
    }

    /// Moves past the next comma (or to the end): recovery from damage.
    fn skip_element(&mut self) {
        while let Some(byte) = self.peek() {
            self.at += 1;
            if byte == b',' {
                return;
            }
            if byte == b'"' {
                self.at -= 1;
                if self.quoted_string().is_none() {
                    self.at = self.input.len();
                }
            }
        }
    }

    /// Whether a token68 starts here: its characters, padding, then the
    /// end of the element.
    fn token68(&mut self) -> Option<String> {
        let start = self.at;
        let mut end = start;
        while self.input.get(end).copied().is_some_and(is_token68_char) {
            end += 1;
        }
        if end == start {
            return None;
        }
        while self.input.get(end) == Some(&b'=') {
            end += 1;
        }
        let mut after = end;
        while matches!(self.input.get(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        if !matches!(self.input.get(after), None | Some(b',')) {
            return None;
        }
        self.at = end;
        Some(String::from_utf8_lossy(&self.input[start..end]).into_owned())
    }

    fn challenges(&mut self, into: &mut Vec<Challenge>) {
        loop {
            self.skip_separators();
            if self.peek().is_none() {
                return;
            }
            let Some(scheme) = self.token() else {
                self.skip_element();
                continue;
            };
            let mut challenge = Challenge {
                scheme,
                token68: None,
                params: Vec::new(),
            };
            if matches!(self.peek(), Some(b' ' | b'\t')) {
                self.skip_whitespace();
                if let Some(token68) = self.token68() {
                    challenge.token68 = Some(token68);
                } else {
                    self.params(&mut challenge);
                }
            }
            into.push(challenge);
        }
    }

    /// Reads `name=value` pairs until one is followed by something that is
    /// not a parameter: the next challenge's scheme, or damage.
    fn params(&mut self, challenge: &mut Challenge) {
        loop {
            self.skip_separators();
            let start = self.at;
            let Some(name) = self.token() else {
                if self.peek().is_none() {
                    return;
                }
                // Damage, such as a stray character: skip this element.
                self.skip_element();
                continue;
            };
            self.skip_whitespace();
            if self.peek() != Some(b'=') {
                // A token without `=`: the next challenge begins here.
                self.at = start;
                return;
            }
            self.at += 1;
            self.skip_whitespace();
            let value = match self.peek() {
                Some(b'"') => match self.quoted_string() {
                    Some(value) => value,
                    None => {
                        self.at = self.input.len();
                        return;
                    }
                },
                _ => match self.token() {
                    Some(value) => value,
                    None => {
                        self.skip_element();
                        continue;
                    }
                },
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
            self.skip_whitespace();
            match self.peek() {
                None => return,
                Some(b',') => {}
                Some(_) => self.skip_element(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Vec<Challenge> {
        parse_challenges([header])
    }

    fn challenge(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.to_owned(),
            token68: None,
            params: params
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn reads_rfc_6750_examples() {
        assert_eq!(
            one(r#"Bearer realm="example""#),
            [challenge("Bearer", &[("realm", "example")])]
        );
        assert_eq!(
            one(
                r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
            ),
            [challenge(
                "Bearer",
                &[
                    ("realm", "example"),
                    ("error", "invalid_token"),
                    ("error_description", "The access token expired")
                ]
            )]
        );
    }

    #[test]
    fn separates_several_challenges_in_one_header() {
        let parsed = one(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Bearer error=invalid_token"#,
        );
        assert_eq!(
            parsed,
            [
                challenge(
                    "Newauth",
                    &[
                        ("realm", "apps"),
                        ("type", "1"),
                        ("title", r#"Login to "apps""#)
                    ]
                ),
                challenge("Basic", &[("realm", "simple")]),
                challenge("Bearer", &[("error", "invalid_token")]),
            ]
        );
    }

    #[test]
    fn reads_challenges_across_headers_and_bare_schemes() {
        let parsed = parse_challenges(["Negotiate", "bearer scope=\"a b\""]);
        assert_eq!(parsed[0], challenge("Negotiate", &[]));
        assert!(parsed[1].is("Bearer"));
        assert_eq!(parsed[1].param("SCOPE"), Some("a b"));
    }

    #[test]
    fn reads_token68() {
        let parsed = one("Negotiate YIIC+/abc==, Bearer realm=x");
        assert_eq!(parsed[0].token68.as_deref(), Some("YIIC+/abc=="));
        assert_eq!(parsed[1], challenge("Bearer", &[("realm", "x")]));
    }

    #[test]
    fn parameter_names_are_case_insensitive_and_whitespace_is_allowed() {
        let parsed = one("BEARER  Error = \"invalid_token\" ,REALM=r");
        assert!(parsed[0].is("bearer"));
        assert_eq!(parsed[0].param("error"), Some("invalid_token"));
        assert_eq!(parsed[0].param("realm"), Some("r"));
    }

    #[test]
    fn damage_costs_only_what_is_damaged() {
        // An unclosed quote ends the header.
        assert_eq!(
            one(r#"Bearer error="invalid_token"#),
            [challenge("Bearer", &[])]
        );
        // A stray character skips to the next element.
        let parsed = one(r#"Bearer @@@, error="invalid_token""#);
        assert_eq!(parsed[0].param("error"), Some("invalid_token"));
        // Hostile inputs: each yields exactly what survives of it.
        for (nasty, expected) in [
            ("", vec![]),
            (",,,", vec![]),
            ("=", vec![]),
            ("\"", vec![]),
            ("Bearer =", vec![challenge("Bearer", &[])]),
            // `a=` is a token68 (RFC 9110 section 11.2), not a parameter.
            (
                "Bearer a=",
                vec![Challenge {
                    token68: Some("a=".into()),
                    ..challenge("Bearer", &[])
                }],
            ),
            ("Bearer a=\"\\", vec![challenge("Bearer", &[])]),
            ("\u{0}\u{ff}", vec![]),
        ] {
            assert_eq!(one(nasty), expected, "{nasty:?}");
        }
    }
}
