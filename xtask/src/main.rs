//! `cargo xtask`: the project's chores, in Rust (rust-analyzer's pattern).
//!
//! - `test`: fmt check, clippy (warnings denied), rust-versions, unused
//!   dependencies, no `ring` (one TLS crypto provider), emulators, every test with
//!   nextest (and csal-cli's `otel` feature: clippy and its test), the
//!   conformance matrix, and the package check. CI runs this.
//! - `conformance [--provider P]...`: the conformance suite per provider, as
//!   a provider × test matrix.
//! - `bench`: the benchmarks; figures go to docs/benchmarks.md.
//! - `emulators list` / `emulators run NAME... -- CMD`: start test servers by
//!   hand around any command.
//! - `docs [--check]`: regenerate (or check) what follows from the provider
//!   crates: the csal-providers facade, the README and ARCHITECTURE tables;
//!   and the measured package counts of docs/dependencies.md.
//! - `new-provider NAME`: a provider crate from the template, one workspace line.
//! - `msrv [--compile]`: every crate's rust-version covers its dependencies
//!   (and, with `--compile`, builds with that toolchain).
//! - `fuzz [--target T]... [--seconds N]`: the cargo-fuzz targets in `fuzz/`,
//!   each for a fixed time (not in CI's `test`).

mod deps;
mod emulators;
mod fuzz;
mod matrix;
mod new_provider;
mod providers;
mod release;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "CSAL project chores")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything CI checks: fmt, clippy, tests (with emulators), conformance, package.
    Test {
        /// Skip fmt and clippy (quicker local runs).
        #[arg(long)]
        no_lint: bool,
    },
    /// Run the conformance suite and print the provider × test matrix.
    Conformance {
        /// Provider type(s) to run (a protocol's presets come along); all when omitted.
        #[arg(long = "provider")]
        providers: Vec<String>,
    },
    /// Run the benchmarks (release build) and write docs/benchmarks.md and its charts.
    /// Exits non-zero when a target row is missed.
    Bench {
        /// Sizes of the transfer contests in bytes, comma separated (default 256 MiB and 1 GiB).
        #[arg(long)]
        sizes: Option<String>,
        /// Rounds of each contest (best time of each client is kept).
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Seconds of each recorder-load run (default 60).
        #[arg(long)]
        recorder_secs: Option<u64>,
        /// Rounds of the recorder load (default 3; best of them counts).
        #[arg(long)]
        recorder_rounds: Option<u32>,
        /// Only these parts, comma separated (s3, local-fs, cloud, recorder, gateway, dispatch, catalog,
        /// file-sync, listing, bwlimit);
        /// prints, leaves docs/benchmarks.md alone.
        #[arg(long)]
        only: Option<String>,
        /// Same as `--only s3`.
        #[arg(long)]
        s3_only: bool,
    },
    /// `cargo package` every publishable crate.
    Package,
    /// Regenerate what follows from the provider crates: the csal-providers
    /// facade, and the README and ARCHITECTURE provider tables.
    Docs {
        /// Change nothing; fail when a generated part is out of date (CI).
        #[arg(long)]
        check: bool,
    },
    /// Create a provider crate from the template (objects in a local
    /// folder; passes conformance as generated) and add it to the workspace.
    NewProvider {
        /// The provider_type: lowercase letters, digits and `_` (`my_store`).
        name: String,
    },
    /// Run the cargo-fuzz targets (fuzz/) for a fixed time each; fails on a crash.
    Fuzz {
        /// Target(s) to run; all when omitted.
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Seconds per target (0: only build them).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Check that every crate's rust-version covers what its dependencies
    /// need (offline; part of `test`).
    Msrv {
        /// Also install each declared toolchain with rustup and `cargo check`
        /// the crates that declare it (needs the network).
        #[arg(long)]
        compile: bool,
    },
    /// Manage test servers by hand.
    Emulators {
        #[command(subcommand)]
        command: EmuCmd,
    },
}

