//! Upload limits hold: 16 concurrent uploads through the router to one
//! local_fs instance limited to 2 MiB/s, for 60 s; the achieved aggregate
//! rate must be within 5 % of the limit (issue 17). Uploads are endless
//! streams cut at the deadline, so the figure is the rate, not a
//! completion time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};

use crate::Figure;

const LIMIT: u64 = 2 << 20;
const UPLOADS: usize = 16;
const TOLERANCE: f64 = 0.05;

pub async fn limit_holds(secs: u64) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let router = Arc::new(StorageRouter::from_definitions(&[InstanceDefinition::new(
        "disk",
        "local_fs",
        serde_json::json!({ "root": dir.path() }),
    )]));
    router.bandwidth().instance("disk").set(Some(LIMIT))?;
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for n in 0..UPLOADS {
        let (router, sent) = (router.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            // 64 KiB chunks until the deadline; counted as the layer lets them through.
            let chunk = Bytes::from(vec![n as u8; 64 << 10]);
            let counter = sent.clone();
            let body = futures::stream::unfold((), move |()| {
                let chunk = chunk.clone();
                async move { (Instant::now() < deadline).then_some((Ok(chunk), ())) }
            });
            let body = ByteStream::new(body, None).inspect_chunks(move |c| {
                counter.fetch_add(c.len() as u64, Ordering::Relaxed);
            });
            router.write("disk", body, WriteMeta::new(format!("bw/{n}.bin"))).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The first second's burst is allowed on top of the rate.
    let expected = LIMIT as f64 * (elapsed + 1.0);
    let ratio = sent.load(Ordering::Relaxed) as f64 / expected;
    Ok(vec![Figure {
        name: format!("upload limit 2 MiB/s, {UPLOADS} concurrent uploads to local_fs for {secs} s (sent / allowed)"),
        value: format!(
            "{:.3} ({:.2} MiB/s achieved)",
            ratio,
            sent.load(Ordering::Relaxed) as f64 / elapsed / f64::from(1 << 20)
        ),
        target: format!("{:.2}..{:.2}", 1.0 - TOLERANCE, 1.0 + TOLERANCE),
        met: (1.0 - TOLERANCE..=1.0 + TOLERANCE).contains(&ratio),
    }])
}
