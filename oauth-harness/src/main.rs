//! `oauth-harness`: runs the OAuth connector component from the command line.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use auth_server::registry::{ASSERTION_ISSUER, REDIRECT_URI, USERS};
use auth_server::{AuthorizationServer, ServerOptions, TEST_CLIENTS};
use host_harness::component::{Failure, FieldError, TokenTypeHint};
use host_harness::driver::TokenManager;
use host_harness::stores::{
    self, FileStore, KEY_VARIABLE, StoreKey, StoreOptions, StoreSpec, TokenStore,
};
use host_harness::{
    ConnectorHost, Harness, HttpSettings, ObtainedToken, TokenError, browser, files,
};

mod bench;
mod demo;
mod form;

/// Runs the OAuth 2.0 connector component: prints its configuration schema,
/// validates configurations, obtains tokens over real HTTP, and serves a
/// local authorization server to try it against.
#[derive(Parser)]
#[command(name = "oauth-harness", version)]
struct Cli {
    /// Load this component file instead of the one built into the harness.
    #[arg(long, global = true, value_name = "WASM")]
    component: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the JSON Schema of the configuration document.
    Schema,
    /// Check a configuration file; exits with 1 when it has problems.
    Validate {
        /// The configuration document (JSON).
        file: PathBuf,
        #[command(flatten)]
        layers: LayerArgs,
    },
    /// Obtain a token with the configured grant over real HTTP.
    Token(TokenArgs),
    /// Print the authorization URL of a browser login, with its state and
    /// PKCE verifier.
    AuthorizeUrl {
        /// The configuration document (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[command(flatten)]
        layers: LayerArgs,
        /// Use this state instead of a random one.
        #[arg(long)]
        state: Option<String>,
        /// Use this PKCE code verifier instead of a random one.
        #[arg(long)]
        code_verifier: Option<String>,
    },
    /// Finish a browser login from the URL the browser was redirected to:
    /// exchange the code, or read the implicit grant's token, and keep it
    /// in the token store for `call`.
    Exchange {
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        store: StoreArgs,
        /// The redirect URL, as the browser's address bar shows it. It holds
        /// the code, and a command line is visible to every local user:
        /// prefer --redirect-url-file.
        #[arg(
            long,
            value_name = "URL",
            required_unless_present = "redirect_url_file"
        )]
        redirect_url: Option<String>,
        /// Read the redirect URL from this file, or `-` for standard input.
        #[arg(long, value_name = "FILE", conflicts_with = "redirect_url")]
        redirect_url_file: Option<PathBuf>,
        /// The state `authorize-url` printed.
        #[arg(long)]
        state: String,
        /// The code verifier `authorize-url` printed (a secret: prefer
        /// --code-verifier-file).
        #[arg(long, conflicts_with = "code_verifier_file")]
        code_verifier: Option<String>,
        /// Read the code verifier from this file, or `-` for standard input
        /// (after the redirect URL, on the next line, when both come from it).
        #[arg(long, value_name = "FILE")]
        code_verifier_file: Option<PathBuf>,
    },
    /// Log in through the browser with a loopback redirect (RFC 8252):
    /// listen on the redirect URI's port, print the URL to open, wait for
    /// the redirect, exchange the code, keep the token in the token store
    /// for `call`, and print it.
    Login {
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        store: StoreArgs,
        /// Seconds to wait for the browser's redirect.
        #[arg(long, default_value_t = 300, value_name = "SECS")]
        wait: u64,
    },
    /// Call an API with a token: obtained, or reused from the cache and the
    /// token store, renewed and retried once when the API refuses it.
    /// Prints the response body; exits 0 for a 2xx status.
    Call(CallArgs),
    /// Ask the configured introspection endpoint (RFC 7662) whether the
    /// kept access token (or, with --refresh, refresh token) is active.
    Introspect(KeptTokenArgs),
    /// Revoke the kept access token (or, with --refresh, refresh token) at
    /// the configured revocation endpoint (RFC 7009) and forget it.
    Revoke(KeptTokenArgs),
    /// Run the embedded authorization server on loopback until interrupted.
    Serve {
        /// The port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Serve HTTPS with a certificate generated at start-up.
        #[arg(long)]
        tls: bool,
        /// With --tls, where to write the CA certificate clients must trust.
        #[arg(long, value_name = "PEM", default_value = "oauth-harness-ca.pem")]
        ca_out: PathBuf,
        /// The lifetime of the access tokens it issues, in seconds.
        #[arg(long, default_value_t = 3600, value_name = "SECS")]
        token_lifetime: u64,
    },
    /// Serve the configuration form on loopback: fill it in, validate it
    /// through the component and obtain a token with it.
    Form {
        /// The port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Where `npm ci` installed the form library.
        #[arg(long, value_name = "DIR", default_value_os_t = form::default_assets_dir())]
        assets: PathBuf,
        /// Trust exactly the CA certificates in this PEM file instead of the
        /// public roots (for servers with a private CA).
        #[arg(long, value_name = "PEM")]
        ca_file: Option<PathBuf>,
    },
    /// Run every grant and client authentication method against the embedded
    /// server, over HTTP and HTTPS, and print what happened.
    Demo,
    /// Measure the connector natively and through the component, the
    /// instantiation, the cache-hit path and a loopback token fetch.
    Bench {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The configuration's other layers.
#[derive(Args)]
struct LayerArgs {
    /// An environment's overrides (JSON): they replace the configuration's
    /// values field by field; objects merge, null removes.
    #[arg(long = "override", value_name = "FILE")]
    environment: Option<PathBuf>,
    /// Values the calling application supplies (JSON): they fill only what
    /// the configuration leaves open; client credentials only when it has none.
    #[arg(long, value_name = "FILE")]
    runtime: Option<PathBuf>,
}

/// Where the configuration is, how to reach the server, how to print.
#[derive(Args)]
struct OutputArgs {
    /// The configuration document (JSON).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[command(flatten)]
    layers: LayerArgs,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Print the access and refresh tokens instead of `[redacted]`.
    #[arg(long)]
    show_secrets: bool,
    #[command(flatten)]
    http: HttpArgs,
}

/// How to reach servers.
#[derive(Args)]
struct HttpArgs {
    /// Trust exactly the CA certificates in this PEM file instead of the
    /// public roots (for servers with a private CA).
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Seconds to wait for the connection to be established.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    connect_timeout: u64,
    /// Seconds to wait for the response.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    read_timeout: u64,
}

/// Where tokens are kept between runs.
#[derive(Args)]
struct StoreArgs {
    /// Keep tokens in this file (created readable by the owner only, in a
    /// directory only you can write) instead of the per-user default; or,
    /// for workers on several machines, in Redis or Valkey:
    /// redis://[user:password@]host:port/db, rediss:// for TLS, valkey://,
    /// valkeys://, redis+unix:///path/to/socket. The environment variable
    /// OAUTH_HARNESS_STORE may hold it instead, out of the process list.
    #[arg(long, value_name = "FILE|URL", conflicts_with_all = ["no_store", "store_url_file"])]
    store: Option<String>,
    /// Read the store's path or URL (with its password) from this file,
    /// readable by you only.
    #[arg(long, value_name = "FILE", conflicts_with = "no_store")]
    store_url_file: Option<PathBuf>,
    /// Keep tokens in memory only: nothing is written, nothing reused.
    #[arg(long)]
    no_store: bool,
    /// Encrypt the stored tokens with the key in this file (32 bytes in
    /// base64, as `openssl rand -base64 32` makes; readable by you only);
    /// the environment variable OAUTH_HARNESS_STORE_KEY may hold it instead.
    #[arg(long, value_name = "FILE", conflicts_with = "no_store")]
    store_key_file: Option<PathBuf>,
    /// For a rediss:// store with a private CA: trust exactly the CA
    /// certificates in this PEM file.
    #[arg(long, value_name = "PEM", conflicts_with = "no_store")]
    store_ca_file: Option<PathBuf>,
    /// Accept a plain redis:// or valkey:// store on another machine,
    /// although its password and, without a key, the tokens cross the
    /// network readable.
    #[arg(long, conflicts_with = "no_store")]
    allow_plain_redis: bool,
    /// The migration step after a store key is first configured: take over
    /// the unencrypted tokens stored before, sealing them, instead of
    /// refusing them. Whoever could write the store could have planted
    /// them: run it once, then drop the flag.
    #[arg(long, conflicts_with = "no_store")]
    store_seal_unsealed: bool,
}

/// The environment variable that may name the store, out of the process
/// list where a password in a URL would show.
const STORE_VARIABLE: &str = "OAUTH_HARNESS_STORE";

impl StoreArgs {
    fn open(&self) -> Result<Box<dyn TokenStore>> {
        let spec = self.spec()?;
        let key = match &self.store_key_file {
            Some(path) => Some(StoreKey::from_file(path)?),
            None => StoreKey::from_environment()?,
        };
        let ca_pem = self
            .store_ca_file
            .as_ref()
            .map(|path| {
                std::fs::read(path).with_context(|| {
                    format!("failed to read the store's CA file `{}`", path.display())
                })
            })
            .transpose()?;
        if matches!(spec, StoreSpec::Redis(_)) && key.is_none() {
            eprintln!(
                "note: the Redis token store {} holds the tokens unencrypted; set {KEY_VARIABLE} or pass --store-key-file to encrypt them",
                spec.shown()
            );
        }
        if self.store_seal_unsealed && key.is_none() {
            bail!(
                "--store-seal-unsealed seals tokens with the store key: give it ({KEY_VARIABLE} or --store-key-file)"
            );
        }
        stores::open(
            &spec,
            &StoreOptions {
                key,
                ca_pem,
                allow_plain_remote: self.allow_plain_redis,
                seal_unsealed: self.store_seal_unsealed,
            },
        )
    }

    /// Which store: --store, --store-url-file, OAUTH_HARNESS_STORE, else
    /// the per-user file.
    fn spec(&self) -> Result<StoreSpec> {
        if self.no_store {
            return Ok(StoreSpec::Memory);
        }
        if let Some(text) = &self.store {
            return StoreSpec::parse(text);
        }
        if let Some(path) = &self.store_url_file {
            let text = files::read_private(path, "store URL file")?;
            return StoreSpec::parse(&text)
                .with_context(|| format!("in --store-url-file `{}`", path.display()));
        }
        match std::env::var(STORE_VARIABLE) {
            Ok(text) if !text.trim().is_empty() => {
                return StoreSpec::parse(&text).with_context(|| format!("in {STORE_VARIABLE}"));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("{STORE_VARIABLE} is not text: give the store's path or URL")
            }
            _ => {}
        }
        FileStore::default_path()
            .map(StoreSpec::File)
            .context("no home directory for the token store: pass --store FILE or --no-store")
    }
}

/// Which token an introspection or revocation is about.
#[derive(Args)]
struct KeptTokenArgs {
    /// The configuration document (JSON).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[command(flatten)]
    layers: LayerArgs,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// The refresh token kept for the configuration instead of the access token.
    #[arg(long)]
    refresh: bool,
    /// Read the token from standard input instead of the token store.
    #[arg(long)]
    token_stdin: bool,
}

/// An API call with a token.
#[derive(Args)]
struct CallArgs {
    /// The configuration document (JSON).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[command(flatten)]
    layers: LayerArgs,
    #[command(flatten)]
    http: HttpArgs,
    /// The HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// A request header, `Name: value`; repeat for more.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The request body.
    #[arg(long, short = 'd', value_name = "BODY")]
    data: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// The lifetime assumed for a token whose response says none; the same
    /// as setting `default_expires_in` in the configuration (300 unless set).
    #[arg(long, value_name = "SECS")]
    default_lifetime: Option<u64>,
    /// Show each step on stderr (where the token came from, each response
    /// status, a renewal after a 401), without secrets.
    #[arg(long, short)]
    verbose: bool,
    /// The API's URL.
    url: String,
}

#[derive(Args)]
struct TokenArgs {
    #[command(flatten)]
    output: OutputArgs,
    /// Write a copy of the configuration holding the refresh token to keep
    /// (atomically, readable by the owner only), so the next run uses it.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let load = || match &cli.component {
        Some(path) => ConnectorHost::from_file(path),
        None => ConnectorHost::embedded(),
    };
    match &cli.command {
        Command::Schema => {
            let schema: Value = serde_json::from_str(&load()?.schema()?)
                .context("the component's schema is not JSON")?;
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { file, layers } => {
            let connector = load()?;
            let config = match effective_config(&connector, file, layers)? {
                Ok(config) => config,
                Err(errors) => {
                    for error in &errors {
                        println!("{}", field_error(error));
                    }
                    return Ok(ExitCode::FAILURE);
                }
            };
            let errors = connector.validate(&config)?;
            if errors.is_empty() {
                println!("{}: valid", file.display());
                return Ok(ExitCode::SUCCESS);
            }
            for error in &errors {
                println!("{}", field_error(error));
            }
            Ok(ExitCode::FAILURE)
        }
        Command::Token(args) => {
            let connector = load()?;
            let config = layered(&connector, &args.output.config, &args.output.layers)?;
            let harness = harness(connector, &args.output.http)?;
            // A copy of the connection's own file is saved, not of the
            // combined layers: the application's values stay out of it.
            // Read before the token is, so nothing fails between the two.
            let connection = match &args.save {
                Some(_) => Some(read_config(&args.output.config)?),
                None => None,
            };
            let token = match harness.obtain_token(&config) {
                Ok(token) => token,
                // No usable access token, but a refresh token to keep (the
                // one presented may be spent): saved as a token's would be,
                // then the server's fault is the error.
                Err(TokenError::Unusable(unusable)) => {
                    if let (Some(path), Some(connection)) = (&args.save, &connection) {
                        save_refresh_token(&harness, &config, connection, &unusable.kept, path)?;
                        eprintln!("saved the refresh token to keep in {}", path.display());
                    }
                    return Err(report(unusable.reason));
                }
                Err(error) => return Err(report(error)),
            };
            // Save before printing: a failed print must not lose a rotated
            // refresh token.
            if let (Some(path), Some(connection)) = (&args.save, &connection) {
                save_refresh_token(&harness, &config, connection, &token, path)?;
                eprintln!("saved the refresh token to keep in {}", path.display());
            }
            print_token(&token, &args.output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::AuthorizeUrl {
            config,
            layers,
            state,
            code_verifier,
        } => {
            let connector = load()?;
            let config = layered(&connector, config, layers)?;
            let harness = Harness::new(connector, &HttpSettings::default());
            let login = harness
                .authorization(&config, state.as_deref(), code_verifier.as_deref())
                .map_err(report)?;
            println!("url            {}", login.url);
            println!("state          {}", login.state);
            println!(
                "code_verifier  {}",
                login.code_verifier.as_deref().unwrap_or("(none)")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Exchange {
            output,
            store,
            redirect_url,
            redirect_url_file,
            state,
            code_verifier,
            code_verifier_file,
        } => {
            let mut stdin = std::io::stdin().lines();
            let mut secret_from = |path: &Path, what: &str| -> Result<String> {
                if path == Path::new("-") {
                    let line = stdin
                        .next()
                        .transpose()?
                        .with_context(|| format!("standard input ended before the {what}"))?;
                    Ok(line.trim().to_owned())
                } else {
                    Ok(std::fs::read_to_string(path)
                        .with_context(|| {
                            format!("failed to read the {what} from `{}`", path.display())
                        })?
                        .trim()
                        .to_owned())
                }
            };
            let redirect_url = match (redirect_url, redirect_url_file) {
                (Some(url), _) => url.clone(),
                (None, Some(path)) => secret_from(path, "redirect URL")?,
                (None, None) => bail!("give --redirect-url or --redirect-url-file"),
            };
            let code_verifier = match (code_verifier, code_verifier_file) {
                (Some(verifier), _) => Some(verifier.clone()),
                (None, Some(path)) => Some(secret_from(path, "code verifier")?),
                (None, None) => None,
            };
            let connector = load()?;
            let config = layered(&connector, &output.config, &output.layers)?;
            let manager = TokenManager::new(harness(connector, &output.http)?, store.open()?);
            // The login as `authorize-url` started it: its state and
            // verifier, the configured redirect URI.
            let login = manager
                .harness()
                .authorization(&config, Some(state), code_verifier.as_deref())
                .map_err(report)?;
            let token = match manager
                .harness()
                .finish_login(&config, &redirect_url, &login)
            {
                Ok(token) => token,
                Err(TokenError::Unusable(unusable)) => {
                    return Err(keep_unusable(&manager, &config, *unusable));
                }
                Err(error) => return Err(report(error)),
            };
            keep_and_print(&manager, &config, &token, output)
        }
        Command::Login {
            output,
            store,
            wait,
        } => login(load()?, output, store, Duration::from_secs(*wait)),
        Command::Call(args) => call(load()?, args),
        Command::Introspect(args) => introspect(load()?, args),
        Command::Revoke(args) => revoke(load()?, args),
        Command::Serve {
            port,
            tls,
            ca_out,
            token_lifetime,
        } => serve(
            ServerOptions {
                port: *port,
                tls: *tls,
                token_lifetime_secs: *token_lifetime,
                ..ServerOptions::default()
            },
            ca_out,
        ),
        Command::Form {
            port,
            assets,
            ca_file,
        } => serve_form(load()?, *port, assets, ca_file.as_deref()),
        Command::Bench { json } => {
            let scenarios = bench::run(load()?)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&scenarios)?);
            } else {
                print!("{}", bench::table(&scenarios));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            let rows = demo::run(load()?)?;
            print!("{}", demo::table(&rows));
            let failed = rows.iter().filter(|r| !r.as_expected).count();
            println!("\n{} passed, {failed} failed", rows.len() - failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn read_config(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("failed to read configuration `{}`", path.display()))
}

/// The configuration with its layers combined by the component, or the
/// problems that kept them from combining.
fn effective_config(
    connector: &ConnectorHost,
    file: &Path,
    layers: &LayerArgs,
) -> Result<Result<String, Vec<FieldError>>> {
    let connection = read_config(file)?;
    if layers.environment.is_none() && layers.runtime.is_none() {
        return Ok(Ok(connection));
    }
    let environment = layers.environment.as_deref().map(read_config).transpose()?;
    let runtime = layers.runtime.as_deref().map(read_config).transpose()?;
    connector.merge_layers(&connection, environment.as_deref(), runtime.as_deref())
}

/// The effective configuration; problems combining the layers are an error.
fn layered(connector: &ConnectorHost, file: &Path, layers: &LayerArgs) -> Result<String> {
    effective_config(connector, file, layers)?.map_err(|errors| {
        let problems: Vec<String> = errors.iter().map(field_error).collect();
        anyhow::anyhow!(
            "the configuration layers do not combine: {}",
            problems.join("; ")
        )
    })
}

fn field_error(error: &FieldError) -> String {
    host_harness::component::describe_field_error(error)
}

fn harness(connector: ConnectorHost, args: &HttpArgs) -> Result<Harness> {
    let mut settings = HttpSettings {
        connect_timeout: Duration::from_secs(args.connect_timeout),
        read_timeout: Duration::from_secs(args.read_timeout),
        ..HttpSettings::default()
    };
    if let Some(ca_file) = &args.ca_file {
        settings = settings.trust_ca_file(ca_file)?;
    }
    Ok(Harness::new(connector, &settings))
}

/// A component failure as an error for `main` to print.
fn report(error: TokenError) -> anyhow::Error {
    match error {
        TokenError::Connector(failure) => {
            anyhow::anyhow!(host_harness::component::describe(&failure))
        }
        TokenError::Unusable(unusable) => report(unusable.reason),
        TokenError::Host(error) => error,
    }
}

/// Keeps the refresh token of answers that brought no usable access token
/// in the store, as a login's token would be kept (the one presented may be
/// spent), and returns the server's fault to report.
fn keep_unusable(
    manager: &TokenManager,
    config: &str,
    unusable: host_harness::harness::UnusableToken,
) -> anyhow::Error {
    match manager.keep(config, &unusable.kept.state) {
        Ok(()) => {
            eprintln!("kept the refresh token it sent in the token store for this configuration")
        }
        Err(error) => {
            eprintln!("the refresh token it sent could not be kept: {error:#}");
            // The one presented may be spent: this is the only copy left.
            show_refresh_token_to_keep(&unusable.kept);
        }
    }
    report(unusable.reason)
}

/// Shows the refresh token of a token that no store accepted: the server
/// may have rotated it, spending the one stored, so when the process ends
/// this is the only copy left.
fn show_unstored(manager: &TokenManager, config: &str) {
    if let Some(token) = manager.unstored(config) {
        show_refresh_token_to_keep(&token);
    }
}

/// Prints a refresh token that could not be stored, for the person to
/// keep: losing it could cost the whole authorization.
fn show_refresh_token_to_keep(token: &ObtainedToken) {
    if let Some(refresh_token) = &token.refresh_token {
        eprintln!(
            "the refresh token to keep, which could not be stored: {}",
            refresh_token.expose()
        );
    }
}

/// Keeps a login's token in the store, before printing it: a failed print
/// must not lose a refresh token.
fn keep_and_print(
    manager: &TokenManager,
    config: &str,
    token: &ObtainedToken,
    output: &OutputArgs,
) -> Result<ExitCode> {
    manager.keep(config, &token.state).map_err(|e| {
        // The login's refresh token exists nowhere else.
        show_refresh_token_to_keep(token);
        anyhow::anyhow!("{e:#}")
    })?;
    eprintln!("kept the token in the token store for this configuration");
    print_token(token, output)?;
    Ok(ExitCode::SUCCESS)
}

fn print_token(token: &ObtainedToken, args: &OutputArgs) -> Result<()> {
    let shown = token.to_json(args.show_secrets);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        for (name, value) in shown.as_object().into_iter().flatten() {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => "(none)".to_owned(),
                other => other.to_string(),
            };
            println!("{name:<22} {text}");
        }
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// Writes a copy of the connection's configuration file, with the refresh
/// token to keep written in by the component: to a temporary file in the
/// same directory, readable by the owner only, then renamed over the
/// target, so a crash leaves the old file or the new one, never half of one.
fn save_refresh_token(
    harness: &Harness,
    config: &str,
    connection_file: &str,
    token: &ObtainedToken,
    path: &Path,
) -> Result<()> {
    // The component says whether the document keeps a refresh token at all
    // (another grant's would go unused): then there is nothing to lose.
    let text = harness
        .connection(config)
        .map_err(report)?
        .keep_in_document(connection_file, &token.state)?
        .map_err(|failure| {
            anyhow::anyhow!("--save: {}", host_harness::component::describe(&failure))
        })?;
    files::replace_private(path, text.as_bytes()).inspect_err(|_| {
        // The server may have rotated the refresh token, spending the old
        // one: this is the only copy left, so show it.
        if let Some(refresh_token) = &token.refresh_token {
            eprintln!(
                "the refresh token to keep, which could not be saved: {}",
                refresh_token.expose()
            );
        }
    })
}

fn login(
    connector: ConnectorHost,
    args: &OutputArgs,
    store: &StoreArgs,
    wait: Duration,
) -> Result<ExitCode> {
    let config = layered(&connector, &args.config, &args.layers)?;
    let manager = TokenManager::new(harness(connector, &args.http)?, store.open()?);
    let harness = manager.harness();
    let connection = harness.connection(&config).map_err(report)?;
    // Where the component says the redirect comes back: a loopback address,
    // and a port unless any free one will do (RFC 8252 section 7.3).
    let listen = connection.loopback_redirect()?.map_err(|failure| {
        anyhow::anyhow!(
            "`login` receives the redirect itself: {}",
            host_harness::component::describe(&failure)
        )
    })?;
    let listener =
        TcpListener::bind((listen.address.as_str(), listen.port)).with_context(|| {
            format!(
                "failed to listen for the redirect on {}:{}",
                listen.address, listen.port
            )
        })?;
    let chosen = (listen.port == 0)
        .then(|| listener.local_addr().map(|address| address.port()))
        .transpose()?;
    let login = connection
        .begin_login(&harness.context()?, None, None, chosen)?
        .map_err(|failure| anyhow::anyhow!(host_harness::component::describe(&failure)))?;
    println!("open this URL in a browser to log in:\n{}", login.url);
    std::io::stdout().flush()?;
    let redirect_uri =
        url::Url::parse(&login.redirect_uri).context("the login's redirect URI is not a URL")?;
    let mut redirects = browser::RedirectReceiver::listen(listener, &redirect_uri)?;
    let deadline = Instant::now() + wait;
    let token = loop {
        let redirect = redirects
            .next(deadline)
            .with_context(|| format!("waited {} s for the login", wait.as_secs()))?;
        match harness.finish_login(&config, &redirect.url, &login) {
            Ok(token) => {
                redirects.answer(redirect, "Login complete. You can close this window.");
                break token;
            }
            // Not this login's redirect (no or another `state`, another
            // issuer): a page may send a browser here at any time, and
            // must not be able to end the login.
            Err(TokenError::Connector(Failure::BadRedirect(why))) => {
                eprintln!("ignored a redirect that is not this login's ({why}); still waiting");
                redirects.answer(
                    redirect,
                    "This redirect does not belong to the login that is waiting; it was ignored.",
                );
            }
            Err(error) => {
                redirects.answer(
                    redirect,
                    "The login failed; the terminal where it started says why.",
                );
                return Err(match error {
                    TokenError::Unusable(unusable) => keep_unusable(&manager, &config, *unusable),
                    error => report(error),
                });
            }
        }
    };
    keep_and_print(&manager, &config, &token, args)
}

fn serve(options: ServerOptions, ca_out: &Path) -> Result<ExitCode> {
    let server = AuthorizationServer::start(options)?;
    println!("authorization server listening on {}", server.base_url());
    println!("  token endpoint          {}", server.token_url());
    println!("  authorization endpoint  {}", server.authorization_url());
    println!("  introspection endpoint  {}", server.introspection_url());
    println!("  revocation endpoint     {}", server.revocation_url());
    println!("  protected resource      {}", server.resource_url());
    if let Some(pem) = server.ca_pem() {
        // Written as a file of its own, never through a link someone left
        // at that path (which would overwrite whatever it points to).
        if std::fs::symlink_metadata(ca_out).is_ok_and(|meta| meta.file_type().is_symlink()) {
            bail!(
                "--ca-out `{}` is a symbolic link: refusing to write through it; remove it or name another file",
                ca_out.display()
            );
        }
        files::replace_private(ca_out, pem.as_bytes())
            .with_context(|| format!("failed to write `{}`", ca_out.display()))?;
        println!(
            "  CA certificate          {} (pass it with --ca-file)",
            ca_out.display()
        );
    }
    println!("\ntest clients (redirect URI {REDIRECT_URI} on any port):");
    for client in TEST_CLIENTS {
        let secret = if client.client_secret.is_empty() {
            String::new()
        } else {
            format!("  client_secret {:?}", client.client_secret)
        };
        println!(
            "  client_id {:?}{secret}  client_auth {}  grants {}",
            client.client_id,
            client.auth.client_auth(),
            client.grants.join(" ")
        );
    }
    let users: Vec<String> = USERS
        .iter()
        .map(|u| format!("{}/{}", u.username, u.password))
        .collect();
    println!("users: {}", users.join(", "));
    println!(
        "trusted JWT bearer issuer: {ASSERTION_ISSUER}; the fixture keys are in auth-server/fixtures/"
    );
    let refresh_token = server.issue_refresh_token(TEST_CLIENTS[0].client_id, Some("read write"));
    println!(
        "\nrefresh token for {}: {refresh_token}",
        TEST_CLIENTS[0].client_id
    );
    println!("press Ctrl-C to stop");
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}

fn serve_form(
    connector: ConnectorHost,
    port: u16,
    assets: &Path,
    ca_file: Option<&Path>,
) -> Result<ExitCode> {
    if !form::library_installed(assets) {
        eprintln!(
            "warning: the form library is not installed; run `npm ci --prefix {}` first",
            assets.display()
        );
    }
    let mut http = HttpSettings::default();
    if let Some(ca_file) = ca_file {
        http = http.trust_ca_file(ca_file)?;
    }
    let server = form::FormServer::start(
        connector,
        form::FormOptions {
            port,
            assets: assets.to_owned(),
            http,
        },
    )?;
    println!("configuration form at {}", server.url());
    println!(
        "  for browser logins, set the redirect URI to {0} (or {0}/NAME, a NAME of its own for each authorization server you log in to)",
        server.callback_url()
    );
    println!("press Ctrl-C to stop");
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}

fn call(connector: ConnectorHost, args: &CallArgs) -> Result<ExitCode> {
    let mut config = layered(&connector, &args.config, &args.layers)?;
    if let Some(lifetime) = args.default_lifetime {
        // The flag is an environment override of the configuration's key.
        let flag = serde_json::json!({ "default_expires_in": lifetime }).to_string();
        config = connector
            .merge_layers(&config, Some(&flag), None)?
            .map_err(|errors| {
                let problems: Vec<String> = errors.iter().map(field_error).collect();
                anyhow::anyhow!("--default-lifetime: {}", problems.join("; "))
            })?;
    }
    let store = args.store.open()?;
    let manager = TokenManager::new(harness(connector, &args.http)?, store);
    let mut headers = Vec::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("--header `{header}` is not `Name: value`"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let request = host_harness::component::Request {
        method: args.method.clone(),
        url: args.url.clone(),
        headers,
        body: args.data.clone().unwrap_or_default().into_bytes(),
    };
    let outcome = manager.call(&config, &request).map_err(|error| {
        show_unstored(&manager, &config);
        anyhow::anyhow!("{error:#}")
    })?;
    if args.verbose {
        for step in &outcome.steps {
            eprintln!("{step}");
        }
    }
    std::io::stdout().write_all(&outcome.response.body)?;
    std::io::stdout().flush()?;
    let status = outcome.response.status;
    if (200..300).contains(&status) {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("the API answered HTTP {status}");
        Ok(ExitCode::FAILURE)
    }
}

/// The manager for a kept-token command, the configuration, and the token
/// given on standard input, if asked for.
fn kept_token_setup(
    connector: ConnectorHost,
    args: &KeptTokenArgs,
) -> Result<(TokenManager, String, Option<String>)> {
    let config = layered(&connector, &args.config, &args.layers)?;
    let manager = TokenManager::new(harness(connector, &args.http)?, args.store.open()?);
    let given = if args.token_stdin {
        let mut token = String::new();
        std::io::stdin().read_line(&mut token)?;
        Some(token.trim().to_owned())
    } else {
        None
    };
    Ok((manager, config, given))
}

fn hint(refresh: bool) -> TokenTypeHint {
    if refresh {
        TokenTypeHint::RefreshToken
    } else {
        TokenTypeHint::AccessToken
    }
}

fn introspect(connector: ConnectorHost, args: &KeptTokenArgs) -> Result<ExitCode> {
    let (manager, config, given) = kept_token_setup(connector, args)?;
    let token = match given {
        Some(token) => token,
        None => {
            let kept = manager
                .kept(&config)
                .map_err(|e| anyhow::anyhow!("{e:#}"))?
                .context("no token is kept for this configuration: run `call` first, or pass --token-stdin")?;
            kept.secret(hint(args.refresh))
                .context("no refresh token is kept for this configuration")?
                .expose()
                .to_owned()
        }
    };
    let answer = manager
        .harness()
        .introspect(&config, &token, Some(hint(args.refresh)))
        .map_err(report)?;
    let extra: Value = serde_json::from_str(&answer.extra).unwrap_or(Value::Null);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "active": answer.active,
            "scope": answer.scope,
            "client_id": answer.client_id,
            "username": answer.username,
            "token_type": answer.token_type,
            "exp": answer.exp,
            "iat": answer.iat,
            "sub": answer.sub,
            "extra": extra,
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

fn revoke(connector: ConnectorHost, args: &KeptTokenArgs) -> Result<ExitCode> {
    let (manager, config, given) = kept_token_setup(connector, args)?;
    let which = hint(args.refresh);
    match given {
        Some(token) => manager
            .harness()
            .revoke(&config, &token, Some(which))
            .map_err(report)?,
        None => {
            let revoked = manager
                .revoke_kept(&config, which)
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            if !revoked {
                bail!("no such token is kept for this configuration: nothing to revoke");
            }
        }
    }
    let what = if args.refresh {
        "refresh token"
    } else {
        "access token"
    };
    eprintln!("revoked the {what}");
    Ok(ExitCode::SUCCESS)
}
