//! `csal cameras`, `csal segments`, `csal spool`: the recording index and
//! the spools, read from the catalog (no server needed).

use std::path::Path;

use csal_admin::v1::{camera_list, ms_to_rfc3339, parse_time_param, segment_json};
use csal_catalog::{Catalog, SegmentQuery, time_to_ms};
use serde_json::json;

use crate::exit::{CliError, CliResult};
use crate::output::{self, human_bytes};
use crate::{HoldCmd, PolicyCmd, RetentionCmd};

pub async fn cameras(cat: &Catalog, json: bool) -> CliResult {
    let list = camera_list(cat).await?;
    if json {
        output::json(&list);
        return Ok(());
    }
    if list.is_empty() {
        println!("no recordings yet");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
            let n = |k: &str| c[k].as_u64().unwrap_or(0);
            let targets = c["policy"]["targets"]
                .as_array()
                .map(|t| t.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" -> "))
                .unwrap_or_else(|| "(no policy)".into());
            vec![
                s("camera_id"),
                n("segments").to_string(),
                human_bytes(n("bytes")),
                s("newest"),
                n("undelivered").to_string(),
                targets,
            ]
        })
        .collect();
    output::table(&["CAMERA", "SEGMENTS", "BYTES", "NEWEST", "UNDELIVERED", "TARGETS"], &rows);
    Ok(())
}

pub async fn segments(
    cat: &Catalog,
    camera: &str,
    from: Option<&str>,
    to: Option<&str>,
    limit: u64,
    json: bool,
) -> CliResult {
    csal_spool::names::check_camera_id(camera)?;
    let from_ms = parse_time_param("--from", from)?;
    let to_ms = parse_time_param("--to", to)?;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let want =
            if limit == 0 { csal_catalog::MAX_SEGMENT_PAGE as u64 } else { (limit - out.len() as u64).min(1000) };
        if want == 0 {
            break;
        }
        let page = cat.list_segments(camera, &SegmentQuery { from_ms, to_ms, after, limit: want as u32 }).await?;
        let full = page.len() as u64 == want;
        after = page.last().map(|s| (s.start_ms, s.name.clone()));
        out.extend(page);
        if !full {
            break;
        }
    }
    if json {
        output::json(&out.iter().map(segment_json).collect::<Vec<_>>());
        return Ok(());
    }
    let rows: Vec<Vec<String>> = out
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                ms_to_rfc3339(s.start_ms),
                s.duration_ms.map(|d| format!("{:.3}", d as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
                s.size.to_string(),
                s.crc32c.clone(),
                format!("{}/{}", s.copies_stored, s.copies_required),
            ]
        })
        .collect();
    output::table(&["NAME", "START", "SECONDS", "BYTES", "CRC32C", "COPIES"], &rows);
    Ok(())
}

pub async fn spool(cat: &Catalog, dir: Option<&Path>, json: bool) -> CliResult {
    let nodes = cat.spool_summary().await?;
    let now = time_to_ms(std::time::SystemTime::now());
    let local = match dir {
        Some(d) => Some(local_spool(d)?),
        None => None,
    };
    if json {
        output::json(&json!({
            "nodes": nodes.iter().map(|n| json!({
                "node_id": n.node_id, "segments": n.segments, "bytes": n.bytes,
                "oldest_age_s": (now - n.oldest_received_ms).max(0) as f64 / 1000.0,
            })).collect::<Vec<_>>(),
            "local": local.as_ref().map(|(node, files, bytes)| json!({"node_id": node, "files": files, "bytes": bytes})),
        }));
        return Ok(());
    }
    if nodes.is_empty() {
        println!("every spool is empty: all segments are on their targets");
    } else {
        let rows: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| {
                let age = (now - n.oldest_received_ms).max(0) / 1000;
                vec![n.node_id.clone(), n.segments.to_string(), human_bytes(n.bytes), format!("{age} s")]
            })
            .collect();
        output::table(&["NODE", "UNDELIVERED", "BYTES", "OLDEST"], &rows);
    }
    if let Some((node, files, bytes)) = local {
        println!("local spool: node {node}, {files} segment files, {}", human_bytes(bytes));
    }
    Ok(())
}

/// (node id, files, bytes) of a spool directory on this machine.
fn local_spool(dir: &Path) -> CliResult<(String, u64, u64)> {
    let node = std::fs::read_to_string(dir.join("node-id"))
        .map_err(|e| crate::exit::CliError::other(format!("{} is not a spool directory: {e}", dir.display())))?;
    let mut files = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir.join("segments"))?.flatten() {
        files += 1;
        bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
    }
    Ok((node.trim().to_owned(), files, bytes))
}

