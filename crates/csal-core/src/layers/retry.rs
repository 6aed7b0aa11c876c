//! Retries with full-jitter exponential backoff that honour `retry_after`.
//!
//! Only transient errors are retried, and only for idempotent operations or
//! writes whose body can be replayed (each write attempt gets a fresh
//! object id from the provider, so a retry can never overwrite).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{ErrorClass, ErrorKind, Result, StorageError};

/// How the retry layer repeats transient failures.
///
/// `#[non_exhaustive]`: retry knobs will grow; start from
/// [`RetryPolicy::default`] or [`RetryPolicy::none`] and set fields.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Cap of the exponential backoff.
    pub max_delay: Duration,
    /// A provider asking us to wait longer than this gets the error instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts (OpenDAL's `RetryLayer` makes as many): with 1 % of
    /// requests failing, three fail one write in a million, a few a day at a
    /// 200-camera site's ~4 million segment writes (the bench's recorder load
    /// met one: 16,691 writes, all three tries of one of them faulted).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// One attempt, never repeated.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Default::default() }
    }

    /// How long to wait before attempt `attempt + 1` after `error`, or
    /// `None` when we must not retry.
    pub fn delay_after(&self, attempt: u32, error: &StorageError) -> Option<Duration> {
        if attempt >= self.max_attempts || error.class() != ErrorClass::Transient {
            return None;
        }
        let exp = self.base_delay.saturating_mul(1u32 << (attempt - 1).min(16)).min(self.max_delay);
        // Full jitter: uniform in [0, exp].
        let jittered = exp.mul_f64(fastrand::f64());
        match error.retry_after() {
            Some(after) if after > self.max_retry_after => None,
            Some(after) => Some(after.max(jittered)),
            None => Some(jittered),
        }
    }

    /// The policy of a request a provider sends again from memory (a part,
    /// a one-shot body's single request): `attempts` at most, and a
    /// `Retry-After` over 30 s fails it rather than holding the part (the
    /// caller's spool can wait instead).
    pub fn in_place(attempts: u32) -> Self {
        RetryPolicy { max_attempts: attempts.max(1), max_retry_after: Duration::from_secs(30), ..Default::default() }
    }

    /// How many times a provider sends a write's single request from
    /// memory: `attempts` for a one-shot body (a recorder's segment: only
    /// the provider holds its bytes), once for a replayable one (the retry
    /// layer replays it as a whole, under a new id).
    pub fn single_request_attempts(replayable: bool, attempts: u32) -> u32 {
        if replayable { 1 } else { attempts }
    }

    /// [`in_place`](Self::in_place) with the default count of attempts.
    pub fn in_place_default() -> Self {
        Self::in_place(RetryPolicy::default().max_attempts)
    }

    /// Send a request again after transient errors, waiting as
    /// [`delay_after`](Self::delay_after) says: for a provider whose
    /// request body is in memory (a part, a one-shot body's single PUT),
    /// which only it can resend. `send` gets the attempt number (from 1).
    pub async fn resend<T, F, Fut>(&self, what: &str, mut send: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match send(attempt).await {
                Ok(done) => return Ok(done),
                Err(err) => {
                    let Some(wait) = self.delay_after(attempt, &err) else { return Err(err) };
                    tracing::info!(what, attempt, error = %err, "resending");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// [`resend`](Self::resend) for a request that stores an object under
    /// a fresh id. An attempt whose answer was lost
    /// ([`StorageError::answer_lost`]) may have stored it, so `look` asks
    /// for it (`Ok(Some)` when it is there, complete) before the next
    /// attempt and before giving up: a lost answer costs a look rather
    /// than a second upload, and never fails (nor, through the retry
    /// layer's retry under a new id, stores twice) a write that landed.
    /// A resend refused because an earlier attempt took effect
    /// (`AlreadyExists`: `If-None-Match: *` met its object; `NotFound`: the
    /// upload or temporary file it completes is gone) is looked for the
    /// same way. Resending alone cannot find it: a server may answer that
    /// refusal before reading the body and close the connection, and the
    /// client then sees that answer lost too.
    ///
    /// One look budget for every provider: a look that fails transiently
    /// is asked again up to the default count of attempts
    /// ([`in_place_default`](Self::in_place_default)), whatever this policy's count (a
    /// write sent once still needs its look to survive a reset); a look
    /// that fails otherwise counts as not found.
    pub async fn resend_write<T, F, Fut, S, SFut>(&self, what: &str, look: S, mut send: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
        S: Fn() -> SFut,
        SFut: Future<Output = Result<Option<T>>>,
    {
        let look_what = format!("{what} (look for an earlier attempt's object)");
        let look_policy = RetryPolicy::in_place_default();
        let stored = || async { look_policy.resend(&look_what, |_| look()).await.ok().flatten() };
        let (stored, lost) = (&stored, &AtomicBool::new(false));
        let result = self
            .resend(what, |attempt| {
                let sent = send(attempt);
                async move {
                    if attempt > 1
                        && lost.swap(false, Ordering::Relaxed)
                        && let Some(done) = stored().await
                    {
                        tracing::info!(what, "an earlier attempt's answer was lost, but its object is stored");
                        return Ok(done);
                    }
                    match sent.await {
                        // The id is fresh: what is there is an earlier attempt's.
                        Err(err)
                            if attempt > 1 && matches!(err.kind(), ErrorKind::AlreadyExists | ErrorKind::NotFound) =>
                        {
                            stored().await.ok_or(err)
                        }
                        result => {
                            lost.store(result.as_ref().is_err_and(StorageError::answer_lost), Ordering::Relaxed);
                            result
                        }
                    }
                }
            })
            .await;
        match result {
            Err(err) if lost.load(Ordering::Relaxed) => stored().await.ok_or(err),
            done => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_only_transient_and_bounded() {
        let p = RetryPolicy::default();
        let t = StorageError::transient("x");
        assert!(p.delay_after(1, &t).is_some());
        assert!(p.delay_after(3, &t).is_some());
        assert!(p.delay_after(4, &t).is_none());
        assert!(p.delay_after(1, &StorageError::not_found("x")).is_none());
        assert!(p.delay_after(1, &StorageError::auth("x")).is_none());
    }

    #[test]
    fn honours_retry_after() {
        let p = RetryPolicy::default();
        let e = StorageError::transient("slow down").with_retry_after(Some(Duration::from_secs(3)));
        for _ in 0..50 {
            assert!(p.delay_after(1, &e).unwrap() >= Duration::from_secs(3));
        }
        let too_long = StorageError::transient("later").with_retry_after(Some(Duration::from_secs(3600)));
        assert!(p.delay_after(1, &too_long).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_looked_for_before_resending_and_before_giving_up() {
        use std::sync::atomic::AtomicU32;
        let p = RetryPolicy::default();
        let lost = || StorageError::transient("connection closed").with_answer_lost(true);
        // (answers of the attempts, what the looks find) -> (result, attempts, looks)
        type Case = (&'static [bool], &'static [bool], Result<u32, ()>, u32, u32);
        let cases: [Case; 4] = [
            // The first attempt landed: found, not sent again.
            (&[false], &[true], Ok(0), 1, 1),
            // It had not: sent again.
            (&[false, true], &[false], Ok(1), 2, 1),
            // Every answer lost, the object found at the end.
            (&[false; 4], &[false, false, false, true], Ok(0), 4, 4),
            // Every answer lost, nothing stored: the error.
            (&[false; 4], &[false; 4], Err(()), 4, 4),
        ];
        for (answers, finds, want, want_attempts, want_looks) in cases {
            let (attempts, looks) = (&AtomicU32::new(0), &AtomicU32::new(0));
            let got = p
                .resend_write(
                    "write x",
                    || async move {
                        let n = looks.fetch_add(1, Ordering::Relaxed) as usize;
                        Ok(finds[n].then_some(0))
                    },
                    |attempt| async move {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        if answers[attempt as usize - 1] { Ok(attempt - 1) } else { Err(lost()) }
                    },
                )
                .await;
            assert_eq!(got.map_err(|e| assert!(e.answer_lost())), want, "{answers:?} {finds:?}");
            assert_eq!(
                (attempts.load(Ordering::Relaxed), looks.load(Ordering::Relaxed)),
                (want_attempts, want_looks),
                "{answers:?}"
            );
        }
        // A resend refused because the key exists (or the upload it
        // completes is gone): the earlier attempt's object.
        let refusals: [fn() -> StorageError; 2] =
            [|| StorageError::already_exists("412"), || StorageError::not_found("no such upload")];
        for refusal in refusals {
            let (attempts, looks) = (&AtomicU32::new(0), &AtomicU32::new(0));
            let got = p
                .resend_write(
                    "write x",
                    || async move { Ok((looks.fetch_add(1, Ordering::Relaxed) == 1).then_some(7)) },
                    |attempt| async move {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        Err(if attempt == 1 { lost() } else { refusal() })
                    },
                )
                .await;
            assert_eq!(got.unwrap(), 7, "the first look found nothing, the one after the refusal did");
            assert_eq!((attempts.load(Ordering::Relaxed), looks.load(Ordering::Relaxed)), (2, 2));
        }
        // A look that fails transiently is asked again, even for a write
        // sent only once.
        let looks = &AtomicU32::new(0);
        let got = RetryPolicy::in_place(1)
            .resend_write(
                "write x",
                || async move {
                    match looks.fetch_add(1, Ordering::Relaxed) {
                        0 => Err(StorageError::transient("connection reset").with_answer_lost(true)),
                        _ => Ok(Some(9)),
                    }
                },
                |_| async { Err(lost()) },
            )
            .await;
        assert_eq!(got.unwrap(), 9);
        assert_eq!(looks.load(Ordering::Relaxed), 2);
        // An answered failure is not looked for.
        let got: Result<u32> = p
            .resend_write(
                "write x",
                || async { panic!("looked for an object after an answered failure") as Result<Option<u32>> },
                |_| async { Err(StorageError::permanent("refused")) },
            )
            .await;
        assert!(!got.unwrap_err().answer_lost());
    }

    #[test]
    fn backoff_is_capped() {
        let p = RetryPolicy { max_attempts: 40, ..Default::default() };
        let e = StorageError::transient("x");
        for attempt in 1..40 {
            assert!(p.delay_after(attempt, &e).unwrap() <= p.max_delay);
        }
    }
}
