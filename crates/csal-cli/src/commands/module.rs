//! `csal providers` and `csal module ...`.

use csal_catalog::{Catalog, ModuleUpdate, NewModule};
use csal_core::{HealthStatus, InstanceContext, InstanceStatus, find_provider, registered_providers};
use serde_json::{Value, json};

use crate::ModuleCmd;
use crate::exit::{CliError, CliResult};
use crate::output;

pub fn providers(json: bool) -> CliResult {
    let all = registered_providers();
    if json {
        output::json(&all.iter().map(|r| csal_admin::api::provider_json(r)).collect::<Vec<_>>());
        return Ok(());
    }
    for r in all {
        println!("{}  ({}, {:?})", r.provider_type, r.display_name, r.category);
        if !r.description.is_empty() {
            println!("    {}", r.description);
        }
        for f in r.fields {
            let mut flags = Vec::new();
            if f.required {
                flags.push("required".to_owned());
            }
            if f.kind.is_secret() {
                flags.push("secret".to_owned());
            }
            if let Some(d) = f.default {
                flags.push(format!("default {d}"));
            }
            let kind = serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            println!(
                "    {:<22} {:<16} {}{}",
                f.key,
                kind,
                f.label,
                if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(", ")) }
            );
        }
        println!();
    }
    Ok(())
}

/// `--config` text: JSON, `@FILE` or `@-` (stdin).
pub fn parse_config_arg(text: &str) -> CliResult<Value> {
    let (source, raw) = match text.strip_prefix('@') {
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            ("stdin".to_owned(), s)
        }
        Some(path) => {
            let s = std::fs::read_to_string(path)
                .map_err(|e| CliError::usage(format!("cannot read config file {path}: {e}")))?;
            (path.to_owned(), s)
        }
        None => ("--config".to_owned(), text.to_owned()),
    };
    let value: Value = serde_json::from_str(&raw).map_err(|e| {
        CliError::usage(format!(
            "{source} is not valid JSON (line {}, column {}): {}",
            e.line(),
            e.column(),
            e.classify_kind()
        ))
    })?;
    if !value.is_object() {
        return Err(CliError::usage(format!("{source} must be a JSON object like {{\"root\": \"/data\"}}")));
    }
    Ok(value)
}

trait ClassifyKind {
    fn classify_kind(&self) -> &'static str;
}
impl ClassifyKind for serde_json::Error {
    fn classify_kind(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end of input",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong data type",
            serde_json::error::Category::Io => "read error",
        }
    }
}

/// The router's status of an instance, as one word and a reason.
pub fn load_status(cat: &Catalog, name: &str) -> (String, Option<String>) {
    match cat.router().instances().into_iter().find(|i| i.name == name || i.id == name) {
        Some(i) => match i.status {
            InstanceStatus::Ready => ("loaded".into(), None),
            InstanceStatus::Disabled => ("disabled".into(), None),
            InstanceStatus::Offline { reason, .. } => ("offline".into(), Some(reason)),
            // A state added to csal-core later: not usable as far as we know.
            other => ("offline".into(), Some(format!("in a state this csal does not know: {other:?}"))),
        },
        None => ("unknown".into(), None),
    }
}

fn record_json(cat: &Catalog, r: &csal_catalog::ModuleRecord) -> Value {
    let (status, reason) = load_status(cat, &r.name);
    json!({
        "id": r.id, "name": r.name, "label": r.label, "provider_type": r.provider_type,
        "is_enabled": r.is_enabled, "config": r.config, "status": status, "status_reason": reason,
        "created_at": humantime::format_rfc3339_seconds(r.created_at).to_string(),
        "updated_at": humantime::format_rfc3339_seconds(r.updated_at).to_string(),
    })
}

/// Check a new config the way the router will, before storing it.
fn precheck(provider_type: &str, name: &str, config: &Value) -> CliResult<()> {
    let reg = find_provider(provider_type)?;
    reg.check_config(config)?;
    let ctx = InstanceContext::new(name, name, provider_type);
    reg.build(&ctx, config).map(|_| ()).map_err(|e| e.with_instance(name.to_owned()).into())
}

