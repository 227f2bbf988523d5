//! Stateless-expiry server nonces with nonce-count replay protection.
//!
//! A nonce is `hex(issued_at_be64 || random16 || tag16)` (80 hex digits), where `tag` is
//! HMAC-SHA256(secret, "sentralbord-nonce-v1" || issued_at || random) truncated to 128
//! bits. Only a server holding the secret can mint one, and its age is read from the nonce
//! itself, so nonces that are issued but never used cost no memory. Nonces that are used
//! are remembered (bounded) with the highest nonce count seen, to refuse replays.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation for the nonce MAC, versioned so a format change cannot be confused.
const MAC_LABEL: &[u8] = b"sentralbord-nonce-v1";
const TAG_LEN: usize = 16;
const RAW_LEN: usize = 8 + 16 + TAG_LEN;

/// Default bound on remembered nonces (a few MB at most).
pub const DEFAULT_MAX_TRACKED: usize = 65_536;

/// Highest-seen marker for a nonce used without qop: no later use can exceed it.
const CONSUMED: u32 = u32::MAX;

/// The verdict on a nonce presented in credentials.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, within its lifetime, and the nonce count is new: accept.
    Fresh,
    /// Ours but too old (or no longer tracked): re-challenge with `stale=TRUE`.
    Stale,
    /// Not a nonce this server issued (forged, garbled, or from before a secret change).
    Invalid,
    /// Ours and fresh, but the nonce count is not above the highest seen: a replay.
    Replay,
}

/// Issues and checks digest nonces. Sans-IO: time and randomness are arguments.
pub struct NonceManager {
    secret: [u8; 32],
    lifetime_secs: u64,
    max_tracked: usize,
    /// (issued_at, random) -> highest nonce count seen. Ordered by issue time so expired
    /// entries are dropped with one `split_off`.
    seen: BTreeMap<(u64, [u8; 16]), u32>,
    /// Entries issued at or before this time may have been evicted for room; such a nonce
    /// that is not in `seen` is treated as stale, never as unused (no replay after eviction).
    evicted_up_to: Option<u64>,
}

