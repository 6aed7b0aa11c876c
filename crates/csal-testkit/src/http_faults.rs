//! The fault tests of the HTTP object-store providers (s3, gcs,
//! azure_blob, swift), as one macro: each provider's `tests/faults.rs` defines
//! `async fn setup(plan: FaultPlan) -> Option<(FaultProxy, StorageRouter)>`
//! (its server behind a [`FaultProxy`](crate::FaultProxy), instance
//! `faulty`), imports what the tests use, and calls
//! `csal_testkit::http_fault_tests!();` or, to make the large objects span
//! several parts of a provider with bigger parts,
//! `csal_testkit::http_fault_tests!(large_len = 6 * 1024 * 1024 + 17);`.

/// Expands to the shared fault tests; see the module docs.
#[macro_export]
macro_rules! http_fault_tests {
    () => {
        $crate::http_fault_tests!(large_len = 1024 * 1024 + 17);
    };
    (large_len = $large:expr) => {
        const MAX_ATTEMPTS: u32 = 4;
        /// Size of the objects that go through several parts.
        const LARGE_LEN: usize = $large;

        fn layers() -> LayerConfig {
            // The scenarios' layers with quicker read deadlines.
            let mut layers = $crate::scenarios::layers();
            layers.timeouts.first_byte = Duration::from_secs(20);
            layers.timeouts.idle = Duration::from_secs(20);
            layers.retry.max_attempts = MAX_ATTEMPTS;
            layers
        }

        fn data(len: usize, seed: u64) -> Bytes {
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

        fn unreplayable(bytes: &Bytes) -> ByteStream {
            let chunks: Vec<csal_core::Result<Bytes>> =
                bytes.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            ByteStream::new(futures::stream::iter(chunks), None)
        }

        async fn read_all(router: &StorageRouter, id: &str) -> csal_core::Result<Bytes> {
            router.read("faulty", id, None).await?.collect_limited(64 << 20).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn every_write_under_faults_reads_back_identical_or_fails_transient() {
            let plan = FaultPlan::seeded(0x5EED_0101)
                .resets(0.06)
                .slow_downs(0.06, 1)
                .internal_errors(0.06)
                .stalls(0.02, Duration::from_secs(4))
                .truncations(0.06);
            let Some((proxy, router)) = setup(plan).await else { return };
            let dir = $crate::unique_folder("faults");
            let mut stored = Vec::new();
            let mut transient = 0;
            for i in 0..24u64 {
                // Mostly single-request writes, some in several parts, some not replayable.
                let len = match i % 6 {
                    0 => LARGE_LEN,
                    1 => 0,
                    _ => 1000 + (i as usize * 7919) % 200_000,
                };
                let bytes = data(len, i);
                let body = if i % 4 == 3 { unreplayable(&bytes) } else { ByteStream::from_bytes(bytes.clone()) };
                match router.write("faulty", body, WriteMeta::new(format!("{dir}/obj-{i}.bin"))).await {
                    Ok(receipt) => {
                        assert_eq!(receipt.size, len as u64);
                        stored.push((receipt.object_id, bytes));
                    }
                    Err(e) => {
                        assert_eq!(
                            e.class(),
                            ErrorClass::Transient,
                            "write {i} failed with a non-transient error: {e}"
                        );
                        transient += 1;
                    }
                }
            }
            assert!(proxy.faults_injected() > 3, "the schedule injected only {} faults", proxy.faults_injected());
            assert!(!stored.is_empty(), "no write succeeded under faults");
            proxy.set_plan(FaultPlan::none());
            for (id, bytes) in &stored {
                let back = read_all(&router, id).await.unwrap();
                assert!(
                    back == *bytes,
                    "object {id} reads back {} bytes that differ from the {} written",
                    back.len(),
                    bytes.len()
                );
                router.delete("faulty", id).await.unwrap();
            }
            eprintln!(
                "faults: {} writes ok, {transient} transient failures, {} faults injected over {} requests",
                stored.len(),
                proxy.faults_injected(),
                proxy.log().len()
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn no_read_returns_truncated_data_as_success() {
            let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
            let dir = $crate::unique_folder("faults");
            let mut objects = Vec::new();
            for i in 0..4u64 {
                let bytes = data(200_000 + i as usize * 1000, 100 + i);
                let id = router
                    .write("faulty", ByteStream::from_bytes(bytes.clone()), WriteMeta::new(format!("{dir}/r{i}.bin")))
                    .await
                    .unwrap()
                    .object_id;
                objects.push((id, bytes));
            }
            proxy.set_plan(FaultPlan::seeded(0x5EED_0102).truncations(0.4).resets(0.1).internal_errors(0.1));
            let (mut ok, mut failed) = (0, 0);
            for round in 0..10 {
                for (id, bytes) in &objects {
                    match read_all(&router, id).await {
                        Ok(back) => {
                            assert!(
                                back == *bytes,
                                "round {round}: read of {id} succeeded with {} wrong bytes",
                                back.len()
                            );
                            ok += 1;
                        }
                        Err(e) => {
                            assert_eq!(e.class(), ErrorClass::Transient, "{e}");
                            failed += 1;
                        }
                    }
                }
            }
            let truncated = proxy.log().iter().filter(|r| r.fault == Fault::Truncate && r.method == "GET").count();
            assert!(truncated > 0, "no GET was truncated");
            assert!(failed > 0, "{truncated} truncated GETs but every read succeeded");
            eprintln!("reads: {ok} identical, {failed} failed (transient), {truncated} GETs truncated");
            proxy.set_plan(FaultPlan::none());
            for (id, _) in &objects {
                router.delete("faulty", id).await.unwrap();
            }
        }

        /// Requests that send a write (PUT or POST), and looks (HEAD or GET):
        /// so for every provider here (a provider with other verbs would
        /// need its own counts).
        fn writes_and_looks(proxy: &FaultProxy) -> (usize, usize) {
            let log = proxy.log();
            let count = |methods: [&str; 2]| log.iter().filter(|r| methods.contains(&r.method.as_str())).count();
            (count(["PUT", "POST"]), count(["HEAD", "GET"]))
        }

        /// The ids stored under `folder`.
        async fn listed(router: &StorageRouter, folder: &str) -> Vec<String> {
            let page = router.list("faulty", &csal_core::ListRequest::new(folder)).await.unwrap();
            assert!(page.next_page.is_none());
            page.objects.into_iter().map(|o| o.object_id).collect()
        }

        /// Within one part, block or chunk of every provider: one request.
        const SEGMENT_LEN: usize = 200_000;

        // A one-shot body within one part (a recorder's segment) is one
        // request from memory, which only the provider can send again (the
        // core cannot replay the body): a reset or a 503 must not fail it.
        #[tokio::test(flavor = "multi_thread")]
        async fn a_one_shot_write_survives_a_reset_and_a_slow_down() {
            let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
            let bytes = data(SEGMENT_LEN, 5);
            for fault in [Fault::Reset, Fault::SlowDown { retry_after_secs: 1 }] {
                proxy.clear_log();
                proxy.push_faults([fault]);
                let receipt = router.write("faulty", unreplayable(&bytes), WriteMeta::new("faults/segment.ts")).await;
                let receipt = receipt.unwrap_or_else(|e| panic!("{fault:?} failed the write: {e}"));
                assert_eq!(writes_and_looks(&proxy).0, 2, "{fault:?}: one refused write request and one resent");
                assert!(
                    read_all(&router, &receipt.object_id).await.unwrap() == bytes,
                    "{fault:?}: reads back different"
                );
                router.delete("faulty", &receipt.object_id).await.unwrap();
            }
        }

        // The write lands but its answer is lost: a look finds the object, so
        // the write succeeds once without sending it again, one-shot or
        // replayable (the core would otherwise retry a replayable body under
        // a new id and leave the first object behind, stored twice).
        #[tokio::test(flavor = "multi_thread")]
        async fn a_write_whose_answer_was_lost_is_confirmed_and_stored_once() {
            let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
            let bytes = data(SEGMENT_LEN, 6);
            for replayable in [false, true] {
                proxy.clear_log();
                let folder = $crate::unique_folder("faults");
                proxy.push_faults([Fault::DropAnswer]);
                let body = if replayable { ByteStream::from_bytes(bytes.clone()) } else { unreplayable(&bytes) };
                let receipt = router.write("faulty", body, WriteMeta::new(format!("{folder}/lost.ts"))).await.unwrap();
                assert_eq!(receipt.size, SEGMENT_LEN as u64);
                assert_eq!(writes_and_looks(&proxy), (1, 1), "replayable {replayable}: the lost answer, one look");
                assert_eq!(listed(&router, &folder).await, [receipt.object_id.as_str()], "replayable {replayable}");
                assert!(read_all(&router, &receipt.object_id).await.unwrap() == bytes);
                router.delete("faulty", &receipt.object_id).await.unwrap();
            }
        }

        // The look for a lost answer's object meets a reset: it is asked
        // again (the object is stored: the write must neither fail nor be
        // sent again).
        #[tokio::test(flavor = "multi_thread")]
        async fn a_reset_look_for_a_lost_answer_is_asked_again() {
            let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
            let bytes = data(SEGMENT_LEN, 8);
            proxy.push_faults([Fault::DropAnswer, Fault::Reset]);
            let receipt = router.write("faulty", unreplayable(&bytes), WriteMeta::new("faults/confirmed.ts")).await;
            let receipt = receipt.unwrap();
            assert_eq!(writes_and_looks(&proxy), (1, 2), "the lost answer, a reset look and its resend");
            assert!(read_all(&router, &receipt.object_id).await.unwrap() == bytes);
            router.delete("faulty", &receipt.object_id).await.unwrap();
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn retries_honour_retry_after() {
            let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
            let id = router
                .write("faulty", ByteStream::from_bytes(&b"hello"[..]), WriteMeta::new("faults/retry-after.bin"))
                .await
                .unwrap()
                .object_id;
            proxy.clear_log();
            proxy.push_faults([Fault::SlowDown { retry_after_secs: 2 }]);
            let meta = router.stat("faulty", &id).await.unwrap();
            assert_eq!(meta.size, 5);
            let log = proxy.log();
            assert_eq!(log.len(), 2, "expected one refused and one retried request, saw {}", log.len());
            let waited = log[1].at.duration_since(log[0].at);
            assert!(waited >= Duration::from_secs(2), "retried after {waited:?}, before the 2 s Retry-After");
            router.delete("faulty", &id).await.unwrap();
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn attempts_are_bounded() {
            let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
            proxy.set_plan(FaultPlan::seeded(3).internal_errors(1.0));
            let err = router.stat("faulty", "faults/never.bin").await.unwrap_err();
            assert_eq!(err.class(), ErrorClass::Transient, "{err}");
            assert_eq!(proxy.log().len(), MAX_ATTEMPTS as usize, "stat attempts");
            proxy.clear_log();
            let err = router
                .write("faulty", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("faults/never-written.bin"))
                .await
                .unwrap_err();
            assert_eq!(err.class(), ErrorClass::Transient, "{err}");
            assert_eq!(proxy.log().len(), MAX_ATTEMPTS as usize, "write attempts (one request each)");
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn a_stalled_answer_times_out_and_is_retried() {
            let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
            let id = router
                .write("faulty", ByteStream::from_bytes(&b"stall"[..]), WriteMeta::new("faults/stall.bin"))
                .await
                .unwrap()
                .object_id;
            proxy.clear_log();
            proxy.push_faults([Fault::Stall(Duration::from_secs(6))]);
            let started = Instant::now();
            let meta = router.stat("faulty", &id).await.unwrap();
            let elapsed = started.elapsed();
            assert_eq!(meta.size, 5);
            assert!(elapsed >= Duration::from_secs(2), "returned after {elapsed:?}: the stall was not hit");
            assert!(elapsed < Duration::from_secs(6), "waited out the whole {elapsed:?} stall: no request timeout");
            assert_eq!(proxy.log().len(), 2);
            router.delete("faulty", &id).await.unwrap();
        }
    };
}
