//! Loading the connector component and calling it.
//!
//! The component is compiled once per [`ConnectorHost`]. A call of one of
//! its functions gets a fresh [`Store`] from a pre-instantiated component; a
//! [`Connection`] keeps one instance and one opened configuration for all of
//! its calls, the fast path. Either way the instance is bounded in fuel (CPU,
//! per call) and memory, with a WASI context that grants nothing: no
//! directories, no environment, no arguments, no network, no clocks.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context as _, Result, anyhow};
use wasmtime::component::{Component, HasData, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::bindings::{cli, random, sync};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use serde_json::{Value, json};

use crate::lock;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "oauth-connector",
        // Tests compare what the component answers.
        additional_derives: [PartialEq],
    });
}

use bindings::exports::oauth2::connector::connection as wit;
use bindings::exports::oauth2::connector::types as wit_types;

pub use bindings::exports::oauth2::connector::connection::{Loopback, Renewal};
pub use bindings::exports::oauth2::connector::helpers::{Challenge, Introspection};
pub use bindings::exports::oauth2::connector::types::{
    Context, Failure, FieldError, OauthError, Request, Response, Token, TokenTypeHint, Unreadable,
};

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
    /// Elements any one table of an instance may grow to. Tables live
    /// outside linear memory, so without this bound a guest could take
    /// host memory past `memory_bytes` by growing a table (8 to 16 bytes
    /// an element).
    pub table_elements: usize,
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
            // The connector's largest table has a few hundred entries (its
            // indirect calls); thirty times that leaves room to grow.
            table_elements: 10_000,
            pooled_instances: None,
        }
    }
}

/// The engine settings for these limits: the component model, fuel, and
/// the pooling allocator when asked for.
fn engine_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).consume_fuel(true);
    if let Some(instances) = limits.pooled_instances {
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances.saturating_mul(4))
            .total_tables(instances.saturating_mul(16))
            .table_elements(limits.table_elements)
            .max_memory_size(limits.memory_bytes);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// A store for one instance: no network, no files, and every resource the
/// guest can grow (fuel, memory, tables, instances) bounded by `limits`.
fn bounded_store(engine: &Engine, limits: &Limits) -> Result<Store<Guest>> {
    let mut store = Store::new(
        engine,
        Guest {
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .table_elements(limits.table_elements)
                // A growth past a limit traps with a clear reason instead
                // of the guest's allocator aborting vaguely.
                .trap_on_grow_failure(true)
                .instances(4)
                .tables(16)
                .memories(4)
                .build(),
        },
    );
    store.limiter(|guest| &mut guest.limits);
    store.set_fuel(limits.fuel)?;
    Ok(store)
}

