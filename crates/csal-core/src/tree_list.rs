//! Paginated listing of stores that only list one folder at a time (local
//! disk, WebDAV, SFTP, FTP, pCloud), written once: [`list_tree`].
//!
//! Pages come in object-id order and the continuation token is the last id
//! of the previous page, so a page is still right when objects come and go
//! between calls. A page costs O(page), not O(tree): the walk goes down
//! only into folders whose ids can sort after the token, reads each folder
//! on its way once (again only when its sub-folders turn out empty), and
//! stops as soon as the page is full. Memory is bounded by the page size
//! times the folder depth: a folder read keeps only the smallest candidate
//! names it can use ([`FolderSelection`]), however many the folder holds.
//!
//! A folder is read whole each time a page passes through it (no store
//! here lists a folder in order), so pages of 1,000 through a folder of
//! 4,000 would read it four times. Stores that can tell whether a folder
//! changed ([`FolderTree::folder_stamp`]: local disk) therefore keep a few
//! pages' worth of each read and leave the walk's place in [`ListCursors`]
//! for the page that continues from its token; that page checks the
//! stamps and carries on without reading again.
//!
//! Why folder order is id order: a sub-folder `a` is ranked by `a/`, so
//! every id under it sorts exactly where `a/` sorts among its siblings
//! (`a-b` < `a/x` because `-` < `/`).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::{Result, StorageError};
use crate::ids::check_object_id;
use crate::module::{ListPage, ListRequest, ObjectMeta};

/// A store seen as a tree of folders, read one folder at a time.
#[async_trait]
pub trait FolderTree: Send {
    /// Offer every entry of folder `folder` (an id prefix without trailing
    /// slash; "" is the store's root) to `into`. `Ok(false)` when the folder
    /// does not exist. Hide the store's own reserved names (temp files)
    /// here; `into` drops names that cannot be object-id segments.
    async fn read_folder(&mut self, folder: &str, into: &mut FolderSelection) -> Result<bool>;

    /// Size and times of the file `object_id`, for stores whose folder reads
    /// carry none (entries offered without metadata); `Ok(None)` when it
    /// vanished since the folder was read.
    async fn file_meta(&mut self, object_id: &str) -> Result<Option<ObjectMeta>> {
        Err(StorageError::unsupported(format!("no metadata offered for '{object_id}'")))
    }

    /// A value that changes whenever `folder`'s entries change, or `None`
    /// when the store cannot tell (or the folder changed too recently for
    /// its clock to be trusted). Only with stamps may a page hand its place
    /// on to the next one ([`ListCursors`]).
    async fn folder_stamp(&mut self, _folder: &str) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// One candidate entry: its sort key is its id, plus `/` for a folder.
struct Candidate {
    key: String,
    meta: Option<Box<ObjectMeta>>,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

/// How `prefix + name (+ '/')` compares with `bound`, without building it.
fn compare_key(prefix: &str, name: &str, is_folder: bool, bound: &str) -> Ordering {
    let slash: &[u8] = if is_folder { b"/" } else { b"" };
    prefix.bytes().chain(name.bytes()).chain(slash.iter().copied()).cmp(bound.bytes())
}

/// The entries of one folder read that the page can still use: the
/// `capacity` smallest keys after the token (and after what this folder
/// already gave), matching the name prefix. Everything else is dropped as
/// it is offered, so a huge folder costs time, not memory.
pub struct FolderSelection {
    /// `folder/` ("" at the root): prepended to names.
    folder_prefix: String,
    /// Names must start with this (only in the folder the listing starts in).
    name_prefix: String,
    /// The continuation token: only ids after it.
    token: Option<String>,
    /// Keys this folder already handed out, on a re-read: only keys after it.
    resume_after: Option<String>,
    capacity: usize,
    /// Max-heap: the largest kept key is on top, evicted first.
    kept: BinaryHeap<Candidate>,
    /// Some usable entry did not fit: the folder must be read again later.
    overflowed: bool,
}

impl FolderSelection {
    /// Offer a file. `meta` (its `object_id` is filled in here) saves a
    /// [`FolderTree::file_meta`] call when the folder read had it anyway.
    pub fn offer_file(&mut self, name: &str, meta: Option<ObjectMeta>) {
        self.offer(name, false, meta);
    }

