//! Fuzzes the SIP parser and every lazy typed accessor on what it accepts.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sentralbord::sip::message::{parse, Parsed};

fuzz_target!(|data: &[u8]| {
    match parse(Bytes::copy_from_slice(data)) {
        Parsed::Valid(m) => {
            let _ = m.contacts();
            let _ = m.expires();
            let _ = m.vias().count();
            let _ = m.from();
            let _ = m.to();
            // What we encode must parse again.
            let again = parse(m.encode());
            assert!(
                matches!(again, Parsed::Valid(_)),
                "re-encoded message failed to parse"
            );
        }
        Parsed::Invalid { partial, .. } => {
            if let Some(p) = partial {
                let _ = p.encode();
            }
        }
    }
});