/// Why a call into the guest failed, in the words of the limit it hit.
fn trap_cause(error: &wasmtime::Error, limits: &Limits) -> String {
    // What wasmtime says when the store's limiter refuses a growth, or
    // when the allocator cannot make it.
    let grew_past = |what: &str| {
        let error = format!("{error:#}");
        error.contains(&format!("growing {what}"))
            || error.contains(&format!("{what} growth failure"))
    };
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => format!(
            "it used up its CPU budget of {} fuel units (a runaway loop?)",
            limits.fuel
        ),
        _ if grew_past("memory") => format!(
            "it needed more than its memory limit of {} MiB",
            limits.memory_bytes >> 20
        ),
        _ if grew_past("table") => format!(
            "it needed a table larger than its limit of {} elements",
            limits.table_elements
        ),
        Some(trap) => format!("it trapped ({trap}), as a panic in the component does"),
        None => format!("{error:#}"),
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
            anyhow!(
                "the connector component failed in `{call}`: {}",
                trap_cause(&error, &self.limits)
            )
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
        Self::with_compile_cache(bytes, name, limits, compile_cache_dir().as_deref())
    }

    /// [`Self::from_bytes`] with the compile cache in `cache`, or none.
    fn with_compile_cache(
        bytes: &[u8],
        name: &str,
        limits: Limits,
        cache: Option<&Path>,
    ) -> Result<Self> {
        let engine = anyhow_result(Engine::new(&engine_config(&limits)))
            .context("failed to configure the wasmtime engine")?;
        let component = compile_cached(&engine, bytes, name, cache)?;
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
        let mut store = bounded_store(&self.engine, &self.limits)?;
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
        Ok(Ok(Connection {
            host: self.clone(),
            config: config.to_owned(),
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
        let guest = kept.instance.oauth2_connector_connection().connection();
        let value = self.trapped(method(&guest, &mut kept.store, kept.handle), name)?;
        Ok((kept, value))
    }

    /// A fresh instance with `config` opened in it.
    fn open_kept(&self, config: &str) -> Result<Result<Kept, Failure>> {
        let (mut store, instance) = self.instantiate()?;
        let opened = self.trapped(
            instance
                .oauth2_connector_connection()
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

    /// The challenges in a response's `WWW-Authenticate` headers.
    pub fn challenges(&self, response: &Response) -> Result<Vec<Challenge>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_helpers()
                .call_challenges(&mut store, response),
            "challenges",
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
                .oauth2_connector_helpers()
                .call_read_introspection_response(&mut store, response),
            "read-introspection-response",
        )
    }

    /// Reads the revocation endpoint's answer.
    pub fn read_revocation_response(&self, response: &Response) -> Result<Result<(), Failure>> {
        let (mut store, instance) = self.instantiate()?;
        self.trapped(
            instance
                .oauth2_connector_helpers()
                .call_read_revocation_response(&mut store, response),
            "read-revocation-response",
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
type ConnectionMethods<'a> = wit::GuestConnection<'a>;

/// What the host keeps for a connection's cache key: the component's
/// record of a token, opaque to the host, and when it may be forgotten.
/// Debug output hides the record.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenState {
    data: Redacted,
    /// After this time (unix seconds) the state holds nothing usable.
    pub evict_after: Option<u64>,
}

impl TokenState {
    /// A state as a store kept it.
    pub fn new(data: String, evict_after: Option<u64>) -> Self {
        Self {
            data: Redacted::new(data),
            evict_after,
        }
    }

    /// The component's record, to store as it is. A secret.
    pub fn data(&self) -> &str {
        self.data.expose()
    }

    fn to_wit(&self) -> wit_types::TokenState {
        wit_types::TokenState {
            data: self.data.expose().to_owned(),
            evict_after: self.evict_after,
        }
    }
}

impl From<wit_types::TokenState> for TokenState {
    fn from(state: wit_types::TokenState) -> Self {
        Self::new(state.data, state.evict_after)
    }
}

impl fmt::Debug for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenState")
            .field("data", &self.data)
            .field("evict_after", &self.evict_after)
            .finish()
    }
}

/// A request for the token endpoint, and which renewal it is (for `took`).
#[derive(Clone)]
pub struct TokenFetch {
    /// The request to send.
    pub request: Request,
    /// What the answer is read as.
    pub renewal: Renewal,
}

impl From<wit::TokenFetch> for TokenFetch {
    fn from(fetch: wit::TokenFetch) -> Self {
        Self {
            request: fetch.request,
            renewal: fetch.renewal,
        }
    }
}

/// What the host does next for an API call.
pub enum Step {
    /// Send this request: the API request with the token in it.
    Send(Request),
    /// Obtain a token first.
    Fetch(TokenFetch),
    /// A person must log in; why.
    LogIn(String),
}

/// Why `took` produced no state.
pub struct Refusal {
    /// What went wrong.
    pub failure: Failure,
    /// A request that can still get a token.
    pub fallback: Option<TokenFetch>,
}

/// What the host does with an API's response.
#[derive(Debug)]
pub enum Verdict {
    /// Hand it to the caller.
    Accept,
    /// Store this state (the used one, spent) in its place and retry once.
    RenewAndRetry(TokenState),
}

/// A browser login under way: the URL to open, and what finishing it
/// needs back. Debug output hides the state and the verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The URL to open in the browser.
    pub url: String,
    /// The `state` the redirect must carry back.
    pub state: String,
    /// The PKCE code verifier, when PKCE is on.
    pub code_verifier: Option<String>,
    /// The redirect URI this login uses.
    pub redirect_uri: String,
}

impl From<wit::Login> for Login {
    fn from(login: wit::Login) -> Self {
        Self {
            url: login.url,
            state: login.state,
            code_verifier: login.code_verifier,
            redirect_uri: login.redirect_uri,
        }
    }
}

impl Login {
    fn to_wit(&self) -> wit::Login {
        wit::Login {
            url: self.url.clone(),
            state: self.state.clone(),
            code_verifier: self.code_verifier.clone(),
            redirect_uri: self.redirect_uri.clone(),
        }
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("url", &self.url)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// What a login's redirect leads to.
pub enum LoginStep {
    /// Send this code exchange and read it with `took`.
    Exchange(TokenFetch),
    /// The implicit grant's token: store it.
    Done(TokenState),
}

/// A configuration opened once in an instance of its own, which every call
/// reuses: no instantiation, no start-up, no parsing of the document or of
/// its keys per call. Calls on one connection take turns (a lock); open one
/// connection per configuration, or several for parallel calls. Each call
/// still gets the full fuel budget, and the instance's memory stays under
/// the memory limit. The methods are the component's `connection`
/// resource's, in the order its WIT documents them.
///
/// A trap leaves an instance unusable, so after one the connection opens
/// its configuration again in a fresh instance at the next call.
pub struct Connection {
    host: ConnectorHost,
    /// The document, kept to open it again after a trap. It holds secrets:
    /// this type has no `Debug`.
    config: String,
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
                    describe(&failure)
                )
            })?,
        };
        let (kept, value) = self.host.run_kept(kept, name, method)?;
        *slot = Some(kept);
        Ok(value)
    }

    /// The key under which this configuration's token state is kept in a
    /// store whose secret is `store_secret`.
    pub fn cache_key(&self, store_secret: &[u8]) -> Result<String> {
        self.call("connection.cache-key", |guest, store, handle| {
            guest.call_cache_key(store, handle, store_secret)
        })
    }

    /// What to do next for an API call, given the state held for the
    /// cache key.
    pub fn next(
        &self,
        api_request: &Request,
        held: Option<&TokenState>,
        cx: &Context,
    ) -> Result<Result<Step, Failure>> {
        let held = held.map(TokenState::to_wit);
        let step = self.call("connection.next", |guest, store, handle| {
            guest.call_next(store, handle, api_request, held.as_ref(), cx)
        })?;
        Ok(step.map(|step| match step {
            wit::Step::Send(request) => Step::Send(request),
            wit::Step::Fetch(fetch) => Step::Fetch(fetch.into()),
            wit::Step::LogIn(reason) => Step::LogIn(reason),
        }))
    }

    /// The configured grant's request, whatever is held.
    pub fn token_request(&self, cx: &Context) -> Result<Result<TokenFetch, Failure>> {
        let fetch = self.call("connection.token-request", |guest, store, handle| {
            guest.call_token_request(store, handle, cx)
        })?;
        Ok(fetch.map(Into::into))
    }

    /// Reads the token endpoint's answer to a fetch: the state to store
    /// before use, or why there is none.
    pub fn took(
        &self,
        renewal: Renewal,
        response: &Response,
        held: Option<&TokenState>,
        cx: &Context,
    ) -> Result<Result<TokenState, Refusal>> {
        let held = held.map(TokenState::to_wit);
        let took = self.call("connection.took", |guest, store, handle| {
            guest.call_took(store, handle, renewal, response, held.as_ref(), cx)
        })?;
        Ok(took.map(Into::into).map_err(|refusal| Refusal {
            failure: refusal.failure,
            fallback: refusal.fallback.map(Into::into),
        }))
    }

    /// What an API's response to a request authorized with `used` means.
    pub fn judge(&self, response: &Response, used: &TokenState, retried: bool) -> Result<Verdict> {
        let used = used.to_wit();
        let verdict = self.call("connection.judge", |guest, store, handle| {
            guest.call_judge(store, handle, response, &used, retried)
        })?;
        Ok(match verdict {
            wit::Verdict::Accept => Verdict::Accept,
            wit::Verdict::RenewAndRetry(spent) => Verdict::RenewAndRetry(spent.into()),
        })
    }

    /// What a state holds, for showing to a person.
    pub fn describe(&self, state: &TokenState) -> Result<Result<ObtainedToken, Failure>> {
        let wit_state = state.to_wit();
        let token = self.call("connection.describe", |guest, store, handle| {
            guest.call_describe(store, handle, &wit_state)
        })?;
        Ok(token.map(|token| ObtainedToken::new(token, state.clone())))
    }

    /// The state after one of its tokens was revoked; `None` when nothing
    /// usable is left.
    pub fn revoked(
        &self,
        state: &TokenState,
        which: TokenTypeHint,
    ) -> Result<Result<Option<TokenState>, Failure>> {
        let state = state.to_wit();
        let revoked = self.call("connection.revoked", |guest, store, handle| {
            guest.call_revoked(store, handle, &state, which)
        })?;
        Ok(revoked.map(|left| left.map(Into::into)))
    }

    /// `document` with the state's refresh token written into it.
    pub fn keep_in_document(
        &self,
        document: &str,
        state: &TokenState,
    ) -> Result<Result<String, Failure>> {
        let state = state.to_wit();
        self.call("connection.keep-in-document", |guest, store, handle| {
            guest.call_keep_in_document(store, handle, document, &state)
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

    /// Where to listen for a login's redirect.
    pub fn loopback_redirect(&self) -> Result<Result<Loopback, Failure>> {
        self.call("connection.loopback-redirect", |guest, store, handle| {
            guest.call_loopback_redirect(store, handle)
        })
    }

    /// Starts a browser login.
    pub fn begin_login(
        &self,
        cx: &Context,
        state: Option<&str>,
        code_verifier: Option<&str>,
        port: Option<u16>,
    ) -> Result<Result<Login, Failure>> {
        let login = self.call("connection.begin-login", |guest, store, handle| {
            guest.call_begin_login(store, handle, cx, state, code_verifier, port)
        })?;
        Ok(login.map(Into::into))
    }

    /// What a login's redirect leads to.
    pub fn finish_login(
        &self,
        redirect_url: &str,
        login: &Login,
        cx: &Context,
    ) -> Result<Result<LoginStep, Failure>> {
        let login = login.to_wit();
        let step = self.call("connection.finish-login", |guest, store, handle| {
            guest.call_finish_login(store, handle, redirect_url, &login, cx)
        })?;
        Ok(step.map(|step| match step {
            wit::LoginStep::Exchange(fetch) => LoginStep::Exchange(fetch.into()),
            wit::LoginStep::Done(state) => LoginStep::Done(state.into()),
        }))
    }
}

/// A token a state holds, as the component describes it, with the state
/// itself; Debug output and [`ObtainedToken::to_json`] hide the secrets.
#[derive(Clone)]
pub struct ObtainedToken {
    /// The access token.
    pub access_token: Redacted,
    /// The token type, such as `Bearer`.
    pub token_type: String,
    /// When it expires, unix seconds.
    pub expires_at: Option<u64>,
    /// The refresh token kept with it.
    pub refresh_token: Option<Redacted>,
    /// Whether the answer that produced it carried a new refresh token.
    pub refresh_token_rotated: bool,
    /// The granted scope.
    pub scope: Option<String>,
    /// Every other member of the token response, as a JSON object.
    pub extra: String,
    /// The state it was read from, to store.
    pub state: TokenState,
}

impl ObtainedToken {
    fn new(token: Token, state: TokenState) -> Self {
        Self {
            access_token: Redacted::new(token.access_token),
            token_type: token.token_type,
            expires_at: token.expires_at,
            refresh_token: token.refresh_token.map(Redacted::new),
            refresh_token_rotated: token.refresh_token_rotated,
            scope: token.scope,
            extra: token.extra,
            state,
        }
    }

    /// The access or the refresh token, as `which` names it.
    pub fn secret(&self, which: TokenTypeHint) -> Option<&Redacted> {
        match which {
            TokenTypeHint::AccessToken => Some(&self.access_token),
            TokenTypeHint::RefreshToken => self.refresh_token.as_ref(),
        }
    }

    /// The token as JSON for printing: the access and refresh tokens, and
    /// every string in `extra` (an `id_token`, say), show as `[redacted]`
    /// unless `show_secrets`.
    pub fn to_json(&self, show_secrets: bool) -> Value {
        let secret = |value: &str| {
            if show_secrets {
                Value::String(value.to_owned())
            } else {
                Value::String("[redacted]".to_owned())
            }
        };
        let mut extra: Value = serde_json::from_str(&self.extra).unwrap_or_else(|_| json!({}));
        if !show_secrets {
            redact_strings(&mut extra);
        }
        json!({
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "scope": self.scope,
            "access_token": secret(self.access_token.expose()),
            "refresh_token": self.refresh_token.as_ref().map(|t| secret(t.expose())),
            "refresh_token_rotated": self.refresh_token_rotated,
            "extra": extra,
        })
    }
}

/// `extra` may hold secrets (an `id_token`): Debug shows its size only.
impl fmt::Debug for ObtainedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObtainedToken")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("refresh_token_rotated", &self.refresh_token_rotated)
            .field("scope", &self.scope)
            .field("extra_len", &self.extra.len())
            .finish_non_exhaustive()
    }
}

