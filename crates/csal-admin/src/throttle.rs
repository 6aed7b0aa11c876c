//! Password-guessing defence of `POST /login`, per client address.
//!
//! - Each client address (an IPv6 client by its /64, since one host gets a
//!   whole /64) has [`FREE_FAILURES`] wrong passwords in a row; then its
//!   attempts are refused (429 + Retry-After, the password not checked)
//!   for a lockout that doubles with each further failure, up to
//!   [`MAX_LOCKOUT`]. A correct password clears that client's record.
//!   Someone guessing locks out only their own address: the admin logging
//!   in from elsewhere is not slowed.
//! - One client has at most one password check in flight: the check is
//!   reserved before the password is verified, so a concurrent burst from
//!   one address gets one verification, not one per request.
//! - At most [`MAX_CONCURRENT_VERIFICATIONS`] argon2 checks run at once on
//!   the whole server (each takes 19 MiB and tens of ms of CPU); others
//!   queue for up to [`VERIFICATION_QUEUE_WAIT`], then get 503 + Retry-After.
//!
//! The client address is the TCP peer, or, when the peer is one of the
//! configured trusted reverse proxies, the last address in
//! `X-Forwarded-For` that is not a trusted proxy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AdminState;

/// Wrong passwords allowed in a row before a client is locked out.
pub const FREE_FAILURES: u32 = 5;
/// First lockout; each further failure doubles it, up to [`MAX_LOCKOUT`].
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(2);
/// Longest lockout.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// argon2 verifications running at once, server-wide.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 4;
/// How long a login waits for a verification slot before a 503.
pub const VERIFICATION_QUEUE_WAIT: Duration = Duration::from_secs(10);
/// Client records kept; past that, the stalest idle one is forgotten.
const MAX_CLIENTS: usize = 10_000;

/// Whom a login attempt is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(Option<IpAddr>);

impl ClientKey {
    /// The key of a client address (`None`: unknown, all such share one).
    pub fn of(addr: Option<IpAddr>) -> Self {
        ClientKey(addr.map(|a| match a {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        }))
    }
}

#[derive(Default)]
struct ClientState {
    failures: u32,
    locked_until: Option<Instant>,
    in_flight: bool,
    last_failure: Option<Instant>,
}

impl ClientState {
    fn idle(&self, now: Instant) -> bool {
        !self.in_flight && self.locked_until.is_none_or(|t| t <= now)
    }
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many wrong passwords from this client: wait this long.
    LockedOut(Duration),
    /// Another attempt from this client is being checked.
    InFlight,
}

/// Per-client lockouts and the server-wide verification limit.
#[derive(Clone)]
pub struct LoginThrottle {
    clients: Arc<Mutex<HashMap<ClientKey, ClientState>>>,
    permits: Arc<Semaphore>,
    verifying: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            clients: Default::default(),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_VERIFICATIONS)),
            verifying: Default::default(),
            peak: Default::default(),
        }
    }
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, ClientState>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start a login attempt of `client` at `now`: refused while it is
    /// locked out or has an attempt in flight; otherwise reserved until the
    /// returned [`Attempt`] is dropped.
    pub fn begin(&self, client: ClientKey, now: Instant) -> Result<Attempt, Refusal> {
        let mut clients = self.lock();
        if !clients.contains_key(&client) && clients.len() >= MAX_CLIENTS {
            clients.retain(|_, s| !s.idle(now) || s.failures > 0);
            if clients.len() >= MAX_CLIENTS {
                let stalest = clients.iter().filter(|(_, s)| !s.in_flight).min_by_key(|(_, s)| s.last_failure);
                if let Some(k) = stalest.map(|(k, _)| *k) {
                    clients.remove(&k);
                }
            }
        }
        let state = clients.entry(client).or_default();
        if let Some(wait) = state.locked_until.and_then(|t| t.checked_duration_since(now)).filter(|d| !d.is_zero()) {
            return Err(Refusal::LockedOut(wait));
        }
        if state.in_flight {
            return Err(Refusal::InFlight);
        }
        state.in_flight = true;
        Ok(Attempt { throttle: self.clone(), client, outcome_set: false })
    }

    /// The most password checks that ran at once so far (never above
    /// [`MAX_CONCURRENT_VERIFICATIONS`]); for diagnostics and tests.
    pub fn peak_concurrent_verifications(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// `Some(wait)` while `client` is locked out at `now`.
    pub fn locked_for(&self, client: ClientKey, now: Instant) -> Option<Duration> {
        let clients = self.lock();
        clients.get(&client)?.locked_until.and_then(|t| t.checked_duration_since(now)).filter(|d| !d.is_zero())
    }
}

/// One reserved login attempt. Dropping it frees the client's slot.
pub struct Attempt {
    throttle: LoginThrottle,
    client: ClientKey,
    outcome_set: bool,
}

/// A slot among the server-wide concurrent verifications.
pub struct VerificationPermit {
    _permit: OwnedSemaphorePermit,
    verifying: Arc<AtomicUsize>,
}