    /// Offer a sub-folder.
    pub fn offer_folder(&mut self, name: &str) {
        self.offer(name, true, None);
    }

    fn offer(&mut self, name: &str, is_folder: bool, meta: Option<ObjectMeta>) {
        if !name.starts_with(self.name_prefix.as_str()) {
            return;
        }
        let prefix = self.folder_prefix.as_str();
        // A folder whose ids all sort at or before the token is skipped whole;
        // the one that holds the token is entered.
        if let Some(token) = &self.token
            && compare_key(prefix, name, is_folder, token) != Ordering::Greater
            && !(is_folder
                && token.strip_prefix(prefix).and_then(|t| t.strip_prefix(name)).is_some_and(|t| t.starts_with('/')))
        {
            return;
        }
        if self.resume_after.as_ref().is_some_and(|r| compare_key(prefix, name, is_folder, r) != Ordering::Greater) {
            return;
        }
        let full = self.kept.len() >= self.capacity;
        if full {
            self.overflowed = true;
            if self.kept.peek().is_some_and(|top| compare_key(prefix, name, is_folder, &top.key) != Ordering::Less) {
                return;
            }
        }
        if name.contains('/') || check_object_id(name).is_err() {
            return;
        }
        let mut key = String::with_capacity(prefix.len() + name.len() + 1);
        key.push_str(prefix);
        key.push_str(name);
        if is_folder {
            key.push('/');
        }
        if full {
            self.kept.pop();
        }
        self.kept.push(Candidate { key, meta: meta.map(Box::new) });
    }
}

/// One folder on the walk's path.
struct Frame {
    folder: String,
    name_prefix: String,
    /// Selected entries not handed out yet, smallest first.
    queue: VecDeque<Candidate>,
    /// The last key handed out (a re-read continues after it).
    last_key: Option<String>,
    /// Read at least once and nothing was left out: no re-read needed.
    complete: bool,
    /// The folder's stamp when it was last read.
    stamp: Option<u64>,
}

impl Frame {
    fn new(folder: String, name_prefix: String) -> Self {
        Frame { folder, name_prefix, queue: VecDeque::new(), last_key: None, complete: false, stamp: None }
    }
}

/// Pages' worth a folder read keeps when its place can be handed on.
const READ_AHEAD: usize = 4;
/// Walks kept at most, and for how long.
const CURSOR_SLOTS: usize = 4;
const CURSOR_TTL: Duration = Duration::from_secs(60);

/// Where recent pages stopped (their walk, keyed by the token they
/// returned), so the page that continues from a token needs no folder
/// reads to get back to its place. One per module; a few walks, each
/// bounded by [`READ_AHEAD`] pages per folder on its path.
#[derive(Default)]
pub struct ListCursors {
    saved: Mutex<VecDeque<SavedWalk>>,
}

struct SavedWalk {
    token: String,
    id_prefix: String,
    frames: Vec<Frame>,
    at: Instant,
}

impl ListCursors {
    fn take(&self, token: &str, id_prefix: &str) -> Option<Vec<Frame>> {
        let mut saved = self.saved.lock().expect("list cursors");
        saved.retain(|w| w.at.elapsed() < CURSOR_TTL);
        let i = saved.iter().position(|w| w.token == token && w.id_prefix == id_prefix)?;
        saved.remove(i).map(|w| w.frames)
    }

