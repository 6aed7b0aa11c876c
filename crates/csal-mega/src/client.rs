//! MEGA's JSON command API: `POST <api>/cs?id=<seq>&sid=<session>` with a
//! JSON array of commands, answered by an array of results (a negative
//! number is an error code; a bare negative number instead of the array is
//! an error for the whole request). Login (v2 accounts): `us0` gives the
//! salt, `us` with the PBKDF2 user hash gives the encrypted master key and a
//! temporary session id (`tsid`), which we verify and cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use csal_core::{ErrorKind, ExposeSecret, Result, SecretString, StorageError};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::config::Resolved;
use crate::crypto::{self, Key};
use crate::error;

#[derive(Clone)]
pub(crate) struct Session {
    pub sid: SecretString,
    pub master: Key,
}

pub(crate) struct MegaClient {
    pub http: reqwest::Client,
    api_url: String,
    email: String,
    password: SecretString,
    pub root: Vec<String>,
    seq: AtomicU64,
    session: Mutex<Option<Session>>,
    /// Folder handles by path (under the Cloud Drive root), created or seen;
    /// the lock also serialises folder creation within this process.
    folders: Mutex<HashMap<Vec<String>, String>>,
}

/// One node of the account's tree, decrypted.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub handle: String,
    pub parent: String,
    pub kind: i64,
    pub name: String,
    pub size: u64,
    pub ts: u64,
    /// Full node key: 16 bytes (folder) or 32 bytes (file).
    pub key: Vec<u8>,
}

/// The decrypted tree: nodes by handle plus the Cloud Drive root handle.
pub(crate) struct Tree {
    pub nodes: HashMap<String, Node>,
    pub root: String,
}

impl Tree {
    pub fn child(&self, parent: &str, name: &str) -> Option<&Node> {
        self.nodes.values().find(|n| n.parent == parent && n.name == name)
    }

    pub fn children<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.values().filter(move |n| n.parent == parent)
    }

    /// Handles of the folders at `path` below the Cloud Drive root. MEGA
    /// allows several folders of one name in a parent (another client may
    /// have created one concurrently), so a path can name several folders;
    /// we treat them as one.
    pub fn folders(&self, path: &[String]) -> Vec<String> {
        let mut at = vec![self.root.clone()];
        for seg in path {
            at = at
                .iter()
                .flat_map(|p| self.children(p).filter(|n| n.kind == 1 && &n.name == seg).map(|n| n.handle.clone()))
                .collect();
            at.sort();
            if at.is_empty() {
                break;
            }
        }
        at
    }
}