/// Replaces every string in a JSON value, however deeply nested (Slack's
/// `authed_user.access_token`), with `[redacted]`.
fn redact_strings(value: &mut Value) {
    match value {
        Value::String(text) => *text = "[redacted]".to_owned(),
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(members) => members.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// A string that Debug output shows as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself; the caller must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The one way a component failure is put in words: the connector
/// library's own messages, hints included.
pub fn describe(failure: &Failure) -> String {
    connector::Failure::from(failure.clone()).to_string()
}

/// A field error in the same words, from the connector library.
pub fn describe_field_error(error: &FieldError) -> String {
    connector::FieldError::from(error.clone()).to_string()
}

impl From<FieldError> for connector::FieldError {
    fn from(error: FieldError) -> Self {
        connector::FieldError {
            field: error.field,
            message: error.message,
            fix: error.fix,
        }
    }
}

impl From<Failure> for connector::Failure {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::InvalidConfig(errors) => {
                connector::Failure::InvalidConfig(errors.into_iter().map(Into::into).collect())
            }
            Failure::Rejected(e) => connector::Failure::Rejected(connector::OAuthError {
                error: e.error,
                error_description: e.error_description,
                error_uri: e.error_uri,
                status: e.status,
            }),
            Failure::UnreadableResponse(u) => {
                connector::Failure::Unreadable(connector::Unreadable {
                    problem: u.problem,
                    location: u.location,
                    status: u.status,
                    snippet: u.snippet,
                })
            }
            Failure::BadRedirect(message) => connector::Failure::BadRedirect(message),
            Failure::UnknownState(message) => connector::Failure::UnknownState(message),
            Failure::Other(message) => connector::Failure::Other(message),
        }
    }
}