impl std::fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("NonceManager")
            .field("lifetime_secs", &self.lifetime_secs)
            .field("max_tracked", &self.max_tracked)
            .field("tracked", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// A manager with the server `secret` (random per installation or per start; persist
    /// it to keep nonces valid across restarts) and the nonce `lifetime`.
    pub fn new(secret: [u8; 32], lifetime: Duration) -> Self {
        Self {
            secret,
            lifetime_secs: lifetime.as_secs(),
            max_tracked: DEFAULT_MAX_TRACKED,
            seen: BTreeMap::new(),
            evicted_up_to: None,
        }
    }

    /// Sets the bound on remembered nonces (at least 1).
    pub fn with_max_tracked(mut self, max: usize) -> Self {
        self.max_tracked = max.max(1);
        self
    }

    /// How many used nonces are remembered now.
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }

    fn tag(&self, issued_at: u64, random: &[u8; 16]) -> HmacSha256 {
        // new_from_slice only fails for key lengths HMAC cannot take; any length works.
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.secret).expect("HMAC accepts a 32-byte key");
        mac.update(MAC_LABEL);
        mac.update(&issued_at.to_be_bytes());
        mac.update(random);
        mac
    }

    /// A new nonce carrying its issue time and `random` (16 bytes from the caller's RNG).
    pub fn issue(&self, now_unix_secs: u64, random: [u8; 16]) -> String {
        let tag = self.tag(now_unix_secs, &random).finalize().into_bytes();
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now_unix_secs.to_be_bytes());
        raw[8..24].copy_from_slice(&random);
        raw[24..].copy_from_slice(&tag[..TAG_LEN]);
        hex::encode(raw)
    }

    /// Decodes and authenticates a nonce; `None` if it is not one of ours.
    fn open(&self, nonce: &str) -> Option<(u64, [u8; 16])> {
        if nonce.len() != RAW_LEN * 2 {
            return None;
        }
        let mut raw = [0u8; RAW_LEN];
        hex::decode_to_slice(nonce, &mut raw).ok()?;
        let mut time = [0u8; 8];
        time.copy_from_slice(&raw[..8]);
        let issued_at = u64::from_be_bytes(time);
        let mut random = [0u8; 16];
        random.copy_from_slice(&raw[8..24]);
        // verify_truncated_left compares in constant time.
        self.tag(issued_at, &random)
            .verify_truncated_left(&raw[24..])
            .ok()?;
        Some((issued_at, random))
    }

    /// Checks a nonce from credentials, without recording anything.
    ///
    /// `nc` is the credentials' nonce count, or 0 when the client did not use qop
    /// (`credentials.nc.unwrap_or(0)`; real counts start at 1, RFC 7616 s3.4). A request
    /// without qop carries no counter, so such a nonce is good for one request only: a
    /// second use (with or without qop) is a [`NonceCheck::Replay`] and the client gets a
    /// new challenge. With qop, each `nc` must be above the highest recorded for the nonce.
    ///
    /// After the digest verifies, call [`NonceManager::record`] so that only
    /// authenticated requests take room in the table.
    pub fn check(&self, nonce: &str, nc: u32, now_unix_secs: u64) -> NonceCheck {
        match self.classify(nonce, nc, now_unix_secs) {
            Ok(_) => NonceCheck::Fresh,
            Err(verdict) => verdict,
        }
    }

    /// Records that a request with this nonce and `nc` (0 without qop) was accepted.
    ///
    /// Checks again first, because other requests may have been recorded since
    /// [`NonceManager::check`] (for instance while the credentials were looked up):
    /// returns `false`, recording nothing, if the nonce is no longer fresh for this `nc`;
    /// the caller should then refuse the request as a replay.
    pub fn record(&mut self, nonce: &str, nc: u32, now_unix_secs: u64) -> bool {
        self.purge(now_unix_secs);
        let Ok(key) = self.classify(nonce, nc, now_unix_secs) else {
            return false;
        };
        if !self.seen.contains_key(&key) {
            self.make_room();
        }
        // Without qop the nonce is used up: nothing can be above CONSUMED.
        self.seen.insert(key, if nc == 0 { CONSUMED } else { nc });
        true
    }

    /// [`NonceManager::check`] then, if fresh, [`NonceManager::record`], in one step (for
    /// callers that verify the digest before looking at the nonce).
    pub fn check_and_record(&mut self, nonce: &str, nc: u32, now_unix_secs: u64) -> NonceCheck {
        match self.check(nonce, nc, now_unix_secs) {
            NonceCheck::Fresh if self.record(nonce, nc, now_unix_secs) => NonceCheck::Fresh,
            NonceCheck::Fresh => NonceCheck::Replay,
            other => other,
        }
    }

    /// The table key of a nonce that is fresh for `nc`, or why it is not.
    fn classify(
        &self,
        nonce: &str,
        nc: u32,
        now_unix_secs: u64,
    ) -> Result<(u64, [u8; 16]), NonceCheck> {
        let (issued_at, random) = self.open(nonce).ok_or(NonceCheck::Invalid)?;

        // Older than the lifetime, or "issued" further ahead than a lifetime (the wall
        // clock stepped back a long way): either way, a new nonce sorts it out.
        if now_unix_secs.saturating_sub(issued_at) > self.lifetime_secs
            || issued_at.saturating_sub(now_unix_secs) > self.lifetime_secs
        {
            return Err(NonceCheck::Stale);
        }

        let key = (issued_at, random);
        match self.seen.get(&key) {
            // nc 0 (no qop) after any earlier use, or a count not above the highest seen.
            Some(&last) if nc == 0 || nc <= last => Err(NonceCheck::Replay),
            Some(_) => Ok(key),
            // May have been evicted for room: its counter is lost, so it cannot be trusted.
            None if self.evicted_up_to.is_some_and(|t| issued_at <= t) => Err(NonceCheck::Stale),
            None => Ok(key),
        }
    }

    /// Forgets nonces past their lifetime: they are stale whatever their count.
    fn purge(&mut self, now_unix_secs: u64) {
        let cutoff = now_unix_secs.saturating_sub(self.lifetime_secs);
        if self
            .seen
            .first_key_value()
            .is_some_and(|((t, _), _)| *t < cutoff)
        {
            self.seen = self.seen.split_off(&(cutoff, [0u8; 16]));
        }
    }

    /// Evicts the oldest entries while the table is full.
    fn make_room(&mut self) {
        while self.seen.len() >= self.max_tracked {
            match self.seen.pop_first() {
                Some(((t, _), _)) => {
                    self.evicted_up_to = Some(self.evicted_up_to.map_or(t, |e| e.max(t)));
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn manager() -> NonceManager {
        NonceManager::new([7u8; 32], Duration::from_secs(300))
    }

    fn rnd(n: u8) -> [u8; 16] {
        [n; 16]
    }

    #[test]
    fn issued_nonce_is_fresh_then_counts_up() {
        let mut m = manager();
        let n = m.issue(T0, rnd(1));
        assert_eq!(n.len(), 80);
        assert!(n.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(m.check_and_record(&n, 1, T0 + 1), NonceCheck::Fresh);
        assert_eq!(m.check_and_record(&n, 2, T0 + 2), NonceCheck::Fresh);
        assert_eq!(
            m.check_and_record(&n, 2, T0 + 2),
            NonceCheck::Replay,
            "same nc"
        );
        assert_eq!(
            m.check_and_record(&n, 1, T0 + 3),
            NonceCheck::Replay,
            "lower nc"
        );
        assert_eq!(
            m.check_and_record(&n, 0, T0 + 3),
            NonceCheck::Replay,
            "no qop after qop"
        );
        assert_eq!(
            m.check_and_record(&n, 10, T0 + 3),
            NonceCheck::Fresh,
            "gaps are fine"
        );
        assert_eq!(m.tracked(), 1);
    }

    #[test]
    fn check_alone_records_nothing() {
        let mut m = manager();
        let n = m.issue(T0, rnd(1));
        assert_eq!(m.check(&n, 1, T0), NonceCheck::Fresh);
        assert_eq!(
            m.check(&n, 1, T0),
            NonceCheck::Fresh,
            "unverified requests use nothing"
        );
        assert_eq!(m.tracked(), 0);
        assert!(m.record(&n, 1, T0));
        assert_eq!(m.check(&n, 1, T0), NonceCheck::Replay);
        assert_eq!(m.check(&n, 2, T0), NonceCheck::Fresh);
    }

    #[test]
    fn record_rechecks_for_requests_that_raced() {
        let mut m = manager();
        let n = m.issue(T0, rnd(1));
        // Two requests with the same nc pass `check` while their lookups run.
        assert_eq!(m.check(&n, 1, T0), NonceCheck::Fresh);
        assert_eq!(m.check(&n, 1, T0), NonceCheck::Fresh);
        assert!(m.record(&n, 1, T0));
        assert!(!m.record(&n, 1, T0), "the second is a replay");
        assert!(!m.record("garbage", 1, T0));
        assert!(!m.record(&n, 5, T0 + 301), "stale by now");
    }

    #[test]
    fn without_qop_a_nonce_is_good_once() {
        let mut m = manager();
        let n = m.issue(T0, rnd(2));
        assert_eq!(m.check_and_record(&n, 0, T0), NonceCheck::Fresh);
        assert_eq!(m.check_and_record(&n, 0, T0), NonceCheck::Replay);
        assert_eq!(m.check_and_record(&n, 1, T0), NonceCheck::Replay);
        assert_eq!(m.check_and_record(&n, u32::MAX, T0), NonceCheck::Replay);
    }

    #[test]
    fn expiry_is_stale_after_the_lifetime() {
        let mut m = manager();
        let n = m.issue(T0, rnd(3));
        assert_eq!(
            m.check_and_record(&n, 1, T0 + 300),
            NonceCheck::Fresh,
            "age == lifetime"
        );
        assert_eq!(m.check_and_record(&n, 2, T0 + 301), NonceCheck::Stale);
        let unused = m.issue(T0, rnd(4));
        assert_eq!(m.check(&unused, 1, T0 + 10_000), NonceCheck::Stale);
        let later = m.issue(T0 + 10_000, rnd(5));
        assert_eq!(
            m.check_and_record(&later, 1, T0 + 10_000),
            NonceCheck::Fresh
        );
        assert_eq!(m.tracked(), 1, "expired entries are purged");
    }

    #[test]
    fn clock_stepping_back() {
        let mut m = manager();
        let n = m.issue(T0, rnd(5));
        assert_eq!(
            m.check_and_record(&n, 1, T0 - 100),
            NonceCheck::Fresh,
            "small step"
        );
        let n2 = m.issue(T0, rnd(6));
        assert_eq!(
            m.check(&n2, 1, T0 - 301),
            NonceCheck::Stale,
            "far in the future"
        );
    }

    #[test]
    fn forged_and_garbled_nonces_are_invalid() {
        let mut m = manager();
        let n = m.issue(T0, rnd(7));
        // Flip one hex digit in each of the time, random and tag parts.
        for i in [3, 20, 60, 79] {
            let mut b = n.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let forged = String::from_utf8(b).expect("ascii");
            assert_eq!(
                m.check_and_record(&forged, 1, T0),
                NonceCheck::Invalid,
                "flip at {i}"
            );
        }
        // Extending the lifetime by rewriting the time is caught by the MAC.
        let later = format!("{:016x}{}", T0 + 1000, &n[16..]);
        assert_eq!(
            m.check_and_record(&later, 1, T0 + 1000),
            NonceCheck::Invalid
        );
        let long = format!("{n}00");
        let zz = "zz".repeat(40);
        let wide = "é".repeat(40);
        for bad in ["", "abc", &n[..78], &long, &zz, &wide] {
            assert_eq!(
                m.check_and_record(bad, 1, T0),
                NonceCheck::Invalid,
                "{bad:?}"
            );
        }
        let other = NonceManager::new([8u8; 32], Duration::from_secs(300));
        let foreign = other.issue(T0, rnd(7));
        assert_eq!(
            m.check_and_record(&foreign, 1, T0),
            NonceCheck::Invalid,
            "other server"
        );
        assert_eq!(m.tracked(), 0, "invalid nonces take no room");
    }

    #[test]
    fn issuing_is_deterministic_in_its_inputs() {
        let m = manager();
        assert_eq!(m.issue(T0, rnd(1)), m.issue(T0, rnd(1)));
        assert_ne!(m.issue(T0, rnd(1)), m.issue(T0, rnd(2)));
        assert_ne!(m.issue(T0, rnd(1)), m.issue(T0 + 1, rnd(1)));
    }

    #[test]
    fn full_table_evicts_oldest_and_evicted_nonces_are_stale_not_replayable() {
        let mut m = manager().with_max_tracked(2);
        let a = m.issue(T0, rnd(1));
        let b = m.issue(T0 + 1, rnd(2));
        let c = m.issue(T0 + 2, rnd(3));
        assert_eq!(m.check_and_record(&a, 1, T0 + 5), NonceCheck::Fresh);
        assert_eq!(m.check_and_record(&b, 1, T0 + 5), NonceCheck::Fresh);
        assert_eq!(m.check_and_record(&c, 1, T0 + 5), NonceCheck::Fresh);
        assert_eq!(m.tracked(), 2);
        // `a` was evicted: replaying its nc=1 must not pass as a first use.
        assert_eq!(m.check_and_record(&a, 1, T0 + 6), NonceCheck::Stale);
        assert_eq!(m.check_and_record(&a, 2, T0 + 6), NonceCheck::Stale);
        // The survivors keep their counters.
        assert_eq!(m.check_and_record(&b, 1, T0 + 6), NonceCheck::Replay);
        assert_eq!(m.check_and_record(&c, 2, T0 + 6), NonceCheck::Fresh);
    }

    #[test]
    fn table_stays_bounded_under_many_nonces() {
        let mut m = manager().with_max_tracked(100);
        for i in 0..1000u32 {
            let mut r = [0u8; 16];
            r[..4].copy_from_slice(&i.to_be_bytes());
            let now = T0 + u64::from(i);
            let n = m.issue(now, r);
            assert_eq!(m.check_and_record(&n, 1, now), NonceCheck::Fresh);
            assert!(m.tracked() <= 100);
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let m = NonceManager::new([0xAB; 32], Duration::from_secs(1));
        let s = format!("{m:?}");
        assert!(!s.contains("171"), "{s}");
    }
}
