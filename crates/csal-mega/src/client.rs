//! MEGA's JSON command API: `POST <api>/cs?id=<seq>&sid=<session>` with a
//! JSON array of commands, answered by an array of results (a negative
//! number is an error code; a bare negative number instead of the array is
//! an error for the whole request).
//!
//! Login (v2 accounts): `us0` gives the salt, `us` with the PBKDF2 user hash
//! gives the encrypted master key and either a temporary session id
//! (`tsid`, accounts without a key pair: verified with the master key) or an
//! RSA session (`csid` + `privk`, every account with a key pair: the session
//! id is RSA-decrypted with the private key, itself AES-decrypted with the
//! master key). The session is cached and renewed once on `ESID`.
//!
//! Node tree cache: the decrypted tree (`f`, with its `sn` sequence number)
//! is kept per session and updated from this client's own mutations (`p`
//! answers for new folders and files, `d` for deletions). A lookup that
//! misses refetches the tree once before answering NotFound (another client
//! may have written the object); an ENOENT for a cached handle, or a new
//! session, drops the cache. A listing's first page always refetches.

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
    /// Limit of one API call or upload chunk; downloads are bounded by the
    /// read timeout between chunks instead.
    pub request_timeout: Duration,
    email: String,
    password: SecretString,
    pub root: Vec<String>,
    seq: AtomicU64,
    session: Mutex<Option<Session>>,
    cache: std::sync::Mutex<Cache>,
    /// One tree fetch at a time; concurrent misses share it.
    fetch_lock: Mutex<()>,
    /// Serialises folder creation within this process.
    folder_lock: Mutex<()>,
}

/// The cached tree plus what happened to it while a fetch was in flight.
#[derive(Default)]
struct Cache {
    tree: Option<Tree>,
    /// Fetches started so far (they run one at a time).
    fetches: u64,
    /// Which fetch (by `fetches` count) produced `tree`.
    tree_fetch: u64,
    fetching: bool,
    /// Own mutations made during the current fetch, replayed on the result
    /// (the fetch may have been answered before they happened).
    journal: Vec<Change>,
}

/// Stops journalling when a fetch ends, however it ends.
struct EndJournal<'a>(&'a std::sync::Mutex<Cache>);

impl Drop for EndJournal<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.0.lock() {
            c.fetching = false;
            c.journal.clear();
        }
    }
}

enum Change {
    Add(Node),
    Remove(String),
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

/// The decrypted tree: nodes by handle, children by parent, the Cloud
/// Drive root handle and the server sequence number it reflects.
pub(crate) struct Tree {
    nodes: HashMap<String, Node>,
    kids: HashMap<String, Vec<String>>,
    pub root: String,
    pub sn: Option<String>,
}

impl Tree {
    fn new(root: String, sn: Option<String>) -> Self {
        Tree { nodes: HashMap::new(), kids: HashMap::new(), root, sn }
    }

    fn insert(&mut self, node: Node) {
        if self.nodes.contains_key(&node.handle) {
            self.remove(&node.handle);
        }
        self.kids.entry(node.parent.clone()).or_default().push(node.handle.clone());
        self.nodes.insert(node.handle.clone(), node);
    }

    /// Remove a node and everything below it.
    fn remove(&mut self, handle: &str) {
        let Some(node) = self.nodes.remove(handle) else { return };
        if let Some(siblings) = self.kids.get_mut(&node.parent) {
            siblings.retain(|h| h != handle);
        }
        for child in self.kids.remove(handle).unwrap_or_default() {
            self.remove(&child);
        }
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Add(n) => self.insert(n.clone()),
            Change::Remove(h) => self.remove(h),
        }
    }

    pub fn children<'a>(&'a self, parent: &str) -> impl Iterator<Item = &'a Node> + 'a {
        self.kids.get(parent).into_iter().flatten().filter_map(|h| self.nodes.get(h))
    }

    pub fn child(&self, parent: &str, name: &str) -> Option<&Node> {
        self.children(parent).find(|n| n.name == name)
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

    /// The deepest existing folder on `path` and how many segments it covers.
    fn deepest(&self, path: &[String]) -> (String, usize) {
        let mut at = self.root.clone();
        for depth in 0..path.len() {
            match self.folders(&path[..=depth]).into_iter().next() {
                Some(h) => at = h,
                None => return (at, depth),
            }
        }
        (at, path.len())
    }

    /// The file node of an object id (relative to the configured root).
    fn file(&self, root: &[String], object_id: &str) -> Option<Node> {
        let segs: Vec<String> = object_id.split('/').map(str::to_owned).collect();
        let (name, dir) = segs.split_last()?;
        let full: Vec<String> = root.iter().cloned().chain(dir.iter().cloned()).collect();
        self.folders(&full).iter().find_map(|h| self.child(h, name).filter(|n| n.kind == 0).cloned())
    }
}

