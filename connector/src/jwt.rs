//! Signed JWT assertions (RFC 7523): the `jwt_bearer` grant's assertion and
//! the `private_key_jwt` client assertion.
//!
//! Keys arrive as PEM: PKCS#1 (`RSA PRIVATE KEY`), PKCS#8 (`PRIVATE KEY`),
//! SEC1 (`EC PRIVATE KEY`) or encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`,
//! PBES2 or the older PBES1 schemes). Each is decoded once into the DER form
//! the signer uses, and its type checked against the header's `alg`, so a
//! wrong password or a mismatched key is a configuration error found by
//! `validate`, never a surprise at signing time.

use std::fmt;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::Algorithm;
use pkcs8::der::asn1::AnyRef;
use pkcs8::der::{Decode as _, pem};
use pkcs8::{
    AlgorithmIdentifierRef, DecodePrivateKey as _, EncryptedPrivateKeyInfo, ObjectIdentifier,
    PrivateKeyInfo, SecretDocument,
};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use signature::{RandomizedSigner, SignatureEncoding, Signer};
use zeroize::Zeroizing;

use crate::secret::Secret;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The `alg` values the connector signs with.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

/// The `alg` named in a header, if the connector can sign with it.
pub fn algorithm(name: &str) -> Option<Algorithm> {
    ALGORITHMS
        .contains(&name)
        .then(|| name.parse().ok())
        .flatten()
}

/// Why a key could not be used; each names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl KeyProblem {
    fn new(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// What kind of key a PEM holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa => "an RSA key",
            KeyKind::P256 => "an EC P-256 key",
            KeyKind::P384 => "an EC P-384 key",
            KeyKind::Ed25519 => "an Ed25519 key",
        })
    }
}

/// The key kind each algorithm needs, or `None` for the HMAC algorithms.
fn needed_kind(algorithm: Algorithm) -> Option<KeyKind> {
    match algorithm {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Some(KeyKind::Rsa),
        Algorithm::ES256 => Some(KeyKind::P256),
        Algorithm::ES384 => Some(KeyKind::P384),
        Algorithm::EdDSA => Some(KeyKind::Ed25519),
        _ => None,
    }
}

/// A key ready to sign with one algorithm.
///
/// The connector signs with the RustCrypto signers directly rather than
/// through `jsonwebtoken`'s backend: `jsonwebtoken` parses the key again
/// for every signature, and its backend turns on the `rsa` crate's 64-bit
/// big-integer digits, which wasm32 multiplies slowly (RS256 in the
/// component is a quarter faster with 32-bit digits).
#[derive(Clone)]
pub struct SigningKey {
    algorithm: Algorithm,
    /// The DER of a private key (PKCS#1 for RSA, PKCS#8 otherwise), or the
    /// shared secret; wiped when the last clone is dropped.
    material: Arc<Zeroizing<Vec<u8>>>,
    /// A digest of the key material, telling keys apart without keeping
    /// them twice.
    digest: [u8; 32],
    /// The key in the signer's own parsed form, made at the first signature
    /// and kept, shared by clones: loading an RSA key checks and
    /// precomputes its CRT values, and loading an EC key derives its public
    /// point, each costing about as much as the signature itself. A
    /// configuration kept open (a prepared connection) pays that once.
    prepared: Arc<OnceLock<Box<SignFn>>>,
}

/// Signs a message; the signature bytes as JWS puts them (RFC 7518).
type SignFn = dyn Fn(&[u8]) -> Result<Vec<u8>, signature::Error> + Send + Sync;

