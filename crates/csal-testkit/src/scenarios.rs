//! Fault scenarios shared by the providers' `tests/faults.rs`: each takes a
//! [`FaultProxy`] in front of a real server and a `StorageRouter` whose
//! instance `faulty` points at the proxy, so the core retry and timeout
//! layers are in the loop as in production.

use std::time::Duration;

use crate::{Fault, FaultPlan, FaultProxy};
use bytes::Bytes;
use csal_core::{ByteStream, ErrorClass, LayerConfig, StorageRouter, WriteMeta};

/// Layers for fault tests: short timeouts, four attempts, quick backoff.
pub fn layers() -> LayerConfig {
    let mut layers = LayerConfig::default();
    let timeouts = &mut layers.timeouts;
    (timeouts.operation, timeouts.first_byte, timeouts.idle) = (secs(30), secs(30), secs(30));
    let retry = &mut layers.retry;
    retry.max_attempts = 4;
    (retry.base_delay, retry.max_delay, retry.max_retry_after) =
        (Duration::from_millis(20), Duration::from_millis(200), secs(10));
    layers
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `len` pseudo-random bytes from `seed`.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    Bytes::from(
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect::<Vec<u8>>(),
    )
}

/// The mixed schedule the write scenario runs under.
pub fn plan(seed: u64) -> FaultPlan {
    FaultPlan::seeded(seed)
        .resets(0.05)
        .slow_downs(0.05, 1)
        .internal_errors(0.05)
        .stalls(0.02, Duration::from_secs(4))
        .truncations(0.05)
}

/// Writes under random faults either read back identical (once the faults
/// stop) or fail with a transient error; never a wrong object.
pub async fn writes_under_faults_read_back_or_fail_transient(proxy: &FaultProxy, router: &StorageRouter, large: usize) {
    let dir = crate::unique_folder("faults");
    let mut stored = Vec::new();
    let mut transient = 0;
    for i in 0..20u64 {
        let len = match i % 5 {
            0 => large,
            1 => 0,
            _ => 1000 + (i as usize * 7919) % 200_000,
        };
        let bytes = data(len, i);
        match router
            .write("faulty", ByteStream::from_bytes(bytes.clone()), WriteMeta::new(format!("{dir}/o-{i}.bin")))
            .await
        {
            Ok(receipt) => {
                assert_eq!(receipt.size, len as u64);
                stored.push((receipt.object_id, bytes));
            }
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::Transient, "write {i} failed with a non-transient error: {e}");
                transient += 1;
            }
        }
    }
    assert!(proxy.faults_injected() > 3, "the schedule injected only {} faults", proxy.faults_injected());
    assert!(!stored.is_empty(), "no write succeeded under faults");
    proxy.set_plan(FaultPlan::none());
    for (id, bytes) in &stored {
        let back = router.read("faulty", id, None).await.unwrap().collect_limited(64 << 20).await.unwrap();
        assert!(
            back == *bytes,
            "object {id} reads back {} bytes that differ from the {} written",
            back.len(),
            bytes.len()
        );
    }
    eprintln!(
        "faults: {} writes ok, {transient} transient failures, {} faults injected",
        stored.len(),
        proxy.faults_injected()
    );
}

/// A 503 with Retry-After is retried by the core layer, after the wait.
pub async fn slow_down_is_retried_after_the_wait(proxy: &FaultProxy, router: &StorageRouter) {
    proxy.set_plan(FaultPlan::none());
    let bytes = data(5000, 99);
    // Warm up (folders / containers exist and are cached), so the 503 lands
    // on the upload itself rather than on a set-up step that tolerates it.
    router.write("faulty", ByteStream::from_bytes(bytes.clone()), WriteMeta::new("faults/warm.bin")).await.unwrap();
    let started = std::time::Instant::now();
    proxy.push_faults([Fault::SlowDown { retry_after_secs: 1 }]);
    let receipt =
        router.write("faulty", ByteStream::from_bytes(bytes.clone()), WriteMeta::new("faults/slow.bin")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
    let back = router.read("faulty", &receipt.object_id, None).await.unwrap().collect_limited(1 << 20).await.unwrap();
    assert_eq!(back, bytes);
}
