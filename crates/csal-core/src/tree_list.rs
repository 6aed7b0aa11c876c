//! Paginated listing of stores that only list one folder at a time (local
//! disk, WebDAV, SFTP, FTP, pCloud), written once: [`list_tree`].
//!
//! Pages come in object-id order and the continuation token is the last id
//! of the previous page, so a page is still right when objects come and go
//! between calls. A page costs O(page), not O(tree): the walk goes down
//! only into folders whose ids can sort after the token, reads each folder
//! once per page (twice or more only when its sub-folders turn out empty),
//! and stops as soon as the page is full. Memory is bounded by the page
//! size times the folder depth: a folder read keeps only the `need`
//! smallest candidate names ([`FolderSelection`]), however many it holds.
//!
//! Why folder order is id order: a sub-folder `a` is ranked by `a/`, so
//! every id under it sorts exactly where `a/` sorts among its siblings
//! (`a-b` < `a/x` because `-` < `/`).

use std::collections::{BinaryHeap, VecDeque};

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
}

/// One candidate entry: its sort key is its id, plus `/` for a folder.
struct Candidate {
    key: String,
    meta: Option<ObjectMeta>,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
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
        if !name.starts_with(self.name_prefix.as_str()) || name.contains('/') || check_object_id(name).is_err() {
            return;
        }
        let mut key = String::with_capacity(self.folder_prefix.len() + name.len() + 1);
        key.push_str(&self.folder_prefix);
        key.push_str(name);
        if is_folder {
            key.push('/');
        }
        // A folder whose ids all sort at or before the token is skipped whole;
        // the one that holds the token is entered.
        if let Some(token) = &self.token
            && key.as_str() <= token.as_str()
            && !(is_folder && token.starts_with(key.as_str()))
        {
            return;
        }
        if self.resume_after.as_ref().is_some_and(|r| key.as_str() <= r.as_str()) {
            return;
        }
        if self.kept.len() < self.capacity {
            self.kept.push(Candidate { key, meta });
            return;
        }
        self.overflowed = true;
        if self.kept.peek().is_some_and(|top| key < top.key) {
            self.kept.pop();
            self.kept.push(Candidate { key, meta });
        }
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
}

/// One page of `request` over `tree` (see the module doc). `default_limit`
/// is the page size when the request names none.
pub async fn list_tree(tree: &mut dyn FolderTree, request: &ListRequest, default_limit: usize) -> Result<ListPage> {
    request.check()?;
    let id_prefix = request.id_prefix();
    let (start, name_prefix) = match id_prefix.rsplit_once('/') {
        Some((folder, partial)) => (folder.to_owned(), partial.to_owned()),
        None => (String::new(), id_prefix.clone()),
    };
    let limit = request.limit.unwrap_or(default_limit).max(1);
    // One more than the page: tells whether there is a next page.
    let want = limit + 1;
    let mut found: Vec<ObjectMeta> = Vec::with_capacity(want.min(4096));
    let mut stack = vec![Frame { folder: start, name_prefix, queue: VecDeque::new(), last_key: None, complete: false }];
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
                capacity: want - found.len(),
                kept: BinaryHeap::new(),
                overflowed: false,
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
            stack.push(Frame {
                folder,
                name_prefix: String::new(),
                queue: VecDeque::new(),
                last_key: None,
                complete: false,
            });
            continue;
        }
        if check_object_id(&next.key).is_err() {
            continue; // too long as a whole
        }
        let meta = match next.meta {
            Some(meta) => meta,
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
    let next_page = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|m| m.object_id.clone())
    } else {
        None
    };
    Ok(ListPage { objects: found, next_page })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// A tree of folders in memory that counts what a listing reads.
    struct MemTree {
        /// folder -> (name, is_folder)
        folders: BTreeMap<String, Vec<(String, bool)>>,
        entries_offered: usize,
        folder_reads: usize,
    }

    impl MemTree {
        fn new(ids: &[String]) -> Self {
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
            MemTree { folders, entries_offered: 0, folder_reads: 0 }
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
    }

    async fn all_pages(tree: &mut MemTree, request: ListRequest) -> (Vec<String>, usize) {
        let mut request = request;
        let (mut ids, mut pages) = (Vec::new(), 0);
        loop {
            let page = list_tree(tree, &request, 1000).await.unwrap();
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
            let page = list_tree(&mut tree, &request, 1000).await.unwrap();
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
        let page = list_tree(&mut tree, &ListRequest::new("").with_limit(3), 1000).await.unwrap();
        assert_eq!(page.objects.iter().map(|o| o.object_id.as_str()).collect::<Vec<_>>(), ["z/last"]);
        assert_eq!(page.next_page, None);
    }

    #[tokio::test]
    async fn hostile_prefixes_are_refused_before_any_read() {
        let mut tree = MemTree::new(&["a/b".to_owned()]);
        for (path, prefix) in [("", "../../etc/"), ("..", ""), ("a/../..", ""), ("/etc", "x/../../")] {
            let request = ListRequest::new(path).with_prefix(prefix);
            let e = list_tree(&mut tree, &request, 10).await.unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{path:?} {prefix:?}");
        }
        assert_eq!(tree.folder_reads, 0);
    }
}