/// Parses key material for `algorithm` into a signer.
fn signer(algorithm: Algorithm, material: &[u8]) -> Result<Box<SignFn>, String> {
    let rsa = || {
        rsa::RsaPrivateKey::from_pkcs1_der(material)
            .map_err(|e| format!("the RSA key is unusable: {e}"))
    };
    let pkcs8 = |e: pkcs8::Error| format!("the key is unusable: {e}");
    // HMAC takes a key of any length; the error is there for the type's sake.
    let secret = |e: hmac::digest::InvalidLength| format!("the shared secret is unusable: {e}");
    Ok(match algorithm {
        Algorithm::RS256 => randomized(rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa()?)),
        Algorithm::RS384 => randomized(rsa::pkcs1v15::SigningKey::<Sha384>::new(rsa()?)),
        Algorithm::RS512 => randomized(rsa::pkcs1v15::SigningKey::<Sha512>::new(rsa()?)),
        Algorithm::PS256 => randomized(rsa::pss::BlindedSigningKey::<Sha256>::new(rsa()?)),
        Algorithm::PS384 => randomized(rsa::pss::BlindedSigningKey::<Sha384>::new(rsa()?)),
        Algorithm::PS512 => randomized(rsa::pss::BlindedSigningKey::<Sha512>::new(rsa()?)),
        Algorithm::ES256 => deterministic::<_, p256::ecdsa::Signature>(
            p256::ecdsa::SigningKey::from_pkcs8_der(material).map_err(pkcs8)?,
        ),
        Algorithm::ES384 => deterministic::<_, p384::ecdsa::Signature>(
            p384::ecdsa::SigningKey::from_pkcs8_der(material).map_err(pkcs8)?,
        ),
        Algorithm::EdDSA => deterministic::<_, ed25519_dalek::Signature>(
            ed25519_dalek::SigningKey::from_pkcs8_der(material).map_err(pkcs8)?,
        ),
        Algorithm::HS256 => mac(Hmac::<Sha256>::new_from_slice(material).map_err(secret)?),
        Algorithm::HS384 => mac(Hmac::<Sha384>::new_from_slice(material).map_err(secret)?),
        Algorithm::HS512 => mac(Hmac::<Sha512>::new_from_slice(material).map_err(secret)?),
        other => {
            return Err(format!(
                "{other:?} is not an algorithm the connector signs with"
            ));
        }
    })
}

/// An RSA signer: blinded with fresh randomness from the system (WASI's
/// random interface in the component), as the RSA crate recommends against
/// timing attacks.
fn randomized<K, S>(key: K) -> Box<SignFn>
where
    K: RandomizedSigner<S> + Send + Sync + 'static,
    S: SignatureEncoding,
{
    Box::new(move |message| {
        key.try_sign_with_rng(&mut rand_core::OsRng, message)
            .map(|signature| signature.to_vec())
    })
}

/// An ECDSA signer with RFC 6979 deterministic nonces, or an Ed25519
/// signer; the signature is the fixed-size form JWS asks for (`r || s`).
fn deterministic<K, S>(key: K) -> Box<SignFn>
where
    K: Signer<S> + Send + Sync + 'static,
    S: SignatureEncoding,
{
    Box::new(move |message| key.try_sign(message).map(|signature| signature.to_vec()))
}

