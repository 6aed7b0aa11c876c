//! Data commands: put, get, ls, stat, rm, url. Bodies stream chunk by
//! chunk; nothing reads a whole object into memory.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use csal_catalog::Catalog;
use csal_core::stream::DEFAULT_CHUNK_SIZE;
use csal_core::{ByteRange, ByteStream, ListRequest, ObjectMeta, WriteMeta};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::exit::{CliError, CliResult};
use crate::output;

/// A bytes + rate progress bar on stderr, when `wanted` (no -q or
/// --no-progress) and stderr is a terminal.
fn progress(wanted: bool, total: Option<u64>, what: &str) -> Option<ProgressBar> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg} {spinner} {bytes} {binary_bytes_per_sec}").expect("valid template"),
        ),
    };
    pb.set_message(what.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    Some(pb)
}

fn with_progress(body: ByteStream, pb: &Option<ProgressBar>) -> ByteStream {
    match pb {
        Some(pb) => {
            let pb = pb.clone();
            body.inspect_chunks(move |c| pb.inc(c.len() as u64))
        }
        None => body,
    }
}

/// A content type from the file extension (common archive/video types).
fn guess_content_type(name: &str) -> Option<&'static str> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mkv" => "video/x-matroska",
        "ts" => "video/mp2t",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "json" => "application/json",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => return None,
    })
}

pub async fn put(
    cat: &Catalog,
    name: &str,
    file: &str,
    key_hint: Option<String>,
    content_type: Option<String>,
    json: bool,
    show_progress: bool,
) -> CliResult {
    let router = cat.router();
    // Fail on an unknown or unavailable module before reading any input.
    router.module(name)?;
    let (body, default_hint) = if file == "-" {
        (ByteStream::from_reader(tokio::io::stdin(), DEFAULT_CHUNK_SIZE, None), "stdin".to_owned())
    } else {
        let meta = std::fs::metadata(file).map_err(|e| CliError::usage(format!("cannot read {file}: {e}")))?;
        if !meta.is_file() {
            return Err(CliError::usage(format!("{file} is not a regular file")));
        }
        let body = ByteStream::from_file(file).await?;
        let hint = Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (body, hint)
    };
    let hint = key_hint.unwrap_or(default_hint);
    let content_type = content_type.or_else(|| guess_content_type(&hint).map(str::to_owned));
    let pb = progress(show_progress, body.size(), "put");
    let body = with_progress(body, &pb);
    let mut meta = WriteMeta::new(hint);
    meta.content_type = content_type;
    let result = router.write(name, body, meta).await;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let receipt = result?;
    if json {
        output::json(&receipt);
    } else {
        println!("{}", receipt.object_id);
    }
    Ok(())
}

pub async fn get(
    cat: &Catalog,
    name: &str,
    object_id: &str,
    output: &str,
    range: Option<String>,
    show_progress: bool,
) -> CliResult {
    let range = range.as_deref().map(ByteRange::parse).transpose()?;
    let router = cat.router();
    let body = router.read(name, object_id, range).await?;
    let pb = progress(show_progress, body.size(), "get");
    let body = with_progress(body, &pb);
    let result = if output == "-" {
        let mut stdout = tokio::io::stdout();
        body.write_to(&mut stdout).await.map(|_| ())
    } else {
        write_file(body, Path::new(output)).await
    };
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    result?;
    Ok(())
}

/// Write to `FILE.csal-part`, then rename: a failed read leaves no partial file.
async fn write_file(body: ByteStream, path: &Path) -> csal_core::Result<()> {
    let mut part = path.as_os_str().to_owned();
    part.push(".csal-part");
    let part = std::path::PathBuf::from(part);
    let mut file = tokio::fs::File::create(&part).await?;
    let written = body.write_to(&mut file).await;
    let synced = match written {
        Ok(_) => file.sync_all().await.map_err(Into::into),
        Err(e) => Err(e),
    };
    drop(file);
    match synced {
        Ok(()) => tokio::fs::rename(&part, path).await.map_err(Into::into),
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

fn meta_row(m: &ObjectMeta) -> Vec<String> {
    vec![
        m.size.to_string(),
        m.modified.map(|t| humantime::format_rfc3339_seconds(t).to_string()).unwrap_or_else(|| "-".into()),
        m.object_id.clone(),
    ]
}

/// Print each page as it arrives (with `--json`: NDJSON, one object per
/// line), so memory holds one page and the first lines come before the
/// provider has served the last page.
pub async fn ls(cat: &Catalog, name: &str, path: &str, prefix: Option<String>, json: bool) -> CliResult {
    let router = cat.router();
    let mut request = ListRequest::new(path);
    request.prefix = prefix;
    let mut stdout = tokio::io::stdout();
    loop {
        let page = router.list(name, &request).await?;
        let mut text = Vec::new();
        for m in &page.objects {
            if json {
                serde_json::to_writer(&mut text, m).map_err(|e| CliError::other(format!("cannot serialise: {e}")))?;
                text.push(b'\n');
            } else {
                let r = meta_row(m);
                text.extend_from_slice(format!("{:>12}  {:<20}  {}\n", r[0], r[1], r[2]).as_bytes());
            }
        }
        stdout.write_all(&text).await?;
        stdout.flush().await?;
        match page.next_page {
            Some(token) => request.continuation = Some(token),
            None => break,
        }
    }
    Ok(())
}

pub async fn stat(cat: &Catalog, name: &str, object_id: &str, json: bool) -> CliResult {
    let meta = cat.router().stat(name, object_id).await?;
    if json {
        output::json(&meta);
    } else {
        println!("id:           {}", meta.object_id);
        println!("size:         {} ({})", meta.size, output::human_bytes(meta.size));
        if let Some(t) = meta.modified {
            println!("modified:     {}", humantime::format_rfc3339_seconds(t));
        }
        if let Some(ct) = &meta.content_type {
            println!("content type: {ct}");
        }
        if let Some(e) = &meta.etag {
            println!("etag:         {e}");
        }
        if let Some(c) = &meta.checksum {
            println!("checksum:     {}:{}", c.algorithm, c.value);
        }
        for (k, v) in &meta.metadata {
            println!("meta {k}: {v}");
        }
    }
    Ok(())
}

pub async fn rm(cat: &Catalog, name: &str, object_id: &str, json: bool) -> CliResult {
    // A recorded segment under a legal hold is never deleted through CSAL.
    let module = cat.router().handle(name)?.definition().name.clone();
    cat.check_not_held(&module, object_id).await?;
    cat.router().delete(name, object_id).await?;
    if json {
        output::json(&json!({"deleted": object_id}));
    } else {
        println!("deleted {object_id}");
    }
    Ok(())
}

pub async fn url(cat: &Catalog, name: &str, object_id: &str, expires: u64, json: bool) -> CliResult {
    if expires == 0 {
        return Err(CliError::usage("--expires must be at least 1 second"));
    }
    let url = cat.router().presign_read(name, object_id, Duration::from_secs(expires)).await?;
    if json {
        output::json(&json!({"url": url, "expires_in_secs": expires}));
    } else {
        println!("{url}");
    }
    Ok(())
}
