//! A fake of pCloud's HTTP JSON API, written from the public docs:
//! - protocol and `result` codes: https://docs.pcloud.com/protocols/http_json_protocol/
//!   and https://docs.pcloud.com/errors/
//! - auth: https://docs.pcloud.com/methods/intro/authentication.html
//!   (`userinfo?getauth=1` returns an `auth` token; OAuth `access_token` as a
//!   Bearer header or parameter)
//! - files: uploadfile (`nopartial`, `renameifexists`: "filename (2).ext"),
//!   stat, deletefile, getfilelink (`hosts` + `path`), and the upload
//!   session methods upload_create / upload_write (`uploadoffset`) /
//!   upload_save / upload_delete
//! - folders: createfolderifnotexists, listfolder (`recursive`)
//!
//! Simplifications (stated, not hidden): datetimes are always Unix seconds
//! (as with the global parameter `timeformat=timestamp`); everything lives
//! in memory; `upload_write` insists on `uploadoffset` == bytes written so
//! far (result 1901; pCloud itself allows sparse writes) so client offset
//! bugs show up; unknown upload ids answer 1900.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

/// Account e-mail the fake accepts.
pub const USERNAME: &str = "fake-user@example.com";
/// Password the fake accepts.
pub const PASSWORD: &str = "fake-pcloud-password";
/// OAuth access token the fake accepts.
pub const ACCESS_TOKEN: &str = "fake-pcloud-oauth-token";

struct File {
    id: u64,
    size: u64,
    data: Bytes,
    modified: u64,
}

#[derive(Default)]
struct Upload {
    len: u64,
    data: Vec<u8>,
}

#[derive(Default)]
struct Fs {
    files: BTreeMap<String, File>,
    folders: BTreeSet<String>,
    uploads: HashMap<u64, Upload>,
    /// Keep sizes only, drop the bytes (memory tests of the client).
    discard: bool,
    auth_tokens: HashSet<String>,
    links: HashMap<String, String>,
    quota: Option<u64>,
    next_id: u64,
}

type Shared = Arc<Mutex<Fs>>;

/// A running pCloud fake on 127.0.0.1; stops when dropped.
pub struct PcloudFake {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PcloudFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PcloudFake {
    /// Start the fake on 127.0.0.1 (a free port), with one account and an empty root.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// A fake that records sizes but drops file bytes: for measuring the
    /// client's memory on huge uploads (reads return nothing useful).
    pub async fn start_discarding() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(discard: bool) -> Self {
        let mut fs = Fs { next_id: 100, discard, ..Fs::default() };
        fs.folders.insert("/".to_owned());
        let state: Shared = Arc::new(Mutex::new(fs));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/dl/{token}", get(download))
            .route("/{method}", any(api))
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PcloudFake { addr, state, task }
    }

    /// Base URL for the client's `api_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Limit the account to `bytes` (uploads past it answer result 2008).
    pub fn set_quota(&self, bytes: u64) {
        self.state.lock().unwrap().quota = Some(bytes);
    }

    /// Upload sessions created and neither saved nor deleted.
    pub fn open_uploads(&self) -> usize {
        self.state.lock().unwrap().uploads.len()
    }

    /// Number of stored files.
    pub fn file_count(&self) -> usize {
        self.state.lock().unwrap().files.len()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn err(code: i64, msg: &str) -> Value {
    json!({ "result": code, "error": msg })
}

fn parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((p, _)) => p.to_owned(),
    }
}

fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, n)| n)
}

fn norm(path: &str) -> Option<String> {
    if !path.starts_with('/') || path.split('/').any(|s| s == "." || s == "..") {
        return None;
    }
    let trimmed = path.trim_end_matches('/');
    Some(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
}

fn file_json(path: &str, f: &File) -> Value {
    let hash = f.data.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3));
    json!({
        "name": name_of(path), "isfolder": false, "fileid": f.id, "id": format!("f{}", f.id),
        "size": f.size, "modified": f.modified, "created": f.modified,
        "hash": hash, "contenttype": "application/octet-stream",
    })
}

fn folder_json(path: &str) -> Value {
    json!({ "name": if path == "/" { "/" } else { name_of(path) }, "isfolder": true, "path": path })
}

async fn api(
    State(state): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let mut body = body;
    if is_form {
        params.extend(url::form_urlencoded::parse(&body).into_owned());
        body = Bytes::new();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
    let answer = handle(&state, &method, &params, &headers, body, &host);
    axum::Json(answer).into_response()
}

fn authorised(fs: &mut Fs, params: &HashMap<String, String>, headers: &HeaderMap) -> Result<(), Value> {
    if let Some(bearer) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return if bearer.strip_prefix("Bearer ") == Some(ACCESS_TOKEN) {
            Ok(())
        } else {
            Err(err(2094, "Invalid 'access_token' provided."))
        };
    }
    if let Some(t) = params.get("access_token") {
        return if t == ACCESS_TOKEN { Ok(()) } else { Err(err(2094, "Invalid 'access_token' provided.")) };
    }
    if let Some(a) = params.get("auth") {
        return if fs.auth_tokens.contains(a) { Ok(()) } else { Err(err(2000, "Log in failed.")) };
    }
    if let (Some(u), Some(p)) = (params.get("username"), params.get("password")) {
        return if u == USERNAME && p == PASSWORD { Ok(()) } else { Err(err(2000, "Log in failed.")) };
    }
    Err(err(1000, "Log in required."))
}

