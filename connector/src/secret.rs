//! A string that must never be printed by accident.

use std::fmt;

/// A secret value: a client secret, a refresh or access token, a password.
///
/// `Debug` prints `[redacted]`, there is no `Display` and no `PartialEq` (a
/// comparison of secrets belongs in constant-time code, not in `==`). Reading
/// the value takes a deliberate call to [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    ///
    /// Security: the caller takes over the duty not to log, print or store
    /// the value anywhere it could leak.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Consumes the wrapper and returns the secret; the same duty applies as
    /// for [`Secret::expose`].
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Secrets shorter than this many characters are redacted only where they
/// stand as a whole word: a three-letter password matched inside every
/// longer word would blank out the text around it, and a whole word is
/// where an echoing page puts it.
const WHOLE_WORD_BELOW: usize = 4;

/// What replaces a secret in text that is shown.
const REDACTED: &str = "[redacted]";

/// The secret values a connection holds (its client secret, password,
/// refresh token, key password…), to be removed from any server text an
/// error shows: a server page that echoes the request quotes them back, in
/// any wording, so a name next to them cannot be relied on.
///
/// Each value is also matched as the request carried it and as a page
/// quotes it back: form-encoded, percent-encoded (either case of hex
/// digits) and JSON-escaped.
#[derive(Clone, Default)]
pub(crate) struct KnownSecrets {
    /// Every form of every secret, longest first, and whether it counts
    /// only as a whole word.
    forms: Vec<(String, bool)>,
}

impl KnownSecrets {
    /// Adds a secret value; an empty one is nothing to hide.
    pub(crate) fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let whole_word = secret.chars().count() < WHOLE_WORD_BELOW;
        let form_encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let percent_encoded =
            percent_encoding::utf8_percent_encode(secret, crate::client_auth::FORM_UNRESERVED)
                .to_string();
        let json_escaped = serde_json::to_string(secret).unwrap_or_default();
        let json_escaped = json_escaped
            .strip_prefix('"')
            .and_then(|escaped| escaped.strip_suffix('"'))
            .unwrap_or(secret)
            .to_owned();
        let lower_hex = |encoded: &str| lower_case_hex(encoded);
        for form in [
            secret.to_owned(),
            lower_hex(&form_encoded),
            lower_hex(&percent_encoded),
            form_encoded,
            percent_encoded,
            json_escaped,
        ] {
            if !self.forms.iter().any(|(known, _)| *known == form) {
                self.forms.push((form, whole_word));
            }
        }
        self.forms
            .sort_by_key(|(form, _)| std::cmp::Reverse(form.len()));
    }

    /// Adds a secret value when there is one.
    pub(crate) fn add_secret(&mut self, secret: Option<&Secret>) {
        if let Some(secret) = secret {
            self.add(secret.expose());
        }
    }

    /// `text` with every form of every secret replaced by `[redacted]`.
    pub(crate) fn redact(&self, text: &str) -> String {
        if self.forms.is_empty() {
            return text.to_owned();
        }
        let word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let mut found: Vec<(usize, usize)> = Vec::new();
        for (form, whole_word) in &self.forms {
            for (start, matched) in text.match_indices(form.as_str()) {
                let end = start + matched.len();
                if *whole_word
                    && (word_char(text[..start].chars().next_back())
                        || word_char(text[end..].chars().next()))
                {
                    continue;
                }
                found.push((start, end));
            }
        }
        found.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut shown_to = 0;
        for (start, end) in found {
            if start >= shown_to {
                out.push_str(&text[shown_to..start]);
                out.push_str(REDACTED);
                shown_to = end;
            } else if end > shown_to {
                // Overlaps the one just redacted: redacted with it.
                shown_to = end;
            }
        }
        out.push_str(&text[shown_to..]);
        out
    }
}

/// `%2B` as `%2b`: some servers write percent-encoding in lower case.
fn lower_case_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// The values are secrets: Debug shows how many forms are known.
impl fmt::Debug for KnownSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnownSecrets")
            .field("forms", &self.forms.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(secrets: &[&str]) -> KnownSecrets {
        let mut known = KnownSecrets::default();
        for secret in secrets {
            known.add(secret);
        }
        known
    }

    #[test]
    fn known_secrets_are_redacted_in_every_form_and_shown_nowhere() {
        let known = known(&["hunter+x", "Tr0ub4dor", "pa\"ss"]);
        assert_eq!(
            known
                .redact("alice (Tr0ub4dor), 'hunter+x', hunter%2Bx, hunter%2bx, pa\\\"ss, pa%22ss"),
            "alice ([redacted]), '[redacted]', [redacted], [redacted], [redacted], [redacted]"
        );
        assert_eq!(format!("{known:?}"), "KnownSecrets { forms: 7 }");
        assert_eq!(KnownSecrets::default().redact("as it is"), "as it is");
    }

    #[test]
    fn overlapping_and_neighbouring_secrets_leave_no_part_behind() {
        let known = known(&["abcdef", "defghi", "xyz"]);
        assert_eq!(
            known.redact("abcdefghi xyzxyz xyz."),
            "[redacted] xyzxyz [redacted]."
        );
    }

    #[test]
    fn debug_output_hides_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2");
    }
}