/// An HMAC signer keyed once.
fn mac<M>(keyed: M) -> Box<SignFn>
where
    M: Mac + Clone + Send + Sync + 'static,
{
    Box::new(move |message| {
        let mut mac = keyed.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    })
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A private key from PEM text for an asymmetric algorithm.
    pub fn from_pem(
        algorithm: Algorithm,
        pem_text: &Secret,
        password: Option<&Secret>,
    ) -> Result<Self, KeyProblem> {
        let Some(needed) = needed_kind(algorithm) else {
            return Err(KeyProblem::new(
                format!("{algorithm:?} signs with a shared secret, not a private key"),
                "put the secret in `shared_secret`, or choose an RS, PS, ES or EdDSA algorithm",
            ));
        };
        let (kind, der) = decode_private_key(pem_text.expose(), password)?;
        if kind != needed {
            return Err(KeyProblem::new(
                format!("the private key is {kind}, but {algorithm:?} needs {needed}"),
                "choose the `alg` that matches the key, or supply a matching key",
            ));
        }
        Ok(Self {
            algorithm,
            digest: Sha256::digest(&der).into(),
            material: Arc::new(Zeroizing::new(der)),
            prepared: Arc::default(),
        })
    }

    /// A shared secret for an HMAC algorithm.
    pub fn from_shared_secret(algorithm: Algorithm, secret: &Secret) -> Result<Self, KeyProblem> {
        if needed_kind(algorithm).is_some() {
            return Err(KeyProblem::new(
                format!("{algorithm:?} signs with a private key, not a shared secret"),
                "put a PEM private key in `private_key`, or choose HS256, HS384 or HS512",
            ));
        }
        // RFC 7518 section 3.2: the key must be at least as long as the hash.
        let minimum = match algorithm {
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => 32,
        };
        if secret.expose().len() < minimum {
            return Err(KeyProblem::new(
                format!("{algorithm:?} needs a shared secret of at least {minimum} bytes"),
                "use a longer secret",
            ));
        }
        Ok(Self {
            algorithm,
            material: Arc::new(Zeroizing::new(secret.expose().as_bytes().to_vec())),
            digest: Sha256::digest(secret.expose()).into(),
            prepared: Arc::default(),
        })
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A SHA-256 digest of the key material, to tell keys apart.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Signs a throwaway message, proving that the key's contents are
    /// usable; parsing the structure alone does not prove that.
    pub fn probe(&self) -> Result<(), KeyProblem> {
        self.signature(b"probe").map(drop).map_err(|e| {
            KeyProblem::new(
                format!("the key cannot sign: {e}"),
                "supply a valid private key",
            )
        })
    }

    /// The base64url signature of `message`, with the key parsed at the
    /// first call and kept.
    fn signature(&self, message: &[u8]) -> Result<String, String> {
        let sign = match self.prepared.get() {
            Some(sign) => sign,
            None => {
                let parsed = signer(self.algorithm, &self.material)?;
                self.prepared.get_or_init(|| parsed)
            }
        };
        sign(message)
            .map(|signature| URL_SAFE_NO_PAD.encode(signature))
            .map_err(|e| e.to_string())
    }

    /// A compact JWS (RFC 7515 section 7.1) of this header and payload.
    ///
    /// The header object is signed exactly as configured, so members the
    /// signer does not know (an `x5t`, a vendor field) survive.
    pub fn sign(
        &self,
        header: &Map<String, Value>,
        payload: &Map<String, Value>,
    ) -> Result<String, String> {
        let encode = |part: &Map<String, Value>| {
            URL_SAFE_NO_PAD.encode(Value::Object(part.clone()).to_string())
        };
        let message = format!("{}.{}", encode(header), encode(payload));
        let signature = self
            .signature(message.as_bytes())
            .map_err(|e| format!("signing the assertion failed: {e}"))?;
        Ok(format!("{message}.{signature}"))
    }
}

/// Decodes a PEM private key into its kind and the DER the signer takes:
/// PKCS#1 for RSA, PKCS#8 for EC and Ed25519.
fn decode_private_key(
    pem_text: &str,
    password: Option<&Secret>,
) -> Result<(KeyKind, Vec<u8>), KeyProblem> {
    if pem_text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(KeyProblem::new(
            "the key uses OpenSSL's legacy PEM encryption, which is not supported",
            "convert it: openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.pem -out new.pem",
        ));
    }
    let (label, der) = pem::decode_vec(pem_text.trim().as_bytes()).map_err(|e| {
        KeyProblem::new(
            format!("the private key is not valid PEM: {e}"),
            "paste the whole key, from -----BEGIN to the END----- line",
        )
    })?;
    let malformed = |e: &dyn fmt::Display| {
        KeyProblem::new(
            format!("the {label} block is malformed: {e}"),
            "export the key again in PKCS#8 form",
        )
    };
    match label {
        "RSA PRIVATE KEY" => {
            // Parsed here so a damaged key is found now rather than at signing.
            rsa_key_from_pkcs1(&der).map_err(|e| malformed(&e))?;
            Ok((KeyKind::Rsa, der))
        }
        "EC PRIVATE KEY" => {
            let sec1 = sec1::EcPrivateKey::from_der(&der).map_err(|e| malformed(&e))?;
            let curve = sec1
                .parameters
                .and_then(|p| p.named_curve())
                .ok_or_else(|| malformed(&"it does not name its curve"))?;
            let kind = ec_kind(curve)?;
            // The signer takes PKCS#8: wrap the SEC1 structure in one.
            let info = PrivateKeyInfo::new(
                AlgorithmIdentifierRef {
                    oid: EC_PUBLIC_KEY,
                    parameters: Some(AnyRef::from(&curve)),
                },
                &der,
            );
            let document = SecretDocument::try_from(info).map_err(|e| malformed(&e))?;
            Ok((kind, document.as_bytes().to_vec()))
        }
        "PRIVATE KEY" => from_pkcs8(&der),
        "ENCRYPTED PRIVATE KEY" => {
            let Some(password) = password.filter(|p| !p.expose().is_empty()) else {
                return Err(KeyProblem::new(
                    "the private key is encrypted and no password was given",
                    "fill in the key's password",
                ));
            };
            let encrypted = EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| malformed(&e))?;
            let wrong_password = || {
                KeyProblem::new(
                    "the password does not open the private key",
                    "enter the password the key was encrypted with",
                )
            };
            let decrypted =
                encrypted
                    .decrypt(password.expose().as_bytes())
                    .map_err(|e| match e {
                        pkcs8::Error::EncryptedPrivateKey(
                            pkcs5::Error::UnsupportedAlgorithm { .. }
                            | pkcs5::Error::AlgorithmParametersInvalid { .. },
                        ) => KeyProblem::new(
                            format!("the private key's encryption is not supported: {e}"),
                            "re-encrypt it with PBES2: openssl pkcs8 -topk8 -v2 aes-256-cbc",
                        ),
                        // A wrong password shows as bad padding, or rarely as
                        // padding that happens to fit around garbage (below).
                        _ => wrong_password(),
                    })?;
            from_pkcs8(decrypted.as_bytes()).map_err(|_| wrong_password())
        }
        other => Err(KeyProblem::new(
            format!("a `{other}` block is not a private key"),
            "supply the private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY)",
        )),
    }
}

