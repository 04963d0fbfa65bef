//! Loading the connector component and calling it.
//!
//! The component is compiled once per [`ConnectorHost`]. A call of one of
//! its functions gets a fresh [`Store`] from a pre-instantiated component; a
//! [`Connection`] keeps one instance and one opened configuration for all of
//! its calls, the fast path. Either way the instance is bounded in fuel (CPU,
//! per call) and memory, with a WASI context that grants nothing: no
//! directories, no environment, no arguments, no network, no clocks.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context as _, Result, anyhow};
use wasmtime::component::{Component, HasData, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::bindings::{cli, random, sync};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::lock;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "oauth-connector",
        // Tests compare what a connection answers with what the functions do.
        additional_derives: [PartialEq],
    });
}

pub use bindings::exports::oauth2::connector::api_calls::{Challenge, Verdict};
pub use bindings::exports::oauth2::connector::http::{Request, Response};
pub use bindings::exports::oauth2::connector::settings::FieldError;
pub use bindings::exports::oauth2::connector::tokens::{
    Context, Failure, Introspection, OauthError, Token, TokenTypeHint, Unreadable,
};
pub use bindings::exports::oauth2::connector::user_login::{Authorization, LoginStep};

/// The connector component built from this repository's sources.
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/connector.wasm"));

/// The WASI interfaces the harness provides, by package and interface name.
/// A component importing anything else fails to instantiate.
pub const PROVIDED_WASI_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// Resource bounds for one call into the component.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) one call may use.
    pub fuel: u64,
    /// Bytes of linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Keep this many instances' memory in wasmtime's pooling allocator,
    /// reused from call to call, instead of mapping fresh memory per call.
    /// Each open [`Connection`] holds one of these slots for as long as it
    /// lives, so allow for the connections a host keeps (a `Harness` keeps
    /// up to 64) plus the function calls running at once.
    pub pooled_instances: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Generous for request building and RSA signing, small enough to
            // stop a runaway loop within a second or two.
            fuel: 2_000_000_000,
            memory_bytes: 64 << 20,
            pooled_instances: None,
        }
    }
}

/// What a store holds: the locked-down WASI context and the limits.
struct Guest {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The connector component, compiled and pre-instantiated. Clones share
/// the compiled code.
#[derive(Clone)]
pub struct ConnectorHost {
    engine: Engine,
    pre: bindings::OauthConnectorPre<Guest>,
    limits: Limits,
}

impl ConnectorHost {
    /// A trap (a panic in the guest, exhausted fuel, a memory limit) becomes
    /// an error naming the call and the cause, never a crash of the host;
    /// the next call gets a fresh instance and is unaffected.
    fn trapped<T>(&self, result: wasmtime::Result<T>, call: &str) -> Result<T> {
        result.map_err(|error| {
            let cause = match error.downcast_ref::<wasmtime::Trap>() {
                Some(wasmtime::Trap::OutOfFuel) => format!(
                    "it used up its CPU budget of {} fuel units (a runaway loop?)",
                    self.limits.fuel
                ),
                // What the store's limiter says when it refuses to grow memory.
                _ if format!("{error:#}").contains("growing memory") => format!(
                    "it needed more than its memory limit of {} MiB",
                    self.limits.memory_bytes >> 20
                ),
                Some(trap) => format!("it trapped ({trap}), as a panic in the component does"),
                None => format!("{error:#}"),
            };
            anyhow!("the connector component failed in `{call}`: {cause}")
        })
    }

    /// Compiles the component embedded in the harness.
    pub fn embedded() -> Result<Self> {
        Self::from_bytes(
            EMBEDDED_COMPONENT,
            "the embedded connector component",
            Limits::default(),
        )
    }

    /// Compiles a component file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("failed to read component `{}`", path.display()))?;
        Self::from_bytes(
            &bytes,
            &format!("component `{}`", path.display()),
            Limits::default(),
        )
    }

