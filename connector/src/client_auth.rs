//! Client authentication at the token endpoint (RFC 6749 section 2.3).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The bytes the `application/x-www-form-urlencoded` serializer leaves as
/// they are; everything else, space included, is percent-encoded.
///
/// RFC 6749 section 2.3.1 form-encodes the client id and secret before
/// Basic encoding. Form encoding would write a space as `+`, which servers
/// that decode the header with a plain percent decoder read back as a literal
/// `+`; `%20` reads back as a space under both decoders, so it is the one
/// encoding every server agrees on.
pub(crate) const FORM_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// The `Authorization` header value for HTTP Basic client authentication.
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let credentials = format!(
        "{}:{}",
        utf8_percent_encode(client_id, FORM_UNRESERVED),
        utf8_percent_encode(client_secret, FORM_UNRESERVED)
    );
    format!("Basic {}", STANDARD.encode(credentials))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    /// Decodes a Basic header the way a strict form decoder does.
    fn decode_as_form(header: &str) -> (String, String) {
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").expect("Basic scheme"))
            .expect("base64");
        let text = String::from_utf8(decoded).expect("utf-8");
        let (id, secret) = text
            .split_once(':')
            .expect("one colon separates id and secret");
        let decode = |part: &str| {
            form_urlencoded::parse(format!("v={part}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .expect("one value")
        };
        (decode(id), decode(secret))
    }

    /// Decodes a Basic header the way a plain percent decoder does, which
    /// reads `+` as itself.
    fn decode_as_percent(header: &str) -> (String, String) {
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").expect("Basic scheme"))
            .expect("base64");
        let text = String::from_utf8(decoded).expect("utf-8");
        let (id, secret) = text
            .split_once(':')
            .expect("one colon separates id and secret");
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .expect("utf-8")
                .into_owned()
        };
        (decode(id), decode(secret))
    }

    #[test]
    fn plain_credentials_encode_as_rfc_7617_would() {
        assert_eq!(
            basic_authorization("app", "s3cret"),
            "Basic YXBwOnMzY3JldA=="
        );
    }

    #[test]
    fn special_characters_read_back_exactly_under_both_decoders() {
        let cases = [
            ("my:client", "pa:ss"),
            ("100%", "%41%"),
            ("a+b", "c+d"),
            ("tenant/app", "x/y/z"),
            ("with space", " leading and trailing "),
            ("clïent-ñ", "sécret-日本-🔑"),
            ("*-._~!'()", "&=?#[]@$,;"),
        ];
        for (id, secret) in cases {
            let header = basic_authorization(id, secret);
            let encoded =
                String::from_utf8(STANDARD.decode(&header[6..]).expect("base64")).expect("utf-8");
            assert!(
                !encoded.contains('+') && !encoded.contains(' '),
                "{encoded}"
            );
            assert_eq!(encoded.matches(':').count(), 1, "{encoded}");
            assert_eq!(decode_as_form(&header), (id.to_owned(), secret.to_owned()));
            assert_eq!(
                decode_as_percent(&header),
                (id.to_owned(), secret.to_owned())
            );
        }
    }

    #[test]
    fn space_is_percent_encoded_never_plus() {
        let header = basic_authorization("a b", "c d");
        let encoded =
            String::from_utf8(STANDARD.decode(&header[6..]).expect("base64")).expect("utf-8");
        assert_eq!(encoded, "a%20b:c%20d");
    }
}