fn from_pkcs8(der: &[u8]) -> Result<(KeyKind, Vec<u8>), KeyProblem> {
    let malformed = |e: &dyn fmt::Display| {
        KeyProblem::new(
            format!("the PKCS#8 key is malformed: {e}"),
            "export the key again",
        )
    };
    let info = PrivateKeyInfo::from_der(der).map_err(|e| malformed(&e))?;
    match info.algorithm.oid {
        RSA_ENCRYPTION => {
            // PKCS#8 wraps the PKCS#1 structure, which is what the signer takes.
            rsa_key_from_pkcs1(info.private_key).map_err(|e| malformed(&e))?;
            Ok((KeyKind::Rsa, info.private_key.to_vec()))
        }
        EC_PUBLIC_KEY => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| malformed(&"it does not name its curve"))?;
            Ok((ec_kind(curve)?, der.to_vec()))
        }
        ED25519 => Ok((KeyKind::Ed25519, der.to_vec())),
        other => Err(KeyProblem::new(
            format!("keys of type {other} are not supported"),
            "use an RSA, EC P-256, EC P-384 or Ed25519 key",
        )),
    }
}

fn ec_kind(curve: ObjectIdentifier) -> Result<KeyKind, KeyProblem> {
    match curve {
        P256 => Ok(KeyKind::P256),
        P384 => Ok(KeyKind::P384),
        other => Err(KeyProblem::new(
            format!("the EC curve {other} is not supported"),
            "use a P-256 (ES256) or P-384 (ES384) key",
        )),
    }
}

/// Checks the PKCS#1 structure: nine integers, two primes among them.
fn rsa_key_from_pkcs1(der: &[u8]) -> Result<(), pkcs1::Error> {
    pkcs1::RsaPrivateKey::from_der(der)
        .map(drop)
        .map_err(Into::into)
}