    /// Compiles component bytes; `name` says what they are in error messages.
    pub fn from_bytes(bytes: &[u8], name: &str, limits: Limits) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true).consume_fuel(true);
        if let Some(instances) = limits.pooled_instances {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(instances)
                .total_core_instances(instances.saturating_mul(4))
                .total_memories(instances.saturating_mul(4))
                .total_tables(instances.saturating_mul(16))
                .max_memory_size(limits.memory_bytes);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = anyhow_result(Engine::new(&config))
            .context("failed to configure the wasmtime engine")?;
        let component = anyhow_result(Component::new(&engine, bytes))
            .with_context(|| format!("failed to compile {name}"))?;
        let mut linker = Linker::new(&engine);
        add_provided_wasi(&mut linker)?;
        let instance_pre = anyhow_result(linker.instantiate_pre(&component))
            .with_context(|| format!("{name} needs imports the harness does not provide"))?;
        let pre = anyhow_result(bindings::OauthConnectorPre::new(instance_pre))
            .with_context(|| format!("{name} does not export the oauth2:connector world"))?;
        Ok(Self {
            engine,
            pre,
            limits,
        })
    }

    /// Instantiates the component and drops the instance: what every call
    /// costs before it starts, and a check that the component can run.
    pub fn instantiate_once(&self) -> Result<()> {
        self.instantiate().map(drop)
    }

    /// The names of everything the component imports.
    pub fn imports(&self) -> Vec<String> {
        let component = self.pre.instance_pre().component();
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// A fresh instance in a fresh store.
    fn instantiate(&self) -> Result<(Store<Guest>, bindings::OauthConnector)> {
        let mut store = Store::new(
            &self.engine,
            Guest {
                wasi: WasiCtx::builder()
                    .allow_tcp(false)
                    .allow_udp(false)
                    .allow_ip_name_lookup(false)
                    .build(),
                table: ResourceTable::new(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(self.limits.memory_bytes)
                    // A growth past the limit traps with a clear reason
                    // instead of the guest's allocator aborting vaguely.
                    .trap_on_grow_failure(true)
                    .instances(4)
                    .tables(16)
                    .memories(4)
                    .build(),
            },
        );
        store.limiter(|guest| &mut guest.limits);
        store.set_fuel(self.limits.fuel)?;
        let instance = anyhow_result(self.pre.instantiate(&mut store))
            .context("failed to instantiate the connector component")?;
        Ok((store, instance))
    }

    /// Opens a configuration in an instance of its own, kept for all of the
    /// connection's calls: the document is parsed and its keys opened once,
    /// not per call. An invalid document is the component's failure, as
    /// `validate` lists it.
    pub fn open(&self, config: &str) -> Result<Result<Connection, Failure>> {
        let kept = match self.open_kept(config)? {
            Ok(kept) => kept,
            Err(failure) => return Ok(Err(failure)),
        };
        let (kept, cache_key) =
            self.run_kept(kept, "connection.cache-key", |guest, store, handle| {
                guest.call_cache_key(store, handle)
            })?;
        Ok(Ok(Connection {
            host: self.clone(),
            config: config.to_owned(),
            cache_key,
            kept: Mutex::new(Some(kept)),
        }))
    }

    /// Runs one method of an opened connection with a full fuel budget;
    /// gives the instance back unless it trapped.
    fn run_kept<T>(
        &self,
        mut kept: Kept,
        name: &str,
        method: impl FnOnce(
            &ConnectionMethods<'_>,
            &mut Store<Guest>,
            ResourceAny,
        ) -> wasmtime::Result<T>,
    ) -> Result<(Kept, T)> {
        anyhow_result(kept.store.set_fuel(self.limits.fuel))?;
        let guest = kept.instance.oauth2_connector_connections().connection();
        let value = self.trapped(method(&guest, &mut kept.store, kept.handle), name)?;
        Ok((kept, value))
    }

    /// A fresh instance with `config` opened in it.
    fn open_kept(&self, config: &str) -> Result<Result<Kept, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        let opened = self.trapped(
            instance
                .oauth2_connector_connections()
                .connection()
                .call_open(&mut store, config),
            "connection.open",
        )?;
        Ok(opened.map(|handle| Kept {
            store,
            instance,
            handle,
        }))
    }

    /// The JSON Schema of the configuration document.
    pub fn schema(&self) -> Result<String> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance.oauth2_connector_settings().call_schema(&mut store),
            "schema",
        )
    }

    /// Every problem in a configuration document.
    pub fn validate(&self, config: &str) -> Result<Vec<FieldError>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_settings()
                .call_validate(&mut store, config),
            "validate",
        )
    }

    /// Combines a connection's configuration, an environment override and
    /// application-supplied values into one document.
    pub fn merge_layers(
        &self,
        connection: &str,
        environment: Option<&str>,
        runtime: Option<&str>,
    ) -> Result<Result<String, Vec<FieldError>>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance.oauth2_connector_settings().call_merge_layers(
                &mut store,
                connection,
                environment,
                runtime,
            ),
            "merge-layers",
        )
    }

    /// The token request for the configured grant.
    pub fn token_request(&self, config: &str, cx: &Context) -> Result<Result<Request, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_tokens()
                .call_token_request(&mut store, config, cx),
            "token-request",
        )
    }

    /// A refresh request for this refresh token.
    pub fn refresh_request(
        &self,
        config: &str,
        refresh_token: &str,
        cx: &Context,
    ) -> Result<Result<Request, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance.oauth2_connector_tokens().call_refresh_request(
                &mut store,
                config,
                refresh_token,
                cx,
            ),
            "refresh-request",
        )
    }

    /// Reads a token endpoint response received at `now`; `presented` is
    /// the refresh token the request sent, if any.
    pub fn read_token_response(
        &self,
        config: &str,
        response: &Response,
        now: u64,
        presented: Option<&str>,
    ) -> Result<Result<Token, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_tokens()
                .call_read_token_response(&mut store, config, response, now, presented),
            "read-token-response",
        )
    }

    /// The authorization URL of a browser login.
    pub fn authorization_url(
        &self,
        config: &str,
        cx: &Context,
        state: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<Result<Authorization, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_user_login()
                .call_authorization_url(&mut store, config, cx, state, code_verifier),
            "authorization-url",
        )
    }

    /// What a login's redirect leads to: the code exchange, or the token.
    pub fn finish_login(
        &self,
        config: &str,
        redirect_url: &str,
        expected_state: &str,
        code_verifier: Option<&str>,
        cx: &Context,
    ) -> Result<Result<LoginStep, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance.oauth2_connector_user_login().call_finish_login(
                &mut store,
                config,
                redirect_url,
                expected_state,
                code_verifier,
                cx,
            ),
            "finish-login",
        )
    }

    /// The code from a login's redirect.
    pub fn read_redirect(
        &self,
        config: &str,
        redirect_url: &str,
        expected_state: &str,
    ) -> Result<Result<String, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance.oauth2_connector_user_login().call_read_redirect(
                &mut store,
                config,
                redirect_url,
                expected_state,
            ),
            "read-redirect",
        )
    }

    /// The request exchanging a code for a token.
    pub fn code_exchange_request(
        &self,
        config: &str,
        code: &str,
        code_verifier: Option<&str>,
        cx: &Context,
    ) -> Result<Result<Request, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_user_login()
                .call_code_exchange_request(&mut store, config, code, code_verifier, cx),
            "code-exchange-request",
        )
    }

    /// The token in an implicit grant's redirect.
    pub fn read_implicit_redirect(
        &self,
        config: &str,
        redirect_url: &str,
        expected_state: &str,
        now: u64,
    ) -> Result<Result<Token, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_user_login()
                .call_read_implicit_redirect(&mut store, config, redirect_url, expected_state, now),
            "read-implicit-redirect",
        )
    }
}