impl MegaClient {
    pub fn new(r: Resolved) -> Result<Self> {
        let http = csal_http::HttpOptions::new(concat!("csal-mega/", env!("CARGO_PKG_VERSION")), r.timeouts)
            .ca_file(r.ca_file.clone())
            .build()?;
        Ok(MegaClient {
            http,
            api_url: r.api_url,
            request_timeout: r.timeouts.request.expect("mega has request_timeout_secs"),
            email: r.email,
            password: r.password,
            root: r.root,
            seq: AtomicU64::new(u64::from(u32::from_ne_bytes(crypto::random::<4>()))),
            session: Mutex::new(None),
            cache: std::sync::Mutex::new(Cache::default()),
            fetch_lock: Mutex::new(()),
            folder_lock: Mutex::new(()),
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
            .timeout(self.request_timeout)
            .query(&query)
            .json(cmds)
            .send()
            .await
            .map_err(|e| error::from_transport("cs", e))?;
        if !resp.status().is_success() {
            return Err(error::from_status("cs", resp.status(), resp.headers()));
        }
        let v: Value = csal_http::read_json(resp, "mega cs").await?;
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
        let sid = match (r.get("tsid").and_then(Value::as_str), r.get("csid").and_then(Value::as_str)) {
            (Some(tsid), _) => check_tsid(&master, tsid)?,
            (None, Some(csid)) => {
                let privk = r.get("privk").and_then(Value::as_str).unwrap_or_default();
                rsa_session(&master, csid, privk)?
            }
            (None, None) => return Err(StorageError::permanent("mega login: the us answer has no session id")),
        };
        Ok(Session { sid: SecretString::from(sid), master })
    }

    pub async fn session(&self, fresh: bool) -> Result<Session> {
        let mut cached = self.session.lock().await;
        if !fresh && let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let s = self.login().await?;
        if cached.is_some() {
            // The tree cache belongs to a session.
            self.invalidate();
        }
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
    async fn fetch_tree(&self) -> Result<Tree> {
        let (v, master) = self.call("fetch nodes", json!({"a": "f", "c": 1})).await?;
        let list = v.get("f").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let root = list
            .iter()
            .find(|n| n.get("t").and_then(Value::as_i64) == Some(2))
            .and_then(|n| n.get("h").and_then(Value::as_str))
            .ok_or_else(|| StorageError::permanent("mega: the account has no Cloud Drive root node"))?;
        let sn = v.get("sn").and_then(Value::as_str).map(str::to_owned);
        let mut tree = Tree::new(root.to_owned(), sn);
        for n in list {
            if let Some(node) = node_from_json(&master, n) {
                tree.insert(node);
            }
        }
        tracing::debug!(nodes = tree.nodes.len(), sn = tree.sn.as_deref().unwrap_or(""), "mega: fetched node tree");
        Ok(tree)
    }

    /// Refetch the tree, unless the cached one comes from a fetch that
    /// started after our caller saw `seen` fetches started (it is then at
    /// least as new as one we would make now).
    async fn refetch(&self, seen: u64) -> Result<()> {
        let _one_at_a_time = self.fetch_lock.lock().await;
        let this_fetch = {
            let mut c = self.cache.lock().expect("tree cache lock");
            if c.tree.is_some() && c.tree_fetch > seen {
                return Ok(());
            }
            c.fetches += 1;
            c.fetching = true;
            c.journal.clear();
            c.fetches
        };
        // Ends the journal even if this future is dropped mid-fetch.
        let _journal = EndJournal(&self.cache);
        let mut tree = self.fetch_tree().await?;
        let mut c = self.cache.lock().expect("tree cache lock");
        for change in std::mem::take(&mut c.journal) {
            tree.apply(&change);
        }
        c.tree = Some(tree);
        c.tree_fetch = this_fetch;
        c.fetching = false;
        Ok(())
    }

    /// `f` on the cached tree; on a miss (or no tree yet) refetch once and
    /// ask again.
    pub async fn lookup<T>(&self, f: impl Fn(&Tree) -> Option<T>) -> Result<Option<T>> {
        let seen = {
            let c = self.cache.lock().expect("tree cache lock");
            if let Some(found) = c.tree.as_ref().and_then(&f) {
                return Ok(Some(found));
            }
            c.fetches
        };
        self.refetch(seen).await?;
        let c = self.cache.lock().expect("tree cache lock");
        Ok(c.tree.as_ref().and_then(&f))
    }

    /// `f` on the cached tree (fetched first if there is none, or if
    /// `fresh`).
    pub async fn with_tree<T>(&self, fresh: bool, f: impl Fn(&Tree) -> T) -> Result<T> {
        let seen = {
            let c = self.cache.lock().expect("tree cache lock");
            match c.tree.as_ref() {
                Some(t) if !fresh => return Ok(f(t)),
                _ => c.fetches,
            }
        };
        self.refetch(seen).await?;
        let c = self.cache.lock().expect("tree cache lock");
        c.tree.as_ref().map(f).ok_or_else(|| StorageError::transient("mega: node tree unavailable"))
    }

    /// Drop the cached tree (something suggested it is stale).
    pub fn invalidate(&self) {
        self.cache.lock().expect("tree cache lock").tree = None;
    }

    fn record(&self, change: Change) {
        let mut c = self.cache.lock().expect("tree cache lock");
        if let Some(t) = c.tree.as_mut() {
            t.apply(&change);
        }
        if c.fetching {
            c.journal.push(change);
        }
    }

    /// Record nodes from a `p` answer (`{"f": [...]}`) in the cache.
    fn record_put(&self, answer: &Value, master: &Key) -> Vec<Node> {
        let nodes: Vec<Node> = answer
            .get("f")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| node_from_json(master, n))
            .collect();
        for n in &nodes {
            self.record(Change::Add(n.clone()));
        }
        nodes
    }

    /// Record a deletion (by us, or found already gone) in the cache.
    pub fn record_removed(&self, handle: &str) {
        self.record(Change::Remove(handle.to_owned()));
    }

    /// Handle of the folder `path` (relative to the configured root),
    /// created if missing. Serialised within this process, and a missing
    /// folder is looked up in a freshly fetched tree before it is created,
    /// so writers do not create duplicates.
    pub async fn ensure_folder(&self, path: &[String]) -> Result<String> {
        let full: Vec<String> = self.root.iter().chain(path.iter()).cloned().collect();
        let _serialised = self.folder_lock.lock().await;
        if let Some(h) = self.lookup(|t| t.folders(&full).into_iter().next()).await? {
            return Ok(h);
        }
        let (mut at, depth) = self.with_tree(false, |t| t.deepest(&full)).await?;
        for name in &full[depth..] {
            at = self.create_folder(&at, name).await?;
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
        let (v, master) = match self.call("create folder", cmd).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.invalidate();
                return Err(
                    StorageError::transient("mega: a parent folder vanished while creating folders").with_source(e)
                );
            }
            other => other?,
        };
        self.record_put(&v, &master)
            .into_iter()
            .next()
            .map(|n| n.handle)
            .ok_or_else(|| StorageError::permanent("mega: folder creation returned no node"))
    }

    /// Create the file node for a completed upload in folder `dir` (cached
    /// handle `parent`). If the folder vanished (another client deleted
    /// it), resolve it again from a fresh tree and retry once.
    pub async fn put_file(&self, dir: &[String], parent: String, item: Value) -> Result<()> {
        let put = |parent: String| json!({"a": "p", "t": parent, "n": [item.clone()]});
        let (v, master) = match self.call("put node", put(parent)).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.invalidate();
                let parent = self.ensure_folder(dir).await?;
                self.call("put node", put(parent)).await?
            }
            other => other?,
        };
        self.record_put(&v, &master);
        Ok(())
    }

    /// Resolve an object id to its file node (refetching the tree once on
    /// a miss).
    pub async fn file(&self, object_id: &str) -> Result<Node> {
        self.lookup(|t| t.file(&self.root, object_id))
            .await?
            .ok_or_else(|| StorageError::not_found(format!("mega: no object '{object_id}'")))
    }
}