/// A JWT identifier derived from the host's nonce and a purpose label, so
/// two assertions in one request never share one.
pub fn jti(nonce: &[u8], purpose: &str) -> Result<String, String> {
    if nonce.len() < 16 {
        return Err(format!(
            "the host passed {} random bytes; a JWT identifier needs at least 16",
            nonce.len()
        ));
    }
    let digest = Sha256::new()
        .chain_update(purpose.as_bytes())
        .chain_update([0u8])
        .chain_update(nonce)
        .finalize();
    Ok(URL_SAFE_NO_PAD.encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RSA_PKCS1: &str = include_str!("../testdata/rsa-pkcs1.pem");
    pub(crate) const RSA_PKCS8: &str = include_str!("../testdata/rsa-pkcs8.pem");
    pub(crate) const RSA_ENCRYPTED: &str = include_str!("../testdata/rsa-pkcs8-encrypted.pem");
    pub(crate) const RSA_ENCRYPTED_LEGACY: &str =
        include_str!("../testdata/rsa-pkcs8-encrypted-sha1-3des.pem");
    pub(crate) const EC_P256_SEC1: &str = include_str!("../testdata/ec-p256-sec1.pem");
    pub(crate) const EC_P256_PKCS8: &str = include_str!("../testdata/ec-p256-pkcs8.pem");
    pub(crate) const EC_P384_PKCS8: &str = include_str!("../testdata/ec-p384-pkcs8.pem");
    pub(crate) const ED25519_PKCS8: &str = include_str!("../testdata/ed25519-pkcs8.pem");
    const PASSWORD: &str = "correct horse";
    const SHARED_SECRET: &str =
        "a shared secret of at least sixty-four bytes, as HS512 requires of its keys";

    fn load(alg: Algorithm, pem: &str, password: Option<&str>) -> Result<SigningKey, KeyProblem> {
        SigningKey::from_pem(alg, &Secret::new(pem), password.map(Secret::new).as_ref())
    }

    #[test]
    fn every_supported_key_form_signs() {
        let cases = [
            (Algorithm::RS256, RSA_PKCS1, None),
            (Algorithm::RS384, RSA_PKCS8, None),
            (Algorithm::PS512, RSA_ENCRYPTED, Some(PASSWORD)),
            (Algorithm::RS256, RSA_ENCRYPTED_LEGACY, Some(PASSWORD)),
            (Algorithm::ES256, EC_P256_SEC1, None),
            (Algorithm::ES256, EC_P256_PKCS8, None),
            (Algorithm::ES384, EC_P384_PKCS8, None),
            (Algorithm::EdDSA, ED25519_PKCS8, None),
        ];
        for (alg, pem, password) in cases {
            let key = load(alg, pem, password).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
            key.probe().unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
            let header: Map<String, Value> = serde_json::from_value(
                serde_json::json!({"alg": format!("{alg:?}"), "x-vendor": 1}),
            )
            .expect("object");
            let token = key.sign(&header, &Map::new()).expect("signs");
            assert_eq!(token.split('.').count(), 3);
        }
    }

    /// The public half of a test key, as the verifying side holds it.
    fn public_key(alg: Algorithm, pem: &str) -> jsonwebtoken::DecodingKey {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use rsa::traits::PublicKeyParts as _;
        let encode = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let key = match alg {
            Algorithm::ES256 => {
                let key = p256::SecretKey::from_pkcs8_pem(pem).expect("P-256 key");
                let point = key.public_key().to_encoded_point(false);
                let (x, y) = (point.x().expect("x"), point.y().expect("y"));
                jsonwebtoken::DecodingKey::from_ec_components(&encode(x), &encode(y))
            }
            Algorithm::ES384 => {
                let key = p384::SecretKey::from_pkcs8_pem(pem).expect("P-384 key");
                let point = key.public_key().to_encoded_point(false);
                let (x, y) = (point.x().expect("x"), point.y().expect("y"));
                jsonwebtoken::DecodingKey::from_ec_components(&encode(x), &encode(y))
            }
            Algorithm::EdDSA => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).expect("Ed25519 key");
                jsonwebtoken::DecodingKey::from_ed_components(&encode(
                    key.verifying_key().as_bytes(),
                ))
            }
            _ => {
                let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("RSA key");
                jsonwebtoken::DecodingKey::from_rsa_components(
                    &encode(&key.n().to_bytes_be()),
                    &encode(&key.e().to_bytes_be()),
                )
            }
        };
        key.expect("public key")
    }

    #[test]
    fn kept_keys_sign_what_the_public_key_verifies() {
        let cases = [
            (Algorithm::RS256, RSA_PKCS8),
            (Algorithm::RS384, RSA_PKCS8),
            (Algorithm::RS512, RSA_PKCS8),
            (Algorithm::PS256, RSA_PKCS8),
            (Algorithm::PS384, RSA_PKCS8),
            (Algorithm::PS512, RSA_PKCS8),
            (Algorithm::ES256, EC_P256_PKCS8),
            (Algorithm::ES384, EC_P384_PKCS8),
            (Algorithm::EdDSA, ED25519_PKCS8),
            (Algorithm::HS256, SHARED_SECRET),
            (Algorithm::HS512, SHARED_SECRET),
        ];
        for (alg, pem) in cases {
            let key = if pem == SHARED_SECRET {
                SigningKey::from_shared_secret(alg, &Secret::new(pem))
            } else {
                load(alg, pem, None)
            }
            .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
            assert!(key.prepared.get().is_none(), "parsed before it was needed");
            let header: Map<String, Value> =
                serde_json::from_value(serde_json::json!({"alg": format!("{alg:?}")}))
                    .expect("object");
            let public = if pem == SHARED_SECRET {
                jsonwebtoken::DecodingKey::from_secret(pem.as_bytes())
            } else {
                public_key(alg, pem)
            };
            let mut validation = jsonwebtoken::Validation::new(alg);
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            // The first signature parses the key; the second, from a clone
            // as a kept configuration hands out, uses the parsed key.
            let first = key.sign(&header, &Map::new()).expect("signs");
            assert!(key.prepared.get().is_some(), "{alg:?}: not kept");
            let second = key.clone().sign(&header, &Map::new()).expect("signs again");
            for token in [first, second] {
                jsonwebtoken::decode::<Value>(&token, &public, &validation)
                    .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            }
        }
    }

    #[test]
    fn a_key_that_does_not_match_the_algorithm_is_named() {
        let problem = load(Algorithm::ES256, RSA_PKCS8, None).expect_err("mismatch");
        assert_eq!(
            problem.message,
            "the private key is an RSA key, but ES256 needs an EC P-256 key"
        );
        let problem = load(Algorithm::ES384, EC_P256_SEC1, None).expect_err("mismatch");
        assert!(problem.message.contains("P-384"), "{problem:?}");
        let problem = load(Algorithm::RS256, ED25519_PKCS8, None).expect_err("mismatch");
        assert!(problem.message.contains("Ed25519"), "{problem:?}");
    }

    #[test]
    fn wrong_or_missing_passwords_are_told_apart() {
        let problem =
            load(Algorithm::RS256, RSA_ENCRYPTED, Some("wrong")).expect_err("wrong password");
        assert_eq!(
            problem.message,
            "the password does not open the private key"
        );
        let problem = load(Algorithm::RS256, RSA_ENCRYPTED, None).expect_err("no password");
        assert!(problem.message.contains("no password"), "{problem:?}");
    }

    #[test]
    fn malformed_pem_is_a_clear_problem() {
        for pem in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            let problem = load(Algorithm::RS256, pem, None).expect_err("malformed");
            assert!(!problem.fix.is_empty(), "{problem:?}");
        }
        let certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        let problem = load(Algorithm::RS256, certificate, None).expect_err("not a key");
        assert!(problem.message.contains("CERTIFICATE"), "{problem:?}");
    }

    #[test]
    fn hmac_secrets_must_be_long_enough() {
        assert!(SigningKey::from_shared_secret(Algorithm::HS256, &Secret::new("short")).is_err());
        let key = SigningKey::from_shared_secret(Algorithm::HS256, &Secret::new("x".repeat(32)))
            .expect("long enough");
        key.probe().expect("signs");
    }

    #[test]
    fn identifiers_differ_by_purpose_and_need_entropy() {
        let nonce = [7u8; 32];
        assert_ne!(jti(&nonce, "grant"), jti(&nonce, "client"));
        assert_eq!(jti(&nonce, "grant"), jti(&nonce, "grant"));
        assert!(jti(&[1u8; 8], "grant").is_err());
    }
}