/// Compiles a component with the harness's default engine settings and no
/// cache: what every start-up would cost without one (for the bench).
pub fn compile_uncached(bytes: &[u8]) -> Result<Component> {
    let engine = anyhow_result(Engine::new(&engine_config(&Limits::default())))?;
    anyhow_result(Component::new(&engine, bytes))
}

/// Where compiled components are kept between runs:
/// `$OAUTH_HARNESS_CACHE_DIR`, else `$XDG_CACHE_HOME/oauth-harness`, else
/// `~/.cache/oauth-harness`; none when there is no home either, and none
/// when `OAUTH_HARNESS_CACHE_DIR=off`: then every start compiles and nothing
/// is read from or written to any cache directory.
///
/// Machine code loaded from this directory runs in the harness's process,
/// beside the secrets, so the directory must be trusted as much as the
/// harness's binary: a CI cache that restores `~/.cache` from a branch
/// others can push to is a way into the process; turn the cache off there.
pub fn compile_cache_dir() -> Option<std::path::PathBuf> {
    compile_cache_dir_from(|name| std::env::var_os(name))
}

/// [`compile_cache_dir`] from the variables `var` answers, so that tests
/// need not change the process's environment.
fn compile_cache_dir_from(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if var("OAUTH_HARNESS_CACHE_DIR").is_some_and(|value| value == "off") {
        return None;
    }
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("OAUTH_HARNESS_CACHE_DIR")
        .or_else(|| absolute("XDG_CACHE_HOME").map(|cache| cache.join("oauth-harness")))
        .or_else(|| absolute("HOME").map(|home| home.join(".cache/oauth-harness")))
}

