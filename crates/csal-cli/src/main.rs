//! `csal`: run the admin server, manage storage modules, move objects.
//! See docs/cli.md for every command and the exit codes.

mod commands;
mod exit;
#[cfg(feature = "otel")]
mod otel;
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
    /// Log lines on stderr as `text` (colour only on a terminal, never
    /// with $NO_COLOR) or `json` (one object per line, for collectors).
    #[arg(long, global = true, env = "CSAL_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Less on stderr: no progress bars, and logs only errors (`serve`:
    /// warnings and errors). Results and the final error line still print.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log detail on stderr, repeatable: -v warnings, -vv info, -vvv
    /// debug, -vvvv trace (`serve` starts at info: -v debug, -vv trace).
    /// Without -q or -v, $RUST_LOG chooses when set.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars on put and get (they are off anyway when stderr is
    /// not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Export the tracing spans as OpenTelemetry traces over OTLP/HTTP
    /// (protobuf) to URL/v1/traces, e.g. http://127.0.0.1:4318.
    #[cfg(feature = "otel")]
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
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
        /// Module name or id.
        name: String,
        /// The object's id (as put printed it).
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
        /// Module name or id.
        name: String,
        /// Folder to list ("" = everything).
        #[arg(default_value = "")]
        path: String,
        /// Only ids starting with PATH/PREFIX.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Show an object's metadata.
    Stat {
        /// Module name or id.
        name: String,
        /// The object's id.
        object_id: String,
    },
    /// Delete an object (deleting a missing object succeeds).
    Rm {
        /// Module name or id.
        name: String,
        /// The object's id.
        object_id: String,
    },
    /// Cameras with recordings: segments, bytes, newest, undelivered.
    Cameras,
    /// A camera's indexed segments, oldest first.
    Segments {
        /// Camera id.
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
        /// Module name or id.
        name: String,
        /// The object's id.
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
        /// Name of the new module (letters, digits, '-', '_', '.').
        name: String,
        /// Provider type (see `csal providers`), e.g. local_fs, s3, gcs.
        #[arg(long)]
        provider: String,
        /// A human label shown in the admin UI.
        #[arg(long)]
        label: Option<String>,
        /// The provider's config: JSON, @FILE or @- (stdin).
        #[arg(long, default_value = "{}")]
        config: String,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List modules with their load status.
    List,
    /// Show one module (secrets masked).
    Show {
        /// Module name or id.
        name: String,
    },
    /// Change a module's config and/or label. Secret fields left out keep their stored value.
    Edit {
        /// Module name or id.
        name: String,
        /// The new config (replaces it whole): JSON, @FILE or @- (stdin).
        #[arg(long)]
        config: Option<String>,
        /// The new label ("" clears it).
        #[arg(long)]
        label: Option<String>,
    },
    /// Enable a module.
    Enable {
        /// Module name or id.
        name: String,
    },
    /// Disable a module.
    Disable {
        /// Module name or id.
        name: String,
    },
    /// Remove a module from the catalog (stored objects are not touched).
    Rm {
        /// Module name or id.
        name: String,
    },
    /// Validate + health check (+ the write canary if it is on, or with
    /// --canary); exits 0 only when the status is ok.
    Test {
        /// Module name or id.
        name: String,
        /// Also write, read back and delete a small object.
        #[arg(long)]
        canary: bool,
    },
    /// Turn the write canary on or off: every health round writes, reads
    /// back and deletes a small object (catches a target that answers but
    /// refuses writes).
    Canary {
        /// Module name or id.
        name: String,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        switch: String,
    },
    /// Run the provider's OAuth authorization (browser consent, loopback
    /// redirect to http://127.0.0.1:PORT/callback), save the tokens, then test.
    Authorize {
        /// Module name or id.
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
        /// Camera id.
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
    Rm {
        /// The hold's id (see `csal hold list`).
        id: String,
    },
    /// List holds (of one camera, or all).
    List {
        /// Only this camera's holds.
        camera: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Every policy (the default one is camera `*`).
    List,
    /// The policy that applies to a camera, and whether it is the default.
    Show {
        /// Camera id.
        camera: String,
    },
    /// Set a camera's policy (replaces it whole; `*` sets the default).
    Set {
        /// Camera id, or `*` for the default policy.
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
    Rm {
        /// Camera id, or `*` for the default policy.
        camera: String,
    },
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
        /// A name for the token (to revoke it later).
        name: String,
        /// What the token may do: ingest, read or admin.
        #[arg(long, value_parser = ["ingest", "read", "admin"])]
        scope: String,
    },
    /// Revoke an API token.
    RevokeToken {
        /// The token's name.
        name: String,
    },
    /// List API token names.
    Tokens,
}

/// The log filter: the command's level moved by -q / -v, else $RUST_LOG,
/// else the command's level.
fn log_filter(command: &Command, quiet: bool, verbose: u8) -> tracing_subscriber::EnvFilter {
    let directives = log_directives(command, quiet, verbose);
    let from_env = (!quiet && verbose == 0).then(|| tracing_subscriber::EnvFilter::try_from_default_env().ok());
    from_env.flatten().unwrap_or_else(|| tracing_subscriber::EnvFilter::new(directives))
}

/// The command's log level moved by -q / -v.
fn log_directives(command: &Command, quiet: bool, verbose: u8) -> String {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let base = if matches!(command, Command::Serve(_)) { 3 } else { 1 };
    let level = match (quiet, verbose) {
        (true, _) => base - 1,
        (false, 0) => base,
        (false, v) => (base + usize::from(v)).min(LEVELS.len() - 1),
    };
    // dropbox-sdk logs every 409 answer (a normal not_found before an
    // idempotent delete) at error level; csal-dropbox classifies them itself.
    format!("{},dropbox_sdk=off", LEVELS[level])
}

/// Where the logs go (stderr, text or JSON, filtered by -q / -v /
/// $RUST_LOG) and, with the `otel` feature and an endpoint, the traces.
fn init_tracing(cli: &Cli, runtime: &tokio::runtime::Handle) -> Telemetry {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = log_filter(&cli.command, cli.quiet, cli.verbose);
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let logs = if cli.log_format == "json" {
        logs.json().boxed()
    } else {
        use std::io::IsTerminal;
        let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        logs.with_ansi(colour).boxed()
    };
    let registry = tracing_subscriber::registry().with(logs.with_filter(filter));
    #[cfg(feature = "otel")]
    {
        let (traces, telemetry) = otel::layer(cli.otlp_endpoint.as_deref(), runtime.clone());
        registry.with(traces).init();
        telemetry
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = runtime;
        registry.init();
        Telemetry
    }
}

/// What must be flushed before the process exits.
#[cfg(feature = "otel")]
type Telemetry = otel::Traces;
#[cfg(not(feature = "otel"))]
struct Telemetry;
#[cfg(not(feature = "otel"))]
impl Telemetry {
    fn shutdown(self) {}
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
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => report(json, CliError::other(format!("cannot start the async runtime: {e}"))),
    };
    let telemetry = init_tracing(&cli, runtime.handle());
    let result = runtime.block_on(commands::run(cli));
    // The last spans go out on this runtime: flush before stopping it.
    telemetry.shutdown();
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every subcommand and argument explains itself in `--help` (and so in
    /// the man page and completions).
    #[test]
    fn every_subcommand_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none_or(|h| h.to_string().trim().is_empty()) && sub.get_name() != "help" {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "csal", &mut missing);
        assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
    }

    #[test]
    fn quiet_and_verbose_move_the_log_level() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap();
        let level = |args: &[&str]| {
            let cli = parse(args);
            log_directives(&cli.command, cli.quiet, cli.verbose).split(',').next().unwrap().to_owned()
        };
        assert_eq!(level(&["csal", "providers"]), "error");
        assert_eq!(level(&["csal", "-q", "providers"]), "off");
        assert_eq!(level(&["csal", "-vv", "providers"]), "info");
        assert_eq!(level(&["csal", "serve"]), "info");
        assert_eq!(level(&["csal", "serve", "-v"]), "debug");
        assert_eq!(level(&["csal", "serve", "-vvvvvv"]), "trace");
        assert_eq!(level(&["csal", "-q", "serve"]), "warn");
        assert!(Cli::try_parse_from(["csal", "-q", "-v", "providers"]).is_err(), "-q and -v conflict");
    }
}