impl ConnectorHost {
    /// The request asking the introspection endpoint about a token.
    pub fn introspection_request(
        &self,
        config: &str,
        token: &str,
        hint: Option<TokenTypeHint>,
        cx: &Context,
    ) -> Result<Result<Request, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_tokens()
                .call_introspection_request(&mut store, config, token, hint, cx),
            "introspection-request",
        )
    }

    /// Reads the introspection endpoint's answer.
    pub fn read_introspection_response(
        &self,
        response: &Response,
    ) -> Result<Result<Introspection, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_tokens()
                .call_read_introspection_response(&mut store, response),
            "read-introspection-response",
        )
    }

    /// The request revoking a token.
    pub fn revocation_request(
        &self,
        config: &str,
        token: &str,
        hint: Option<TokenTypeHint>,
        cx: &Context,
    ) -> Result<Result<Request, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_tokens()
                .call_revocation_request(&mut store, config, token, hint, cx),
            "revocation-request",
        )
    }

    /// Reads the revocation endpoint's answer.
    pub fn read_revocation_response(&self, response: &Response) -> Result<Result<(), Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_tokens()
                .call_read_revocation_response(&mut store, response),
            "read-revocation-response",
        )
    }

    /// The API request with the access token in it.
    pub fn authorize(
        &self,
        config: &str,
        request: &Request,
        token_type: &str,
        access_token: &str,
    ) -> Result<Result<Request, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance.oauth2_connector_api_calls().call_authorize(
                &mut store,
                config,
                request,
                token_type,
                access_token,
            ),
            "authorize",
        )
    }

    /// Whether an API's response calls for a new token and one retry.
    pub fn judge(
        &self,
        config: &str,
        response: &Response,
        retried: bool,
    ) -> Result<Result<Verdict, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_api_calls()
                .call_judge(&mut store, config, response, retried),
            "judge",
        )
    }

    /// The challenges in a response's `WWW-Authenticate` headers.
    pub fn challenges(&self, response: &Response) -> Result<Vec<Challenge>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_api_calls()
                .call_challenges(&mut store, response),
            "challenges",
        )
    }

    /// Whether a failed refresh should be followed by the configured grant.
    pub fn falls_back_to_grant(&self, failure: &Failure) -> Result<bool> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_api_calls()
                .call_falls_back_to_grant(&mut store, failure),
            "falls-back-to-grant",
        )
    }

    /// The key under which this configuration's tokens are cached and stored.
    pub fn token_cache_key(&self, config: &str) -> Result<Result<String, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_api_calls()
                .call_token_cache_key(&mut store, config),
            "token-cache-key",
        )
    }
}

