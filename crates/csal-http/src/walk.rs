//! A listing that walks a folder tree one page at a time.
//!
//! File-sync services (Box, OneDrive, Google Drive) list one folder per
//! call, paged by their own cursor (a marker, a next link, a page token).
//! A recursive listing is then a walk whose state (the folder being read,
//! its cursor, the folders still to visit) travels in the continuation
//! token, so that each `list` call reads exactly one service page.

use csal_core::{Result, StorageError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The state of a folder walk. `F` is what a provider needs to read a
/// folder again: its path, or its path and the service's folder id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolderWalk<F> {
    /// The service's cursor inside the folder being read.
    #[serde(rename = "n")]
    cursor: Option<String>,
    /// That folder.
    #[serde(rename = "f")]
    folder: Option<F>,
    /// Folders still to visit.
    #[serde(rename = "p")]
    pending: Vec<F>,
}

impl<F: Serialize + DeserializeOwned + Clone> FolderWalk<F> {
    /// A walk from `start`.
    pub fn start(start: F) -> Self {
        FolderWalk { cursor: None, folder: None, pending: vec![start] }
    }

    /// The walk a continuation token holds; `InvalidInput` for a token we
    /// did not make.
    pub fn resume(token: &str) -> Result<Self> {
        decode(token).ok_or_else(|| StorageError::invalid_input("malformed list continuation token"))
    }

    /// The folder to read next and the cursor to read it from; `None` when
    /// the walk is over.
    pub fn next_folder(&mut self) -> Option<(F, Option<String>)> {
        match (self.cursor.take(), self.folder.take()) {
            (Some(cursor), Some(folder)) => Some((folder, Some(cursor))),
            _ => self.pending.pop().map(|f| (f, None)),
        }
    }

    /// A subfolder found on the page, to visit later.
    pub fn visit(&mut self, folder: F) {
        self.pending.push(folder);
    }

    /// The page of `folder` is read; `cursor` is where the service says it
    /// goes on. The continuation token for `ListPage::next_page`, `None`
    /// when nothing is left.
    pub fn after_page(mut self, folder: F, cursor: Option<String>) -> Option<String> {
        self.cursor = cursor.filter(|c| !c.is_empty());
        self.folder = self.cursor.is_some().then_some(folder);
        (self.cursor.is_some() || !self.pending.is_empty()).then(|| encode(&self))
    }
}

/// Fuzzing entry point (feature `fuzzing`; not a public API): a
/// caller-supplied continuation token either is refused or decodes to a walk
/// that re-encodes to a token decoding the same.
#[cfg(feature = "fuzzing")]
pub fn fuzz_continuation_token<F: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug>(token: &str) {
    if let Ok(walk) = FolderWalk::<F>::resume(token) {
        let again = encode(&walk);
        let back = FolderWalk::<F>::resume(&again).expect("an encoded walk decodes");
        assert_eq!(back, walk);
        assert_eq!(encode(&back), again);
    }
}

fn encode<T: Serialize>(walk: &T) -> String {
    serde_json::to_string(walk).unwrap_or_default().bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode<T: DeserializeOwned>(token: &str) -> Option<T> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect();
    serde_json::from_slice(&bytes?).ok()
}

/// Whether a folder (a path relative to the root) can hold object ids that
/// start with `prefix`: folders that cannot are not visited.
pub fn may_contain(folder: &str, prefix: &str) -> bool {
    let f = format!("{folder}/");
    f.starts_with(prefix) || prefix.starts_with(&f)
}

/// `folder/name`, or `name` at the root.
pub fn join_path(folder: &str, name: &str) -> String {
    if folder.is_empty() { name.to_owned() } else { format!("{folder}/{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_pruning_keeps_only_possible_prefixes() {
        assert!(may_contain("a", "a/b-"));
        assert!(may_contain("a/b", "a/"));
        assert!(may_contain("a", ""));
        assert!(!may_contain("c", "a/b-"));
        assert!(!may_contain("ab", "a/"));
    }

    #[test]
    fn a_walk_reads_each_folder_to_its_end_then_the_next() {
        let mut walk = FolderWalk::start("root".to_owned());
        let (folder, cursor) = walk.next_folder().unwrap();
        assert_eq!((folder.as_str(), cursor), ("root", None));
        walk.visit("root/a".to_owned());
        let token = walk.after_page(folder, Some("page2".to_owned())).unwrap();
        let mut walk = FolderWalk::<String>::resume(&token).unwrap();
        assert_eq!(walk.next_folder(), Some(("root".to_owned(), Some("page2".to_owned()))));
        let token = walk.after_page("root".to_owned(), None).unwrap();
        let mut walk = FolderWalk::<String>::resume(&token).unwrap();
        assert_eq!(walk.next_folder(), Some(("root/a".to_owned(), None)));
        assert_eq!(walk.after_page("root/a".to_owned(), None), None);
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for bad in ["zz", "abc", "7b7d00"] {
            assert!(FolderWalk::<String>::resume(bad).is_err(), "{bad}");
        }
    }
}
