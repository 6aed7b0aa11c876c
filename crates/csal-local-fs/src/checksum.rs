//! Each object's CRC32C, kept in the extended attribute `user.csal.crc32c`
//! (8 hex digits) of its file, so a full read can be verified without any
//! index (see `Capabilities::verified_reads`).
//!
//! Why an xattr rather than a sidecar file: it lives on the inode, so the
//! hard link / rename that publishes a write carries it along atomically,
//! a delete removes it, and listings never see it. On filesystems without
//! user xattrs (some FUSE and network mounts) the write still succeeds and
//! its reads are verified only against a checksum the caller passes.

use std::os::fd::AsFd;

use csal_core::Checksum;
use rustix::fs::XattrFlags;

const XATTR: &str = "user.csal.crc32c";

/// Keep `crc` on the open file. `Ok(false)` when the filesystem has no user
/// xattrs (nothing kept; not an error).
pub(crate) fn store(file: impl AsFd, crc: u32) -> std::io::Result<bool> {
    match rustix::fs::fsetxattr(file, XATTR, Checksum::crc32c(crc).value.as_bytes(), XattrFlags::empty()) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::PERM => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The CRC32C kept on the open file, if any (a missing, unreadable or
/// malformed attribute means "not kept": the read is not verified by it).
pub(crate) fn load(file: impl AsFd) -> Option<Checksum> {
    let mut buf = [0u8; 8];
    let len = rustix::fs::fgetxattr(file, XATTR, &mut buf).ok()?;
    let value = std::str::from_utf8(buf.get(..len)?).ok()?;
    Some(Checksum { algorithm: "crc32c".into(), value: value.to_owned() }).filter(|c| c.crc32c_value().is_some())
}
