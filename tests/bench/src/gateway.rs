//! A site's recorders against the recording gateway: C cameras each PUT an
//! S-byte segment every I seconds for T seconds to `/v1/` (the gateway in a
//! child process, so its peak RSS is its own; one local_fs target), and in
//! the same run the same schedule written straight through a
//! `StorageRouter` to local_fs, and as plain HTTP PUTs to Apache mod_dav (a
//! static PUT server) when it runs. Reported: segments/s and MiB/s taken
//! in, ack latency p50/p99/max, segments acknowledged later than one
//! interval after their slot, how long delivery lagged behind, the
//! gateway's peak RSS.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};
use serde_json::{Value, json};

use crate::Figure;

/// The load: `cameras` x `segment` bytes every `interval`, for `duration`.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub cameras: usize,
    pub segment: usize,
    pub interval: Duration,
    pub duration: Duration,
}

impl Load {
    fn per_camera(&self) -> u32 {
        (self.duration.as_secs_f64() / self.interval.as_secs_f64()).round() as u32
    }
    fn describe(&self) -> String {
        format!(
            "{} cameras x {} MiB every {} s for {} s",
            self.cameras,
            self.segment >> 20,
            self.interval.as_secs_f64(),
            self.duration.as_secs()
        )
    }
}

/// What one way of writing the load achieved.
struct Outcome {
    latencies: Vec<Duration>,
    late: usize,
    failed: usize,
    elapsed: Duration,
}

impl Outcome {
    fn percentile(&self, p: f64) -> Duration {
        let mut v = self.latencies.clone();
        v.sort();
        v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
    }
    fn rate(&self, load: &Load) -> (f64, f64) {
        let n = self.latencies.len() as f64;
        let secs = self.elapsed.as_secs_f64();
        (n / secs, n * load.segment as f64 / secs / (1024.0 * 1024.0))
    }
}

/// Run the schedule: every camera sends its k-th segment at `start +
/// offset + k * interval` (offsets spread the cameras over one interval),
/// or as soon as its previous one is acknowledged if that is later.
async fn run_schedule<F, Fut>(load: Load, send: F) -> Outcome
where
    F: Fn(usize, u32) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for camera in 0..load.cameras {
        let send = send.clone();
        let offset = load.interval.mul_f64(camera as f64 / load.cameras as f64);
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for k in 0..load.per_camera() {
                let slot = start + offset + load.interval * k;
                tokio::time::sleep_until(slot).await;
                let ok = send(camera, k).await;
                results.push((ok, slot.elapsed(), tokio::time::Instant::now() > slot + load.interval));
            }
            results
        }));
    }
    let began = Instant::now();
    let mut out = Outcome { latencies: Vec::new(), late: 0, failed: 0, elapsed: Duration::ZERO };
    for t in tasks {
        for (ok, latency, late) in t.await.unwrap_or_default() {
            if ok {
                out.latencies.push(latency);
            } else {
                out.failed += 1;
            }
            out.late += usize::from(late);
        }
    }
    out.elapsed = began.elapsed().saturating_sub(Duration::from_millis(200));
    out
}

fn body(load: &Load) -> Bytes {
    Bytes::from((0..load.segment).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0]).collect::<Vec<u8>>())
}

/// The gateway child: catalog, local_fs target, policies, an ingest token;
/// prints `{"url", "token"}`, serves until stdin closes, then prints its
/// peak RSS.
pub async fn gateway_child(dir: &Path, cameras: usize) -> Result<()> {
    use csal_catalog::{Catalog, MasterKey, NewModule, TokenScope};
    let catalog = Catalog::open(
        &format!("sqlite://{}", dir.join("catalog.db").display()),
        MasterKey::Explicit(MasterKey::generate()?),
    )
    .await?;
    catalog
        .create_module(NewModule {
            name: "disk".into(),
            label: None,
            provider_type: "local_fs".into(),
            is_enabled: true,
            config: json!({"root": dir.join("target"), "min_free_mb": 1}),
        })
        .await?;
    for c in 0..cameras {
        catalog.set_policy(&format!("cam{c}"), vec!["disk".to_owned()]).await?;
    }
    let token = catalog.create_token("bench", TokenScope::Ingest).await?;
    let reader = catalog.create_token("bench-read", TokenScope::Read).await?;
    let spool = csal_spool::SpoolConfig::new(dir.join("spool"), 64 << 30);
    let gateway = csal_spool::Gateway::start(catalog.clone(), csal_spool::GatewayConfig::new(spool)).await?;
    let listener = csal_admin::bind("127.0.0.1:0".parse()?).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = csal_admin::AdminState::new(catalog).with_gateway(gateway);
    tokio::spawn(csal_admin::serve_on(state, listener));
    println!("{}", json!({"url": url, "token": token, "read_token": reader}));
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
    })
    .await?;
    println!("{}", json!({"peak_rss_kib": crate::rss::peak_rss_kib()?}));
    std::process::exit(0);
}

