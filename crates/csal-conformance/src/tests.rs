//! The tests. Each returns an [`Outcome`]; `check!` turns a false condition
//! into a failure with a message, `skip_unless!` skips on a capability.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use csal_core::{
    ByteRange, ByteStream, Checksum, ErrorKind, HealthStatus, InstanceDefinition, ListRequest, Result, StorageError,
    StorageModule, StorageRouter, WriteMeta, WriteReceipt, find_provider,
};
use futures::StreamExt;
use futures::future::BoxFuture;

use crate::data::{chunked, crc_of_generated, crc_of_stream, failing_after, generated, pattern};
use crate::{Ctx, Outcome};

type Test = for<'a> fn(&'a Ctx) -> BoxFuture<'a, Outcome>;

macro_rules! tests {
    ($($name:ident),+ $(,)?) => {
        /// Every conformance test, in run order.
        pub static TESTS: &[(&str, Test)] = &[
            $((stringify!($name), |ctx| Box::pin(async move {
                match $name(ctx).await {
                    Ok(()) => Outcome::Pass,
                    Err(Stop::Fail(why)) => Outcome::Fail(why),
                    Err(Stop::Skip(why)) => Outcome::Skip(why),
                }
            }))),+
        ];
    };
}

tests!(
    validate_succeeds,
    health_check_ok_with_latency,
    roundtrip_empty_object,
    roundtrip_one_byte,
    roundtrip_one_mib_in_uneven_chunks,
    roundtrip_large_object_of_unknown_size,
    receipt_reports_size_and_checksum,
    full_reads_are_verified,
    copy_makes_a_new_object,
    range_first_byte,
    range_middle,
    range_last_byte,
    range_suffix,
    range_open_ended,
    range_end_past_eof_clamps,
    range_start_past_eof_is_error,
    same_key_hint_twice_gives_distinct_ids,
    key_hints_with_unicode_spaces_and_slashes,
    content_type_and_metadata_round_trip,
    stat_reports_size_and_modified_time,
    list_with_prefix_and_pagination,
    list_modified_time_window,
    delete_then_read_is_not_found,
    delete_twice_succeeds,
    unknown_id_is_not_found,
    hostile_object_ids_are_refused,
    failed_body_leaves_no_object,
    concurrent_writers_and_readers,
    presign_read_gives_url,
    errors_never_show_secrets,
    bad_credentials_are_auth_errors,
);

enum Stop {
    Fail(String),
    Skip(String),
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Self {
        Stop::Fail(format!("unexpected error: {e}"))
    }
}

type T = std::result::Result<(), Stop>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Stop::Fail(format!($($msg)+)));
        }
    };
}

macro_rules! skip_unless {
    ($cond:expr, $why:expr) => {
        if !$cond {
            return Err(Stop::Skip($why.to_string()));
        }
    };
}

fn m(ctx: &Ctx) -> &dyn StorageModule {
    ctx.module.as_ref()
}

fn hint(ctx: &Ctx, name: &str) -> WriteMeta {
    WriteMeta::new(format!("{}/{name}", ctx.run_dir))
}

async fn put(ctx: &Ctx, name: &str, data: &Bytes) -> Result<WriteReceipt> {
    m(ctx).write(chunked(data, data.len() as u64), hint(ctx, name)).await
}

async fn get(ctx: &Ctx, id: &str, range: Option<ByteRange>) -> Result<Bytes> {
    m(ctx).read(id, range).await?.collect_limited(64 * 1024 * 1024).await
}

fn expect_kind<X>(result: Result<X>, kinds: &[ErrorKind], what: &str) -> T {
    match result {
        Ok(_) => Err(Stop::Fail(format!("{what}: succeeded, expected one of {kinds:?}"))),
        Err(e) if kinds.contains(&e.kind()) => Ok(()),
        Err(e) => Err(Stop::Fail(format!("{what}: expected one of {kinds:?}, got {:?}: {e}", e.kind()))),
    }
}

async fn roundtrip(ctx: &Ctx, name: &str, len: usize) -> T {
    let data = pattern(len, len as u64 + 1);
    let receipt = put(ctx, name, &data).await?;
    check!(receipt.size == len as u64, "receipt size {} != {len}", receipt.size);
    let back = get(ctx, &receipt.object_id, None).await?;
    check!(back == data, "read back {} bytes that differ from the {len} written", back.len());
    let meta = m(ctx).stat(&receipt.object_id).await?;
    check!(meta.size == len as u64, "stat size {} != {len}", meta.size);
    Ok(())
}