/// An instance with a configuration opened in it.
struct Kept {
    store: Store<Guest>,
    instance: bindings::OauthConnector,
    handle: ResourceAny,
}

/// The generated accessor for the `connection` resource's methods.
type ConnectionMethods<'a> = bindings::exports::oauth2::connector::connections::GuestConnection<'a>;

/// A configuration opened once in an instance of its own, which every call
/// reuses: no instantiation, no start-up, no parsing of the document or of
/// its keys per call. Calls on one connection take turns (a lock); open one
/// connection per configuration, or several for parallel calls. Each call
/// still gets the full fuel budget, and the instance's memory stays under
/// the memory limit.
///
/// A trap leaves an instance unusable, so after one the connection opens
/// its configuration again in a fresh instance at the next call.
pub struct Connection {
    host: ConnectorHost,
    /// The document, kept to open it again after a trap. It holds secrets:
    /// this type has no `Debug`.
    config: String,
    cache_key: String,
    /// The instance, or `None` after a trap until the next call reopens.
    kept: Mutex<Option<Kept>>,
}

impl Connection {
    /// Runs one method on the kept instance, reopening the configuration
    /// first if a trap discarded it.
    fn call<T>(
        &self,
        name: &str,
        method: impl FnOnce(
            &ConnectionMethods<'_>,
            &mut Store<Guest>,
            ResourceAny,
        ) -> wasmtime::Result<T>,
    ) -> Result<T> {
        let mut slot = lock(&self.kept);
        let kept = match slot.take() {
            Some(kept) => kept,
            None => self.host.open_kept(&self.config)?.map_err(|failure| {
                anyhow!(
                    "the connector component refused to reopen a configuration it had opened: {}",
                    crate::harness::describe(&failure)
                )
            })?,
        };
        let (kept, value) = self.host.run_kept(kept, name, method)?;
        *slot = Some(kept);
        Ok(value)
    }