    fn put(&self, token: String, id_prefix: String, frames: Vec<Frame>) {
        let mut saved = self.saved.lock().expect("list cursors");
        if saved.len() >= CURSOR_SLOTS {
            saved.pop_front();
        }
        saved.push_back(SavedWalk { token, id_prefix, frames, at: Instant::now() });
    }
}

/// The walk left by the page that returned `token`, if every folder on it is unchanged.
async fn resume(
    tree: &mut dyn FolderTree,
    cursors: &ListCursors,
    token: &str,
    id_prefix: &str,
) -> Result<Option<Vec<Frame>>> {
    let Some(frames) = cursors.take(token, id_prefix) else { return Ok(None) };
    for frame in &frames {
        if frame.stamp.is_none() || tree.folder_stamp(&frame.folder).await? != frame.stamp {
            return Ok(None);
        }
    }
    Ok(Some(frames))
}

/// One page of `request` over `tree` (see the module doc). `default_limit`
/// is the page size when the request names none; `cursors` (the module's)
/// lets a page continue where the previous one stopped.
pub async fn list_tree(
    tree: &mut dyn FolderTree,
    request: &ListRequest,
    default_limit: usize,
    cursors: Option<&ListCursors>,
) -> Result<ListPage> {
    request.check()?;
    let id_prefix = request.id_prefix();
    let limit = request.limit.unwrap_or(default_limit).max(1);
    // One more than the page: tells whether there is a next page.
    let want = limit + 1;
    let read_ahead = if cursors.is_some() { READ_AHEAD } else { 1 };
    let resumed = match (cursors, request.continuation.as_deref()) {
        (Some(cursors), Some(token)) => resume(tree, cursors, token, &id_prefix).await?,
        _ => None,
    };
    let mut stack = resumed.unwrap_or_else(|| {
        let (start, name_prefix) = match id_prefix.rsplit_once('/') {
            Some((folder, partial)) => (folder.to_owned(), partial.to_owned()),
            None => (String::new(), id_prefix.clone()),
        };
        vec![Frame::new(start, name_prefix)]
    });
    let mut found: Vec<ObjectMeta> = Vec::with_capacity(want.min(4096));
    while found.len() < want {
        let Some(frame) = stack.last_mut() else { break };
        let Some(next) = frame.queue.pop_front() else {
            if frame.complete {
                stack.pop();
                continue;
            }
            let mut selection = FolderSelection {
                folder_prefix: if frame.folder.is_empty() { String::new() } else { format!("{}/", frame.folder) },
                name_prefix: frame.name_prefix.clone(),
                token: request.continuation.clone(),
                resume_after: frame.last_key.clone(),
                // What this page still needs; a few pages when the place can be handed on.
                capacity: if read_ahead > 1 { want * read_ahead } else { want - found.len() },
                kept: BinaryHeap::new(),
                overflowed: false,
            };
            // Stamped before the read: a change during it makes the stamp stale.
            frame.stamp = match cursors {
                Some(_) => tree.folder_stamp(&frame.folder).await?,
                None => None,
            };
            if !tree.read_folder(&frame.folder, &mut selection).await? {
                stack.pop();
                continue;
            }
            frame.complete = !selection.overflowed;
            frame.queue = selection.kept.into_sorted_vec().into();
            continue;
        };
        frame.last_key = Some(next.key.clone());
        if let Some(folder) = next.key.strip_suffix('/') {
            let folder = folder.to_owned();
            stack.push(Frame::new(folder, String::new()));
            continue;
        }
        if check_object_id(&next.key).is_err() {
            continue; // too long as a whole
        }
        let meta = match next.meta {
            Some(meta) => *meta,
            None => match tree.file_meta(&next.key).await? {
                Some(meta) => meta,
                None => continue,
            },
        };
        let meta = ObjectMeta { object_id: next.key, ..meta };
        if request.matches_time(&meta) {
            found.push(meta);
        }
    }
    if found.len() <= limit {
        return Ok(ListPage { objects: found, next_page: None });
    }
    // The look-ahead object goes back where it came from: the next page starts with it.
    let ahead = found.pop().expect("more than the limit");
    let token = found.last().expect("limit is at least 1").object_id.clone();
    // (No let chains: csal-core keeps its 1.85 MSRV.)
    if let Some(cursors) = cursors
        && stack.iter().all(|f| f.stamp.is_some())
        && let Some(frame) = stack.last_mut()
    {
        frame.queue.push_front(Candidate { key: ahead.object_id.clone(), meta: Some(Box::new(ahead)) });
        cursors.put(token.clone(), id_prefix, stack);
    }
    Ok(ListPage { objects: found, next_page: Some(token) })
}

#[cfg(test)]
mod tests_support {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// A tree of folders in memory that counts what a listing reads.
    pub(super) struct MemTree {
        /// folder -> (name, is_folder)
        pub folders: BTreeMap<String, Vec<(String, bool)>>,
        pub entries_offered: usize,
        pub folder_reads: usize,
        /// Stamps per folder (bumped on change), when the tree offers them.
        pub versions: Option<BTreeMap<String, u64>>,
    }