impl Drop for VerificationPermit {
    fn drop(&mut self) {
        self.verifying.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Attempt {
    /// Wait (at most `wait`) for a verification slot; `None`: the server is
    /// too busy checking other logins.
    pub async fn permit(&self, wait: Duration) -> Option<VerificationPermit> {
        let t = &self.throttle;
        let permit = tokio::time::timeout(wait, t.permits.clone().acquire_owned()).await.ok()?.ok()?;
        let now = t.verifying.fetch_add(1, Ordering::SeqCst) + 1;
        t.peak.fetch_max(now, Ordering::SeqCst);
        Some(VerificationPermit { _permit: permit, verifying: t.verifying.clone() })
    }

    /// The password was wrong.
    pub fn failed(mut self, now: Instant) {
        self.outcome_set = true;
        let mut clients = self.throttle.lock();
        let state = clients.entry(self.client).or_default();
        state.in_flight = false;
        state.failures = state.failures.saturating_add(1);
        state.last_failure = Some(now);
        if state.failures >= FREE_FAILURES {
            let doublings = (state.failures - FREE_FAILURES).min(16);
            state.locked_until = Some(now + FIRST_LOCKOUT.saturating_mul(1 << doublings).min(MAX_LOCKOUT));
        }
    }

    /// The password was right: this client starts afresh.
    pub fn succeeded(mut self) {
        self.outcome_set = true;
        self.throttle.lock().remove(&self.client);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.outcome_set
            && let Some(state) = self.throttle.lock().get_mut(&self.client)
        {
            state.in_flight = false;
        }
    }
}

/// The login client's address (see the module docs for proxies).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The client address of a request that came from `peer` with these
    /// `X-Forwarded-For` values, trusting only `trusted` proxies.
    pub fn resolve(peer: Option<IpAddr>, forwarded_for: &[&str], trusted: &[IpAddr]) -> Self {
        let Some(peer) = peer else { return ClientAddr(None) };
        if !trusted.contains(&peer) {
            return ClientAddr(Some(peer));
        }
        let hops: Vec<&str> = forwarded_for.iter().flat_map(|v| v.split(',')).map(str::trim).collect();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if trusted.contains(&ip) => continue,
                Ok(ip) => return ClientAddr(Some(ip)),
                // Garbage in the chain: stop at the last proxy we trust.
                Err(_) => break,
            }
        }
        ClientAddr(Some(peer))
    }
}

impl FromRequestParts<AdminState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        Ok(ClientAddr::resolve(peer, &forwarded, &state.trusted_proxies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key(s: &str) -> ClientKey {
        ClientKey::of(Some(ip(s)))
    }

    #[test]
    fn lockout_starts_after_five_failures_doubles_caps_and_resets_per_client() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let (guesser, admin) = (key("127.0.0.66"), key("127.0.0.1"));
        for _ in 0..FREE_FAILURES - 1 {
            t.begin(guesser, now).unwrap().failed(now);
        }
        assert_eq!(t.locked_for(guesser, now), None, "four wrong passwords are free");
        t.begin(guesser, now).unwrap().failed(now);
        assert_eq!(t.begin(guesser, now).err(), Some(Refusal::LockedOut(FIRST_LOCKOUT)));
        assert!(t.begin(admin, now).is_ok(), "another client is not locked out");
        let later = now + FIRST_LOCKOUT;
        t.begin(guesser, later).unwrap().failed(later);
        assert_eq!(t.locked_for(guesser, later), Some(FIRST_LOCKOUT * 2));
        let mut at = later;
        for _ in 0..40 {
            at += MAX_LOCKOUT;
            t.begin(guesser, at).unwrap().failed(at);
        }
        assert_eq!(t.locked_for(guesser, at), Some(MAX_LOCKOUT));
        let at = at + MAX_LOCKOUT;
        t.begin(guesser, at).unwrap().succeeded();
        assert_eq!(t.locked_for(guesser, at), None);
    }

    #[test]
    fn one_client_has_one_attempt_in_flight() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let first = t.begin(key("127.0.0.5"), now).unwrap();
        assert_eq!(t.begin(key("127.0.0.5"), now).err(), Some(Refusal::InFlight));
        drop(first);
        assert!(t.begin(key("127.0.0.5"), now).is_ok(), "a dropped attempt frees the slot");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_slash_64() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:127.0.0.9"), key("127.0.0.9"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = ip("127.0.0.10");
        let trusted = [proxy];
        let xff = ["127.0.0.77, 127.0.0.88"];
        // Untrusted peer: its own address, whatever it claims.
        assert_eq!(ClientAddr::resolve(Some(ip("127.0.0.20")), &xff, &trusted).0, Some(ip("127.0.0.20")));
        // Trusted proxy: the last hop it saw.
        assert_eq!(ClientAddr::resolve(Some(proxy), &xff, &trusted).0, Some(ip("127.0.0.88")));
        // Trusted hops are skipped; garbage stops the walk at the proxy.
        assert_eq!(ClientAddr::resolve(Some(proxy), &["127.0.0.77, 127.0.0.10"], &trusted).0, Some(ip("127.0.0.77")));
        assert_eq!(ClientAddr::resolve(Some(proxy), &["nonsense"], &trusted).0, Some(proxy));
        assert_eq!(ClientAddr::resolve(None, &xff, &trusted).0, None);
    }

    #[test]
    fn a_flood_of_clients_keeps_the_record_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 50) {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 + i));
            t.begin(ClientKey::of(Some(a)), now).unwrap().failed(now);
        }
        assert!(t.lock().len() <= MAX_CLIENTS);
    }
}
