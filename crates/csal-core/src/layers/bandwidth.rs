//! Upload bandwidth limits, so recorders and deliveries on a shared site
//! uplink leave room for live viewing: one limit for the whole node and one
//! per instance, each changeable at run time (a schedule like rclone's
//! `08:00,1MiB/s 19:00,off` sets them as the day goes by).
//!
//! A limit is a GCRA token bucket ([`governor`]) in bytes per second with a
//! burst of one second; a write's body waits before each piece of at most
//! [`PIECE`] bytes, so concurrent uploads share the rate fairly. Bodies are
//! wrapped per attempt (inside the retry loop), so a replayable body stays
//! replayable.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::error::{Result, StorageError};
use crate::stream::ByteStream;

/// Largest piece a body waits for at once (fair sharing between uploads).
const PIECE: usize = 64 * 1024;
/// Lowest limit accepted: a piece must not wait so long that the idle
/// watchdog takes the upload for stalled.
pub const MIN_RATE: u64 = 16 * 1024;

/// One upload limit (bytes/s), shared by every write it applies to.
#[derive(Clone, Default)]
pub struct Bandwidth {
    limiter: Arc<Mutex<Option<Limit>>>,
}

/// A rate and the bucket that enforces it.
struct Limit {
    rate: u64,
    bucket: Arc<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Bandwidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bandwidth").field("bytes_per_sec", &self.rate()).finish()
    }
}

impl Bandwidth {
    /// Set the limit (`None`: unlimited). Writes in flight follow the new
    /// rate from their next piece on.
    pub fn set(&self, bytes_per_sec: Option<u64>) -> Result<()> {
        let mut slot = self.limiter.lock().expect("bandwidth lock");
        match bytes_per_sec {
            None => *slot = None,
            Some(rate) if rate < MIN_RATE => {
                return Err(StorageError::invalid_input(format!(
                    "a bandwidth limit must be at least {} KiB/s",
                    MIN_RATE / 1024
                )));
            }
            Some(rate) if slot.as_ref().is_some_and(|l| l.rate == rate) => {}
            Some(rate) => {
                let per_sec = NonZeroU32::new(u32::try_from(rate).unwrap_or(u32::MAX)).expect("rate >= MIN_RATE");
                *slot = Some(Limit { rate, bucket: Arc::new(RateLimiter::direct(Quota::per_second(per_sec))) });
            }
        }
        Ok(())
    }

    /// The limit in bytes/s, if one is set.
    pub fn rate(&self) -> Option<u64> {
        self.limiter.lock().expect("bandwidth lock").as_ref().map(|l| l.rate)
    }

    fn current(&self) -> Option<Arc<DefaultDirectRateLimiter>> {
        self.limiter.lock().expect("bandwidth lock").as_ref().map(|l| l.bucket.clone())
    }

    /// Wait until `n` bytes may go (in steps of at most the burst, one
    /// second's worth, which is all the bucket can ever hold).
    async fn wait_for(&self, mut n: usize) {
        let Some(limiter) = self.current() else { return };
        let burst = self.rate().unwrap_or(u64::MAX).min(u64::from(u32::MAX)) as usize;
        while n > 0 {
            let step = n.min(burst);
            let cells = NonZeroU32::new(step as u32).expect("a non-empty step");
            if limiter.until_n_ready(cells).await.is_err() {
                // Cannot happen (step <= burst); never block forever on it.
                return;
            }
            n -= step;
        }
    }
}

/// The node's limit and each instance's, by instance name. Kept by the
/// router's [`LayerConfig`](crate::LayerConfig), so a limit survives the
/// instance being rebuilt after a config change.
#[derive(Clone, Default, Debug)]
pub struct BandwidthLimits {
    node: Bandwidth,
    instances: Arc<Mutex<HashMap<String, Bandwidth>>>,
}

impl BandwidthLimits {
    /// The limit on all uploads of this node together.
    pub fn node(&self) -> &Bandwidth {
        &self.node
    }

    /// The limit of one instance (created unlimited on first use).
    pub fn instance(&self, name: &str) -> Bandwidth {
        self.instances.lock().expect("bandwidth lock").entry(name.to_owned()).or_default().clone()
    }