#[derive(Subcommand)]
enum EmuCmd {
    /// List known emulators and the providers that need them.
    List,
    /// Start the named emulators (or those of `--provider`), run CMD with their env, stop them.
    Run {
        names: Vec<String>,
        #[arg(long = "provider")]
        providers: Vec<String>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = emulators::process::stop_all_on_signal() {
        eprintln!("xtask: cannot watch for signals ({e}); a run stopped by hand leaves its servers running");
    }
    let result = match cli.command {
        Cmd::Test { no_lint } => test(no_lint),
        Cmd::Conformance { providers } => conformance(&providers),
        Cmd::Bench { sizes, rounds, recorder_secs, recorder_rounds, only, s3_only } => {
            let only = if s3_only { Some("s3".to_owned()) } else { only };
            bench(BenchArgs { sizes, rounds, recorder_secs, recorder_rounds, only })
        }
        Cmd::Package => package(),
        Cmd::Docs { check } => providers::docs(check),
        Cmd::NewProvider { name } => new_provider::create(&workspace_root(), &name),
        Cmd::Fuzz { targets, seconds } => fuzz::fuzz(&targets, seconds),
        Cmd::Msrv { compile } => release::msrv(compile),
        Cmd::Emulators { command } => match command {
            EmuCmd::List => {
                for e in emulators::all() {
                    println!("{:<12} {}", e.name(), e.crates().join(", "));
                }
                Ok(())
            }
            EmuCmd::Run { names, providers, command } => emulators_run(&names, &providers, &command),
        },
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    // A CI machine's disk has no set size: say what is left at each step,
    // so a full disk shows where it happened.
    match free_disk_gib() {
        Some(free) => eprintln!("xtask: {what} ({free:.1} GiB free)"),
        None => eprintln!("xtask: {what}"),
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    // Stopped with the servers if xtask is stopped (a test or bench child
    // would otherwise run on against them).
    emulators::process::track(child.id(), "TERM");
    let status = child.wait();
    emulators::process::untrack(child.id());
    let status = status.with_context(|| format!("waiting for {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Free space where the builds go, from POSIX `df` (no dependency for one number).
fn free_disk_gib() -> Option<f64> {
    let dir = target_dir();
    let probe = if dir.exists() { dir } else { workspace_root() };
    let out = Command::new("df").arg("-Pk").arg(probe).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: f64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib / f64::from(1u32 << 20))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

fn report_dir() -> PathBuf {
    workspace_root().join("target/conformance")
}

fn ensure_nextest() -> Result<()> {
    let have =
        Command::new("cargo").args(["nextest", "--version"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !have {
        run("install cargo-nextest", Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))?;
    }
    Ok(())
}

/// The `csal` binary with OpenTelemetry export (a cargo selection, after
/// the subcommand): off by default, so `--workspace` never builds it.
const OTEL_FEATURE: [&str; 4] = ["-p", "csal-cli", "--features", "otel"];

fn test(no_lint: bool) -> Result<()> {
    let started = std::time::Instant::now();
    if !no_lint {
        run("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
        run(
            "cargo clippy (warnings denied)",
            cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
        )?;
        run(
            "cargo clippy -p csal-cli --features otel (warnings denied)",
            cargo().arg("clippy").args(OTEL_FEATURE).args(["--all-targets", "--locked", "--", "-D", "warnings"]),
        )?;
        eprintln!("xtask: checking each crate's rust-version (cargo xtask msrv)");
        release::msrv(false)?;
        release::licence_files()?;
        release::unused_dependencies()?;
        eprintln!("xtask: checking that ring is not back (one TLS crypto provider)");
        deps::one_tls_provider()?;
    }
    ensure_nextest()?;
    // Build the tests before starting servers, so servers are not up for the whole build.
    run("build tests", cargo().args(["nextest", "run", "--workspace", "--locked", "--no-run"]))?;
    // nextest does not run doctests: the crate docs' examples and the README's (tests/link-check).
    run("doctests", cargo().args(["test", "--doc", "--workspace", "--locked"]))?;
    eprintln!("xtask: checking the generated provider lists (cargo xtask docs --check)");
    providers::docs(true)?;
    let env = emulators::Env::new(&workspace_root())?;
    let running = emulators::start_for(&env, &[])?;
    let _ = std::fs::remove_dir_all(report_dir());
    let mut cmd = cargo();
    cmd.args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]);
    cmd.env("CSAL_CONFORMANCE_REPORT_DIR", report_dir());
    for r in &running {
        cmd.envs(r.env.iter().cloned());
    }
    let tests = run("cargo nextest run --workspace", &mut cmd);
    drop(running);
    // Features off by default are built and tested too (no server needed).
    let otel = run(
        "csal-cli's otel feature: OTLP export test",
        cargo().args(["nextest", "run"]).args(OTEL_FEATURE).args(["--locked", "--no-fail-fast", "-E", "binary(otel)"]),
    );
    let matrix = matrix::print(&report_dir(), &[]);
    tests?;
    otel?;
    matrix?;
    if std::env::var_os("CI").is_some() {
        remove_test_binaries();
    }
    package()?;
    eprintln!("xtask: all checks passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn conformance(providers: &[String]) -> Result<()> {
    ensure_nextest()?;
    run("build conformance tests", cargo().args(["nextest", "run", "--workspace", "--no-run"]))?;
    let env = emulators::Env::new(&workspace_root())?;
    let running = emulators::start_for(&env, providers)?;
    let _ = std::fs::remove_dir_all(report_dir());
    let mut cmd = cargo();
    cmd.args(["nextest", "run", "--workspace", "--no-fail-fast", "-E", "binary(conformance)"]);
    cmd.env("CSAL_CONFORMANCE_REPORT_DIR", report_dir());
    if !providers.is_empty() {
        cmd.env("CSAL_CONFORMANCE_PROVIDERS", providers.join(","));
    }
    for r in &running {
        cmd.envs(r.env.iter().cloned());
    }
    let tests = run("conformance tests", &mut cmd);
    drop(running);
    let matrix = matrix::print(&report_dir(), providers);
    tests?;
    matrix
}

/// The test executables (in `deps/`, without an extension) have run and
/// are the bulk of a debug build; on a CI machine the package verification
/// that follows needs their disk more. Local runs keep them for relinking.
fn remove_test_binaries() {
    use std::os::unix::fs::PermissionsExt;
    let deps = target_dir().join("debug/deps");
    let mut freed = 0u64;
    for entry in std::fs::read_dir(&deps).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && path.extension().is_none() && meta.permissions().mode() & 0o111 != 0 {
            freed += meta.len();
            let _ = std::fs::remove_file(&path);
        }
    }
    eprintln!("xtask: removed test executables ({:.1} GiB)", freed as f64 / f64::from(1u32 << 30));
}

/// Package every publishable crate and build each package from its own
/// files (verification): catches a file outside the crate, a missing
/// dependency line, a feature another member happened to turn on.
fn package() -> Result<()> {
    forget_packaged_sources();
    run(
        "cargo package --workspace (verified)",
        cargo()
            .args(["package", "--workspace", "--locked", "--allow-dirty"])
            // Verification builds each package outside the workspace, so
            // the workspace's profile does not apply: without these, every
            // dependency is rebuilt per crate with full debug info and
            // incremental caches (CI's disk filled up there).
            .env("CARGO_PROFILE_DEV_DEBUG", "false")
            .env("CARGO_INCREMENTAL", "0")
            .args(["xtask", "csal-bench", "csal-link-check"].iter().flat_map(|c| ["--exclude", c])),
    )
}

/// Verification builds each crate against the packages of the crates it
/// uses, which cargo unpacks under `$CARGO_HOME/registry/src/-<hash>/` (its
/// overlay of the packages just made) and treats like any registry crate:
/// never unpacked or rebuilt again for the same version. A second run on
/// one machine would then build against the first run's sources. Forget
/// both: the unpacked folders (they hold nothing else) and the builds made
/// from them (found by their dep-info, which names those folders).
fn forget_packaged_sources() {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry/src")) else { return };
    let overlays: Vec<PathBuf> = std::fs::read_dir(&src)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('-'))
        .map(|e| e.path())
        .collect();
    // Builds are matched by the overlay's path prefix, not by the overlay
    // folders present now: an overlay removed by another run (or by hand)
    // leaves its builds behind, and cargo would reuse them unchecked
    // (registry sources are assumed immutable), verifying against stale code.
    let overlay_prefix = format!("{}/-", src.display());
    let target = target_dir();
    let debug = target.join("debug");
    // One listing of deps/: each build made from the overlay is found by its
    // dep-info (`csal_core-<hash>.d`), then its outputs by that unit name.
    let built: Vec<PathBuf> =
        std::fs::read_dir(debug.join("deps")).into_iter().flatten().flatten().map(|e| e.path()).collect();
    for dep_info in built.iter().filter(|p| p.extension().is_some_and(|e| e == "d")) {
        let from_overlay = std::fs::read_to_string(dep_info).is_ok_and(|d| d.contains(&overlay_prefix));
        let Some(unit) = dep_info.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
        let Some((krate, hash)) = unit.rsplit_once('-') else { continue };
        if !from_overlay {
            continue;
        }
        for output in built.iter().filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(&unit))) {
            let _ = std::fs::remove_file(output);
        }
        let _ = std::fs::remove_dir_all(debug.join(".fingerprint").join(format!("{}-{hash}", krate.replace('_', "-"))));
    }
    for overlay in overlays {
        if let Err(e) = std::fs::remove_dir_all(&overlay) {
            eprintln!("xtask: could not remove {}: {e}", overlay.display());
        }
    }
}

/// `cargo xtask bench` options, passed on to csal-bench.
struct BenchArgs {
    sizes: Option<String>,
    rounds: u32,
    recorder_secs: Option<u64>,
    recorder_rounds: Option<u32>,
    only: Option<String>,
}

fn bench(args: BenchArgs) -> Result<()> {
    run("build benchmarks (release)", cargo().args(["build", "--release", "-p", "csal-bench"]))?;
    let target = target_dir();
    let bin = target.join("release/csal-bench");
    let out = workspace_root().join("docs/benchmarks.md");
    let parts: Vec<&str> = args.only.as_deref().map(|o| o.split(',').map(str::trim).collect()).unwrap_or_default();
    let wants = |p: &str| parts.is_empty() || parts.contains(&p);
    // s3s-fs serves the S3 contest and the recorder load; fake-gcs-server and
    // Azurite the cloud contests. A missing server is a missed row, not a skip.
    let env = emulators::Env::new(&workspace_root())?;
    let mut running = Vec::new();
    if wants("cloud") {
        running = emulators::start_for(&env, &["csal-gcs".to_owned(), "csal-azure-blob".to_owned()])?;
    }
    if wants("s3") || wants("recorder") {
        for e in emulators::all().into_iter().filter(|e| e.name() == "s3s-fs") {
            running.push(emulators::install_and_start(e, &env)?);
        }
    }
    // The listing rows plant trees on WebDAV (Apache mod_dav) and SFTP (OpenSSH).
    if wants("listing") {
        for e in emulators::all().into_iter().filter(|e| ["apache_dav", "sshd"].contains(&e.name())) {
            running.push(emulators::install_and_start(e, &env)?);
        }
    }
    let mut cmd = Command::new(bin);
    cmd.arg("--rounds").arg(args.rounds.to_string()).current_dir(workspace_root());
    if let Some(sizes) = &args.sizes {
        cmd.arg("--sizes").arg(sizes);
    }
    if let Some(secs) = args.recorder_secs {
        cmd.arg("--recorder-secs").arg(secs.to_string());
    }
    if let Some(rounds) = args.recorder_rounds {
        cmd.arg("--recorder-rounds").arg(rounds.to_string());
    }
    match &args.only {
        Some(only) => {
            cmd.arg("--only").arg(only);
        }
        None => {
            cmd.arg("--markdown").arg(&out);
        }
    }
    for r in &running {
        cmd.envs(r.env.iter().cloned());
    }
    let result = run("csal-bench", &mut cmd);
    drop(running);
    if args.only.is_none() && out.exists() {
        eprintln!("xtask: figures written to {} (charts in docs/bench/)", out.display());
    }
    result
}

fn emulators_run(names: &[String], providers: &[String], command: &[String]) -> Result<()> {
    let crates = emulators::crates_for(providers)?;
    let env = emulators::Env::new(&workspace_root())?;
    let mut running = Vec::new();
    for e in emulators::all() {
        let by_name = names.iter().any(|n| n == e.name());
        let by_provider = !providers.is_empty() && emulators::serves(e, &crates);
        if by_name || by_provider {
            running.push(emulators::install_and_start(e, &env)?);
        }
    }
    for n in names {
        if !emulators::all().iter().any(|e| e.name() == n) {
            bail!("unknown emulator '{n}' (see `cargo xtask emulators list`)");
        }
    }
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    for r in &running {
        for (k, v) in &r.env {
            eprintln!("xtask: {k}={v}");
        }
        cmd.envs(r.env.iter().cloned());
    }
    let result = run(&command.join(" "), &mut cmd);
    drop(running);
    result
}