async fn validate_succeeds(ctx: &Ctx) -> T {
    m(ctx).validate().await?;
    Ok(())
}

async fn health_check_ok_with_latency(ctx: &Ctx) -> T {
    let report = m(ctx).health_check().await;
    check!(report.status == HealthStatus::Ok, "status {:?}: {:?}", report.status, report.last_error);
    check!(report.latency.is_some(), "no latency reported");
    Ok(())
}

async fn roundtrip_empty_object(ctx: &Ctx) -> T {
    roundtrip(ctx, "empty.bin", 0).await
}

async fn roundtrip_one_byte(ctx: &Ctx) -> T {
    roundtrip(ctx, "one.bin", 1).await
}

async fn roundtrip_one_mib_in_uneven_chunks(ctx: &Ctx) -> T {
    roundtrip(ctx, "one-mib.bin", 1024 * 1024).await
}

async fn roundtrip_large_object_of_unknown_size(ctx: &Ctx) -> T {
    let len = ctx.target.large_size;
    let receipt = m(ctx).write(generated(len, 7), hint(ctx, "large.bin")).await?;
    check!(receipt.size == len as u64, "receipt size {} != {len}", receipt.size);
    let (crc, got) = crc_of_stream(m(ctx).read(&receipt.object_id, None).await?).await?;
    check!(got == len as u64, "read back {got} of {len} bytes");
    check!(crc == crc_of_generated(len, 7).await?, "read back bytes differ (crc32c mismatch)");
    Ok(())
}

async fn receipt_reports_size_and_checksum(ctx: &Ctx) -> T {
    let data = pattern(300_001, 3);
    let receipt = put(ctx, "checksum.bin", &data).await?;
    check!(receipt.size == data.len() as u64, "size {} != {}", receipt.size, data.len());
    let sum = receipt.checksum.as_ref().ok_or_else(|| Stop::Fail("receipt has no checksum".into()))?;
    if sum.algorithm == "crc32c" {
        let want = format!("{:08x}", crc32c::crc32c(&data));
        check!(sum.value == want, "crc32c {} != {want}", sum.value);
    }
    check!(receipt.instance.as_deref() == Some("conformance"), "receipt does not name the instance");
    Ok(())
}

/// A full read checked against the caller's checksum passes when it
/// matches and ends with `Integrity` when not; a provider that says it
/// keeps checksums (`verified_reads`) hands back the written CRC32C.
async fn full_reads_are_verified(ctx: &Ctx) -> T {
    let data = pattern(200_003, 11);
    let receipt = put(ctx, "verified.bin", &data).await?;
    let written = Checksum::crc32c(crc32c::crc32c(&data));
    let back = ctx.module.read_verified(&receipt.object_id, &written).await?.collect_limited(1 << 20).await?;
    check!(back == data, "verified read returned {} bytes that differ from the written", back.len());
    let wrong = Checksum::crc32c(crc32c::crc32c(&data) ^ 0x10);
    let body = ctx.module.read_verified(&receipt.object_id, &wrong).await?;
    expect_kind(body.collect_limited(1 << 20).await, &[ErrorKind::Integrity], "read against a wrong checksum")?;
    if m(ctx).capabilities().verified_reads {
        let raw = ctx.module.inner().read(&receipt.object_id, None).await?;
        check!(
            raw.stored_checksum() == Some(&written),
            "provider claims verified_reads but a full read carries {:?}, not {written:?}",
            raw.stored_checksum()
        );
    }
    Ok(())
}

/// `copy` (server-side or streamed, as the capability says) gives a new
/// object with its own id and the same bytes, leaves the source alone, and
/// a missing source is `NotFound`.
async fn copy_makes_a_new_object(ctx: &Ctx) -> T {
    let data = pattern(150_001, 13);
    let source = put(ctx, "copy-source.bin", &data).await?;
    let copy = m(ctx).copy(&source.object_id, hint(ctx, "copy-source.bin")).await?;
    check!(copy.object_id != source.object_id, "the copy got the source's id {}", copy.object_id);
    check!(copy.size == data.len() as u64, "copy receipt size {} != {}", copy.size, data.len());
    check!(copy.instance.as_deref() == Some("conformance"), "copy receipt does not name the instance");
    if let Some(sum) = copy.checksum.as_ref().filter(|c| c.algorithm == "crc32c") {
        check!(*sum == Checksum::crc32c(crc32c::crc32c(&data)), "copy receipt checksum {sum:?} is not the data's");
    }
    let back = get(ctx, &copy.object_id, None).await?;
    check!(back == data, "the copy reads back {} bytes that differ", back.len());
    let original = get(ctx, &source.object_id, None).await?;
    check!(original == data, "the source changed after the copy");
    let missing = format!("{}/no-such-object.bin", ctx.run_dir);
    expect_kind(m(ctx).copy(&missing, hint(ctx, "never.bin")).await, &[ErrorKind::NotFound], "copy of a missing object")
}