    /// The key under which this configuration's tokens are cached and
    /// stored, read once when the connection was opened.
    pub fn cache_key(&self) -> &str {
        &self.cache_key
    }

    /// The token request for the configured grant.
    pub fn token_request(&self, cx: &Context) -> Result<Result<Request, Failure>> {
        self.call("connection.token-request", |guest, store, handle| {
            guest.call_token_request(store, handle, cx)
        })
    }

    /// A refresh request for this refresh token.
    pub fn refresh_request(
        &self,
        refresh_token: &str,
        cx: &Context,
    ) -> Result<Result<Request, Failure>> {
        self.call("connection.refresh-request", |guest, store, handle| {
            guest.call_refresh_request(store, handle, refresh_token, cx)
        })
    }

    /// Reads a token endpoint response received at `now`; `presented` is
    /// the refresh token the request sent, if any.
    pub fn read_token_response(
        &self,
        response: &Response,
        now: u64,
        presented: Option<&str>,
    ) -> Result<Result<Token, Failure>> {
        self.call("connection.read-token-response", |guest, store, handle| {
            guest.call_read_token_response(store, handle, response, now, presented)
        })
    }

    /// The API request with the access token in it.
    pub fn authorize(
        &self,
        request: &Request,
        token_type: &str,
        access_token: &str,
    ) -> Result<Result<Request, Failure>> {
        self.call("connection.authorize", |guest, store, handle| {
            guest.call_authorize(store, handle, request, token_type, access_token)
        })
    }

    /// Whether an API's response calls for a new token and one retry.
    pub fn judge(&self, response: &Response, retried: bool) -> Result<Verdict> {
        self.call("connection.judge", |guest, store, handle| {
            guest.call_judge(store, handle, response, retried)
        })
    }

    /// The request asking the introspection endpoint about a token.
    pub fn introspection_request(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
        cx: &Context,
    ) -> Result<Result<Request, Failure>> {
        self.call(
            "connection.introspection-request",
            |guest, store, handle| guest.call_introspection_request(store, handle, token, hint, cx),
        )
    }

    /// The request revoking a token.
    pub fn revocation_request(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
        cx: &Context,
    ) -> Result<Result<Request, Failure>> {
        self.call("connection.revocation-request", |guest, store, handle| {
            guest.call_revocation_request(store, handle, token, hint, cx)
        })
    }

    /// The authorization URL of a browser login.
    pub fn authorization_url(
        &self,
        cx: &Context,
        state: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<Result<Authorization, Failure>> {
        self.call("connection.authorization-url", |guest, store, handle| {
            guest.call_authorization_url(store, handle, cx, state, code_verifier)
        })
    }

    /// What a login's redirect leads to: the code exchange, or the token.
    pub fn finish_login(
        &self,
        redirect_url: &str,
        expected_state: &str,
        code_verifier: Option<&str>,
        cx: &Context,
    ) -> Result<Result<LoginStep, Failure>> {
        self.call("connection.finish-login", |guest, store, handle| {
            guest.call_finish_login(
                store,
                handle,
                redirect_url,
                expected_state,
                code_verifier,
                cx,
            )
        })
    }
}

/// wasmtime has its own error type; this lets `anyhow`'s context apply.
fn anyhow_result<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(anyhow::Error::from)
}