    /// The body of one write attempt to `instance`, paced by its limit and
    /// the node's (unchanged when neither is set).
    pub(crate) fn pace(&self, instance: &str, body: ByteStream) -> ByteStream {
        let own = self.instances.lock().expect("bandwidth lock").get(instance).cloned();
        let limits: Vec<Bandwidth> =
            own.into_iter().chain(std::iter::once(self.node.clone())).filter(|b| b.rate().is_some()).collect();
        if limits.is_empty() {
            return body;
        }
        body.map_stream(move |s| {
            s.flat_map(|chunk| {
                let pieces: Vec<Result<Bytes>> = match chunk {
                    Ok(bytes) => (0..bytes.len())
                        .step_by(PIECE)
                        .map(|at| Ok(bytes.slice(at..bytes.len().min(at + PIECE))))
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(pieces)
            })
            .then(move |piece| {
                let limits = limits.clone();
                async move {
                    if let Ok(bytes) = &piece {
                        for limit in &limits {
                            limit.wait_for(bytes.len()).await;
                        }
                    }
                    piece
                }
            })
        })
    }
}

/// `4MiB/s`, `500KB/s`, `10M` (per second implied), `off`: bytes per
/// second, `None` for off. Units: B, K/KB/KiB, M/MB/MiB, G/GB/GiB (all
/// binary, as rclone reads them).
pub fn parse_rate(text: &str) -> Result<Option<u64>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t.is_empty() {
        return Ok(None);
    }
    let bad = || StorageError::invalid_input(format!("'{text}' is not a rate like 4MiB/s, 500KiB/s or off"));
    let t = t.strip_suffix("/s").unwrap_or(t);
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let rate = number * scale as f64;
    if !rate.is_finite() || rate < MIN_RATE as f64 || rate > u32::MAX as f64 {
        return Err(StorageError::invalid_input(format!(
            "'{text}': a bandwidth limit must be between {} KiB/s and 4 GiB/s",
            MIN_RATE / 1024
        )));
    }
    Ok(Some(rate as u64))
}

/// A day's limits: `4MiB/s` (all day), or `08:00,1MiB/s 19:00,off` (from
/// each time of day on, wrapping past midnight), as rclone's `--bwlimit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandwidthSchedule {
    /// (minute of the day, limit), sorted by minute.
    steps: Vec<(u32, Option<u64>)>,
}

impl BandwidthSchedule {
    /// Parse a limit (`4MiB/s`, `off`) or a day's schedule (`08:00,1MiB/s 19:00,off`); `InvalidInput` naming the bad part.
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() <= 1 && !text.contains(',') {
            return Ok(BandwidthSchedule { steps: vec![(0, parse_rate(text)?)] });
        }
        let mut steps = Vec::new();
        for part in parts {
            let bad = || StorageError::invalid_input(format!("'{part}' is not HH:MM,RATE (e.g. 08:00,1MiB/s)"));
            let (at, rate) = part.split_once(',').ok_or_else(bad)?;
            let (h, m) = at.split_once(':').ok_or_else(bad)?;
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            steps.push((h * 60 + m, parse_rate(rate)?));
        }
        steps.sort_by_key(|(minute, _)| *minute);
        if steps.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(StorageError::invalid_input(format!("'{text}' names one time twice")));
        }
        Ok(BandwidthSchedule { steps })
    }

    /// The limit at a minute of the day (0..1440): the last step at or
    /// before it, else the day's last step (it runs past midnight).
    pub fn at(&self, minute_of_day: u32) -> Option<u64> {
        let step = self.steps.iter().rev().find(|(m, _)| *m <= minute_of_day).or(self.steps.last());
        step.and_then(|(_, rate)| *rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_rclone() {
        assert_eq!(parse_rate("4MiB/s").unwrap(), Some(4 << 20));
        assert_eq!(parse_rate("500K").unwrap(), Some(500 << 10));
        assert_eq!(parse_rate("1.5M").unwrap(), Some(3 << 19));
        assert_eq!(parse_rate("off").unwrap(), None);
        for bad in ["fast", "4XB/s", "-1M", "1K", "8G", "NaNM"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_schedule_wraps_past_midnight() {
        let s = BandwidthSchedule::parse("08:00,1MiB/s 19:00,off").unwrap();
        assert_eq!(s.at(7 * 60 + 59), None, "before 08:00 the 19:00 step still holds");
        assert_eq!(s.at(8 * 60), Some(1 << 20));
        assert_eq!(s.at(18 * 60 + 59), Some(1 << 20));
        assert_eq!(s.at(23 * 60), None);
        assert_eq!(BandwidthSchedule::parse("2MiB/s").unwrap().at(600), Some(2 << 20));
        for bad in ["08:00", "25:00,1M", "08:00,1M 08:00,2M", "8,1M x"] {
            assert!(BandwidthSchedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_limited_body_is_never_faster_than_its_rate() {
        let limits = BandwidthLimits::default();
        limits.instance("a").set(Some(24 << 10)).unwrap();
        let body = ByteStream::from_bytes(vec![7u8; 60 << 10]);
        let started = std::time::Instant::now();
        let mut paced = limits.pace("a", body);
        let mut total = 0;
        while let Some(chunk) = paced.next().await {
            total += chunk.unwrap().len();
        }
        assert_eq!(total, 60 << 10);
        // A one-second burst (24 KiB) goes at once, the other 36 KiB at 24 KiB/s
        // (a piece of 60 KiB is more than the bucket ever holds: waited in steps).
        assert!(started.elapsed().as_secs_f64() >= 1.4, "{:?}", started.elapsed());
        assert_eq!(limits.instance("a").rate(), Some(24 << 10));
        assert!(limits.instance("a").set(Some(1000)).is_err(), "below the minimum");
    }
}