    impl MemTree {
        pub(super) fn new(ids: &[String]) -> Self {
            let mut folders: BTreeMap<String, BTreeSet<(String, bool)>> = BTreeMap::new();
            folders.entry(String::new()).or_default();
            for id in ids {
                let parts: Vec<&str> = id.split('/').collect();
                for depth in 0..parts.len() {
                    let folder = parts[..depth].join("/");
                    let is_folder = depth + 1 < parts.len();
                    folders.entry(folder).or_default().insert((parts[depth].to_owned(), is_folder));
                }
            }
            // Unsorted, like a real directory.
            let folders = folders
                .into_iter()
                .map(|(k, v)| {
                    let mut v: Vec<_> = v.into_iter().collect();
                    fastrand::Rng::with_seed(v.len() as u64).shuffle(&mut v);
                    (k, v)
                })
                .collect();
            MemTree { folders, entries_offered: 0, folder_reads: 0, versions: None }
        }
    }

    #[async_trait]
    impl FolderTree for MemTree {
        async fn read_folder(&mut self, folder: &str, into: &mut FolderSelection) -> Result<bool> {
            let Some(entries) = self.folders.get(folder) else { return Ok(false) };
            self.folder_reads += 1;
            for (name, is_folder) in entries {
                self.entries_offered += 1;
                if *is_folder {
                    into.offer_folder(name);
                } else {
                    into.offer_file(name, Some(ObjectMeta::new("", 1)));
                }
            }
            Ok(true)
        }

        async fn folder_stamp(&mut self, folder: &str) -> Result<Option<u64>> {
            Ok(self.versions.as_ref().map(|v| v.get(folder).copied().unwrap_or(0)))
        }
    }

    pub(super) fn tree(ids: &[String], stamped: bool) -> MemTree {
        let mut t = MemTree::new(ids);
        if stamped {
            t.versions = Some(BTreeMap::new());
        }
        t
    }

