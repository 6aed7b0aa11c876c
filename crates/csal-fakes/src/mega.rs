//! A fake of MEGA's API, written from MEGA's public documentation (the
//! security white paper and the SDK's documented command protocol):
//! - `POST /cs?id=<seq>&sid=<sid>` with a JSON array of commands; answers an
//!   array of per-command results, negative numbers being error codes
//!   (EARGS -2, EAGAIN -3, ERATELIMIT -4, ENOENT -9, ESID -15,
//!   EOVERQUOTA -17); a bare negative number is a request-wide error;
//! - v2 login: `us0` returns the salt and version 2; `us` checks the user
//!   hash (second half of PBKDF2-HMAC-SHA512(password, salt, 100000, 32))
//!   and returns the master key encrypted with the password key plus a
//!   temporary session id `tsid` = r(16) || AES(master, r) || user handle;
//!   or, for an account with an RSA key pair (`start_rsa`), `privk` (the
//!   private key as four MPIs p, q, d, u = p^-1 mod q, AES-ECB-encrypted with
//!   the master key) and `csid`, the MPI of the 43-byte session id padded
//!   with random bytes to len(n) - 2 bytes and RSA-encrypted (public
//!   exponent 17, as the MEGA SDK's `AsymmCipher` generates keys);
//! - `f` answers the nodes and the account's sequence number `sn`, which
//!   every mutation advances;
//! - `f` (fetch nodes), `p` (put nodes: folders, or files from an upload
//!   completion handle), `d` (delete), `u` (upload URL for a size), `g`
//!   (download URL), `ug` (user info), `uq` (account quota, as the SDK's
//!   `CommandGetUserQuota` in src/commands.cpp asks for it: with `strg: 1`
//!   the answer carries `cstrg`, the bytes stored, and `mstrg`, the
//!   account's maximum; the fake's maximum is its quota, else a free
//!   account's 20 GB);
//! - upload URL: ciphertext POSTed to `<url>/<offset>`; the POST that
//!   completes the declared size answers the completion handle;
//! - download URL: GET `<url>` or `<url>/<start>-<end>` (inclusive).
//!
//! Like the real service it never sees a key in clear: it stores node keys
//! and attributes as the client sent them (encrypted) and file data as
//! ciphertext. Simplification: uploads must arrive in order (offset ==
//! bytes received so far; otherwise the POST answers -2).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use rsa::BigUint;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{Value, json};

/// Account e-mail the fake accepts.
pub const EMAIL: &str = "fake-user@example.com";
/// Password the fake accepts.
pub const PASSWORD: &str = "fake-mega-password";

const ROOT: &str = "ROOTxxxx";

/// A stored node, exactly as a MEGA server holds it (encrypted fields).
#[derive(Clone, Debug)]
pub struct StoredNode {
    /// The node's handle (its id).
    pub handle: String,
    /// The handle of its folder.
    pub parent: String,
    /// MEGA's node type: 0 file, 1 folder, 2 root.
    pub kind: i64,
    /// Encrypted attributes (base64url).
    pub attr: String,
    /// Node key encrypted with the master key (base64url).
    pub key: String,
    /// File size in bytes (0 for folders).
    pub size: u64,
    /// Creation time (Unix seconds).
    pub ts: u64,
}

struct Upload {
    size: u64,
    received: u64,
    data: Vec<u8>,
}

/// The RSA key pair of an account that answers RSA sessions.
struct RsaKeys {
    n: BigUint,
    e: BigUint,
    /// The private key MPIs, AES-ECB-encrypted with the master key.
    enc_privk: Vec<u8>,
}