fn handle(
    state: &Shared,
    method: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
    host: &str,
) -> Value {
    let mut fs = state.lock().unwrap();
    if let Err(e) = authorised(&mut fs, params, headers) {
        return e;
    }
    let path_param = |key: &str| -> Result<String, Value> {
        match params.get(key) {
            None => Err(err(1004, "No fileid or path provided.")),
            Some(p) => norm(p).ok_or_else(|| err(2010, "Invalid path.")),
        }
    };
    let used: u64 = fs.files.values().map(|f| f.size).sum();
    let result: Result<Value, Value> = (|| match method {
        "userinfo" => {
            let mut v =
                json!({ "result": 0, "email": USERNAME, "quota": fs.quota.unwrap_or(1 << 40), "usedquota": used });
            if params.get("getauth").map(String::as_str) == Some("1") {
                let token = format!("auth{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
                fs.auth_tokens.insert(token.clone());
                v["auth"] = token.into();
            }
            Ok(v)
        }
        "createfolderifnotexists" => {
            let path = path_param("path")?;
            if fs.files.contains_key(&path) {
                return Err(err(2004, "File or folder alredy exists."));
            }
            if !fs.folders.contains(&parent(&path)) {
                return Err(err(2002, "A component of parent directory does not exist."));
            }
            let created = fs.folders.insert(path.clone());
            Ok(json!({ "result": 0, "created": created, "metadata": folder_json(&path) }))
        }
        "uploadfile" => {
            let folder = path_param("path")?;
            let name = params.get("filename").cloned().ok_or_else(|| err(1004, "No filename provided."))?;
            let meta = store(&mut fs, &folder, &name, body, params.contains_key("renameifexists"), used)?;
            let id = meta["fileid"].clone();
            Ok(json!({ "result": 0, "metadata": [meta], "fileids": [id] }))
        }
        "upload_create" => {
            fs.next_id += 1;
            let id = fs.next_id;
            fs.uploads.insert(id, Upload::default());
            Ok(json!({ "result": 0, "uploadid": id }))
        }
        "upload_write" => {
            let id = upload_id(params)?;
            let offset: u64 = params.get("uploadoffset").and_then(|o| o.parse().ok()).unwrap_or(0);
            let quota = fs.quota;
            let discard = fs.discard;
            let buf = fs.uploads.get_mut(&id).ok_or_else(|| err(1900, "Invalid upload id."))?;
            if offset != buf.len {
                return Err(err(1901, "uploadoffset does not match the bytes written so far."));
            }
            if quota.is_some_and(|q| used + buf.len + body.len() as u64 > q) {
                return Err(err(2008, "User is over quota."));
            }
            buf.len += body.len() as u64;
            if !discard {
                buf.data.extend_from_slice(&body);
            }
            Ok(json!({ "result": 0 }))
        }
        "upload_info" => {
            let id = upload_id(params)?;
            let buf = fs.uploads.get(&id).ok_or_else(|| err(1900, "Invalid upload id."))?;
            Ok(json!({ "result": 0, "size": buf.len }))
        }
        "upload_delete" => {
            let id = upload_id(params)?;
            fs.uploads.remove(&id).ok_or_else(|| err(1900, "Invalid upload id."))?;
            Ok(json!({ "result": 0 }))
        }
        "upload_save" => {
            let id = upload_id(params)?;
            let folder = path_param("path")?;
            let name = params.get("name").cloned().ok_or_else(|| err(1004, "No name provided."))?;
            if !fs.uploads.contains_key(&id) {
                return Err(err(1900, "Invalid upload id."));
            }
            let up = fs.uploads.remove(&id).unwrap_or_default();
            let (len, data) = (up.len, Bytes::from(up.data));
            let saved =
                store_sized(&mut fs, &folder, &name, data.clone(), len, params.contains_key("renameifexists"), 0);
            let meta = match saved {
                Ok(m) => m,
                Err(e) => {
                    // A failed save leaves the session open, as on pCloud.
                    fs.uploads.insert(id, Upload { len, data: data.to_vec() });
                    return Err(e);
                }
            };
            Ok(json!({ "result": 0, "metadata": meta }))
        }
        "stat" => {
            let path = path_param("path")?;
            if let Some(f) = fs.files.get(&path) {
                Ok(json!({ "result": 0, "metadata": file_json(&path, f) }))
            } else if fs.folders.contains(&path) {
                Ok(json!({ "result": 0, "metadata": folder_json(&path) }))
            } else {
                Err(err(2009, "File not found."))
            }
        }
        "deletefile" => {
            let path = path_param("path")?;
            let f = fs.files.remove(&path).ok_or_else(|| err(2009, "File not found."))?;
            let mut meta = file_json(&path, &f);
            meta["isdeleted"] = true.into();
            Ok(json!({ "result": 0, "metadata": meta }))
        }
        "listfolder" => {
            let path = path_param("path")?;
            if !fs.folders.contains(&path) {
                return Err(err(2005, "Directory does not exist."));
            }
            let recursive = params.get("recursive").map(String::as_str) == Some("1");
            Ok(json!({ "result": 0, "metadata": tree(&fs, &path, recursive) }))
        }
        "getfilelink" => {
            let path = path_param("path")?;
            if !fs.files.contains_key(&path) {
                return Err(err(2009, "File not found."));
            }
            let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
            fs.links.insert(token.clone(), path.clone());
            Ok(json!({ "result": 0, "hosts": [host], "path": format!("/dl/{token}"), "expires": now() + 3600 }))
        }
        _ => Err(err(1900, "Unknown method (not implemented by the fake).")),
    })();
    result.unwrap_or_else(|e| e)
}

fn upload_id(params: &HashMap<String, String>) -> Result<u64, Value> {
    params.get("uploadid").and_then(|u| u.parse().ok()).ok_or_else(|| err(1900, "Invalid upload id."))
}

/// Store a file as uploadfile / upload_save do: overwrite by default,
/// "name (2).ext" with renameifexists.
fn store(fs: &mut Fs, folder: &str, name: &str, data: Bytes, rename: bool, used: u64) -> Result<Value, Value> {
    let len = data.len() as u64;
    let data = if fs.discard { Bytes::new() } else { data };
    store_sized(fs, folder, name, data, len, rename, used)
}

fn store_sized(
    fs: &mut Fs,
    folder: &str,
    name: &str,
    data: Bytes,
    size: u64,
    rename: bool,
    used: u64,
) -> Result<Value, Value> {
    if name.is_empty() || name.contains('/') {
        return Err(err(2001, "Invalid file/folder name."));
    }
    if !fs.folders.contains(folder) {
        return Err(err(2005, "Directory does not exist."));
    }
    if fs.quota.is_some_and(|q| used + size > q) {
        return Err(err(2008, "User is over quota."));
    }
    let join = |n: &str| if folder == "/" { format!("/{n}") } else { format!("{folder}/{n}") };
    let mut path = join(name);
    if rename {
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
            _ => (name.to_owned(), String::new()),
        };
        let mut n = 2;
        while fs.files.contains_key(&path) || fs.folders.contains(&path) {
            path = join(&format!("{stem} ({n}){ext}"));
            n += 1;
        }
    } else if fs.folders.contains(&path) {
        return Err(err(2004, "File or folder alredy exists."));
    }
    fs.next_id += 1;
    let file = File { id: fs.next_id, size, data, modified: now() };
    let meta = file_json(&path, &file);
    fs.files.insert(path, file);
    Ok(meta)
}