pub async fn hold(cat: &Catalog, cmd: HoldCmd, json: bool) -> CliResult {
    match cmd {
        HoldCmd::Add { camera, from, to, reason, by } => {
            let new = csal_catalog::NewHold {
                camera_id: camera,
                from_ms: parse_time_param("--from", from.as_deref())?,
                to_ms: parse_time_param("--to", to.as_deref())?,
                reason,
                created_by: by,
            };
            let (hold, on_providers) = csal_spool::holds::place(cat, new).await?;
            if json {
                let mut answer = json!(hold);
                answer["provider_holds"] = json!(on_providers);
                output::json(&answer);
            } else {
                println!("{}", hold.id);
                eprintln!(
                    "hold placed on camera '{}' ({}); lift it with: csal hold rm {}",
                    hold.camera_id,
                    span(&hold),
                    hold.id
                );
                report_provider_holds(&on_providers, "held");
            }
        }
        HoldCmd::Rm { id } => {
            let (hold, on_providers) = csal_spool::holds::lift(cat, &id).await?;
            if json {
                output::json(&json!({"lifted": hold, "provider_holds": on_providers}));
            } else {
                println!("hold {} on camera '{}' lifted", hold.id, hold.camera_id);
                report_provider_holds(&on_providers, "released");
            }
        }
        HoldCmd::List { camera } => {
            let holds = cat.list_holds(camera.as_deref()).await?;
            if json {
                output::json(&holds);
            } else if holds.is_empty() {
                println!("no legal holds");
            } else {
                let rows: Vec<Vec<String>> = holds
                    .iter()
                    .map(|h| vec![h.id.clone(), h.camera_id.clone(), span(h), h.created_by.clone(), h.reason.clone()])
                    .collect();
                output::table(&["ID", "CAMERA", "RANGE", "BY", "REASON"], &rows);
            }
        }
    }
    Ok(())
}

fn span(h: &csal_catalog::LegalHold) -> String {
    let end = |t: Option<i64>, open: &str| t.map(ms_to_rfc3339).unwrap_or_else(|| open.to_owned());
    format!("{} .. {}", end(h.from_ms, "start"), end(h.to_ms, "no end"))
}

/// What a hold did on targets that hold objects themselves (S3 Object Lock).
fn report_provider_holds(done: &csal_spool::holds::ProviderHolds, verb: &str) {
    if done.copies > 0 {
        eprintln!("{} copies {verb} by their provider too (server-side legal hold)", done.copies);
    }
    for e in &done.errors {
        eprintln!("provider hold failed: {e}");
    }
}

pub async fn retention(cat: &Catalog, cmd: RetentionCmd, json: bool) -> CliResult {
    let RetentionCmd::Run { dry_run } = cmd;
    let holder = format!("cli:{}", std::process::id());
    if !dry_run && !cat.try_lease(csal_spool::RETENTION_LEASE, &holder, 3_600_000).await? {
        return Err(CliError {
            code: crate::exit::TRANSIENT,
            kind: Some(csal_core::ErrorKind::Unavailable),
            message: "a csal serve node is sweeping retention right now; try again later".into(),
        });
    }
    let report = csal_spool::retention::sweep(cat, csal_spool::retention::now_ms(), dry_run).await;
    if !dry_run {
        cat.release_lease(csal_spool::RETENTION_LEASE, &holder).await?;
    }
    let report = report?;
    if json {
        output::json(&report);
        return Ok(());
    }
    for line in &report.planned {
        println!("{} {line}", if dry_run { "would delete" } else { "deleted" });
    }
    for line in &report.planned_moves {
        println!("{} {line}", if dry_run { "would move" } else { "moved" });
    }
    for e in &report.errors {
        eprintln!("failed: {e}");
    }
    println!(
        "{}{} segments, {} copies, {} freed; {} held back by legal holds; {} kept by the provider's own lock; {} deletes failed (kept as delete_pending)",
        if dry_run { "dry run: would delete " } else { "deleted " },
        report.segments_deleted,
        report.copies_deleted,
        human_bytes(report.bytes_freed),
        report.held,
        report.locked,
        report.failed
    );
    if report.moved > 0 || report.move_failed > 0 {
        println!(
            "{}{} copies ({}); {} moves failed (left where they were)",
            if dry_run { "dry run: would move " } else { "moved " },
            report.moved,
            human_bytes(report.bytes_moved),
            report.move_failed
        );
    }
    Ok(())
}

