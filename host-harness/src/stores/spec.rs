//! What a user writes to name a store (`--store`, `OAUTH_HARNESS_STORE`),
//! read as a URL when it is one: a Redis or Valkey scheme goes to Redis,
//! any other scheme is refused, and only a plain path is a file. A URL
//! that silently became a local file would split a fleet that was meant
//! to share one store.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Result, anyhow};

use super::{AtRest, FileStore, MemoryStore, RedisStore, StoreKey, TokenStore};

/// The schemes the Redis client speaks: TCP, TLS, and unix sockets.
const REDIS_SCHEMES: [&str; 7] = [
    "redis",
    "rediss",
    "valkey",
    "valkeys",
    "redis+unix",
    "valkey+unix",
    "unix",
];

/// The schemes whose traffic, password included, travels in clear.
const PLAIN_TCP_SCHEMES: [&str; 2] = ["redis", "valkey"];

/// Which store, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// In memory only: nothing is written, nothing reused.
    Memory,
    /// A file on this machine.
    File(PathBuf),
    /// A Redis or Valkey server, by its URL (with its scheme lowercased).
    Redis(String),
}

impl StoreSpec {
    /// Reads what a user wrote: a URL with a Redis or Valkey scheme
    /// (`redis://`, `rediss://`, `valkey://`, `valkeys://`, `redis+unix://`,
    /// `valkey+unix://`, `unix://`, in any case), `file://` or a plain path.
    /// Any other scheme is an error naming the ones known. The error never
    /// shows a password the text holds.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(anyhow!(
                "the token store is empty: give a file path or a redis:// URL"
            ));
        }
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(Self::File(PathBuf::from(text)));
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "file" {
            return url::Url::parse(text)
                .ok()
                .and_then(|url| url.to_file_path().ok())
                .map(Self::File)
                .ok_or_else(|| {
                    anyhow!(
                        "the token store `{text}` is not a usable file URL: give the file's path"
                    )
                });
        }
        if !REDIS_SCHEMES.contains(&scheme.as_str()) {
            return Err(anyhow!(
                "the token store `{}` has the scheme `{scheme}://`, which is not a store: a Redis or Valkey URL starts with {}; a file is a plain path",
                super::redis::shown_url(text),
                REDIS_SCHEMES.map(|s| format!("{s}://")).join(", ")
            ));
        }
        let url = url::Url::parse(text).map_err(|e| {
            anyhow!(
                "the token store `{}` is not a URL ({e}): write it as redis://[user:password@]host:port/db, rediss://… for TLS, or redis+unix:///path/to/socket",
                super::redis::shown_url(text)
            )
        })?;
        Ok(Self::Redis(url.to_string()))
    }

    /// What the store is called in messages: the path, or the URL with its
    /// password hidden.
    pub fn shown(&self) -> String {
        match self {
            Self::Memory => "(in memory)".into(),
            Self::File(path) => format!("`{}`", path.display()),
            Self::Redis(url) => format!("`{}`", super::redis::shown_url(url)),
        }
    }
}

/// How a store is opened, beside which one.
#[derive(Debug, Default, Clone)]
pub struct StoreOptions {
    /// Seal the states at rest with this key, and refuse unsealed ones.
    pub key: Option<StoreKey>,
    /// For `rediss://`: trust exactly these CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Accept plain `redis://` to a host that is not this machine: the
    /// password and, without a key, every token travel in clear.
    pub allow_plain_remote: bool,
    /// The migration step after a key is first configured: accept the
    /// unsealed states stored before, once each, and seal them.
    pub seal_unsealed: bool,
}

