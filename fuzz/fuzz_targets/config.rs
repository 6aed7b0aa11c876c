//! Instance config (JSON from the admin UI, the API or the CLI) against each
//! registered provider's spec: the spec check, masking and secret collection
//! never panic; a config the spec accepts is given to the provider's factory
//! (no network work by contract), which must not panic either. Configs with
//! path fields are not built (a factory may create its folder).
//!
//! Input: first byte picks the provider, the rest is the JSON text.
#![no_main]

use std::sync::OnceLock;

use csal_core::{FieldKind, InstanceContext, registered_providers};
use libfuzzer_sys::fuzz_target;

csal_core::link_providers!(
    csal_local_fs,
    csal_memory,
    csal_db,
    csal_s3,
    csal_gcs,
    csal_azure_blob,
    csal_webdav,
    csal_swift,
    csal_sftp,
    csal_ftp,
    csal_dropbox,
    csal_onedrive,
    csal_gdrive,
    csal_box,
    csal_pcloud,
    csal_mega
);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else { return };
    let providers = registered_providers();
    let reg = providers[pick as usize % providers.len()];
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    let masked = csal_core::mask_config(reg.fields, &config);
    for field in reg.fields.iter().filter(|f| f.kind.is_secret()) {
        if config.get(field.key).and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty()) {
            assert_eq!(masked[field.key], csal_core::secret::MASK, "{}: secret '{}' shown", reg.provider_type, field.key);
        }
    }
    let _ = csal_core::secret::secret_values(reg.fields, &config);
    if reg.check_config(&config).is_err() {
        return;
    }
    let has_path = reg.fields.iter().any(|f| matches!(f.kind, FieldKind::Path) && config.get(f.key).is_some());
    if has_path || matches!(reg.provider_type, "local_fs" | "db" | "memory") {
        return;
    }
    let _guard = runtime().enter();
    let ctx = InstanceContext::new("fuzz", "fuzz", reg.provider_type);
    let _ = reg.build(&ctx, &config);
});