    /// Every page of `cam` with `limit`, ids and page count.
    pub(super) async fn pages(t: &mut MemTree, cursors: Option<&ListCursors>, limit: usize) -> (Vec<String>, usize) {
        let mut request = ListRequest::new("cam").with_limit(limit);
        let (mut ids, mut n) = (Vec::new(), 0);
        loop {
            let page = list_tree(t, &request, 1000, cursors).await.unwrap();
            n += 1;
            ids.extend(page.objects.into_iter().map(|o| o.object_id));
            match page.next_page {
                Some(token) => request.continuation = Some(token),
                None => return (ids, n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::tests_support::*;
    use super::*;

    async fn all_pages(tree: &mut MemTree, request: ListRequest) -> (Vec<String>, usize) {
        all_pages_with(tree, request, None).await
    }

    async fn all_pages_with(
        tree: &mut MemTree,
        request: ListRequest,
        cursors: Option<&ListCursors>,
    ) -> (Vec<String>, usize) {
        let mut request = request;
        let (mut ids, mut pages) = (Vec::new(), 0);
        loop {
            let page = list_tree(tree, &request, 1000, cursors).await.unwrap();
            pages += 1;
            ids.extend(page.objects.into_iter().map(|o| o.object_id));
            match page.next_page {
                Some(t) => request.continuation = Some(t),
                None => return (ids, pages),
            }
        }
    }

    fn expected(ids: &[String], prefix: &str) -> Vec<String> {
        let mut want: Vec<String> = ids.iter().filter(|i| i.starts_with(prefix)).cloned().collect();
        want.sort();
        want
    }

    /// Names chosen to trip folder-order mistakes: `a-b` sorts before `a/x`.
    fn tricky_ids() -> Vec<String> {
        let mut ids = Vec::new();
        for name in ["a", "a-b", "a.c", "a0", "b", "ab"] {
            ids.push(format!("x/{name}/1"));
            ids.push(format!("x/{name}/2/deep"));
        }
        for name in ["a-b", "a.", "a0", "a~", "b"] {
            ids.push(format!("x/{name}"));
        }
        ids.push("top".into());
        ids
    }

    #[tokio::test]
    async fn pages_come_in_id_order_at_every_page_size() {
        let ids = tricky_ids();
        for limit in 1..=ids.len() + 1 {
            let mut tree = MemTree::new(&ids);
            let (got, pages) = all_pages(&mut tree, ListRequest::new("").with_limit(limit)).await;
            assert_eq!(got, expected(&ids, ""), "limit {limit}");
            assert_eq!(pages, ids.len().div_ceil(limit).max(1), "limit {limit}");
        }
    }

    #[tokio::test]
    async fn prefixes_and_paths_select_like_id_prefixes() {
        let ids = tricky_ids();
        for (path, prefix) in [("x", None), ("x", Some("a")), ("x/a", None), ("", Some("x/a-")), ("x", Some("zz"))] {
            for limit in [1, 2, 5, 1000] {
                let mut request = ListRequest::new(path).with_limit(limit);
                request.prefix = prefix.map(str::to_owned);
                let mut tree = MemTree::new(&ids);
                let (got, _) = all_pages(&mut tree, request.clone()).await;
                assert_eq!(got, expected(&ids, &request.id_prefix()), "{path:?} {prefix:?} limit {limit}");
            }
        }
    }

    #[tokio::test]
    async fn random_trees_match_a_sorted_filter() {
        for seed in 0..40u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let alphabet = ["a", "a-", "a.b", "b", "b0", "c~"];
            let ids: BTreeSet<String> = (0..rng.usize(1..120))
                .map(|_| {
                    let depth = rng.usize(1..4);
                    let parts: Vec<&str> = (0..depth).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
                    parts.join("/")
                })
                .collect();
            // A name cannot be a file and a folder at once.
            let ids: Vec<String> =
                ids.iter().filter(|i| !ids.iter().any(|o| o.starts_with(&format!("{i}/")))).cloned().collect();
            let limit = rng.usize(1..20);
            let mut tree = MemTree::new(&ids);
            let (got, _) = all_pages(&mut tree, ListRequest::new("").with_limit(limit)).await;
            assert_eq!(got, expected(&ids, ""), "seed {seed} limit {limit}");
            // The same when each page continues from the walk the previous one left.
            let mut stamped = super::tests_support::tree(&ids, true);
            let cursors = ListCursors::default();
            let request = ListRequest::new("").with_limit(limit);
            let (got, _) = all_pages_with(&mut stamped, request, Some(&cursors)).await;
            assert_eq!(got, expected(&ids, ""), "seed {seed} limit {limit}, with cursors");
        }
    }

    #[tokio::test]
    async fn a_page_reads_only_the_folders_on_its_way() {
        // 100 folders of 100 files: 10,000 objects.
        let ids: Vec<String> = (0..100).flat_map(|d| (0..100).map(move |f| format!("cam/d{d:03}/seg{f:03}"))).collect();
        let mut tree = MemTree::new(&ids);
        let mut request = ListRequest::new("cam").with_limit(100);
        let mut pages = 0;
        loop {
            tree.entries_offered = 0;
            tree.folder_reads = 0;
            let page = list_tree(&mut tree, &request, 1000, None).await.unwrap();
            pages += 1;
            // `cam`, the day folder of the token, the next one, and the one after
            // (for the look-ahead object): O(page), not O(tree).
            assert!(tree.folder_reads <= 4, "page {pages} read {} folders", tree.folder_reads);
            assert!(tree.entries_offered <= 400, "page {pages} looked at {} entries", tree.entries_offered);
            match page.next_page {
                Some(t) => request.continuation = Some(t),
                None => break,
            }
        }
        assert_eq!(pages, 100);
    }

    #[tokio::test]
    async fn empty_sub_folders_do_not_end_a_page_early() {
        let mut ids: Vec<String> = (0..50).map(|i| format!("e{i:02}/x")).collect();
        ids.push("z/last".into());
        let mut tree = MemTree::new(&ids);
        // Empty the e* folders (as a delete that could not prune them leaves them).
        for i in 0..50 {
            tree.folders.insert(format!("e{i:02}"), Vec::new());
        }
        let page = list_tree(&mut tree, &ListRequest::new("").with_limit(3), 1000, None).await.unwrap();
        assert_eq!(page.objects.iter().map(|o| o.object_id.as_str()).collect::<Vec<_>>(), ["z/last"]);
        assert_eq!(page.next_page, None);
    }

    #[tokio::test]
    async fn hostile_prefixes_are_refused_before_any_read() {
        let mut tree = MemTree::new(&["a/b".to_owned()]);
        for (path, prefix) in [("", "../../etc/"), ("..", ""), ("a/../..", ""), ("/etc", "x/../../")] {
            let request = ListRequest::new(path).with_prefix(prefix);
            let e = list_tree(&mut tree, &request, 10, None).await.unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{path:?} {prefix:?}");
        }
        assert_eq!(tree.folder_reads, 0);
    }
}

#[cfg(test)]
mod cursor_tests {
    use super::tests_support::*;
    use super::*;

    #[tokio::test]
    async fn cursors_give_the_same_pages_from_far_fewer_reads() {
        // 10 day folders of 400 files, pages of 100: without cursors each
        // folder is read on each of its 4 pages (and for look-aheads).
        let ids: Vec<String> = (0..10).flat_map(|d| (0..400).map(move |f| format!("cam/d{d:02}/s{f:03}"))).collect();
        let mut plain = tree(&ids, false);
        let (without, _) = pages(&mut plain, None, 100).await;
        let mut stamped = tree(&ids, true);
        let cursors = ListCursors::default();
        let (with, _) = pages(&mut stamped, Some(&cursors), 100).await;
        assert_eq!(with, without);
        assert_eq!(with.len(), ids.len());
        assert!(
            stamped.folder_reads * 3 < plain.folder_reads,
            "{} reads with cursors, {} without",
            stamped.folder_reads,
            plain.folder_reads
        );
        assert!(stamped.folder_reads <= 2 * 10 + 2, "{} reads", stamped.folder_reads);
    }

    #[tokio::test]
    async fn a_folder_that_changed_is_read_again() {
        let ids: Vec<String> = (0..300).map(|f| format!("cam/s{f:03}")).collect();
        let mut t = tree(&ids, true);
        let cursors = ListCursors::default();
        let first = list_tree(&mut t, &ListRequest::new("cam").with_limit(100), 1000, Some(&cursors)).await.unwrap();
        // Written behind the listing's position, after its first page.
        t.folders.get_mut("cam").unwrap().push(("s250-new".into(), false));
        *t.versions.as_mut().unwrap().entry("cam".into()).or_default() += 1;
        let mut request = ListRequest::new("cam").with_limit(100);
        let mut got: Vec<String> = first.objects.into_iter().map(|o| o.object_id).collect();
        request.continuation = first.next_page;
        while let Some(token) = request.continuation.clone() {
            let page =
                list_tree(&mut t, &request.clone().with_continuation(Some(token)), 1000, Some(&cursors)).await.unwrap();
            got.extend(page.objects.into_iter().map(|o| o.object_id));
            request.continuation = page.next_page;
        }
        assert!(got.contains(&"cam/s250-new".to_owned()), "the new object was missed");
        assert_eq!(got.len(), 301);
    }
}