/// A 100 KiB object shared by the range tests.
async fn range_fixture(ctx: &Ctx) -> std::result::Result<(String, Bytes), Stop> {
    skip_unless!(m(ctx).capabilities().ranged_read, "provider cannot read byte ranges");
    let data = pattern(100 * 1024 + 7, 42);
    let receipt = put(ctx, "range.bin", &data).await?;
    Ok((receipt.object_id, data))
}

async fn check_range(ctx: &Ctx, range: ByteRange, want: impl Fn(&Bytes) -> Bytes) -> T {
    let (id, data) = range_fixture(ctx).await?;
    let got = get(ctx, &id, Some(range)).await?;
    let want = want(&data);
    check!(
        got == want,
        "range {range}: got {} bytes, want {} (content differs: {})",
        got.len(),
        want.len(),
        got != want
    );
    Ok(())
}

async fn range_first_byte(ctx: &Ctx) -> T {
    check_range(ctx, ByteRange::inclusive(0, 0), |d| d.slice(0..1)).await
}

async fn range_middle(ctx: &Ctx) -> T {
    check_range(ctx, ByteRange::inclusive(1000, 50_999), |d| d.slice(1000..51_000)).await
}

async fn range_last_byte(ctx: &Ctx) -> T {
    let last = 100 * 1024 + 6;
    check_range(ctx, ByteRange::inclusive(last, last), |d| d.slice(d.len() - 1..)).await
}

async fn range_suffix(ctx: &Ctx) -> T {
    check_range(ctx, ByteRange::suffix(500), |d| d.slice(d.len() - 500..)).await
}

async fn range_open_ended(ctx: &Ctx) -> T {
    check_range(ctx, ByteRange::from(100_000), |d| d.slice(100_000..)).await
}

async fn range_end_past_eof_clamps(ctx: &Ctx) -> T {
    check_range(ctx, ByteRange::inclusive(100_000, 10_000_000), |d| d.slice(100_000..)).await
}

async fn range_start_past_eof_is_error(ctx: &Ctx) -> T {
    let (id, data) = range_fixture(ctx).await?;
    let len = data.len() as u64;
    let result = get(ctx, &id, Some(ByteRange::inclusive(len + 10, len + 20))).await;
    expect_kind(result, &[ErrorKind::RangeNotSatisfiable], "range starting past EOF")
}

async fn same_key_hint_twice_gives_distinct_ids(ctx: &Ctx) -> T {
    let (a, b) = (pattern(1000, 1), pattern(1000, 2));
    let ra = put(ctx, "same-hint.bin", &a).await?;
    let rb = put(ctx, "same-hint.bin", &b).await?;
    check!(ra.object_id != rb.object_id, "both writes got id {}", ra.object_id);
    check!(get(ctx, &ra.object_id, None).await? == a, "first object was changed by the second write");
    check!(get(ctx, &rb.object_id, None).await? == b, "second object does not read back");
    Ok(())
}

async fn key_hints_with_unicode_spaces_and_slashes(ctx: &Ctx) -> T {
    let hints = [
        "ünïcødé/ファイル名 with spaces.mp4",
        "deep/path/of/folders/seg 001.ts",
        "../../escape/attempt.bin",
        "back\\slash\\name.bin",
        "   ",
        "percent%20and?query#hash&amp.bin",
    ];
    let mut ids = HashSet::new();
    for (i, h) in hints.iter().enumerate() {
        let data = pattern(100 + i, i as u64);
        let meta = WriteMeta::new(format!("{}/hints/{h}", ctx.run_dir));
        let receipt = m(ctx).write(ByteStream::from_bytes(data.clone()), meta).await?;
        check!(ids.insert(receipt.object_id.clone()), "duplicate id {}", receipt.object_id);
        check!(
            get(ctx, &receipt.object_id, None).await? == data,
            "hint {h:?} (id {:?}) does not read back",
            receipt.object_id
        );
    }
    Ok(())
}