pub async fn run(cat: &Catalog, cmd: ModuleCmd, json: bool) -> CliResult {
    match cmd {
        ModuleCmd::Add { name, provider, label, config, disabled } => {
            csal_catalog::check_module_name(&name)
                .map_err(|e| CliError::usage(format!("module name '{name}': {}", e.message())))?;
            let config = parse_config_arg(&config)?;
            precheck(&provider, &name, &config)?;
            let rec = cat
                .create_module(NewModule { name, label, provider_type: provider, is_enabled: !disabled, config })
                .await?;
            if json {
                output::json(&record_json(cat, &rec));
            } else {
                println!("added module '{}' ({}), id {}", rec.name, rec.provider_type, rec.id);
            }
        }
        ModuleCmd::List => {
            let recs = cat.list_modules().await?;
            if json {
                output::json(&recs.iter().map(|r| record_json(cat, r)).collect::<Vec<_>>());
            } else if recs.is_empty() {
                println!("no modules (add one with `csal module add NAME --provider TYPE --config JSON`)");
            } else {
                let rows: Vec<Vec<String>> = recs
                    .iter()
                    .map(|r| {
                        let (status, reason) = load_status(cat, &r.name);
                        let status = match reason {
                            Some(why) => format!("{status}: {why}"),
                            None => status,
                        };
                        vec![
                            r.name.clone(),
                            r.provider_type.clone(),
                            if r.is_enabled { "yes".into() } else { "no".into() },
                            r.label.clone().unwrap_or_default(),
                            status,
                        ]
                    })
                    .collect();
                output::table(&["NAME", "PROVIDER", "ENABLED", "LABEL", "STATUS"], &rows);
            }
        }
        ModuleCmd::Show { name } => {
            let rec = cat.get_module(&name).await?;
            let v = record_json(cat, &rec);
            if json {
                output::json(&v);
            } else {
                println!("name:      {}", rec.name);
                println!("id:        {}", rec.id);
                println!("provider:  {}", rec.provider_type);
                println!("label:     {}", rec.label.clone().unwrap_or_default());
                println!("enabled:   {}", if rec.is_enabled { "yes" } else { "no" });
                println!("status:    {}", v["status"].as_str().unwrap_or(""));
                if let Some(r) = v["status_reason"].as_str() {
                    println!("reason:    {r}");
                }
                println!(
                    "config:    {}",
                    serde_json::to_string_pretty(&rec.config).unwrap_or_default().replace('\n', "\n           ")
                );
            }
        }
        ModuleCmd::Edit { name, config, label } => {
            if config.is_none() && label.is_none() {
                return Err(CliError::usage("nothing to change: give --config and/or --label"));
            }
            let current = cat.get_module(&name).await?;
            let config = config.as_deref().map(parse_config_arg).transpose()?;
            if let Some(cfg) = &config {
                let reg = find_provider(&current.provider_type)?;
                // Secrets left out keep their stored value, so a missing
                // required secret is fine here; the catalog checks the result.
                if let Err(e) = reg.check_config(cfg) {
                    let secret_missing = reg.fields.iter().any(|f| {
                        f.kind.is_secret()
                            && e.message().contains(&format!("'{}'", f.key))
                            && e.message().contains("missing")
                    });
                    if !secret_missing {
                        return Err(e.into());
                    }
                }
            }
            let label = label.map(|l| Some(l).filter(|l| !l.is_empty()));
            let rec = cat.update_module(&name, ModuleUpdate { label, config, is_enabled: None }).await?;
            if json {
                output::json(&record_json(cat, &rec));
            } else {
                println!("updated module '{}'", rec.name);
                if let (status, Some(why)) = load_status(cat, &rec.name) {
                    eprintln!("csal: warning: module '{}' is {status}: {why}", rec.name);
                }
            }
        }
        ModuleCmd::Enable { name } => set_enabled(cat, &name, true, json).await?,
        ModuleCmd::Disable { name } => set_enabled(cat, &name, false, json).await?,
        ModuleCmd::Rm { name } => {
            let rec = cat.get_module(&name).await?;
            cat.delete_module(&rec.name).await?;
            if json {
                output::json(&json!({"removed": rec.name}));
            } else {
                println!("removed module '{}' (stored objects were not touched)", rec.name);
            }
        }
        ModuleCmd::Authorize { name, port, timeout, open } => {
            crate::commands::authorize::authorize(
                cat,
                &name,
                port,
                std::time::Duration::from_secs(timeout.max(1)),
                open,
                json,
            )
            .await?
        }
        ModuleCmd::Canary { name, switch } => {
            cat.set_canary(&name, switch == "on").await?;
            if json {
                output::json(&json!({"module": name, "canary": switch}));
            } else {
                println!("canary of module '{name}' is {switch}");
            }
        }
        ModuleCmd::Test { name, canary } => {
            let report = cat.test_module(&name, canary).await?;
            if json {
                output::json(&report);
            } else {
                let latency =
                    report.latency.map(|d| format!(" in {:.1} ms", d.as_secs_f64() * 1000.0)).unwrap_or_default();
                println!("{}: {}{latency}", name, report.status.as_str());
                if let Some(e) = &report.last_error {
                    println!("  {e}");
                }
                if let Some(stale) = csal_core::StaleUploads::of(&report).filter(|s| s.count > 0) {
                    println!(
                        "  {} unfinished upload(s) holding {} are left on the server; `csal fsck --repair` removes them",
                        stale.count,
                        output::human_bytes(stale.bytes)
                    );
                }
            }
            if report.status != HealthStatus::Ok {
                return Err(CliError::unhealthy(format!(
                    "module '{name}' is {}{}",
                    report.status.as_str(),
                    report.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

async fn set_enabled(cat: &Catalog, name: &str, enabled: bool, json: bool) -> CliResult {
    let rec = cat.set_enabled(name, enabled).await?;
    if json {
        output::json(&record_json(cat, &rec));
    } else {
        println!("module '{}' {}", rec.name, if enabled { "enabled" } else { "disabled" });
    }
    Ok(())
}

/// `csal bwlimit [TARGET [LIMIT|off]]`.
pub async fn bwlimit(cat: &Catalog, target: Option<String>, limit: Option<String>, json: bool) -> CliResult {
    if let (Some(target), Some(limit)) = (&target, &limit) {
        let value = (!limit.trim().eq_ignore_ascii_case("off")).then_some(limit.as_str());
        cat.set_bandwidth(target, value).await?;
    }
    let mut names = vec![csal_catalog::NODE_LIMIT.to_owned()];
    names.extend(cat.list_modules().await?.into_iter().map(|m| m.name));
    if let Some(t) = &target {
        names.retain(|n| n == t);
    }
    let mut rows = Vec::new();
    for name in names {
        let limit = cat.bandwidth(&name).await?;
        rows.push((name, limit));
    }
    if json {
        let v: Vec<_> = rows.iter().map(|(n, l)| json!({"target": n, "limit": l})).collect();
        output::json(&v);
    } else {
        let table: Vec<Vec<String>> = rows
            .into_iter()
            .map(|(n, l)| {
                let who = if n == csal_catalog::NODE_LIMIT { "* (each node)".to_owned() } else { n };
                vec![who, l.unwrap_or_else(|| "off".into())]
            })
            .collect();
        output::table(&["TARGET", "UPLOAD LIMIT"], &table);
    }
    Ok(())
}

/// `csal import --from URL [--dry-run]`.
pub async fn import(cat: &Catalog, from: &str, dry_run: bool, json: bool) -> CliResult {
    let report = cat.import_seed(from, dry_run).await?;
    if json {
        output::json(&report);
    } else if report.rows.is_empty() {
        println!("the source has no storage modules");
    } else {
        let rows: Vec<Vec<String>> = report
            .rows
            .iter()
            .map(|r| vec![r.kind.to_owned(), r.name.clone(), r.outcome.to_owned(), r.detail.clone()])
            .collect();
        output::table(&["KIND", "NAME", "OUTCOME", "DETAIL"], &rows);
    }
    match report.failed() {
        0 => Ok(()),
        n => Err(csal_core::StorageError::permanent(format!("{n} row(s) could not be imported (see above)")).into()),
    }
}
