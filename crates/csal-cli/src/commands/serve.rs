//! `csal serve`: first-run setup, then the admin server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use csal_catalog::{Catalog, NewModule};
use csal_core::find_provider;

use crate::ServeArgs;
use crate::exit::{CliError, CliResult};

/// Settings key set once the first-run setup has happened.
const BOOTSTRAP_SETTING: &str = "cli.bootstrapped";

/// On the first run with an empty catalog: a `local` module (local_fs under
/// `data_dir`). Returns what was done, for the banner.
async fn bootstrap(cat: &Catalog, args: &ServeArgs) -> CliResult<Option<String>> {
    if cat.get_setting(BOOTSTRAP_SETTING).await?.is_some() || !cat.list_modules().await?.is_empty() {
        return Ok(None);
    }
    let note = if find_provider("local_fs").is_ok() {
        std::fs::create_dir_all(&args.data_dir)
            .map_err(|e| CliError::other(format!("cannot create {}: {e}", args.data_dir.display())))?;
        let root = std::fs::canonicalize(&args.data_dir)?;
        let created = cat
            .create_module(NewModule {
                name: "local".into(),
                label: Some("Local disk".into()),
                provider_type: "local_fs".into(),
                is_enabled: true,
                config: serde_json::json!({"root": root.to_string_lossy()}),
            })
            .await;
        match created {
            Ok(_) => Some(format!("created module 'local' (local_fs, root {})", root.display())),
            // Another node starting on the same empty catalog was first.
            Err(e) if e.kind() == csal_core::ErrorKind::AlreadyExists => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        Some("local_fs is not linked into this binary: no 'local' module created".into())
    };
    cat.set_setting(BOOTSTRAP_SETTING, "1", false).await?;
    Ok(note)
}

async fn start_gateway(cat: &Catalog, args: &ServeArgs) -> CliResult<csal_spool::Gateway> {
    let spool = csal_spool::SpoolConfig::new(args.spool_dir.clone(), args.spool_max);
    let mut config = csal_spool::GatewayConfig::new(spool);
    config.max_segment_bytes = args.max_segment_size;
    config.deliveries = args.deliveries.max(1);
    config.fsck_interval = (args.fsck_interval > 0).then(|| Duration::from_secs(args.fsck_interval * 3600));
    config.retention_interval =
        (args.retention_interval > 0).then(|| Duration::from_secs(args.retention_interval * 60));
    csal_spool::Gateway::start(cat.clone(), config).await.map_err(|e| {
        let mut err = CliError::from(e);
        err.message = format!("cannot start the recording gateway: {}", err.message);
        err
    })
}

/// Where a first-run admin password is written: beside the master key file
/// (`csal.key` → `csal.admin-password`), or in the data folder when the key
/// comes from the environment alone.
fn password_file(key_file: Option<&Path>, data_dir: &Path) -> PathBuf {
    match key_file {
        Some(k) => k.with_extension("admin-password"),
        None => data_dir.join("csal.admin-password"),
    }
}

/// Write the first-run password to a new file readable by its owner only
/// (mode 0600), never to the terminal or a log.
fn write_password_file(path: &Path, password: &str) -> CliResult<()> {
    let fail =
        |e: std::io::Error| CliError::other(format!("cannot write the admin password file {}: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(format!("{password}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(fail)
}

pub async fn serve(cat: &Catalog, args: ServeArgs, key_file: Option<&Path>, json: bool) -> CliResult {
    let catalog_url = cat.display_url();
    let note = bootstrap(cat, &args).await?;
    let password = csal_admin::auth::ensure_password(cat).await?;
    let password_file = match &password {
        Some(p) => {
            let path = password_file(key_file, &args.data_dir);
            write_password_file(&path, p)?;
            Some(path)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (is another csal serve running? choose another port with --listen)"
        } else {
            ""
        };
        CliError::other(format!("cannot listen on {}: {e}{hint}", args.listen))
    })?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}/");
    let gateway = if args.no_recording { None } else { Some(start_gateway(cat, &args).await?) };
    if json {
        let v = serde_json::json!({
            "url": url, "catalog": catalog_url, "first_run": note,
            "initial_password_file": password_file.as_ref().map(|p| p.display().to_string()),
            "recording": gateway.as_ref().map(|g| serde_json::json!({
                "node_id": g.node_id(), "spool_dir": args.spool_dir, "spool_max": args.spool_max,
            })),
        });
        println!("{v}");
    } else {
        println!("CSAL admin: {url}");
        println!("  catalog:  {catalog_url}");
        if let Some(n) = &note {
            println!("  first run: {n}");
        }
        match &password_file {
            Some(path) => {
                println!(
                    "  first-run admin password written to {} (mode 0600): read it, log in, delete the file",
                    path.display()
                );
                println!("  change it any time with: csal admin set-password");
            }
            None => println!("  log in with the admin password (reset it with: csal admin set-password)"),
        }
        match &gateway {
            Some(g) => println!(
                "  recording: PUT segments to {url}v1/cameras/CAMERA/segments/NAME (spool {}, node {})",
                args.spool_dir.display(),
                g.node_id()
            ),
            None => println!("  recording: off (--no-recording)"),
        }
        if !addr.ip().is_loopback() {
            println!("  warning: listening on {addr}, reachable from other machines; put TLS in front of it");
        }
    }
    let _ = std::io::stdout().flush();
    let _bandwidth = spawn_bandwidth_schedule(cat.clone(), args.bwlimit.clone()).await?;
    let capacity = csal_spool::capacity::CapacityBoard::new(args.capacity_horizon_days);
    csal_admin::check_all(cat, &capacity).await;
    let _checks = csal_admin::spawn_health_checks(
        cat.clone(),
        Duration::from_secs(args.health_interval.max(5)),
        capacity.clone(),
    );
    let mut state = csal_admin::AdminState::new(cat.clone())
        .with_capacity(capacity)
        .with_public_url(args.public_url.clone())
        .with_trusted_proxies(args.trusted_proxies.clone());
    if let Some(gateway) = &gateway {
        state = state.with_gateway(gateway.clone());
    }
    let served = csal_admin::serve_on(state, listener).await;
    if let Some(gateway) = gateway {
        gateway.shutdown().await;
    }
    served?;
    Ok(())
}

/// Apply the upload limits now and at the start of every minute (the
/// schedules' resolution), in the node's local time.
async fn spawn_bandwidth_schedule(
    cat: Catalog,
    node: Option<csal_core::layers::BandwidthSchedule>,
) -> CliResult<tokio::task::JoinHandle<()>> {
    use chrono::Timelike;
    let minute = || {
        let now = chrono::Local::now();
        (now.hour() * 60 + now.minute(), 60 - now.second().min(59))
    };
    cat.apply_bandwidth(minute().0, node.as_ref()).await?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(u64::from(minute().1))).await;
            if let Err(e) = cat.apply_bandwidth(minute().0, node.as_ref()).await {
                tracing::warn!(error = %e, "cannot apply the bandwidth limits");
            }
        }
    }))
}
