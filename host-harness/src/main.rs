//! `oauth-harness`: runs the OAuth connector component from the command line.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use host_harness::component::FieldError;
use host_harness::server::{AuthorizationServer, ServerOptions, TEST_CLIENTS, TokenEndpointAuth};
use host_harness::{ConnectorHost, Harness, HttpSettings, ObtainedToken, TokenError, demo};

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
    },
    /// Obtain a token with the configured grant over real HTTP.
    Token(TokenArgs),
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
    },
    /// Run every grant and client authentication method against the embedded
    /// server, over HTTP and HTTPS, and print what happened.
    Demo,
}

#[derive(Args)]
struct TokenArgs {
    /// The configuration document (JSON).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Print the access and refresh tokens instead of `[redacted]`.
    #[arg(long)]
    show_secrets: bool,
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
        Command::Validate { file } => {
            let errors = load()?.validate(&read_config(file)?)?;
            if errors.is_empty() {
                println!("{}: valid", file.display());
                return Ok(ExitCode::SUCCESS);
            }
            for error in &errors {
                println!("{}", field_error(error));
            }
            Ok(ExitCode::FAILURE)
        }
        Command::Token(args) => token(load()?, args),
        Command::Serve { port, tls, ca_out } => serve(*port, *tls, ca_out),
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

fn field_error(error: &FieldError) -> String {
    let field = if error.field.is_empty() {
        "(document)"
    } else {
        &error.field
    };
    format!("{field}: {} ({})", error.message, error.fix)
}

fn token(connector: ConnectorHost, args: &TokenArgs) -> Result<ExitCode> {
    let config = read_config(&args.config)?;
    let mut settings = HttpSettings {
        connect_timeout: Duration::from_secs(args.connect_timeout),
        read_timeout: Duration::from_secs(args.read_timeout),
        ..HttpSettings::default()
    };
    if let Some(ca_file) = &args.ca_file {
        settings = settings.trust_ca_file(ca_file)?;
    }
    let harness = Harness::new(connector, &settings);
    match harness.obtain_token(&config) {
        Ok(token) => {
            let shown = shown_token(&token, args.show_secrets);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                for (name, value) in shown.as_object().into_iter().flatten() {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Null => "(none)".to_owned(),
                        other => other.to_string(),
                    };
                    println!("{name:<14} {text}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(TokenError::Connector(failure)) => {
            eprintln!("error: {}", host_harness::harness::describe(&failure));
            Ok(ExitCode::FAILURE)
        }
        Err(TokenError::Host(error)) => Err(error),
    }
}

/// The token as printed: secrets redacted unless asked for. String members
/// of `extra` (an `id_token`, say) are redacted too.
fn shown_token(token: &ObtainedToken, show_secrets: bool) -> Value {
    let secret = |value: &str| {
        if show_secrets {
            Value::String(value.to_owned())
        } else {
            Value::String("[redacted]".to_owned())
        }
    };
    let mut extra: Value = serde_json::from_str(&token.extra).unwrap_or_else(|_| json!({}));
    if !show_secrets {
        for value in extra
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            if value.is_string() {
                *value = Value::String("[redacted]".to_owned());
            }
        }
    }
    json!({
        "token_type": token.token_type,
        "expires_at": token.expires_at,
        "scope": token.scope,
        "access_token": secret(token.access_token.expose()),
        "refresh_token": token.refresh_token.as_ref().map(|t| secret(t.expose())),
        "extra": extra,
    })
}

fn serve(port: u16, tls: bool, ca_out: &Path) -> Result<ExitCode> {
    let server = AuthorizationServer::start(ServerOptions {
        port,
        tls,
        ..ServerOptions::default()
    })?;
    println!("authorization server listening on {}", server.base_url());
    println!("  token endpoint     {}", server.token_url());
    println!("  protected resource {}", server.resource_url());
    if let Some(pem) = server.ca_pem() {
        std::fs::write(ca_out, pem)
            .with_context(|| format!("failed to write `{}`", ca_out.display()))?;
        println!(
            "  CA certificate     {} (pass it with --ca-file)",
            ca_out.display()
        );
    }
    println!("\ntest clients (grants: client_credentials, refresh_token):");
    for client in TEST_CLIENTS {
        let method = match client.auth {
            TokenEndpointAuth::ClientSecretBasic => "basic",
            TokenEndpointAuth::ClientSecretPost => "body",
        };
        println!(
            "  client_id {:?}  client_secret {:?}  client_auth {method}  scopes {:?}",
            client.client_id,
            client.client_secret,
            client.scopes.join(" ")
        );
    }
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