async fn content_type_and_metadata_round_trip(ctx: &Ctx) -> T {
    let caps = m(ctx).capabilities();
    skip_unless!(caps.content_type || caps.user_metadata, "provider stores neither content type nor user metadata");
    let mut meta = hint(ctx, "typed.mp4").with_content_type("video/mp4");
    meta.metadata.insert("camera".into(), "cam-5".into());
    let receipt = m(ctx).write(ByteStream::from_bytes(pattern(2048, 5)), meta).await?;
    let stat = m(ctx).stat(&receipt.object_id).await?;
    if caps.content_type {
        check!(stat.content_type.as_deref() == Some("video/mp4"), "content type {:?}", stat.content_type);
    }
    if caps.user_metadata {
        check!(stat.metadata.get("camera").map(String::as_str) == Some("cam-5"), "metadata {:?}", stat.metadata);
    }
    Ok(())
}

async fn stat_reports_size_and_modified_time(ctx: &Ctx) -> T {
    let before = SystemTime::now();
    let receipt = put(ctx, "stat.bin", &pattern(4321, 9)).await?;
    let meta = m(ctx).stat(&receipt.object_id).await?;
    check!(meta.size == 4321, "size {}", meta.size);
    check!(meta.object_id == receipt.object_id, "stat id {} != {}", meta.object_id, receipt.object_id);
    if m(ctx).capabilities().modified_time {
        let modified = meta.modified.ok_or_else(|| Stop::Fail("no modified time".into()))?;
        let skew = Duration::from_secs(3600);
        check!(
            modified + skew >= before && modified <= SystemTime::now() + skew,
            "modified time {modified:?} is not around now"
        );
    }
    Ok(())
}

async fn list_all(ctx: &Ctx, request: ListRequest) -> std::result::Result<(Vec<String>, usize), Stop> {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut request = request;
    loop {
        let page = m(ctx).list(&request).await?;
        pages += 1;
        if let Some(limit) = request.limit {
            check!(page.objects.len() <= limit, "page of {} objects exceeds limit {limit}", page.objects.len());
        }
        ids.extend(page.objects.into_iter().map(|o| o.object_id));
        match page.next_page {
            Some(token) => {
                check!(request.continuation.as_ref() != Some(&token), "continuation token did not advance");
                check!(pages < 100_000, "listing does not end");
                request.continuation = Some(token);
            }
            None => return Ok((ids, pages)),
        }
    }
}