fn tree(fs: &Fs, folder: &str, recursive: bool) -> Value {
    let prefix = if folder == "/" { "/".to_owned() } else { format!("{folder}/") };
    let direct = |p: &&String| p.starts_with(&prefix) && p.len() > prefix.len() && !p[prefix.len()..].contains('/');
    let mut contents: Vec<Value> = Vec::new();
    for sub in fs.folders.iter().filter(direct) {
        contents.push(if recursive { tree(fs, sub, true) } else { folder_json(sub) });
    }
    for (p, f) in fs.files.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)) {
        if !p[prefix.len()..].contains('/') {
            contents.push(file_json(p, f));
        }
    }
    let mut meta = folder_json(folder);
    meta["contents"] = contents.into();
    meta
}

async fn download(State(state): State<Shared>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let data = {
        let fs = state.lock().unwrap();
        match fs.links.get(&token).and_then(|p| fs.files.get(p)) {
            Some(f) => f.data.clone(),
            None => return StatusCode::NOT_FOUND.into_response(),
        }
    };
    let size = data.len() as u64;
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::OK, data).into_response();
    };
    let spec = range.strip_prefix("bytes=").unwrap_or("");
    let (a, b) = spec.split_once('-').unwrap_or(("", ""));
    let (start, end) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(s), Some(e)) => (s, e.min(size.saturating_sub(1))),
        (Some(s), None) => (s, size.saturating_sub(1)),
        (None, Some(n)) => (size.saturating_sub(n), size.saturating_sub(1)),
        (None, None) => return StatusCode::BAD_REQUEST.into_response(),
    };
    if start >= size || start > end {
        return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{size}"))])
            .into_response();
    }
    let slice = data.slice(start as usize..=end as usize);
    (StatusCode::PARTIAL_CONTENT, [(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"))], slice)
        .into_response()
}
