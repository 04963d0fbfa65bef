//! Who the embedded server knows: clients, users, a trusted assertion
//! issuer and their public keys. All are published test fixtures.

/// How a registered client must authenticate (RFC 7591 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuth {
    /// HTTP Basic with the RFC 6749 section 2.3.1 encoding.
    ClientSecretBasic,
    /// `client_id` and `client_secret` form parameters.
    ClientSecretPost,
    /// A public client: `client_id` only.
    None,
    /// RFC 7523 section 2.2: a JWT signed with a registered key.
    PrivateKeyJwt,
}

impl TokenEndpointAuth {
    /// The connector's `client_auth` value for this method.
    pub fn client_auth(self) -> &'static str {
        match self {
            TokenEndpointAuth::ClientSecretBasic => "basic",
            TokenEndpointAuth::ClientSecretPost => "body",
            TokenEndpointAuth::None => "none",
            TokenEndpointAuth::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// The `grant_type` of RFC 7523's JWT bearer grant.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A client registered with the embedded server.
#[derive(Clone)]
pub struct RegisteredClient {
    /// The client identifier.
    pub client_id: &'static str,
    /// The client secret; empty for clients without one.
    pub client_secret: &'static str,
    /// The only authentication method the server accepts from this client.
    pub auth: TokenEndpointAuth,
    /// The grant types (and `implicit`) the client may use.
    pub grants: &'static [&'static str],
    /// The scopes the client may request.
    pub scopes: &'static [&'static str],
    /// The registered redirect URIs; on loopback any port matches (RFC 8252 section 7.3).
    pub redirect_uris: &'static [&'static str],
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl RegisteredClient {
    /// Whether the client may use this grant type.
    pub fn may_use(&self, grant: &str) -> bool {
        self.grants.contains(&grant)
    }
}

const ALL_GRANTS: &[&str] = &[
    "client_credentials",
    "refresh_token",
    "password",
    "authorization_code",
    JWT_BEARER,
];
const SCOPES: &[&str] = &["read", "write", "offline_access"];
/// The redirect URI registered for every browser-login client.
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// The test clients every embedded server knows.
pub const TEST_CLIENTS: &[RegisteredClient] = &[
    RegisteredClient {
        client_id: "demo-basic",
        client_secret: "demo-basic-secret",
        auth: TokenEndpointAuth::ClientSecretBasic,
        grants: ALL_GRANTS,
        scopes: SCOPES,
        redirect_uris: &[REDIRECT_URI],
    },
    RegisteredClient {
        client_id: "demo-post",
        client_secret: "demo-post-secret",
        auth: TokenEndpointAuth::ClientSecretPost,
        grants: ALL_GRANTS,
        scopes: SCOPES,
        redirect_uris: &[REDIRECT_URI],
    },
    // Every character RFC 6749 section 2.3.1's encoding must carry.
    RegisteredClient {
        client_id: "tricky:client %+/é",
        client_secret: "p@ss:w%rd +/ü 鍵",
        auth: TokenEndpointAuth::ClientSecretBasic,
        grants: &["client_credentials", "refresh_token"],
        scopes: &["read"],
        redirect_uris: &[],
    },
    RegisteredClient {
        client_id: "demo-public",
        client_secret: "",
        auth: TokenEndpointAuth::None,
        grants: &[
            "authorization_code",
            "refresh_token",
            "implicit",
            JWT_BEARER,
        ],
        scopes: SCOPES,
        redirect_uris: &[REDIRECT_URI],
    },
    RegisteredClient {
        client_id: "demo-jwt",
        client_secret: "",
        auth: TokenEndpointAuth::PrivateKeyJwt,
        grants: ALL_GRANTS,
        scopes: SCOPES,
        redirect_uris: &[REDIRECT_URI],
    },
];

/// A resource owner.
#[derive(Clone, Copy)]
pub struct User {
    /// The user name.
    pub username: &'static str,
    /// The password. A published test fixture.
    pub password: &'static str,
}