/// Opens the store a user named, with the key and trust given.
pub fn open(spec: &StoreSpec, options: &StoreOptions) -> Result<Box<dyn TokenStore>> {
    fn at_rest<S: TokenStore>(inner: S, spec: &StoreSpec, options: &StoreOptions) -> AtRest<S> {
        let mut store = AtRest::new(inner, options.key.as_ref(), &spec.shown());
        store.seal_unsealed(options.seal_unsealed);
        store
    }
    if options.ca_pem.is_some() && !spec.is_tls() {
        return Err(anyhow!(
            "--store-ca-file is for a rediss:// or valkeys:// store: drop it, or give --store rediss://…"
        ));
    }
    match spec {
        StoreSpec::Memory => Ok(Box::new(MemoryStore::default())),
        StoreSpec::File(path) => Ok(Box::new(at_rest(FileStore::new(path), spec, options))),
        StoreSpec::Redis(url) => {
            refuse_plain_remote(url, options.allow_plain_remote)?;
            let redis = RedisStore::open_trusting(url, options.ca_pem.as_deref())?;
            Ok(Box::new(at_rest(redis, spec, options)))
        }
    }
}

impl StoreSpec {
    /// Whether the store is reached over TLS.
    fn is_tls(&self) -> bool {
        matches!(self, Self::Redis(url) if url.starts_with("rediss://") || url.starts_with("valkeys://"))
    }
}

/// Refuses a plain-TCP Redis URL to a host that is not this machine, as
/// bearer tokens are refused over plain http, unless the risk is accepted.
fn refuse_plain_remote(url: &str, allowed: bool) -> Result<()> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    if allowed || !PLAIN_TCP_SCHEMES.contains(&parsed.scheme()) {
        return Ok(());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        // A scheme the URL standard does not know keeps its host as text.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => true,
    };
    if loopback {
        return Ok(());
    }
    Err(anyhow!(
        "the Redis token store `{}` is reached in clear text on another machine: its password and the tokens would cross the network readable; use rediss:// (TLS), or pass --allow-plain-redis to accept the risk",
        super::redis::shown_url(url)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_redis_for_every_redis_or_valkey_scheme_in_any_case_and_a_file_only_for_a_path() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "Redis://127.0.0.1/0",
            "REDISS://cache.example/0",
            "valkey://127.0.0.1/1",
            "valkeys://cache.example/0",
            "redis+unix:///run/redis.sock?pass=hunter2",
            "valkey+unix:///run/valkey.sock",
            "unix:///run/redis.sock",
        ] {
            assert!(
                matches!(StoreSpec::parse(url).expect(url), StoreSpec::Redis(_)),
                "{url}"
            );
        }
        assert_eq!(
            StoreSpec::parse("Redis://127.0.0.1/0").expect("a URL"),
            StoreSpec::Redis("redis://127.0.0.1/0".into())
        );
        for path in [
            "tokens.json",
            "./state/tokens.json",
            "/var/lib/x/tokens.json",
        ] {
            assert_eq!(
                StoreSpec::parse(path).expect(path),
                StoreSpec::File(path.into())
            );
        }
        assert_eq!(
            StoreSpec::parse("file:///var/lib/x/tokens.json").expect("a file URL"),
            StoreSpec::File("/var/lib/x/tokens.json".into())
        );
        let error = StoreSpec::parse("memcached://app:s3cret@cache.example/0")
            .expect_err("unknown scheme")
            .to_string();
        assert!(error.contains("`memcached://`"), "{error}");
        assert!(error.contains("valkey://"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn plain_redis_is_refused_off_this_machine_unless_the_risk_is_accepted() {
        for local in [
            "redis://127.0.0.1/0",
            "redis://[::1]/0",
            "redis://localhost/0",
            "rediss://cache.example/0",
            "redis+unix:///run/redis.sock",
        ] {
            refuse_plain_remote(local, false).expect(local);
        }
        let error = refuse_plain_remote("redis://:pw-secret@cache.example:6379/0", false)
            .expect_err("remote, in clear")
            .to_string();
        assert!(error.contains("--allow-plain-redis"), "{error}");
        assert!(error.contains("rediss://"), "{error}");
        assert!(!error.contains("pw-secret"), "{error}");
        refuse_plain_remote("valkey://cache.example/0", true).expect("the risk accepted");
    }
}