/// Through the gateway (child process) over HTTP.
async fn through_gateway(load: Load, dir: &Path) -> Result<(Outcome, Duration, u64)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["gateway-child", "--dir"])
        .arg(dir)
        .args(["--cameras", &load.cameras.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("child stdout")?).lines();
    let hello: Value = serde_json::from_str(&lines.next().context("no banner from the gateway child")??)?;
    let url = hello["url"].as_str().context("url")?.to_owned();
    let token = hello["token"].as_str().context("token")?.to_owned();
    let reader = hello["read_token"].as_str().context("read token")?.to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(load.cameras).build()?;
    let data = body(&load);
    let outcome = {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        run_schedule(load, move |camera, k| {
            let (http, url, token, data) = (http.clone(), url.clone(), token.clone(), data.clone());
            async move {
                let resp = http
                    .put(format!("{url}/v1/cameras/cam{camera}/segments/seg{k:05}.ts"))
                    .bearer_auth(token)
                    .body(data)
                    .send()
                    .await;
                resp.is_ok_and(|r| r.status().is_success())
            }
        })
        .await
    };
    // How long the deliveries lagged behind the last acknowledgement.
    let drained = Instant::now();
    loop {
        let spool: Value = http.get(format!("{url}/v1/spool")).bearer_auth(&reader).send().await?.json().await?;
        if spool["stats"]["spool_segments"].as_u64() == Some(0) {
            break;
        }
        anyhow::ensure!(drained.elapsed() < Duration::from_secs(600), "the spool did not drain in 10 minutes");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drain = drained.elapsed();
    drop(child.stdin.take());
    let rss: Value = serde_json::from_str(&lines.next().context("no RSS from the gateway child")??)?;
    let _ = child.wait();
    Ok((outcome, drain, rss["peak_rss_kib"].as_u64().unwrap_or(0)))
}

/// Straight through a router to local_fs, in process.
async fn through_router(load: Load, dir: &Path) -> Result<Outcome> {
    let router = Arc::new(StorageRouter::from_definitions(&[InstanceDefinition::new(
        "disk",
        "local_fs",
        json!({"root": dir.join("direct"), "min_free_mb": 1}),
    )]));
    let data = body(&load);
    Ok(run_schedule(load, move |camera, k| {
        let (router, data) = (router.clone(), data.clone());
        async move {
            let meta = WriteMeta::new(format!("cam{camera}/seg{k:05}.ts"));
            router.write("disk", ByteStream::from_bytes(data), meta).await.is_ok()
        }
    })
    .await)
}

/// Plain HTTP PUTs to Apache mod_dav (no durability promise at all).
async fn through_apache(load: Load, base: &str, user: &str, password: &str) -> Result<Outcome> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(load.cameras).build()?;
    let folder = format!("{base}csal-bench-{}/", std::process::id());
    http.request(reqwest::Method::from_bytes(b"MKCOL")?, &folder).basic_auth(user, Some(password)).send().await?;
    let data = body(&load);
    let (user, password) = (user.to_owned(), password.to_owned());
    let outcome = {
        let (http, folder, user, password) = (http.clone(), folder.clone(), user.clone(), password.clone());
        run_schedule(load, move |camera, k| {
            let (http, folder, data, user, password) =
                (http.clone(), folder.clone(), data.clone(), user.clone(), password.clone());
            async move {
                let resp = http
                    .put(format!("{folder}cam{camera}-seg{k:05}.ts"))
                    .basic_auth(user, Some(password))
                    .body(data)
                    .send()
                    .await;
                resp.is_ok_and(|r| r.status().is_success())
            }
        })
        .await
    };
    let _ = http.delete(&folder).basic_auth(&user, Some(&password)).send().await;
    Ok(outcome)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// All three, and the figures.
pub async fn figures(load: Load) -> Result<(Vec<Figure>, String)> {
    let work = tempfile::tempdir_in(std::env::current_dir()?.join("target"))?;
    eprintln!("recording: {} through the gateway ...", load.describe());
    let (gateway, drain, rss_kib) = through_gateway(load, &work.path().join("gateway")).await?;
    let _ = std::fs::remove_dir_all(work.path().join("gateway"));
    eprintln!("recording: the same straight through a router to local_fs ...");
    let direct = through_router(load, work.path()).await?;
    let _ = std::fs::remove_dir_all(work.path().join("direct"));
    let apache = match (std::env::var("CSAL_TEST_WEBDAV_APACHE_URL"), std::env::var("CSAL_TEST_WEBDAV_APACHE_PASSWORD"))
    {
        (Ok(url), Ok(pw)) => {
            eprintln!("recording: the same as plain PUTs to Apache mod_dav ...");
            let user = std::env::var("CSAL_TEST_WEBDAV_APACHE_USER").unwrap_or_default();
            Some(through_apache(load, &url, &user, &pw).await?)
        }
        _ => None,
    };
    let total = load.cameras * load.per_camera() as usize;
    let name = |what: &str| format!("recording ({}): {what}", load.describe());
    let (gw_rate, gw_mib) = gateway.rate(&load);
    let mut figures = vec![
        Figure {
            name: name("gateway: segments acknowledged"),
            value: format!("{} of {total} ({} failed)", gateway.latencies.len(), gateway.failed),
            target: "all".into(),
            met: gateway.latencies.len() == total,
        },
        Figure {
            name: name("gateway: taken in"),
            value: format!("{gw_rate:.1} seg/s, {gw_mib:.1} MiB/s"),
            target: "offered".into(),
            met: true,
        },
        Figure {
            name: name("gateway: ack latency p50 / p99 / max"),
            value: format!(
                "{} / {} / {}",
                ms(gateway.percentile(0.5)),
                ms(gateway.percentile(0.99)),
                ms(gateway.percentile(1.0))
            ),
            target: format!("< {} s", load.interval.as_secs_f64()),
            met: gateway.percentile(0.99) < load.interval,
        },
        Figure {
            name: name("gateway: segments late by more than one interval"),
            value: gateway.late.to_string(),
            target: "0".into(),
            met: gateway.late == 0,
        },
        Figure {
            name: name("gateway: delivery backlog drained after the load"),
            value: format!("{:.1} s", drain.as_secs_f64()),
            target: "-".into(),
            met: true,
        },
        Figure {
            name: name("gateway: peak RSS"),
            value: format!("{:.1} MiB", rss_kib as f64 / 1024.0),
            target: "<= 256 MiB".into(),
            met: rss_kib <= 256 * 1024,
        },
        Figure {
            name: name("router -> local_fs directly: ack p50 / p99 / late"),
            value: format!("{} / {} / {}", ms(direct.percentile(0.5)), ms(direct.percentile(0.99)), direct.late),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            name: name("gateway p99 / direct p99"),
            value: format!(
                "{:.2}x",
                gateway.percentile(0.99).as_secs_f64() / direct.percentile(0.99).as_secs_f64().max(1e-6)
            ),
            target: "-".into(),
            met: true,
        },
    ];
    if let Some(a) = &apache {
        figures.push(Figure {
            name: name("plain PUT to Apache mod_dav: ack p50 / p99 / late"),
            value: format!("{} / {} / {}", ms(a.percentile(0.5)), ms(a.percentile(0.99)), a.late),
            target: "baseline".into(),
            met: true,
        });
    }
    let section = format!(
        "## Recording gateway under a site's load\n\n\
         {}: each camera PUTs its segment at its slot (cameras spread over one interval) or as soon as \
         its previous one is acknowledged. The gateway (spool fsync + index + delivery to one local_fs \
         target, all on this machine's one disk) runs in a child process; the baseline writes the same \
         schedule straight through a `StorageRouter` to local_fs (one fsynced write per segment, no \
         spool, no index){}. \"Late\" = acknowledged more than one interval after its slot.\n",
        load.describe(),
        if apache.is_some() { ", and as plain PUTs to Apache mod_dav (no fsync)" } else { "" }
    );
    Ok((figures, section))
}
