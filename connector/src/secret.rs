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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2");
    }
}