/// What a compile-cache artifact starts with, before its digest: marks the
/// layout, so that a file in another layout (an older harness's) is
/// recompiled rather than misread.
const ARTIFACT_MAGIC: &[u8; 8] = b"ohcwasm1";

/// The header of a compile-cache artifact: [`ARTIFACT_MAGIC`], then the
/// SHA-256 of the artifact's key and of the wasmtime bytes that follow.
const ARTIFACT_HEADER_LEN: usize = ARTIFACT_MAGIC.len() + 32;

/// The largest artifact read at all: the connector's compiles to a few MiB,
/// and a file far larger than any compiled component is not read into
/// memory only to be refused.
const MAX_ARTIFACT_BYTES: u64 = 64 << 20;

/// The digest an artifact's header holds: it binds the code to the key the
/// artifact is named by, so a file copied under another name is refused too.
fn artifact_digest(key: &[u8], code: &[u8]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut digest = Sha256::new();
    digest.update(key);
    digest.update(code);
    digest.finalize().into()
}

/// A compile-cache artifact: its header, then the code wasmtime wrote.
fn artifact_bytes(key: &[u8], code: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(ARTIFACT_HEADER_LEN + code.len());
    bytes.extend_from_slice(ARTIFACT_MAGIC);
    bytes.extend_from_slice(&artifact_digest(key, code));
    bytes.extend_from_slice(code);
    bytes
}

/// Reads an artifact into memory and checks its digest; answers the code
/// that follows the header. What is checked here is what is loaded: a file
/// mapped instead of read could change between the check and the load.
fn verified_artifact(path: &Path, key: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_ARTIFACT_BYTES + 1).read_to_end(&mut bytes))
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_ARTIFACT_BYTES,
        "`{}` is larger than {} MiB",
        path.display(),
        MAX_ARTIFACT_BYTES >> 20
    );
    let Some((magic, rest)) = bytes.split_at_checked(ARTIFACT_MAGIC.len()) else {
        anyhow::bail!("`{}` is too short for a header", path.display());
    };
    anyhow::ensure!(
        magic == ARTIFACT_MAGIC,
        "`{}` does not start with the artifact header",
        path.display()
    );
    let Some((digest, code)) = rest.split_at_checked(32) else {
        anyhow::bail!("`{}` is too short for a header", path.display());
    };
    anyhow::ensure!(
        digest == artifact_digest(key, code),
        "`{}` does not match its digest",
        path.display()
    );
    Ok(bytes.split_off(ARTIFACT_HEADER_LEN))
}

/// The key of the artifact compiled from `bytes` with `engine`'s settings:
/// a digest of the component's bytes and of wasmtime's compatibility hash
/// (its version and every setting that changes the code, fuel metering
/// included).
fn artifact_key(engine: &Engine, bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    use std::hash::{Hash as _, Hasher as _};
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let mut digest = Sha256::new();
    digest.update(bytes);
    digest.update(settings.finish().to_le_bytes());
    digest.finalize().into()
}

/// Where the artifact with this key is kept in `directory`.
fn artifact_path(directory: &Path, key: &[u8]) -> std::path::PathBuf {
    let file_name: String = key.iter().take(16).map(|b| format!("{b:02x}")).collect();
    directory.join(format!("component-{file_name}.cwasm"))
}

