//! Fuzzes digest credentials parsing and the nonce manager.
//!
//! Checked: `Credentials::parse` never panics, syntax errors point inside the value,
//! parsed credentials keep the qop invariant, a response computed for them verifies
//! and a wrong one does not; `NonceManager::check` never accepts a nonce whose MAC is
//! not ours, and a nonce it issued behaves as documented (fresh, replay, stale).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sentralbord::sip::auth::{
    ha1, response, verify, AuthError, Credentials, NonceCheck, NonceManager,
};

const SECRET: [u8; 32] = [0x5a; 32];
const LIFETIME: u64 = 300;
/// A fixed "now" (2023-11-14) so runs are reproducible.
const T0: u64 = 1_700_000_000;

fn manager() -> NonceManager {
    NonceManager::new(SECRET, Duration::from_secs(LIFETIME))
}

/// A nonce the manager did not refuse as Invalid must carry our MAC: re-issuing it
/// from its own time and random parts must give the same text (hex is case-insensitive).
fn assert_genuine(m: &NonceManager, nonce: &str) {
    let raw = hex::decode(nonce).expect("accepted nonce is not hex");
    assert_eq!(raw.len(), 40, "accepted nonce has the wrong length");
    let mut time = [0u8; 8];
    time.copy_from_slice(&raw[..8]);
    let mut random = [0u8; 16];
    random.copy_from_slice(&raw[8..24]);
    let reissued = m.issue(u64::from_be_bytes(time), random);
    assert_eq!(
        reissued,
        nonce.to_ascii_lowercase(),
        "a nonce with a forged MAC was not refused"
    );
}

/// Checks an arbitrary nonce string at a few times, including the extremes.
fn check_arbitrary(m: &mut NonceManager, nonce: &str, nc: u32) {
    for now in [0, T0, u64::MAX] {
        let verdict = m.check(nonce, nc, now);
        if verdict != NonceCheck::Invalid {
            assert_genuine(m, nonce);
        }
        let recorded = m.check_and_record(nonce, nc, now);
        if recorded != NonceCheck::Invalid {
            assert_genuine(m, nonce);
        }
    }
}

/// A nonce issued from fuzzer-chosen parts follows the documented life cycle.
fn lifecycle(data: &[u8]) {
    let mut random = [0u8; 16];
    for (dst, src) in random.iter_mut().zip(data.iter()) {
        *dst = *src;
    }
    let mut m = manager();
    let nonce = m.issue(T0, random);
    assert_eq!(nonce.len(), 80);
    let nc = u32::from(data.get(16).copied().unwrap_or(1)).max(1);
    assert_eq!(m.check(&nonce, nc, T0), NonceCheck::Fresh);
    assert_eq!(
        m.check(&nonce.to_ascii_uppercase(), nc, T0),
        NonceCheck::Fresh
    );
    assert_eq!(m.check_and_record(&nonce, nc, T0 + 1), NonceCheck::Fresh);
    assert_eq!(m.check(&nonce, nc, T0 + 1), NonceCheck::Replay);
    assert_eq!(m.check(&nonce, nc + 1, T0 + 1), NonceCheck::Fresh);
    assert_eq!(m.check(&nonce, nc, T0 + LIFETIME + 1), NonceCheck::Stale);
    // A nonce "from the future" beyond a lifetime (wall clock stepped back) is stale.
    assert_eq!(m.check(&nonce, nc, T0 - LIFETIME - 1), NonceCheck::Stale);
    // Flipping any one hex digit of the MAC part must make it invalid.
    if let Some(&b) = data.get(17) {
        let idx = 48 + usize::from(b) % 32;
        let mut bytes = nonce.into_bytes();
        bytes[idx] = if bytes[idx] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(bytes).expect("hex is ASCII");
        assert_eq!(m.check(&forged, nc, T0), NonceCheck::Invalid);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut m = manager();

    match Credentials::parse(data) {
        Ok(c) => {
            assert_eq!(
                c.qop.is_some(),
                c.qop_auth().is_some(),
                "qop invariant broken"
            );
            assert_eq!(c.qop.is_some(), c.nc.is_some(), "nc without qop");
            assert_eq!(c.qop.is_some(), c.cnonce.is_some(), "cnonce without qop");
            let _ = format!("{c:?}");
            // The response computed for these credentials verifies; another does not.
            let h = ha1(c.algorithm, &c.username, &c.realm, "secret");
            let mut good = c.clone();
            good.response = response(c.algorithm, &h, &c.nonce, c.qop_auth(), "REGISTER", &c.uri);
            assert!(
                verify(&good, &h, "REGISTER"),
                "own response does not verify"
            );
            assert!(
                !verify(&good, &h, "INVITE"),
                "response verifies for another method"
            );
            let _ = verify(&c, &h, "REGISTER");
            check_arbitrary(&mut m, &c.nonce, c.nc.unwrap_or(0));
        }
        Err(AuthError::Syntax { at, .. }) => {
            assert!(at <= data.len(), "syntax error offset {at} past the end");
        }
        Err(_) => {}
    }

    // The whole input as a nonce, with a count taken from its first bytes.
    let text = String::from_utf8_lossy(data);
    let nc = data
        .iter()
        .take(4)
        .fold(0u32, |acc, &b| acc << 8 | u32::from(b));
    check_arbitrary(&mut m, &text, nc);

    lifecycle(data);
});
