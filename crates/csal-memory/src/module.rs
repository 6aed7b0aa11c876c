use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use csal_core::{
    ByteRange, ByteStream, Capabilities, ErrorKind, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta,
    Result, StorageError, StorageModule, WriteMeta, WriteReceipt, object_id_from_hint,
};

use crate::config::MemoryConfig;

struct Stored {
    data: Bytes,
    meta: ObjectMeta,
}

/// Objects in a `BTreeMap` (sorted ids make pagination a range scan).
pub struct MemoryModule {
    config: MemoryConfig,
    objects: RwLock<BTreeMap<String, Stored>>,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: MemoryConfig = csal_core::parse_config("memory", config)?;
    Ok(Arc::new(MemoryModule::new(config)))
}

impl MemoryModule {
    /// An empty store.
    pub fn new(config: MemoryConfig) -> Self {
        MemoryModule { config, objects: RwLock::new(BTreeMap::new()) }
    }

    fn used_bytes(&self) -> u64 {
        self.objects.read().expect("lock").values().map(|s| s.data.len() as u64).sum()
    }

    fn check_quota(&self, extra: u64) -> Result<()> {
        match self.config.max_bytes {
            Some(max) if self.used_bytes() + extra > max => {
                Err(StorageError::new(ErrorKind::QuotaExceeded, format!("memory store is limited to {max} bytes")))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl StorageModule for MemoryModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::BASIC.with_content_type(true).with_user_metadata(true).with_conditional_create(true)
    }

    async fn validate(&self) -> Result<()> {
        Ok(())
    }

    async fn write(&self, mut body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            self.check_quota((buf.len() + chunk.len()) as u64)?;
            buf.extend_from_slice(&chunk);
        }
        let data = buf.freeze();
        let mut objects = self.objects.write().expect("lock");
        let mut object_id = object_id_from_hint(&meta.key_hint);
        while objects.contains_key(&object_id) {
            object_id = object_id_from_hint(&meta.key_hint);
        }
        let stored_meta = ObjectMeta {
            modified: Some(SystemTime::now()),
            content_type: meta.content_type,
            metadata: meta.metadata,
            ..ObjectMeta::new(object_id.clone(), data.len() as u64)
        };
        let size = data.len() as u64;
        objects.insert(object_id.clone(), Stored { data, meta: stored_meta });
        Ok(WriteReceipt { object_id, size, checksum: None, etag: None, instance: None })
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let data = self.objects.read().expect("lock").get(object_id).map(|s| s.data.clone());
        let data = data.ok_or_else(|| StorageError::not_found(format!("no object '{object_id}'")))?;
        let span = match range {
            Some(r) => r.resolve(data.len() as u64)?,
            None => 0..data.len() as u64,
        };
        Ok(ByteStream::from_bytes(data.slice(span.start as usize..span.end as usize)))
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        self.objects.write().expect("lock").remove(object_id);
        Ok(())
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        let prefix = request.id_prefix();
        let limit = request.limit.unwrap_or(1000);
        let objects = self.objects.read().expect("lock");
        let start = match &request.continuation {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        let mut page = ListPage::default();
        for (id, stored) in objects.range((start, std::ops::Bound::Unbounded)) {
            if !id.starts_with(&prefix) {
                break;
            }
            if page.objects.len() == limit {
                page.next_page = page.objects.last().map(|m| m.object_id.clone());
                break;
            }
            if request.matches_time(&stored.meta) {
                page.objects.push(stored.meta.clone());
            }
        }
        Ok(page)
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let objects = self.objects.read().expect("lock");
        objects
            .get(object_id)
            .map(|s| s.meta.clone())
            .ok_or_else(|| StorageError::not_found(format!("no object '{object_id}'")))
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        let used = self.used_bytes();
        let mut report = HealthReport::ok(started.elapsed().max(Duration::from_nanos(1)))
            .with_detail("objects", self.objects.read().expect("lock").len())
            .with_detail("used_bytes", used);
        if self.config.max_bytes.is_some_and(|max| used * 10 >= max * 9) {
            report.degrade("store is over 90% full");
        }
        report
    }
}
