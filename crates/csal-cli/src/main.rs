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
    /// CA certificate(s) (PEM) to verify a postgres:// catalog's TLS
    /// certificate with (sets sslrootcert in the URL; then sslmode defaults
    /// to verify-full). Same as ?sslrootcert=PATH in the URL.
    #[arg(long, global = true, env = "CSAL_CATALOG_CA_FILE")]
    pub catalog_ca_file: Option<String>,
    /// Master key file encrypting secrets in the catalog (created 0600 on
    /// first use; $CSAL_MASTER_KEY wins). Default: next to a SQLite catalog,
    /// with the extension .key; a PostgreSQL catalog has no default (give
    /// every node the same key with $CSAL_MASTER_KEY or this option).
    #[arg(long, global = true, env = "CSAL_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Machine-readable JSON output (errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log lines on stderr as `text` (colour only on a terminal, never
    /// with $NO_COLOR) or `json` (one object per line, for collectors).
    #[arg(long, global = true, env = "CSAL_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
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
    /// Cameras with recordings: segments, bytes, newest, undelivered.
    Cameras,
    /// A camera's indexed segments, oldest first.
    Segments {
        camera: String,
        /// Segments ending after this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Segments starting before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Print at most this many (0 = all).
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
    /// What every node's spool holds (from the catalog) and, with
    /// --spool-dir, this machine's spool directory.
    Spool {
        /// A spool directory on this machine to look into.
        #[arg(long)]
        spool_dir: Option<PathBuf>,
    },
    /// Compare the segment index with what the targets hold (and repair).
    Fsck {
        /// One camera (default: every camera with a policy).
        camera: Option<String>,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Deliver missing or damaged copies again from another copy, and
        /// adopt recognised objects the index does not know.
        #[arg(long)]
        repair: bool,
    },
    /// How long each target lasts at the rate it filled over the last day
    /// (health-checks every instance first). Exits 1 when one is below the horizon.
    Capacity {
        /// Flag targets full in fewer days than this.
        #[arg(long, default_value_t = csal_spool::capacity::DEFAULT_HORIZON_DAYS, value_parser = parse_days)]
        horizon_days: f64,
    },
    /// Camera storage policies: targets in order, copies, retention
    /// (camera `*` is the default for cameras without their own).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Upload bandwidth limit of a module, or of every upload of each node
    /// (`*`): a rate (4MiB/s), a day's schedule ("08:00,1MiB/s 19:00,off",
    /// local time) or off. Without a limit: show the current ones.
    Bwlimit {
        /// A module name, or `*` for the node-wide limit.
        target: Option<String>,
        /// The limit; `off` clears it.
        limit: Option<String>,
    },
    /// Import modules and camera policies from a seed-shaped database
    /// (its storage_modules and camera_storage_policies tables); the source
    /// is opened read-only. Rows that cannot be imported are listed with the
    /// reason (exit 4).
    Import {
        /// sqlite:///path/recordings.db, a file path, or postgres://...
        #[arg(long)]
        from: String,
        /// Only show what would be imported.
        #[arg(long)]
        dry_run: bool,
    },
    /// Legal holds: evidence retention and `rm` must not delete.
    #[command(subcommand)]
    Hold(HoldCmd),
    /// Retention (deleting recordings as camera policies say).
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// Print a shell completion script: `csal completions bash > /etc/bash_completion.d/csal`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `csal man > /usr/local/share/man/man1/csal.1`.
    Man,
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
    /// Where recorders' segments wait until their targets hold them (one
    /// directory per node, never shared).
    #[arg(long, env = "CSAL_SPOOL_DIR", default_value = "./csal-spool")]
    pub spool_dir: PathBuf,
    /// Cap on the spool (e.g. 20GiB, 500MB); when full, uploads get 507.
    #[arg(long, env = "CSAL_SPOOL_MAX", default_value = "20GiB", value_parser = parse_size)]
    pub spool_max: u64,
    /// Largest segment a recorder may upload.
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    pub max_segment_size: u64,
    /// Segments delivered at once (writes per target are capped at 4).
    #[arg(long, default_value_t = 16)]
    pub deliveries: usize,
    /// Run only the admin UI and API, without the recording gateway (/v1).
    #[arg(long)]
    pub no_recording: bool,
    /// Minutes between retention sweeps (0: never; one node at a time).
    #[arg(long, default_value_t = 10)]
    pub retention_interval: u64,
    /// Warn (health `degraded`) when a target is full in fewer days than
    /// this at the rate it filled over the last day.
    #[arg(long, default_value_t = csal_spool::capacity::DEFAULT_HORIZON_DAYS, value_parser = parse_days)]
    pub capacity_horizon_days: f64,
    /// Upload limit of this node (all uploads together), overriding the
    /// catalog's `*` limit: a rate (8MiB/s) or a schedule ("08:00,2MiB/s
    /// 19:00,off", local time).
    #[arg(long, env = "CSAL_BWLIMIT", value_parser = parse_schedule)]
    pub bwlimit: Option<csal_core::layers::BandwidthSchedule>,
    /// Hours between reconciliation runs with repair (0: never; one node at a time).
    #[arg(long, default_value_t = 24)]
    pub fsck_interval: u64,
    /// Address of a reverse proxy in front of the admin whose
    /// X-Forwarded-For names the client (for the per-client login
    /// lockout). Repeat for several; default none (the TCP peer is the client).
    #[arg(long = "trusted-proxy", env = "CSAL_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// `20GiB`, `500MB`, `1048576`: a byte count.
fn parse_size(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text).map_err(|e| format!("'{text}' is not a size like 20GiB or 500MB ({e})"))
}