/// Compiles a component, or loads what an earlier run compiled from the
/// same bytes with the same engine settings from `cache` (see
/// [`compile_cache_dir`]; none: compile, read and write nothing): Cranelift
/// takes a second or more for the connector, loading its machine code a few
/// milliseconds.
///
/// The artifact is named by [`artifact_key`], so another component, another
/// wasmtime or other settings never load it. It starts with a SHA-256 of
/// that key and of its code, checked on the bytes read into memory before
/// they are loaded: an artifact damaged on disk (a torn write, a stray
/// overwrite) would otherwise crash every start, as machine code run as it
/// is. One that does not match is recompiled and replaced. The digest is no
/// defence against someone who can write the directory, who can write a
/// matching one too: the directory must be trusted as much as the binary.
/// A cache that cannot be read or written only costs the compilation.
fn compile_cached(
    engine: &Engine,
    bytes: &[u8],
    name: &str,
    cache: Option<&Path>,
) -> Result<Component> {
    let compile = || {
        anyhow_result(Component::new(engine, bytes))
            .with_context(|| format!("failed to compile {name}"))
    };
    let Some(directory) = cache else {
        return compile();
    };
    // Machine code loaded from here runs in this process, beside the
    // secrets: only a directory no one else can write is used at all.
    if crate::files::create_private_dir(directory).is_err() || !owned_privately(directory) {
        return compile();
    }
    let key = artifact_key(engine, bytes);
    let artifact = artifact_path(directory, &key);
    if owned_privately(&artifact)
        && let Ok(code) = verified_artifact(&artifact, &key)
    {
        // SAFETY: these bytes, read into memory, match the digest this
        // harness put in front of code it compiled itself, under a name
        // that binds them to this component and these engine settings, in a
        // directory that, like the file, belongs to this user and that no
        // one else can write (checked above, links refused); wasmtime
        // checks the header and its version again.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, &code) };
        if let Ok(component) = loaded {
            return Ok(component);
        }
    }
    let compiled = anyhow_result(engine.precompile_component(bytes))
        .with_context(|| format!("failed to compile {name}"))?;
    // Atomically, header and code in one file: a reader sees the old
    // artifact or the new one, never a digest of other code. A cache that
    // cannot be written only costs the next start-up a compile.
    let _ = crate::files::replace_private(&artifact, &artifact_bytes(&key, &compiled));
    // SAFETY: these bytes were produced by this engine a moment ago.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &compiled) };
    anyhow_result(component).or_else(|_| compile())
}

/// Whether a path is this user's own, not a link, and writable by no one
/// else: what the compile cache requires of its directory and its files.
#[cfg(target_os = "linux")]
fn owned_privately(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // The process's own entry in /proc belongs to its effective user.
    let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return false;
    };
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| !m.file_type().is_symlink() && m.uid() == me && m.mode() & 0o022 == 0)
}