/// Verify a `tsid`: AES(master, tsid[0..16]) must equal tsid[16..32].
fn check_tsid(master: &Key, tsid: &str) -> Result<String> {
    let raw = crypto::unb64(tsid).ok_or_else(|| StorageError::auth("mega login: malformed tsid"))?;
    if raw.len() < 32 {
        return Err(StorageError::auth("mega login: malformed tsid"));
    }
    let mut check = [0u8; 16];
    check.copy_from_slice(&raw[..16]);
    crypto::ecb_encrypt(master, &mut check);
    if check[..] != raw[16..32] {
        return Err(StorageError::auth("mega login: session check failed (wrong password?)"));
    }
    Ok(tsid.to_owned())
}

/// The session id of an RSA session: decrypt `privk` with the master key,
/// then `csid` with that private key (see crypto.rs for the layout).
fn rsa_session(master: &Key, csid: &str, privk: &str) -> Result<String> {
    const DAMAGED: &str = "mega login: the account's RSA private key (privk) does not decrypt to a valid key \
         with the master key; check the account with an official MEGA client";
    let mut privk = crypto::unb64(privk).ok_or_else(|| StorageError::auth(DAMAGED))?;
    // MEGA SDK: a privk shorter than 256 bytes cannot hold a 2048-bit key.
    if privk.len() < 256 || privk.len() % 16 != 0 {
        return Err(StorageError::auth(DAMAGED));
    }
    crypto::ecb_decrypt(master, &mut privk);
    let key = crypto::parse_privk(&privk).ok_or_else(|| StorageError::auth(DAMAGED))?;
    let csid = crypto::unb64(csid).ok_or_else(|| StorageError::auth("mega login: malformed csid"))?;
    let sid = crypto::decrypt_csid(&key, &csid)
        .ok_or_else(|| StorageError::auth("mega login: the RSA session id (csid) does not decrypt"))?;
    Ok(crypto::b64(&sid))
}

