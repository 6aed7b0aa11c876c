//! Upload limits kept in the catalog (so every node and restart agree):
//! per instance under the setting `bandwidth:{module}`, for the whole node
//! under `bandwidth:*` unless `csal serve --bwlimit` overrides it. Each is
//! a rate (`4MiB/s`) or a day's schedule (`08:00,1MiB/s 19:00,off`, the
//! node's local time); [`Catalog::apply_bandwidth`] sets the router's
//! limits for a minute of the day.

use csal_core::layers::BandwidthSchedule;
use csal_core::{Result, StorageError};

use crate::Catalog;

const SETTING_PREFIX: &str = "bandwidth:";
/// The setting key's module part for the node-wide limit.
pub const NODE_LIMIT: &str = "*";

impl Catalog {
    /// Set (or with `None` clear) the upload limit of a module, or of the
    /// node with [`NODE_LIMIT`]. The text is checked before it is stored.
    pub async fn set_bandwidth(&self, module: &str, schedule: Option<&str>) -> Result<()> {
        let name = if module == NODE_LIMIT { NODE_LIMIT.to_owned() } else { self.get_module(module).await?.name };
        let key = format!("{SETTING_PREFIX}{name}");
        match schedule {
            Some(text) => {
                BandwidthSchedule::parse(text)?;
                self.set_setting(&key, text.trim(), false).await
            }
            None => self.delete_setting(&key).await,
        }
    }

    /// The stored limit of a module (or [`NODE_LIMIT`]), as entered.
    pub async fn bandwidth(&self, module: &str) -> Result<Option<String>> {
        self.get_setting(&format!("{SETTING_PREFIX}{module}")).await
    }

    /// Set the router's limits for `minute_of_day` (local time) from the
    /// stored schedules; `node_override` (from `--bwlimit`) replaces the
    /// stored node-wide one. Instances without a setting are unlimited.
    pub async fn apply_bandwidth(&self, minute_of_day: u32, node_override: Option<&BandwidthSchedule>) -> Result<()> {
        let limits = self.router().bandwidth().clone();
        let node = match node_override {
            Some(s) => Some(s.clone()),
            None => self.schedule_of(NODE_LIMIT).await?,
        };
        limits.node().set(node.and_then(|s| s.at(minute_of_day)))?;
        for info in self.router().instances() {
            let schedule = self.schedule_of(&info.name).await?;
            limits.instance(&info.name).set(schedule.and_then(|s| s.at(minute_of_day)))?;
        }
        Ok(())
    }

    async fn schedule_of(&self, name: &str) -> Result<Option<BandwidthSchedule>> {
        match self.bandwidth(name).await? {
            Some(text) => BandwidthSchedule::parse(&text).map(Some).map_err(|e| {
                StorageError::invalid_config(format!("stored bandwidth limit of '{name}' is unusable: {}", e.message()))
            }),
            None => Ok(None),
        }
    }
}