async fn list_with_prefix_and_pagination(ctx: &Ctx) -> T {
    let n = ctx.target.list_objects;
    let dir = format!("{}/list", ctx.run_dir);
    let module = ctx.module.clone();
    let written: Vec<Result<WriteReceipt>> = futures::stream::iter(0..n)
        .map(|i| {
            let module = module.clone();
            let name = if i % 2 == 0 { format!("{dir}/a-{i:05}.bin") } else { format!("{dir}/b-{i:05}.bin") };
            async move { module.write(ByteStream::from_bytes(pattern(16, i as u64)), WriteMeta::new(name)).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut all = BTreeSet::new();
    let mut a_ids = BTreeSet::new();
    for r in written {
        let r = r?;
        if r.object_id.contains("/a-") {
            a_ids.insert(r.object_id.clone());
        }
        all.insert(r.object_id);
    }
    let paginates = m(ctx).capabilities().list_pagination;
    let limit = if paginates { Some(n / 4 + 1) } else { None };
    let mut request = ListRequest::new(dir.clone());
    request.limit = limit;
    let (ids, pages) = list_all(ctx, request).await?;
    let seen: BTreeSet<String> = ids.iter().cloned().collect();
    check!(seen.len() == ids.len(), "listing returned {} duplicates", ids.len() - seen.len());
    check!(
        seen == all,
        "listing found {} ids, wrote {} (missing {}, extra {})",
        seen.len(),
        all.len(),
        all.difference(&seen).count(),
        seen.difference(&all).count()
    );
    if paginates {
        check!(pages >= 4, "{} objects with limit {:?} came in {pages} page(s)", n, limit);
    }
    let mut prefixed = ListRequest::new(dir).with_prefix("a-");
    prefixed.limit = limit;
    let (ids, _) = list_all(ctx, prefixed).await?;
    let seen: BTreeSet<String> = ids.into_iter().collect();
    check!(seen == a_ids, "prefix listing found {} ids, expected {}", seen.len(), a_ids.len());
    Ok(())
}

async fn list_modified_time_window(ctx: &Ctx) -> T {
    skip_unless!(m(ctx).capabilities().modified_time, "provider keeps no modification times");
    let receipt = put(ctx, "window/one.bin", &pattern(10, 1)).await?;
    let dir = format!("{}/window", ctx.run_dir);
    let far_future = SystemTime::now() + Duration::from_secs(10 * 365 * 24 * 3600);
    let far_past = SystemTime::UNIX_EPOCH + Duration::from_secs(3600);
    let mut future_only = ListRequest::new(dir.clone());
    future_only.modified_after = Some(far_future);
    let (ids, _) = list_all(ctx, future_only).await?;
    check!(ids.is_empty(), "modified_after far future still listed {ids:?}");
    let mut window = ListRequest::new(dir);
    window.modified_after = Some(far_past);
    window.modified_before = Some(far_future);
    let (ids, _) = list_all(ctx, window).await?;
    check!(ids == vec![receipt.object_id.clone()], "window listing gave {ids:?}");
    Ok(())
}

async fn delete_then_read_is_not_found(ctx: &Ctx) -> T {
    let receipt = put(ctx, "delete-me.bin", &pattern(10, 1)).await?;
    m(ctx).delete(&receipt.object_id).await?;
    expect_kind(get(ctx, &receipt.object_id, None).await, &[ErrorKind::NotFound], "read after delete")?;
    expect_kind(m(ctx).stat(&receipt.object_id).await, &[ErrorKind::NotFound], "stat after delete")
}

async fn delete_twice_succeeds(ctx: &Ctx) -> T {
    let receipt = put(ctx, "delete-twice.bin", &pattern(10, 1)).await?;
    m(ctx).delete(&receipt.object_id).await?;
    m(ctx).delete(&receipt.object_id).await?;
    Ok(())
}

async fn unknown_id_is_not_found(ctx: &Ctx) -> T {
    let id = format!("{}/never-written-{}.bin", ctx.run_dir, ulid::Ulid::new());
    expect_kind(get(ctx, &id, None).await, &[ErrorKind::NotFound], "read of unknown id")?;
    expect_kind(m(ctx).stat(&id).await, &[ErrorKind::NotFound], "stat of unknown id")?;
    m(ctx).delete(&id).await.map_err(|e| Stop::Fail(format!("delete of unknown id: {e}")))
}

async fn hostile_object_ids_are_refused(ctx: &Ctx) -> T {
    let canary_data = pattern(64, 77);
    let canary = put(ctx, "canary/keep.bin", &canary_data).await?.object_id;
    let name = canary.rsplit('/').next().unwrap_or_default().to_owned();
    let hostile = [
        "../x".to_owned(),
        "/etc/passwd".to_owned(),
        "a/../../b".to_owned(),
        "nul\0byte".to_owned(),
        "..".to_owned(),
        "a//b".to_owned(),
        "\\windows\\system32".to_owned(),
        format!("{}/canary/../canary/{name}", ctx.run_dir),
        format!("{}/canary/./{name}", ctx.run_dir),
        format!("/{canary}"),
        format!("{canary}/"),
    ];
    // Ids are checked once, by the layers (providers trust them).
    for id in &hostile {
        let refused = [ErrorKind::InvalidInput];
        expect_kind(m(ctx).read(id, None).await, &refused, &format!("read {id:?}"))?;
        expect_kind(m(ctx).stat(id).await, &refused, &format!("stat {id:?}"))?;
        expect_kind(m(ctx).delete(id).await, &refused, &format!("delete {id:?}"))?;
    }
    check!(get(ctx, &canary, None).await? == canary_data, "canary object was touched by a hostile id");
    Ok(())
}

async fn failed_body_leaves_no_object(ctx: &Ctx) -> T {
    let dir = format!("{}/failed", ctx.run_dir);
    let result = m(ctx).write(failing_after(300 * 1024), WriteMeta::new(format!("{dir}/broken.bin"))).await;
    check!(result.is_err(), "write of a body that failed mid-way reported success");
    let (ids, _) = list_all(ctx, ListRequest::new(dir)).await?;
    check!(ids.is_empty(), "a failed write left objects behind: {ids:?}");
    Ok(())
}

async fn concurrent_writers_and_readers(ctx: &Ctx) -> T {
    let module = ctx.module.clone();
    let dir = format!("{}/concurrent", ctx.run_dir);
    let tasks = (0..32u64).map(|i| {
        let module = module.clone();
        let dir = dir.clone();
        tokio::spawn(async move {
            let data = pattern(64 * 1024 + i as usize, 1000 + i);
            let receipt = module.write(chunked(&data, i), WriteMeta::new(format!("{dir}/w{i}.bin"))).await?;
            let back = module.read(&receipt.object_id, None).await?.collect_limited(1 << 20).await?;
            Ok::<_, StorageError>((receipt.object_id, back == data))
        })
    });
    let mut ids = HashSet::new();
    for r in futures::future::join_all(tasks).await {
        let (id, same) = r.map_err(|e| Stop::Fail(format!("task panicked: {e}")))??;
        check!(same, "concurrent object {id} read back different bytes");
        check!(ids.insert(id.clone()), "two concurrent writes got id {id}");
    }
    Ok(())
}

async fn presign_read_gives_url(ctx: &Ctx) -> T {
    skip_unless!(m(ctx).capabilities().presign, "provider cannot presign URLs");
    let receipt = put(ctx, "presign.bin", &pattern(10, 1)).await?;
    let url = m(ctx).presign_read(&receipt.object_id, Duration::from_secs(300)).await?;
    check!(url.starts_with("http://") || url.starts_with("https://"), "not a URL: {url}");
    Ok(())
}

fn configured_secrets(provider_type: &str, config: &serde_json::Value) -> Vec<String> {
    find_provider(provider_type)
        .map(|reg| csal_core::secret::secret_values(reg.fields, config))
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.len() >= 3)
        .collect()
}

fn leaks(e: &StorageError, secrets: &[String]) -> Option<String> {
    let shown = format!("{e} {e:?}");
    secrets.iter().find(|s| shown.contains(s.as_str())).map(|_| shown.chars().take(200).collect())
}

async fn errors_never_show_secrets(ctx: &Ctx) -> T {
    let secrets = configured_secrets(&ctx.target.provider_type, &ctx.target.config);
    let missing = format!("{}/missing.bin", ctx.run_dir);
    let errors: Vec<StorageError> = vec![
        get(ctx, &missing, None).await.err(),
        m(ctx).stat(&missing).await.err(),
        m(ctx).stat("../hostile").await.err(),
        m(ctx).write(failing_after(10), hint(ctx, "x.bin")).await.err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    check!(errors.len() == 4, "expected 4 errors, got {}", errors.len());
    for e in &errors {
        check!(!e.to_string().contains('\n'), "error Display is not one line: {e}");
        if let Some(shown) = leaks(e, &secrets) {
            return Err(Stop::Fail(format!("an error shows a configured secret: {shown}")));
        }
    }
    let shown_config = format!("{:?}", ctx.module.inner().capabilities());
    check!(secrets.iter().all(|s| !shown_config.contains(s.as_str())), "capabilities show a secret");
    Ok(())
}

async fn bad_credentials_are_auth_errors(ctx: &Ctx) -> T {
    let config = match &ctx.target.bad_credentials {
        Some(c) => c.clone(),
        None => {
            let secret_fields =
                find_provider(&ctx.target.provider_type).map(|r| r.fields.iter().any(|f| f.kind.is_secret()));
            return Err(if secret_fields.unwrap_or(false) {
                Stop::Fail("target has secret fields but no bad_credentials config to test them".into())
            } else {
                Stop::Skip("provider has no credentials (no secret config fields)".into())
            });
        }
    };
    let secrets = configured_secrets(&ctx.target.provider_type, &config);
    let def = InstanceDefinition::new("bad-credentials", &ctx.target.provider_type, config);
    let router = StorageRouter::from_definitions(&[def]);
    let module = router.module("bad-credentials")?;
    let write = module.write(ByteStream::from_bytes(pattern(10, 1)), hint(ctx, "denied.bin")).await;
    match &write {
        Err(e) if e.kind() == ErrorKind::Auth => {}
        Err(e) => {
            return Err(Stop::Fail(format!("write with bad credentials: expected Auth, got {:?}: {e}", e.kind())));
        }
        Ok(r) => return Err(Stop::Fail(format!("write with bad credentials succeeded ({})", r.object_id))),
    }
    if let Err(e) = &write
        && let Some(shown) = leaks(e, &secrets)
    {
        return Err(Stop::Fail(format!("auth error shows the secret: {shown}")));
    }
    let health = module.health_check().await;
    check!(health.status != HealthStatus::Ok, "health check with bad credentials says ok");
    let shown = format!("{:?}", health.last_error);
    check!(secrets.iter().all(|s| !shown.contains(s.as_str())), "health report shows the secret");
    Ok(())
}