/// Marks the resource table as the data the WASI I/O bindings work on.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Adds exactly the WASI interfaces in [`PROVIDED_WASI_INTERFACES`]: what a
/// Rust standard-library component needs for start-up, stdio and random
/// bytes. Filesystem, sockets and clocks are left out, so a component that
/// imports them cannot be instantiated at all.
fn add_provided_wasi(linker: &mut Linker<Guest>) -> Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::random::WasiRandom;

    let l = linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<Guest, HasIo>(l, |g| {
        &mut g.table
    })?;
    sync::io::poll::add_to_linker::<Guest, HasIo>(l, |g| &mut g.table)?;
    sync::io::streams::add_to_linker::<Guest, HasIo>(l, |g| &mut g.table)?;
    random::random::add_to_linker::<Guest, WasiRandom>(l, |g| g.wasi.random())?;
    random::insecure::add_to_linker::<Guest, WasiRandom>(l, |g| g.wasi.random())?;
    random::insecure_seed::add_to_linker::<Guest, WasiRandom>(l, |g| g.wasi.random())?;
    cli::environment::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::exit::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::stdin::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::stdout::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::stderr::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::terminal_input::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::terminal_output::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::terminal_stdin::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::terminal_stdout::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    cli::terminal_stderr::add_to_linker::<Guest, WasiCli>(l, Guest::cli)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_component_imports_only_what_the_harness_provides() {
        let host = ConnectorHost::embedded().expect("the embedded component loads");
        let imports = host.imports();
        for import in &imports {
            let interface = import.split('@').next().unwrap_or_default();
            assert!(
                PROVIDED_WASI_INTERFACES.contains(&interface),
                "unexpected import `{import}`; the component imports {imports:?}"
            );
            for forbidden in [
                "wasi:sockets",
                "wasi:filesystem",
                "wasi:http",
                "wasi:clocks",
            ] {
                assert!(!interface.starts_with(forbidden), "{import}");
            }
        }
    }

    #[test]
    fn the_host_survives_a_guest_that_panics_loops_or_hoards_memory() {
        let limits = Limits {
            fuel: 100_000_000,
            memory_bytes: 16 << 20,
            ..Limits::default()
        };
        let bytes = std::fs::read(env!("FAULTY_CONNECTOR_WASM")).expect("the faulty component");
        let host =
            ConnectorHost::from_bytes(&bytes, "the faulty component", limits).expect("loads");
        let panicked = host.schema().expect_err("schema panics").to_string();
        assert!(
            panicked.contains("`schema`") && panicked.contains("trapped"),
            "{panicked}"
        );
        let looped = host.validate("loop").expect_err("loops").to_string();
        assert!(
            looped.contains("`validate`") && looped.contains("CPU budget"),
            "{looped}"
        );
        let hoarded = host.validate("memory").expect_err("hoards").to_string();
        assert!(hoarded.contains("memory limit of 16 MiB"), "{hoarded}");
        // Each call had its own instance: the next one is served as usual.
        assert!(host.validate("fine").expect("served").is_empty());
    }

    fn cx() -> Context {
        Context {
            now: 1_700_000_000,
            nonce: (0u8..32).collect(),
        }
    }

    #[test]
    fn a_connection_answers_as_the_functions_do() {
        let host = ConnectorHost::embedded().expect("loads");
        let response = Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"access_token":"at","token_type":"Bearer","expires_in":60,"refresh_token":"rt-2"}"#
                .to_vec(),
        };
        let refused = Response {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                r#"Bearer error="invalid_token""#.into(),
            )],
            body: Vec::new(),
        };
        let configs = [
            serde_json::json!({"grant_type": "client_credentials", "token_url": "https://as.example.com/token",
                               "client_id": "app", "client_secret": "s3cret", "scope": "read"}),
            // RS256 with PKCS#1 v1.5 is deterministic: the kept key must
            // sign exactly what a freshly parsed one signs.
            serde_json::json!({"grant_type": "jwt_bearer", "token_url": "https://as.example.com/token",
                               "client_auth": "none", "jwt": {"header": {"alg": "RS256"}, "issuer": "svc",
                               "subject": "svc", "private_key": crate::server::registry::keys::RSA_PRIVATE}}),
        ];
        for config in configs {
            let config = config.to_string();
            let connection = host.open(&config).expect("runs").expect("opens");
            assert_eq!(
                connection.cache_key(),
                host.token_cache_key(&config).expect("runs").expect("a key")
            );
            // Twice: the second call runs on the kept instance.
            for _ in 0..2 {
                assert_eq!(
                    connection.token_request(&cx()).expect("runs"),
                    host.token_request(&config, &cx()).expect("runs")
                );
                assert_eq!(
                    connection
                        .read_token_response(&response, 1_700_000_001, Some("rt-1"))
                        .expect("runs"),
                    host.read_token_response(&config, &response, 1_700_000_001, Some("rt-1"))
                        .expect("runs")
                );
                assert_eq!(
                    connection.judge(&refused, false).expect("runs"),
                    Verdict::RenewTokenAndRetry
                );
            }
        }
    }

    #[test]
    fn an_invalid_configuration_does_not_open() {
        let host = ConnectorHost::embedded().expect("loads");
        let config = r#"{"grant_type": "client_credentials", "client_id": "app"}"#;
        let Err(Failure::InvalidConfig(errors)) = host.open(config).expect("runs") else {
            panic!("an incomplete configuration opened");
        };
        assert_eq!(errors, host.validate(config).expect("runs"));
        assert!(errors.iter().any(|e| e.field == "token_url"), "{errors:?}");
    }

    #[test]
    fn each_call_on_a_connection_has_its_own_fuel_budget() {
        let limits = Limits {
            fuel: 2_000_000,
            ..Limits::default()
        };
        let host = ConnectorHost::from_bytes(EMBEDDED_COMPONENT, "test", limits).expect("loads");
        let config = serde_json::json!({"grant_type": "client_credentials", "client_id": "app",
            "client_secret": "s3cret", "token_url": "https://as.example.com/token"})
        .to_string();
        let connection = host.open(&config).expect("runs").expect("opens");
        // Together these calls use far more than one budget: at 400 fuel
        // (wasm instructions) each they would already use it all.
        for _ in 0..5_000 {
            connection
                .token_request(&cx())
                .expect("within its budget")
                .expect("a request");
        }
    }

    #[test]
    fn a_trap_on_a_connection_costs_only_that_call() {
        let bytes = std::fs::read(env!("FAULTY_CONNECTOR_WASM")).expect("the faulty component");
        let limits = Limits {
            fuel: 100_000_000,
            ..Limits::default()
        };
        let host =
            ConnectorHost::from_bytes(&bytes, "the faulty component", limits).expect("loads");
        let looped = host.open("loop").err().expect("loops").to_string();
        assert!(
            looped.contains("`connection.open`") && looped.contains("CPU budget"),
            "{looped}"
        );
        let connection = host.open("fine").expect("runs").expect("opens");
        let status = |status| Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let panicked = connection
            .judge(&status(500), false)
            .expect_err("panics")
            .to_string();
        assert!(
            panicked.contains("`connection.judge`") && panicked.contains("trapped"),
            "{panicked}"
        );
        // The trapped instance is gone; the configuration is opened again.
        assert_eq!(
            connection.judge(&status(200), false).expect("served"),
            Verdict::Accept
        );
        assert_eq!(connection.cache_key(), "fine");
    }

    #[test]
    fn a_runaway_guest_is_stopped_by_its_fuel() {
        let limits = Limits {
            fuel: 1_000,
            ..Limits::default()
        };
        let host = ConnectorHost::from_bytes(EMBEDDED_COMPONENT, "test", limits).expect("loads");
        let error = host
            .schema()
            .expect_err("1,000 fuel is not enough to build the schema");
        assert!(error.to_string().contains("`schema`"), "{error:#}");
        assert!(error.to_string().contains("CPU budget"), "{error:#}");
    }
}
