//! Write one file to two providers through one router and read both back.
//!
//! ```sh
//! cargo run -p csal-providers --example two_providers --features local-fs,memory -- [FILE]
//! ```
//!
//! The router is built from definitions the way an application builds it
//! from its own configuration; the catalog crate does the same from the
//! `storage_modules` table.

use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};

csal_core::link_providers!(csal_providers);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = tempfile::tempdir()?;
    let router = StorageRouter::from_definitions(&[
        InstanceDefinition::new("disk", "local_fs", serde_json::json!({ "root": folder.path() })),
        InstanceDefinition::new("scratch", "memory", serde_json::json!({})),
    ]);
    // The file to store: the first argument, else this example's own source.
    let path = std::env::args().nth(1).unwrap_or_else(|| file!().to_owned());
    for instance in ["disk", "scratch"] {
        // A file body can be replayed, so the retry layer may resend it.
        let body = ByteStream::from_file(&path).await?;
        let receipt = router.write(instance, body, WriteMeta::new("examples/two_providers.rs")).await?;
        let back = router.read(instance, &receipt.object_id, None).await?.collect_limited(64 << 20).await?;
        assert_eq!(back.len() as u64, receipt.size);
        let crc = receipt.checksum.as_ref().map_or("-", |c| c.value.as_str());
        println!("{instance}: {} ({} bytes, crc32c {crc})", receipt.object_id, receipt.size);
    }
    Ok(())
}
