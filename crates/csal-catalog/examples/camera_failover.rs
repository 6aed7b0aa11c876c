//! A camera policy with fail-over: segments go to the first target that
//! takes them, in the policy's order, and the result says which did and why
//! the others were passed over.
//!
//! ```sh
//! cargo run -p csal-catalog --example camera_failover
//! ```
//!
//! The catalog is an SQLite file with its master key beside it, as `csal
//! serve` keeps it; the two modules are a small in-memory "NVR disk" that
//! fills after 8 KiB and a local folder as the archive.

use csal_catalog::{CameraPolicy, Catalog, MasterKey, NewModule};
use csal_core::{ByteStream, WriteMeta};

csal_core::link_providers!(csal_local_fs, csal_memory);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("catalog.db").display());
    let catalog = Catalog::open(&url, MasterKey::Explicit(MasterKey::generate()?)).await?;
    for (name, provider, config) in [
        ("nvr-disk", "memory", serde_json::json!({ "max_bytes": 8192 })),
        ("archive", "local_fs", serde_json::json!({ "root": dir.path().join("archive") })),
    ] {
        let module =
            NewModule { name: name.into(), label: None, provider_type: provider.into(), is_enabled: true, config };
        catalog.create_module(module).await?;
    }
    catalog.set_policy("camera-5", CameraPolicy::new(vec!["nvr-disk".into(), "archive".into()])).await?;

    // 3 KiB segments: the first two fit on the NVR disk, the third fails over.
    for n in 1..=3 {
        let body = ByteStream::from_bytes(vec![n as u8; 3 * 1024]);
        let write = catalog.write_for_camera("camera-5", body, WriteMeta::new(format!("camera-5/{n:04}.ts"))).await?;
        println!("segment {n}: stored on {} as {}", write.target, write.receipt.object_id);
        for (target, reason) in &write.skipped {
            println!("  passed over {target}: {reason}");
        }
    }
    catalog.close().await;
    Ok(())
}
