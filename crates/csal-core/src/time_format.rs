//! RFC 3339 timestamps as providers send them, `Retry-After` values, and
//! serde helpers for timestamps and millisecond durations in JSON.

use std::time::{Duration, SystemTime};

/// Parse an RFC 3339 timestamp as cloud APIs and recorders send them:
/// `2025-11-29T09:51:11Z`, with or without fractional seconds (kept to the
/// nanosecond), in UTC (`Z`) or with an offset (`-08:00`, or `-0800` as
/// ffmpeg's HLS muxer writes it). `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (head, mut zone) = (text.get(..19)?, text.get(19..)?);
    let mut fraction = "";
    if let Some(rest) = zone.strip_prefix('.') {
        zone = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        fraction = &rest[..rest.len() - zone.len()];
        if fraction.is_empty() || fraction.len() > 9 {
            return None;
        }
    }
    let whole = humantime::parse_rfc3339(&format!("{head}Z")).ok()?;
    let nanos: u64 = format!("{fraction:0<9}").parse().ok()?;
    let utc = whole.checked_add(Duration::from_nanos(nanos))?;
    // `±hh:mm` or `±hhmm`, matched on bytes: the text comes from recorders
    // and servers and may hold anything, multi-byte characters included.
    let offset = match zone.as_bytes() {
        b"Z" | b"z" => return Some(utc),
        [b'+' | b'-', h1, h2, b':', m1, m2] | [b'+' | b'-', h1, h2, m1, m2] => {
            let digit = |b: &u8| b.is_ascii_digit().then(|| u64::from(b - b'0'));
            let (h, m) = (digit(h1)? * 10 + digit(h2)?, digit(m1)? * 10 + digit(m2)?);
            Duration::from_secs(h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Local time = UTC + offset, so UTC = local - offset.
    if zone.starts_with('-') { utc.checked_add(offset) } else { utc.checked_sub(offset) }
}

/// A `Retry-After` value (RFC 9110 §10.2.3) as a wait from now: whole
/// seconds (`120`), fractional seconds as some S3 clones send (`1.5`), an
/// HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`), or an RFC 3339 time. A date
/// in the past is no wait. The one parser every provider uses.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let when = httpdate::parse_http_date(value).ok().or_else(|| parse_rfc3339(value))?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// `Option<SystemTime>` as an RFC 3339 string (UTC, second precision).
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    /// Serde `serialize_with`.
    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
            None => s.serialize_none(),
        }
    }

    /// Serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_rfc3339_weak(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

/// `Option<Duration>` as a number of milliseconds (fractional).
pub mod duration_ms_option {
    use serde::Serializer;
    use std::time::Duration;

    /// Serde `serialize_with`.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64() * 1000.0),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn parses_utc_fractions_and_offsets() {
        assert_eq!(secs(parse_rfc3339("2025-11-29T09:51:11Z").unwrap()), 1_764_409_871);
        assert_eq!(secs(parse_rfc3339("2025-11-29T09:51:11.537Z").unwrap()), 1_764_409_871);
        assert_eq!(secs(parse_rfc3339("2025-11-29T01:51:11-08:00").unwrap()), 1_764_409_871);
        assert_eq!(secs(parse_rfc3339("2025-11-29T11:51:11.000000+02:00").unwrap()), 1_764_409_871);
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("2025-11-29 09:51").is_none());
        assert!(parse_rfc3339("2025-11-29T09:51:11.Z").is_none());
        assert!(parse_rfc3339("2025-11-29T09:51:11+08").is_none());
    }

    #[test]
    fn keeps_fractions_and_reads_ffmpeg_offsets() {
        let t = parse_rfc3339("2025-11-29T09:51:11.537+0000").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis(), 1_764_409_871_537);
        let t = parse_rfc3339("2025-11-29T10:51:11.5+0100").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis(), 1_764_409_871_500);
    }

    /// Found by `cargo xtask fuzz` (hls_playlist): a multi-byte character
    /// in the offset sliced mid-character and panicked the ingest handler.
    #[test]
    fn odd_offsets_are_refused_without_panic() {
        for text in [
            "2026-07-04T13:00:00+0\u{35a}00",
            "2026-07-04T13:00:00\u{e9}0000",
            "2026-07-04T13:00:00+\u{e9}:000",
            "2026-07-04T13:00:00+01:\u{e9}",
            "2026-07-04T13:00:00+1a:00",
            "2026-07-04T13:00:00+01-00",
            "2026-07-04T13:00:00\u{1F600}",
        ] {
            assert!(parse_rfc3339(text).is_none(), "{text}");
        }
        assert_eq!(secs(parse_rfc3339("2025-11-29T10:51:11+0100").unwrap()), 1_764_409_871);
        assert_eq!(secs(parse_rfc3339("2025-11-29T09:51:11-00:00").unwrap()), 1_764_409_871);
    }

    #[test]
    fn retry_after_takes_seconds_fractions_and_dates() {
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("-3"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let later = SystemTime::now() + Duration::from_secs(30);
        for text in [httpdate::fmt_http_date(later), humantime::format_rfc3339_seconds(later).to_string()] {
            let d = parse_retry_after(&text).unwrap();
            assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(25), "{text}: {d:?}");
        }
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
    }
}