/// A file or folder node of an `f` or `p` answer, decrypted; `None` for
/// root/inbox/trash nodes and nodes whose key or attributes do not decrypt
/// with our master key (e.g. shared from another account).
fn node_from_json(master: &Key, n: &Value) -> Option<Node> {
    let kind = n.get("t").and_then(Value::as_i64)?;
    if kind != 0 && kind != 1 {
        return None;
    }
    let key = n.get("k").and_then(Value::as_str).and_then(|k| decrypt_node_key(master, k))?;
    let name = n
        .get("a")
        .and_then(Value::as_str)
        .and_then(|a| crypto::decrypt_attr(&attr_key(&key), a))
        .and_then(|a| a.get("n").and_then(Value::as_str).map(str::to_owned))?;
    Some(Node {
        handle: n.get("h").and_then(Value::as_str)?.to_owned(),
        parent: n.get("p").and_then(Value::as_str).unwrap_or_default().to_owned(),
        kind,
        name,
        size: n.get("s").and_then(Value::as_u64).unwrap_or(0),
        ts: n.get("ts").and_then(Value::as_u64).unwrap_or(0),
        key,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(handle: &str, parent: &str, kind: i64, name: &str) -> Node {
        Node { handle: handle.into(), parent: parent.into(), kind, name: name.into(), size: 0, ts: 0, key: vec![0; 16] }
    }

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn removing_a_folder_drops_everything_below_it() {
        let mut t = Tree::new("R".into(), None);
        t.insert(node("a", "R", 1, "csal"));
        t.insert(node("b", "a", 1, "cam"));
        t.insert(node("f", "b", 0, "seg.bin"));
        assert!(t.file(&path(&["csal"]), "cam/seg.bin").is_some());
        t.apply(&Change::Remove("a".into()));
        assert!(t.file(&path(&["csal"]), "cam/seg.bin").is_none());
        assert!(t.nodes.is_empty(), "descendants left behind");
        assert_eq!(t.children("R").count(), 0);
    }

    #[test]
    fn deepest_existing_folder_and_duplicates() {
        let mut t = Tree::new("R".into(), None);
        t.insert(node("a", "R", 1, "csal"));
        t.insert(node("b1", "a", 1, "cam"));
        t.insert(node("b2", "a", 1, "cam"));
        t.insert(node("f", "b2", 0, "seg.bin"));
        assert_eq!(t.deepest(&path(&["csal", "cam", "day"])), ("b1".to_owned(), 2));
        assert_eq!(t.deepest(&path(&["other"])), ("R".to_owned(), 0));
        // A file in either duplicate folder resolves.
        assert_eq!(t.file(&path(&["csal"]), "cam/seg.bin").map(|n| n.handle), Some("f".to_owned()));
        // Re-inserting a handle replaces it instead of duplicating it.
        t.insert(node("f", "b2", 0, "seg.bin"));
        assert_eq!(t.children("b2").count(), 1);
    }
}
