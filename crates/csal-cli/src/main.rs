//! `csal`: run the admin server, manage storage modules, move objects.
//! See docs/cli.md for every command and the exit codes.

mod commands;
mod exit;
mod output;
mod providers;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::CliError;

#[derive(Parser)]
#[command(name = "csal", version, about = "CSAL: one storage contract for video archives", long_about = None)]
pub struct Cli {
    /// Catalog: a SQLite file path, sqlite://PATH or postgres://...
    #[arg(long, global = true, env = "CSAL_CATALOG", default_value = "./csal.db")]
    pub catalog: String,
    /// Master key file encrypting secrets in the catalog (created 0600 on
    /// first use; $CSAL_MASTER_KEY wins). Default: next to a SQLite catalog,
    /// with the extension .key; a PostgreSQL catalog has no default (give
    /// every node the same key with $CSAL_MASTER_KEY or this option).
    #[arg(long, global = true, env = "CSAL_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Machine-readable JSON output (errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the admin web UI, JSON API, /metrics and /healthz.
    Serve(ServeArgs),
    /// List the registered provider types and their config fields.
    Providers,
    /// Manage storage modules (instances) in the catalog.
    #[command(subcommand)]
    Module(ModuleCmd),
    /// Admin password and API tokens.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Store a file (or stdin with -) on a module; prints the object id.
    Put {
        /// Module name or id.
        name: String,
        /// File to upload, or - for stdin.
        file: String,
        /// Base name for the object id (default: the file name).
        #[arg(long)]
        key_hint: Option<String>,
        /// Content type (default: guessed from the extension).
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Read an object to a file or stdout.
    Get {
        name: String,
        object_id: String,
        /// Output file, or - for stdout (default).
        #[arg(short = 'o', long = "output", default_value = "-")]
        output: String,
        /// Byte range: START-END (inclusive), START- or -LEN.
        #[arg(long, allow_hyphen_values = true)]
        range: Option<String>,
    },
    /// List objects under a path.
    Ls {
        name: String,
        /// Folder to list ("" = everything).
        #[arg(default_value = "")]
        path: String,
        /// Only ids starting with PATH/PREFIX.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Show an object's metadata.
    Stat { name: String, object_id: String },
    /// Delete an object (deleting a missing object succeeds).
    Rm { name: String, object_id: String },
    /// A time-limited URL to read an object, where the provider can presign.
    Url {
        name: String,
        object_id: String,
        /// Lifetime of the URL in seconds.
        #[arg(long, default_value_t = 3600)]
        expires: u64,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (127.0.0.1 keeps it local to this machine).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the first-run `local` module stores objects.
    #[arg(long, default_value = "./csal-data")]
    pub data_dir: PathBuf,
    /// Seconds between background health checks.
    #[arg(long, default_value_t = 60)]
    pub health_interval: u64,
    /// URL browsers reach the admin at (https://csal.example.com), for the
    /// OAuth redirect URI {URL}/oauth/callback; default http://{Host header}.
    #[arg(long, env = "CSAL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Address of a reverse proxy in front of the admin whose
    /// X-Forwarded-For names the client (for the per-client login
    /// lockout). Repeat for several; default none (the TCP peer is the client).
    #[arg(long = "trusted-proxy", env = "CSAL_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Subcommand)]
pub enum ModuleCmd {
    /// Add a module: --config is JSON, @FILE or @- (stdin).
    Add {
        name: String,
        #[arg(long)]
        provider: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long, default_value = "{}")]
        config: String,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List modules with their load status.
    List,
    /// Show one module (secrets masked).
    Show { name: String },
    /// Change a module's config and/or label. Secret fields left out keep their stored value.
    Edit {
        name: String,
        #[arg(long)]
        config: Option<String>,
        #[arg(long)]
        label: Option<String>,
    },
    /// Enable a module.
    Enable { name: String },
    /// Disable a module.
    Disable { name: String },
    /// Remove a module from the catalog (stored objects are not touched).
    Rm { name: String },
    /// Validate + health check; exits 0 only when the status is ok.
    Test { name: String },
    /// Run the provider's OAuth authorization (browser consent, loopback
    /// redirect to http://127.0.0.1:PORT/callback), save the tokens, then test.
    Authorize {
        name: String,
        /// Port for the redirect listener (default: any free port; give one
        /// when the provider needs the exact redirect URI registered).
        #[arg(long)]
        port: Option<u16>,
        /// Seconds to wait for the browser's redirect.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Also try to open the URL in the default browser.
        #[arg(long)]
        open: bool,
    },
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Set the admin password (prompted, or one line from stdin).
    SetPassword {
        /// Read the password from stdin even on a terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API token for scripts (printed once).
    CreateToken { name: String },
    /// Revoke an API token.
    RevokeToken { name: String },
    /// List API token names.
    Tokens,
}

fn init_tracing(command: &Command) {
    // dropbox-sdk logs every 409 answer (a normal not_found before an
    // idempotent delete) at error level; csal-dropbox classifies them itself.
    let default = if matches!(command, Command::Serve(_)) { "info,dropbox_sdk=off" } else { "error,dropbox_sdk=off" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

fn main() {
    let cli = Cli::parse();
    init_tracing(&cli.command);
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => report(json, CliError::other(format!("cannot start the async runtime: {e}"))),
    };
    let result = runtime.block_on(commands::run(cli));
    // Do not wait for blocking stdin readers and the like.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => std::process::exit(exit::OK),
        Err(e) => report(json, e),
    }
}

fn report(json: bool, e: CliError) -> ! {
    if json {
        let v = serde_json::json!({"error": {"kind": e.kind, "message": e.message, "exit_code": e.code}});
        eprintln!("{v}");
    } else {
        eprintln!("csal: error: {}", e.message);
    }
    std::process::exit(e.code)
}