struct Account {
    rsa: Option<RsaKeys>,
    /// Commands answered, by name (`f`, `p`, ...).
    counts: HashMap<String, u64>,
    /// Sequence number, advanced by every mutation.
    sn: u64,
    salt: [u8; 16],
    user_hash: String,
    enc_master: [u8; 16],
    master: [u8; 16],
    user_handle: String,
    sessions: Vec<String>,
    nodes: Vec<StoredNode>,
    data: HashMap<String, Bytes>,
    uploads: HashMap<String, Upload>,
    completed: HashMap<String, (u64, Bytes)>,
    /// Sizes of stored files (the bytes may be discarded).
    sizes: HashMap<String, u64>,
    /// Keep sizes only, drop the bytes (memory tests of the client).
    discard: bool,
    quota: Option<u64>,
    fail_next: Option<i64>,
    /// Base URL of this fake (for upload and download URLs).
    host: String,
}

type Shared = Arc<Mutex<Account>>;

/// A running MEGA fake on 127.0.0.1; stops when dropped.
pub struct MegaFake {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MegaFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    for x in b.iter_mut() {
        *x = fastrand::u8(..);
    }
    b
}

fn aes_ecb(key: &[u8; 16], block: &mut [u8; 16]) {
    let c = Aes128::new(&(*key).into());
    let mut arr = (*block).into();
    c.encrypt_block(&mut arr);
    *block = arr.into();
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn new_handle() -> String {
    b64(&rand_bytes::<6>())
}

/// One MPI as MEGA encodes it: 2-byte big-endian bit count, then the bytes.
fn mpi(x: &BigUint) -> Vec<u8> {
    let bits = u16::try_from(x.bits()).expect("MPI under 65536 bits");
    let mut out = bits.to_be_bytes().to_vec();
    if bits > 0 {
        out.extend_from_slice(&x.to_bytes_be());
    }
    out
}

/// A 2048-bit key pair (e = 17), the private key encrypted for `master`.
fn rsa_keys(master: &[u8; 16]) -> RsaKeys {
    let e = BigUint::from(17u32);
    let key = rsa::RsaPrivateKey::new_with_exp(&mut rsa::rand_core::OsRng, 2048, &e).expect("RSA key generation");
    let (p, q) = (&key.primes()[0], &key.primes()[1]);
    // u = p^-1 mod q (q is prime, so p^(q-2) mod q).
    let u = p.modpow(&(q - BigUint::from(2u32)), q);
    let mut privk = Vec::new();
    for x in [p, q, key.d(), &u] {
        privk.extend(mpi(x));
    }
    while privk.len() % 16 != 0 {
        privk.push(fastrand::u8(..));
    }
    for block in privk.chunks_exact_mut(16) {
        let mut b: [u8; 16] = block.try_into().expect("16");
        aes_ecb(master, &mut b);
        block.copy_from_slice(&b);
    }
    RsaKeys { n: key.n().clone(), e, enc_privk: privk }
}

impl MegaFake {
    /// Start the fake on 127.0.0.1 (a free port), with one account and an empty root.
    pub async fn start() -> Self {
        Self::start_with(false, false).await
    }

    /// A fake whose account has an RSA key pair, so `us` answers an RSA
    /// session (`csid` + `privk`) as real MEGA accounts do, not a `tsid`.
    pub async fn start_rsa() -> Self {
        Self::start_with(false, true).await
    }

    /// A fake that records sizes but drops file bytes: for measuring the
    /// client's memory on huge uploads (reads return nothing useful).
    pub async fn start_discarding() -> Self {
        Self::start_with(true, false).await
    }

    async fn start_with(discard: bool, with_rsa: bool) -> Self {
        let salt = rand_bytes::<16>();
        let derived = pbkdf2::pbkdf2_hmac_array::<sha2_11::Sha512, 32>(PASSWORD.as_bytes(), &salt, 100_000);
        let pw_key: [u8; 16] = derived[..16].try_into().expect("16");
        let master = rand_bytes::<16>();
        let mut enc_master = master;
        aes_ecb(&pw_key, &mut enc_master);
        let rsa = match with_rsa {
            true => Some(tokio::task::spawn_blocking(move || rsa_keys(&master)).await.expect("RSA key generation")),
            false => None,
        };
        let root = StoredNode {
            handle: ROOT.to_owned(),
            parent: String::new(),
            kind: 2,
            attr: String::new(),
            key: String::new(),
            size: 0,
            ts: now(),
        };
        let account = Account {
            rsa,
            counts: HashMap::new(),
            sn: 1,
            salt,
            user_hash: b64(&derived[16..]),
            enc_master,
            master,
            user_handle: b64(&rand_bytes::<8>()),
            sessions: Vec::new(),
            nodes: vec![root],
            data: HashMap::new(),
            uploads: HashMap::new(),
            completed: HashMap::new(),
            sizes: HashMap::new(),
            discard,
            quota: None,
            fail_next: None,
            host: String::new(),
        };
        let state: Shared = Arc::new(Mutex::new(account));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        state.lock().unwrap().host = format!("http://{addr}");
        let app = Router::new()
            .route("/cs", post(cs))
            .route("/ul/{token}/{offset}", post(upload_chunk))
            .route("/dl/{handle}", get(download_full))
            .route("/dl/{handle}/{range}", get(download_range))
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MegaFake { addr, state, task }
    }

    /// Base URL for the client's `api_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The account's master key (what only the account owner knows), for
    /// tests that decrypt stored data independently.
    pub fn master_key(&self) -> [u8; 16] {
        self.state.lock().unwrap().master
    }

    /// Every file node as stored (encrypted key and attributes).
    pub fn file_nodes(&self) -> Vec<StoredNode> {
        self.state.lock().unwrap().nodes.iter().filter(|n| n.kind == 0).cloned().collect()
    }

    /// The stored ciphertext of a file node.
    pub fn ciphertext(&self, handle: &str) -> Option<Bytes> {
        self.state.lock().unwrap().data.get(handle).cloned()
    }

    /// Flip one stored ciphertext byte (to prove MAC verification).
    pub fn corrupt(&self, handle: &str, offset: usize) {
        let mut a = self.state.lock().unwrap();
        if let Some(d) = a.data.get(handle) {
            let mut v = d.to_vec();
            v[offset] ^= 0x01;
            a.data.insert(handle.to_owned(), Bytes::from(v));
        }
    }

    /// Limit the account (uploads past it answer EOVERQUOTA -17).
    pub fn set_quota(&self, bytes: u64) {
        self.state.lock().unwrap().quota = Some(bytes);
    }

    /// Answer the next logged-in command with `code` (e.g. -3 EAGAIN).
    pub fn fail_next_command(&self, code: i64) {
        self.state.lock().unwrap().fail_next = Some(code);
    }

    /// How many `op` commands (e.g. `"f"`, fetch nodes) the fake answered.
    pub fn command_count(&self, op: &str) -> u64 {
        self.state.lock().unwrap().counts.get(op).copied().unwrap_or(0)
    }

    /// Damage the stored (encrypted) RSA private key: flips a bit in its
    /// second AES block, inside the prime p. No-op without RSA.
    pub fn corrupt_privk(&self) {
        if let Some(k) = self.state.lock().unwrap().rsa.as_mut() {
            k.enc_privk[20] ^= 0x10;
        }
    }

    /// Act as another client that removes every empty folder (repeatedly,
    /// so emptied parents go too).
    pub fn delete_empty_folders(&self) {
        let mut a = self.state.lock().unwrap();
        loop {
            let empty: Vec<String> = a
                .nodes
                .iter()
                .filter(|n| n.kind == 1 && !a.nodes.iter().any(|c| c.parent == n.handle))
                .map(|n| n.handle.clone())
                .collect();
            if empty.is_empty() {
                break;
            }
            a.nodes.retain(|n| !empty.contains(&n.handle));
            a.sn += 1;
        }
    }

    /// Upload URLs handed out and not completed.
    pub fn open_uploads(&self) -> usize {
        self.state.lock().unwrap().uploads.len()
    }
}

async fn cs(State(state): State<Shared>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let Ok(Value::Array(cmds)) = serde_json::from_slice::<Value>(&body) else {
        return axum::Json(json!(-2)).into_response();
    };
    let mut a = state.lock().unwrap();
    let host = a.host.clone();
    let logged_in = params.get("sid").is_some_and(|s| a.sessions.contains(s));
    if params.contains_key("sid") && !logged_in {
        return axum::Json(json!(-15)).into_response();
    }
    let mut results = Vec::new();
    for cmd in cmds {
        let op = cmd.get("a").and_then(Value::as_str).unwrap_or("");
        *a.counts.entry(op.to_owned()).or_default() += 1;
        let r = if !logged_in && op != "us0" && op != "us" {
            json!(-15)
        } else if let (true, Some(code)) = (logged_in, a.fail_next.take()) {
            json!(code)
        } else {
            command(&mut a, op, &cmd, &host)
        };
        results.push(r);
    }
    axum::Json(Value::Array(results)).into_response()
}

fn command(a: &mut Account, op: &str, cmd: &Value, host: &str) -> Value {
    let s = |k: &str| cmd.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    match op {
        "us0" => {
            if s("user").to_lowercase() != EMAIL {
                // Real MEGA answers a deterministic fake salt for unknown users.
                return json!({"v": 2, "s": b64(&[0x5a; 16])});
            }
            json!({"v": 2, "s": b64(&a.salt)})
        }
        "us" => {
            if s("user").to_lowercase() != EMAIL || s("uh") != a.user_hash {
                return json!(-9);
            }
            if let Some(keys) = a.rsa.as_ref() {
                let sid = rand_bytes::<43>();
                let width = keys.n.bits().div_ceil(8) - 2;
                let mut plain = sid.to_vec();
                plain.extend((sid.len()..width).map(|_| fastrand::u8(..)));
                let c = BigUint::from_bytes_be(&plain).modpow(&keys.e, &keys.n);
                let answer = json!({
                    "k": b64(&a.enc_master), "csid": b64(&mpi(&c)), "privk": b64(&keys.enc_privk), "u": a.user_handle,
                });
                a.sessions.push(b64(&sid));
                return answer;
            }
            let r = rand_bytes::<16>();
            let mut check = r;
            aes_ecb(&a.master, &mut check);
            let mut tsid = r.to_vec();
            tsid.extend_from_slice(&check);
            tsid.extend_from_slice(a.user_handle.as_bytes());
            let tsid = b64(&tsid);
            a.sessions.push(tsid.clone());
            json!({"k": b64(&a.enc_master), "tsid": tsid, "u": a.user_handle})
        }
        "ug" => json!({"u": a.user_handle, "email": EMAIL}),
        "uq" => {
            let mut v = json!({"utype": 0});
            if cmd.get("strg").and_then(Value::as_i64) == Some(1) {
                v["cstrg"] = json!(a.sizes.values().sum::<u64>());
                v["mstrg"] = json!(a.quota.unwrap_or(20 * 1024 * 1024 * 1024));
            }
            v
        }
        "f" => {
            let nodes: Vec<Value> = a.nodes.iter().map(|n| node_json(n, &a.user_handle)).collect();
            json!({"f": nodes, "sn": b64(&a.sn.to_be_bytes())})
        }
        "u" => {
            let Some(size) = cmd.get("s").and_then(Value::as_u64) else { return json!(-2) };
            let used: u64 = a.sizes.values().sum();
            if a.quota.is_some_and(|q| used + size > q) {
                return json!(-17);
            }
            let token = b64(&rand_bytes::<12>());
            a.uploads.insert(token.clone(), Upload { size, received: 0, data: Vec::new() });
            json!({"p": format!("{host}/ul/{token}")})
        }
        "p" => {
            let parent = s("t");
            if !a.nodes.iter().any(|n| n.handle == parent && n.kind != 0) {
                return json!(-9);
            }
            let Some(items) = cmd.get("n").and_then(Value::as_array) else { return json!(-2) };
            let mut out = Vec::new();
            for item in items {
                let kind = item.get("t").and_then(Value::as_i64).unwrap_or(-1);
                let h = item.get("h").and_then(Value::as_str).unwrap_or("");
                let (attr, key) = (
                    item.get("a").and_then(Value::as_str).unwrap_or("").to_owned(),
                    item.get("k").and_then(Value::as_str).unwrap_or("").to_owned(),
                );
                if attr.is_empty() || key.is_empty() {
                    return json!(-2);
                }
                let handle = new_handle();
                let size = match kind {
                    1 => 0,
                    0 => {
                        let Some((size, data)) = a.completed.remove(h) else { return json!(-2) };
                        a.data.insert(handle.clone(), data);
                        a.sizes.insert(handle.clone(), size);
                        size
                    }
                    _ => return json!(-2),
                };
                let node = StoredNode { handle, parent: parent.clone(), kind, attr, key, size, ts: now() };
                out.push(node_json(&node, &a.user_handle));
                a.nodes.push(node);
            }
            a.sn += 1;
            json!({"f": out})
        }
        "d" => {
            let h = s("n");
            if !a.nodes.iter().any(|n| n.handle == h && n.kind <= 1) {
                return json!(-9);
            }
            let mut doomed = vec![h];
            let mut i = 0;
            while i < doomed.len() {
                let kids: Vec<String> =
                    a.nodes.iter().filter(|n| n.parent == doomed[i]).map(|n| n.handle.clone()).collect();
                doomed.extend(kids);
                i += 1;
            }
            a.nodes.retain(|n| !doomed.contains(&n.handle));
            for d in &doomed {
                a.data.remove(d);
                a.sizes.remove(d);
            }
            a.sn += 1;
            json!(0)
        }
        "g" => {
            let h = s("n");
            match a.nodes.iter().find(|n| n.handle == h && n.kind == 0) {
                Some(n) => json!({"g": format!("{host}/dl/{h}"), "s": n.size, "at": n.attr}),
                None => json!(-9),
            }
        }
        _ => json!(-2),
    }
}

fn node_json(n: &StoredNode, user: &str) -> Value {
    let mut v = json!({"h": n.handle, "p": n.parent, "t": n.kind, "ts": n.ts, "u": user});
    if n.kind <= 1 {
        v["a"] = n.attr.clone().into();
        v["k"] = format!("{user}:{}", n.key).into();
    }
    if n.kind == 0 {
        v["s"] = n.size.into();
    }
    v
}

async fn upload_chunk(State(state): State<Shared>, Path((token, offset)): Path<(String, u64)>, body: Bytes) -> String {
    let mut a = state.lock().unwrap();
    let discard = a.discard;
    let Some(up) = a.uploads.get_mut(&token) else { return "-9".into() };
    if offset != up.received || offset + body.len() as u64 > up.size {
        return "-2".into();
    }
    up.received += body.len() as u64;
    if !discard {
        up.data.extend_from_slice(&body);
    }
    if up.received == up.size {
        let up = a.uploads.remove(&token).expect("present");
        let completion = b64(&rand_bytes::<27>());
        a.completed.insert(completion.clone(), (up.size, Bytes::from(up.data)));
        return completion;
    }
    String::new()
}

async fn download_full(State(state): State<Shared>, Path(handle): Path<String>) -> Response {
    match state.lock().unwrap().data.get(&handle) {
        Some(d) => (StatusCode::OK, d.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn download_range(State(state): State<Shared>, Path((handle, range)): Path<(String, String)>) -> Response {
    let a = state.lock().unwrap();
    let Some(d) = a.data.get(&handle) else { return StatusCode::NOT_FOUND.into_response() };
    let Some((s, e)) = range.split_once('-') else { return StatusCode::BAD_REQUEST.into_response() };
    let (Ok(s), Ok(e)) = (s.parse::<usize>(), e.parse::<usize>()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if s >= d.len() || s > e {
        return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    }
    (StatusCode::OK, d.slice(s..=e.min(d.len() - 1))).into_response()
}