/// `8MiB/s` or `08:00,2MiB/s 19:00,off`.
fn parse_schedule(text: &str) -> Result<csal_core::layers::BandwidthSchedule, String> {
    csal_core::layers::BandwidthSchedule::parse(text).map_err(|e| e.message().to_owned())
}

/// A positive number of days (`3`, `0.5`).
fn parse_days(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(days) if days.is_finite() && days > 0.0 => Ok(days),
        _ => Err(format!("'{text}' is not a positive number of days")),
    }
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
    /// Validate + health check (+ the write canary if it is on, or with
    /// --canary); exits 0 only when the status is ok.
    Test {
        name: String,
        /// Also write, read back and delete a small object.
        #[arg(long)]
        canary: bool,
    },
    /// Turn the write canary on or off: every health round writes, reads
    /// back and deletes a small object (catches a target that answers but
    /// refuses writes).
    Canary {
        name: String,
        #[arg(value_parser = ["on", "off"])]
        switch: String,
    },
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
pub enum HoldCmd {
    /// Place a hold on a camera's recordings (all, or --from/--to).
    Add {
        camera: String,
        /// Start of the held time range (RFC 3339); default: from the first recording.
        #[arg(long)]
        from: Option<String>,
        /// End of the held time range (RFC 3339); default: no end.
        #[arg(long)]
        to: Option<String>,
        /// Why (a case number, an incident): shown wherever the hold stops a delete.
        #[arg(long)]
        reason: String,
        /// Who asked for it (default: $USER).
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
    },
    /// Lift a hold by its id.
    Rm { id: String },
    /// List holds (of one camera, or all).
    List { camera: Option<String> },
}

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Every policy (the default one is camera `*`).
    List,
    /// The policy that applies to a camera, and whether it is the default.
    Show { camera: String },
    /// Set a camera's policy (replaces it whole; `*` sets the default).
    Set {
        camera: String,
        /// A target module, most preferred first (repeat, or comma separated).
        #[arg(long = "target", required = true, value_delimiter = ',')]
        targets: Vec<String>,
        /// Distinct targets each segment must reach.
        #[arg(long, default_value_t = 1)]
        copies: u32,
        /// Delete every copy this many days after a segment ended.
        #[arg(long)]
        retention_days: Option<u32>,
        /// Keep at most this many bytes of the camera's segments (e.g. 2TiB).
        #[arg(long, value_parser = parse_size)]
        max_bytes: Option<u64>,
        /// One target's copies go after N days: TARGET=DAYS (repeat).
        #[arg(long = "keep-days", value_parser = parse_keep_days)]
        keep_days: Vec<(String, u32)>,
        /// Move copies to another target after N days: FROM>TO@DAYS (repeat).
        #[arg(long = "tier", value_parser = parse_tier)]
        tiers: Vec<csal_catalog::TierRule>,
    },
    /// Remove a camera's own policy (it falls back to the default, if set).
    Rm { camera: String },
}

/// `local=7`: a target and its days.
fn parse_keep_days(text: &str) -> Result<(String, u32), String> {
    let (target, days) = text.split_once('=').ok_or_else(|| format!("'{text}' is not TARGET=DAYS"))?;
    let days = days.parse::<u32>().map_err(|_| format!("'{days}' is not a number of days"))?;
    Ok((target.to_owned(), days))
}

/// `nas>cloud@30`: a tier rule.
fn parse_tier(text: &str) -> Result<csal_catalog::TierRule, String> {
    csal_catalog::TierRule::parse(text).map_err(|e| e.message().to_owned())
}

#[derive(Subcommand)]
pub enum RetentionCmd {
    /// Sweep now: delete what the camera policies say has expired, and
    /// move what their tier rules say is due.
    Run {
        /// Only print what would be deleted or moved.
        #[arg(long)]
        dry_run: bool,
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
    /// Create an API token (printed once). Scopes: ingest (a recorder: may
    /// only upload segments and playlists), read (may only read the segment
    /// index and play back), admin (everything).
    CreateToken {
        name: String,
        #[arg(long, value_parser = ["ingest", "read", "admin"])]
        scope: String,
    },
    /// Revoke an API token.
    RevokeToken { name: String },
    /// List API token names.
    Tokens,
}

fn init_tracing(command: &Command, format: &str) {
    // dropbox-sdk logs every 409 answer (a normal not_found before an
    // idempotent delete) at error level; csal-dropbox classifies them itself.
    let default = if matches!(command, Command::Serve(_)) { "info,dropbox_sdk=off" } else { "error,dropbox_sdk=off" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    if format == "json" {
        logs.json().init();
    } else {
        use std::io::IsTerminal;
        let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        logs.with_ansi(colour).init();
    }
}

fn main() {
    let cli = parse_args(std::env::args_os().collect());
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "csal",
                &mut std::io::stdout(),
            );
            std::process::exit(exit::OK)
        }
        Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            if let Err(e) = page.render(&mut std::io::stdout()) {
                report(cli.json, CliError::other(format!("writing the manual page: {e}")));
            }
            std::process::exit(exit::OK)
        }
        _ => {}
    }
    init_tracing(&cli.command, &cli.log_format);
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

/// The command line, or exit: help and version print as usual; a usage
/// error is JSON on stderr under `--json` (so scripts parse every failure
/// the same way), clap's text otherwise; both exit with the usage code.
fn parse_args(args: Vec<std::ffi::OsString>) -> Cli {
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && args.iter().any(|a| a == "--json") => {
            // clap's first line names the problem; the rest is usage help for people.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            report(true, CliError::usage(first.trim_start_matches("error: ")))
        }
        Err(e) => e.exit(),
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