pub async fn fsck(
    cat: &Catalog,
    camera: Option<String>,
    target: Option<String>,
    repair: bool,
    json: bool,
) -> CliResult {
    if let Some(c) = &camera {
        csal_spool::names::check_camera_id(c)?;
    }
    let mut options = csal_spool::fsck::FsckOptions::default();
    (options.camera, options.target, options.repair) = (camera, target, repair);
    let report = csal_spool::fsck::fsck(cat, &options).await?;
    if json {
        output::json(&report);
    } else {
        for f in &report.findings {
            let what = f.segment.as_deref().or(f.object_id.as_deref()).unwrap_or("-");
            let fix = f.repaired.as_deref().map(|r| format!(" -> {r}")).unwrap_or_default();
            if f.camera.is_empty() {
                println!("{:<14} {}: {}{fix}", f.kind, f.target, f.detail);
            } else {
                println!("{:<14} {}/{} @ {}: {}{fix}", f.kind, f.camera, what, f.target, f.detail);
            }
        }
        println!(
            "{} camera(s), {} copies checked, {} objects listed, {} finding(s)",
            report.cameras,
            report.copies_checked,
            report.objects_listed,
            report.findings.len()
        );
    }
    let unrepaired = report.findings.iter().any(|f| f.repaired.as_deref().is_none_or(|r| r.starts_with("not")));
    if unrepaired && !report.findings.is_empty() {
        return Err(CliError::unhealthy("the index and the targets differ (see above)"));
    }
    Ok(())
}

pub async fn capacity(cat: &Catalog, horizon_days: f64, json: bool) -> CliResult {
    let board = csal_spool::capacity::CapacityBoard::new(horizon_days);
    csal_admin::check_all(cat, &board).await;
    let report = board.latest().ok_or_else(|| CliError::unhealthy("the capacity forecast failed (see the log)"))?;
    if json {
        output::json(&report);
    } else {
        let days = |d: Option<f64>| d.map_or_else(|| "-".to_owned(), |d| format!("{d:.1}"));
        let free = |f: Option<u64>| f.map_or_else(|| "unknown".to_owned(), output::human_bytes);
        output::table(
            &["TARGET", "STORED", "COPIES", "PER DAY", "FREE", "DAYS LEFT", "WARNING"],
            &report
                .targets
                .iter()
                .map(|t| {
                    vec![
                        t.target.clone(),
                        output::human_bytes(t.stored_bytes),
                        t.stored_copies.to_string(),
                        output::human_bytes(t.bytes_per_day),
                        free(t.free_bytes),
                        days(t.days_left),
                        t.warning.clone().unwrap_or_default(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    if report.targets.iter().any(|t| t.warning.is_some()) {
        return Err(CliError::unhealthy(format!("a target is full in fewer than {horizon_days} days at its rate")));
    }
    Ok(())
}

pub async fn policy(cat: &Catalog, cmd: PolicyCmd, json: bool) -> CliResult {
    let row = |camera: &str, p: &csal_catalog::CameraPolicy, note: &str| {
        vec![camera.to_owned(), p.targets.join(" -> "), p.copies.to_string(), p.retention_text(), note.to_owned()]
    };
    let header = ["CAMERA", "TARGETS", "COPIES", "KEPT", ""];
    match cmd {
        PolicyCmd::List => {
            let list = cat.list_policies().await?;
            if json {
                let v: Vec<_> = list.iter().map(|(c, p)| json!({"camera_id": c, "policy": p})).collect();
                output::json(&v);
            } else if list.is_empty() {
                println!("no camera policies (set one with: csal policy set CAMERA --target MODULE)");
            } else {
                let is_default = |c: &str| if c == csal_catalog::DEFAULT_POLICY { "default" } else { "" };
                output::table(&header, &list.iter().map(|(c, p)| row(c, p, is_default(c))).collect::<Vec<_>>());
            }
        }
        PolicyCmd::Show { camera } => {
            let (from, p) = cat.policy_in_effect(&camera).await?;
            if json {
                output::json(&json!({"camera_id": camera, "applies_from": from, "policy": p}));
            } else {
                let note = if from == camera { String::new() } else { format!("the default ('{from}')") };
                output::table(&header, &[row(&camera, &p, &note)]);
            }
        }
        PolicyCmd::Set { camera, targets, copies, retention_days, max_bytes, keep_days, tiers } => {
            let policy = csal_catalog::CameraPolicy {
                targets,
                copies,
                retention_days,
                max_bytes,
                keep_days: keep_days.into_iter().collect(),
                tiers,
            };
            cat.set_policy(&camera, policy.clone()).await?;
            if json {
                output::json(&json!({"camera_id": camera, "policy": policy}));
            } else {
                eprintln!("policy of camera '{camera}' set");
            }
        }
        PolicyCmd::Rm { camera } => {
            cat.delete_policy(&camera).await?;
            if json {
                output::json(&json!({"removed": camera}));
            } else {
                eprintln!("policy of camera '{camera}' removed");
            }
        }
    }
    Ok(())
}