impl MegaClient {
    pub fn new(r: Resolved) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(r.timeout)
            .build()
            .map_err(|e| StorageError::invalid_config("mega: cannot build HTTP client").with_source(e))?;
        Ok(MegaClient {
            http,
            api_url: r.api_url,
            email: r.email,
            password: r.password,
            root: r.root,
            seq: AtomicU64::new(u64::from(u32::from_ne_bytes(crypto::random::<4>()))),
            session: Mutex::new(None),
            folders: Mutex::new(HashMap::new()),
        })
    }

    async fn raw(&self, sid: Option<&SecretString>, cmds: &Value) -> Result<Value> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed).to_string();
        let mut query = vec![("id", seq.as_str())];
        if let Some(s) = sid {
            query.push(("sid", s.expose_secret()));
        }
        let resp = self
            .http
            .post(format!("{}/cs", self.api_url))
            .query(&query)
            .json(cmds)
            .send()
            .await
            .map_err(|e| error::from_transport("cs", e))?;
        if !resp.status().is_success() {
            return Err(error::from_status("cs", resp.status()));
        }
        let v: Value = resp.json().await.map_err(|e| error::from_transport("cs", e))?;
        if let Some(code) = v.as_i64() {
            return Err(error::from_code("cs", code));
        }
        Ok(v)
    }

    /// One command, answered by its result (negative numbers are errors).
    async fn one(&self, sid: Option<&SecretString>, what: &str, cmd: Value) -> Result<Value> {
        let v = self.raw(sid, &json!([cmd])).await?;
        let r = v.get(0).cloned().unwrap_or(Value::Null);
        match r.as_i64() {
            Some(code) if code < 0 => Err(error::from_code(what, code)),
            _ => Ok(r),
        }
    }

    async fn login(&self) -> Result<Session> {
        let pre = self.one(None, "login (us0)", json!({"a": "us0", "user": self.email})).await?;
        if pre.get("v").and_then(Value::as_i64) != Some(2) {
            return Err(StorageError::unsupported(
                "mega: only v2 accounts (PBKDF2 login) are supported; log in once with a current MEGA client",
            ));
        }
        let salt = pre
            .get("s")
            .and_then(Value::as_str)
            .and_then(crypto::unb64)
            .ok_or_else(|| StorageError::permanent("mega login: no salt in us0 answer"))?;
        let password = self.password.expose_secret().as_bytes().to_vec();
        let (pw_key, uh) = tokio::task::spawn_blocking(move || crypto::derive_v2(&password, &salt))
            .await
            .map_err(|e| StorageError::permanent("mega login: key derivation failed").with_source(e))?;
        let r = match self.one(None, "login (us)", json!({"a": "us", "user": self.email, "uh": uh})).await {
            // MEGA answers ENOENT for a wrong e-mail/password pair.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StorageError::auth("mega login: wrong e-mail or password"));
            }
            other => other?,
        };
        let mut master: Key = r
            .get("k")
            .and_then(Value::as_str)
            .and_then(crypto::unb64)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| StorageError::permanent("mega login: no master key in us answer"))?;
        crypto::ecb_decrypt(&pw_key, &mut master);
        let Some(tsid) = r.get("tsid").and_then(Value::as_str) else {
            return Err(StorageError::unsupported(
                "mega login: the account answered with an RSA session (csid), which this client does not implement yet",
            ));
        };
        let raw = crypto::unb64(tsid).ok_or_else(|| StorageError::auth("mega login: malformed tsid"))?;
        if raw.len() < 32 {
            return Err(StorageError::auth("mega login: malformed tsid"));
        }
        let mut check = [0u8; 16];
        check.copy_from_slice(&raw[..16]);
        crypto::ecb_encrypt(&master, &mut check);
        if check[..] != raw[16..32] {
            return Err(StorageError::auth("mega login: session check failed (wrong password?)"));
        }
        Ok(Session { sid: SecretString::from(tsid.to_owned()), master })
    }

    pub async fn session(&self, fresh: bool) -> Result<Session> {
        let mut cached = self.session.lock().await;
        if !fresh {
            if let Some(s) = cached.as_ref() {
                return Ok(s.clone());
            }
        }
        let s = self.login().await?;
        *cached = Some(s.clone());
        Ok(s)
    }

    /// A command in the logged-in session; logs in again once on ESID.
    pub async fn call(&self, what: &str, cmd: Value) -> Result<(Value, Key)> {
        let s = self.session(false).await?;
        match self.one(Some(&s.sid), what, cmd.clone()).await {
            Err(e) if e.kind() == ErrorKind::Auth => {
                let s = self.session(true).await?;
                Ok((self.one(Some(&s.sid), what, cmd).await?, s.master))
            }
            other => Ok((other?, s.master)),
        }
    }

    /// Fetch and decrypt the whole tree (`f` with `c=1`).
    pub async fn tree(&self) -> Result<Tree> {
        let (v, master) = self.call("fetch nodes", json!({"a": "f", "c": 1})).await?;
        let mut nodes = HashMap::new();
        let mut root = None;
        for n in v.get("f").and_then(Value::as_array).into_iter().flatten() {
            let handle = n.get("h").and_then(Value::as_str).unwrap_or_default().to_owned();
            let kind = n.get("t").and_then(Value::as_i64).unwrap_or(-1);
            if kind == 2 {
                root = Some(handle.clone());
            }
            if kind != 0 && kind != 1 {
                continue;
            }
            let Some(key) = n.get("k").and_then(Value::as_str).and_then(|k| decrypt_node_key(&master, k)) else {
                continue;
            };
            let attr_key = attr_key(&key);
            let Some(name) = n
                .get("a")
                .and_then(Value::as_str)
                .and_then(|a| crypto::decrypt_attr(&attr_key, a))
                .and_then(|a| a.get("n").and_then(Value::as_str).map(str::to_owned))
            else {
                continue;
            };
            nodes.insert(
                handle.clone(),
                Node {
                    handle,
                    parent: n.get("p").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    kind,
                    name,
                    size: n.get("s").and_then(Value::as_u64).unwrap_or(0),
                    ts: n.get("ts").and_then(Value::as_u64).unwrap_or(0),
                    key,
                },
            );
        }
        let root = root.ok_or_else(|| StorageError::permanent("mega: the account has no Cloud Drive root node"))?;
        Ok(Tree { nodes, root })
    }

    /// Handle of the folder `path` (relative to the configured root),
    /// created if missing. Serialised within this process and checked
    /// against a fresh tree, so concurrent writers do not create duplicates.
    pub async fn ensure_folder(&self, path: &[String]) -> Result<String> {
        let full: Vec<String> = self.root.iter().chain(path.iter()).cloned().collect();
        let mut known = self.folders.lock().await;
        if let Some(h) = known.get(&full) {
            return Ok(h.clone());
        }
        let tree = self.tree().await?;
        let mut at = tree.root.clone();
        for depth in 1..=full.len() {
            let prefix = full[..depth].to_vec();
            let existing = known.get(&prefix).cloned().or_else(|| tree.folders(&prefix).into_iter().next());
            at = match existing {
                Some(h) => h,
                None => self.create_folder(&at, &full[depth - 1]).await?,
            };
            known.insert(prefix, at.clone());
        }
        Ok(at)
    }

    async fn create_folder(&self, parent: &str, name: &str) -> Result<String> {
        let key: Key = crypto::random();
        let session = self.session(false).await?;
        let mut enc = key;
        crypto::ecb_encrypt(&session.master, &mut enc);
        let cmd = json!({"a": "p", "t": parent, "n": [{
            "h": "xxxxxxxx", "t": 1, "a": crypto::encrypt_attr(&key, &json!({"n": name})), "k": crypto::b64(&enc),
        }]});
        let (v, _) = self.call("create folder", cmd).await?;
        v.pointer("/f/0/h")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| StorageError::permanent("mega: folder creation returned no node"))
    }

    /// Resolve an object id to its file node.
    pub async fn file(&self, object_id: &str) -> Result<(Tree, Node)> {
        let tree = self.tree().await?;
        let segs: Vec<String> = object_id.split('/').map(str::to_owned).collect();
        let (name, dir) = segs.split_last().expect("non-empty id");
        let full: Vec<String> = self.root.iter().cloned().chain(dir.iter().cloned()).collect();
        let node = tree
            .folders(&full)
            .iter()
            .find_map(|h| tree.child(h, name).filter(|n| n.kind == 0).cloned())
            .ok_or_else(|| StorageError::not_found(format!("mega: no object '{object_id}'")))?;
        Ok((tree, node))
    }
}

/// Node key `k` ("owner:b64key[/owner:b64key...]"), decrypted with the master key.
fn decrypt_node_key(master: &Key, k: &str) -> Option<Vec<u8>> {
    let first = k.split('/').next()?;
    let b = first.split_once(':').map_or(first, |(_, key)| key);
    let mut key = crypto::unb64(b)?;
    if key.len() != 16 && key.len() != 32 {
        return None;
    }
    crypto::ecb_decrypt(master, &mut key);
    Some(key)
}

/// The AES key used for a node's attributes.
pub(crate) fn attr_key(key: &[u8]) -> Key {
    let mut out = [0u8; 16];
    if key.len() == 32 {
        for i in 0..16 {
            out[i] = key[i] ^ key[16 + i];
        }
    } else {
        out.copy_from_slice(&key[..16]);
    }
    out
}