/// Elsewhere the owner is not checked, so nothing is loaded from a cache.
#[cfg(not(target_os = "linux"))]
fn owned_privately(_: &Path) -> bool {
    false
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

    fn api() -> Request {
        Request {
            method: "GET".into(),
            url: "https://api.example.com/v1".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn a_connection_drives_the_token_lifecycle() {
        let host = ConnectorHost::embedded().expect("loads");
        let config = serde_json::json!({"grant_type": "client_credentials", "token_url": "https://as.example.com/token",
                                        "client_id": "app", "client_secret": "s3cret", "scope": "read"})
        .to_string();
        let connection = host.open(&config).expect("runs").expect("opens");
        let Step::Fetch(fetch) = connection
            .next(&api(), None, &cx())
            .expect("runs")
            .expect("a step")
        else {
            panic!("nothing held: a token must be fetched first");
        };
        assert_eq!(fetch.request.url, "https://as.example.com/token");
        let response = Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600}"#.to_vec(),
        };
        let state = connection
            .took(fetch.renewal, &response, None, &cx())
            .expect("runs")
            .map_err(|refusal| describe(&refusal.failure))
            .expect("a state");
        assert!(!format!("{state:?}").contains("at-1"), "{state:?}");
        let Step::Send(authorized) = connection
            .next(&api(), Some(&state), &cx())
            .expect("runs")
            .expect("a step")
        else {
            panic!("a fresh token is used");
        };
        assert!(
            authorized
                .headers
                .contains(&("Authorization".into(), "Bearer at-1".into()))
        );
        let refused = Response {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                r#"Bearer error="invalid_token""#.into(),
            )],
            body: Vec::new(),
        };
        let Verdict::RenewAndRetry(spent) =
            connection.judge(&refused, &state, false).expect("runs")
        else {
            panic!("an invalid_token refusal spends the token");
        };
        assert!(matches!(
            connection.next(&api(), Some(&spent), &cx()).expect("runs"),
            Ok(Step::Fetch(_))
        ));
        assert!(matches!(
            connection.judge(&refused, &state, true).expect("runs"),
            Verdict::Accept
        ));
        let token = connection.describe(&state).expect("runs").expect("known");
        assert_eq!(token.access_token.expose(), "at-1");
        assert_eq!(token.scope.as_deref(), Some("read"));
    }

    #[test]
    fn a_kept_key_signs_as_a_freshly_opened_one() {
        // RS256 with PKCS#1 v1.5 is deterministic: the kept key must sign
        // exactly what a freshly parsed one signs.
        let host = ConnectorHost::embedded().expect("loads");
        let config = serde_json::json!({"grant_type": "jwt_bearer", "token_url": "https://as.example.com/token",
                           "client_auth": "none", "jwt": {"header": {"alg": "RS256"}, "issuer": "svc",
                           "subject": "svc", "private_key": auth_server::registry::keys::RSA_PRIVATE}})
        .to_string();
        let kept = host.open(&config).expect("runs").expect("opens");
        let first = kept
            .token_request(&cx())
            .expect("runs")
            .expect("a fetch")
            .request;
        let again = kept
            .token_request(&cx())
            .expect("runs")
            .expect("a fetch")
            .request;
        let fresh = host
            .open(&config)
            .expect("runs")
            .expect("opens")
            .token_request(&cx())
            .expect("runs")
            .expect("a fetch")
            .request;
        assert_eq!(first, again);
        assert_eq!(first, fresh);
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
        let used = TokenState::new("any".into(), None);
        let panicked = connection
            .judge(&status(500), &used, false)
            .expect_err("panics")
            .to_string();
        assert!(
            panicked.contains("`connection.judge`") && panicked.contains("trapped"),
            "{panicked}"
        );
        // The trapped instance is gone; the configuration is opened again.
        assert!(matches!(
            connection
                .judge(&status(200), &used, false)
                .expect("served"),
            Verdict::Accept
        ));
        assert_eq!(connection.cache_key(b"").expect("served"), "fine");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_compile_cache_trusts_only_what_no_one_else_can_write() {
        use std::os::unix::fs::PermissionsExt as _;
        let directory =
            std::env::temp_dir().join(format!("oauth-harness-cache-test-{}", std::process::id()));
        crate::files::create_private_dir(&directory).expect("created");
        assert!(owned_privately(&directory));
        let artifact = directory.join("component.cwasm");
        std::fs::write(&artifact, b"code").expect("written");
        std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o600)).expect("mode");
        assert!(owned_privately(&artifact));
        std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o666)).expect("mode");
        assert!(!owned_privately(&artifact), "writable by others");
        let link = directory.join("link.cwasm");
        std::os::unix::fs::symlink(&artifact, &link).expect("linked");
        assert!(!owned_privately(&link), "a link is not followed");
        std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o777)).expect("mode");
        assert!(!owned_privately(&directory), "a shared directory");
        let _ = std::fs::remove_dir_all(&directory);
    }

    /// An empty private directory of its own for one test's compile cache.
    fn empty_cache_dir(test: &str) -> std::path::PathBuf {
        let directory =
            std::env::temp_dir().join(format!("oauth-harness-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        crate::files::create_private_dir(&directory).expect("created");
        directory
    }

    /// Where the section called `name` lies in a 64-bit little-endian ELF
    /// file, as wasmtime writes its artifacts.
    #[cfg(target_os = "linux")]
    fn elf_section(elf: &[u8], name: &str) -> Option<std::ops::Range<usize>> {
        let number = |at: usize, width: usize| -> Option<usize> {
            let mut bytes = [0u8; 8];
            bytes[..width].copy_from_slice(elf.get(at..at.checked_add(width)?)?);
            usize::try_from(u64::from_le_bytes(bytes)).ok()
        };
        let (table, size, count, names) = (
            number(0x28, 8)?,
            number(0x3a, 2)?,
            number(0x3c, 2)?,
            number(0x3e, 2)?,
        );
        let header = |index: usize| table.checked_add(index.checked_mul(size)?);
        let names = number(header(names)? + 0x18, 8)?;
        (0..count).find_map(|index| {
            let at = header(index)?;
            let start = names.checked_add(number(at, 4)?)?;
            let end = start + elf.get(start..)?.iter().position(|&b| b == 0)?;
            (elf.get(start..end)? == name.as_bytes()).then_some(())?;
            let offset = number(at + 0x18, 8)?;
            Some(offset..offset.checked_add(number(at + 0x20, 8)?)?)
        })
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_compile_cache_recompiles_an_artifact_whose_code_was_overwritten() {
        use std::os::unix::fs::MetadataExt as _;
        let directory = empty_cache_dir("cache-digest-test");
        let load = || {
            ConnectorHost::with_compile_cache(
                EMBEDDED_COMPONENT,
                "test",
                Limits::default(),
                Some(&directory),
            )
            .expect("loads")
        };
        let schema = load().schema().expect("served");
        let engine = Engine::new(&engine_config(&Limits::default())).expect("engine");
        let key = artifact_key(&engine, EMBEDDED_COMPONENT);
        let artifact = artifact_path(&directory, &key);
        let written = std::fs::read(&artifact).expect("the artifact was written");
        verified_artifact(&artifact, &key).expect("written with a matching digest");
        let inode = || std::fs::metadata(&artifact).expect("the artifact").ino();
        let first = inode();
        assert_eq!(load().schema().expect("served"), schema);
        assert_eq!(inode(), first, "an intact artifact is loaded, not replaced");

        // Every instruction of the machine code overwritten with `ud2`, the
        // size kept: loaded as it is, this crashes the test process at the
        // first call.
        let text = elf_section(&written[ARTIFACT_HEADER_LEN..], ".text").expect("a .text section");
        let text = ARTIFACT_HEADER_LEN + text.start..ARTIFACT_HEADER_LEN + text.end;
        let mut corrupted = written.clone();
        for ud2 in corrupted[text].chunks_exact_mut(2) {
            ud2.copy_from_slice(&[0x0f, 0x0b]);
        }
        assert_ne!(corrupted, written);
        std::fs::write(&artifact, &corrupted).expect("overwritten");
        assert!(
            owned_privately(&artifact),
            "still trusted as far as its owner goes"
        );
        assert!(
            verified_artifact(&artifact, &key).is_err(),
            "the digest tells"
        );

        assert_eq!(load().schema().expect("served"), schema);
        assert_ne!(inode(), first, "the artifact was replaced");
        let rewritten = std::fs::read(&artifact).expect("the artifact was rewritten");
        assert_ne!(rewritten, corrupted);
        assert_eq!(rewritten.len(), written.len());
        verified_artifact(&artifact, &key).expect("rewritten with a matching digest");
        let _ = std::fs::remove_dir_all(&directory);
    }

    #[test]
    fn the_compile_cache_can_be_turned_off() {
        let directory = empty_cache_dir("cache-off-test");
        let home = directory.clone().into_os_string();
        let variables = |cache_dir: Option<&'static str>| {
            let home = home.clone();
            move |name: &str| match name {
                "OAUTH_HARNESS_CACHE_DIR" => cache_dir.map(Into::into),
                "XDG_CACHE_HOME" | "HOME" => Some(home.clone()),
                _ => None,
            }
        };
        // Without the switch, these variables put the cache in `directory`.
        assert_eq!(
            compile_cache_dir_from(variables(None)),
            Some(directory.join("oauth-harness"))
        );
        let cache = compile_cache_dir_from(variables(Some("off")));
        assert_eq!(cache, None);
        let host = ConnectorHost::with_compile_cache(
            EMBEDDED_COMPONENT,
            "test",
            Limits::default(),
            cache.as_deref(),
        )
        .expect("compiles");
        host.schema().expect("served");
        let written: Vec<_> = std::fs::read_dir(&directory)
            .expect("listed")
            .map(|entry| entry.map(|e| e.file_name()))
            .collect();
        assert!(written.is_empty(), "{written:?}");
        let _ = std::fs::remove_dir_all(&directory);
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

    /// A guest whose table starts at `initial` elements and which exports
    /// `grow(n)`, adding `n` elements and answering the old size or -1.
    /// Rust emits no `table.grow`, hence a guest written in text.
    fn table_growing_guest(engine: &Engine, initial: u32) -> wasmtime::Result<Component> {
        let text = format!(
            r#"(component
                (core module $m
                    (table $t {initial} funcref)
                    (func (export "grow") (param i32) (result i32)
                        (table.grow $t (ref.null func) (local.get 0))))
                (core instance $i (instantiate $m))
                (func (export "grow") (param "n" u32) (result s32)
                    (canon lift (core func $i "grow"))))"#
        );
        let bytes = wat::parse_str(text).expect("valid component text");
        Component::new(engine, bytes)
    }

    #[test]
    fn a_guest_cannot_grow_a_table_past_its_limit() {
        for pooled_instances in [None, Some(4)] {
            let limits = Limits {
                pooled_instances,
                ..Limits::default()
            };
            let engine = Engine::new(&engine_config(&limits)).expect("engine");
            let linker = Linker::<Guest>::new(&engine);

            let guest = table_growing_guest(&engine, 1).expect("compiles");
            let mut store = bounded_store(&engine, &limits).expect("store");
            let instance = linker
                .instantiate(&mut store, &guest)
                .expect("instantiates");
            let grow = instance
                .get_typed_func::<(u32,), (i32,)>(&mut store, "grow")
                .expect("grow");
            // Growth within the limit is the guest's own business...
            let (old_size,) = grow.call(&mut store, (999,)).expect("within the limit");
            assert_eq!(old_size, 1, "{pooled_instances:?}");
            // ...past it, the call ends, in words that name the limit. A
            // hundred million elements would take the host 0.8 to 1.6 GB.
            let error = grow
                .call(&mut store, (100_000_000,))
                .expect_err("past the limit");
            let cause = trap_cause(&error, &limits);
            assert_eq!(
                cause, "it needed a table larger than its limit of 10000 elements",
                "{pooled_instances:?}: {error:#}"
            );

            // A table declared larger than the limit is refused outright:
            // by the pool when it is compiled, else when it is instantiated.
            let mut store = bounded_store(&engine, &limits).expect("store");
            let refused = table_growing_guest(&engine, 100_000_000)
                .and_then(|oversized| linker.instantiate(&mut store, &oversized).map(|_| ()))
                .expect_err("a table past the limit");
            assert!(
                format!("{refused:#}").contains("table"),
                "{pooled_instances:?}: {refused:#}"
            );
        }
    }
}