/// The users; the first one logs in when a login names nobody.
pub const USERS: &[User] = &[
    User {
        username: "alice",
        password: "wonderland",
    },
    User {
        username: "bob",
        password: "builder",
    },
];

/// The issuer whose JWT bearer assertions the server trusts (RFC 7523
/// section 3): its `sub` must name a user.
pub const ASSERTION_ISSUER: &str = "demo-issuer";

/// The fixture key pairs. The public halves are registered — the first
/// three for the trusted issuer's grants, the client key for the `demo-jwt`
/// client's authentication, never both — and the private halves are what
/// their configurations sign with.
pub mod keys {
    /// The `demo-jwt` client's own RSA 2048 key, PKCS#8: for client
    /// assertions only.
    pub const CLIENT_RSA_PRIVATE: &str = include_str!("../fixtures/client-rsa.pem");
    /// Its public half.
    pub const CLIENT_RSA_PUBLIC: &str = include_str!("../fixtures/client-rsa.pub.pem");
    /// A client's own EC P-256 key, PKCS#8: for ES256 client assertions at
    /// the Authlib server, which registers it beside [`CLIENT_RSA_PUBLIC`].
    pub const CLIENT_EC_PRIVATE: &str = include_str!("../fixtures/client-ec.pem");
    /// Its public half.
    pub const CLIENT_EC_PUBLIC: &str = include_str!("../fixtures/client-ec.pub.pem");
    /// RSA 2048, PKCS#8.
    pub const RSA_PRIVATE: &str = include_str!("../fixtures/rsa.pem");
    /// The same RSA key, encrypted (PBES2, AES-256-CBC) with [`RSA_ENCRYPTED_PASSWORD`].
    pub const RSA_ENCRYPTED: &str = include_str!("../fixtures/rsa-encrypted.pem");
    /// The password of [`RSA_ENCRYPTED`].
    pub const RSA_ENCRYPTED_PASSWORD: &str = "demo key password";
    /// EC P-256, PKCS#8.
    pub const EC_PRIVATE: &str = include_str!("../fixtures/ec-p256.pem");
    /// Ed25519, PKCS#8.
    pub const ED25519_PRIVATE: &str = include_str!("../fixtures/ed25519.pem");
    /// The RSA public key.
    pub const RSA_PUBLIC: &str = include_str!("../fixtures/rsa.pub.pem");
    /// The EC public key.
    pub const EC_PUBLIC: &str = include_str!("../fixtures/ec-p256.pub.pem");
    /// The Ed25519 public key.
    pub const ED25519_PUBLIC: &str = include_str!("../fixtures/ed25519.pub.pem");
}

/// A public key registered for an assertion's signer, with its `kid`.
pub struct RegisteredKey {
    /// The key id an assertion's header may name.
    pub kid: &'static str,
    /// The public key, PEM.
    pub pem: &'static str,
}

/// The keys the trusted issuer ([`ASSERTION_ISSUER`]) signs grants with.
pub const ISSUER_KEYS: &[RegisteredKey] = &[
    RegisteredKey {
        kid: "rsa-1",
        pem: keys::RSA_PUBLIC,
    },
    RegisteredKey {
        kid: "ec-1",
        pem: keys::EC_PUBLIC,
    },
    RegisteredKey {
        kid: "ed-1",
        pem: keys::ED25519_PUBLIC,
    },
];

/// The keys a client authenticates with (`private_key_jwt`): its own, not
/// the issuer's, so an assertion signed for one role fails in the other.
pub fn client_keys(client_id: &str) -> &'static [RegisteredKey] {
    match client_id {
        "demo-jwt" => &[RegisteredKey {
            kid: "client-rsa-1",
            pem: keys::CLIENT_RSA_PUBLIC,
        }],
        _ => &[],
    }
}

/// The registered client with this id.
pub fn client(client_id: &str) -> Option<&'static RegisteredClient> {
    TEST_CLIENTS
        .iter()
        .find(|client| client.client_id == client_id)
}

/// The user with this name.
pub fn user(username: &str) -> Option<&'static User> {
    USERS.iter().find(|user| user.username == username)
}
