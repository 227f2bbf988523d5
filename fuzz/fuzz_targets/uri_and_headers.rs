//! Fuzzes the URI, name-addr and Via parsers on arbitrary bytes.
//!
//! Checked: no panic; parsing is deterministic (the raw URI of a parsed value parses
//! to the same value); parsed parts are zero-copy slices of the input as documented;
//! a host prints to text that parses back to the same host; the accessors never panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sentralbord::sip::message::{Host, NameAddr, Uri, Via};

/// True when `part` lies inside `whole`'s buffer.
fn within(whole: &Bytes, part: &Bytes) -> bool {
    let base = whole.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    p >= base && p + part.len() <= base + whole.len()
}

/// Checks a parsed URI against the buffer it came from.
fn check_uri(whole: &Bytes, uri: &Uri) {
    assert!(
        within(whole, &uri.raw),
        "URI raw is not a slice of the input"
    );
    for part in [&uri.user, &uri.password, &uri.host_raw, &uri.headers]
        .into_iter()
        .flatten()
        .chain(std::iter::once(&uri.params))
    {
        if !part.is_empty() {
            assert!(within(&uri.raw, part), "URI part is not a slice of raw");
        }
    }
    let again = Uri::parse(uri.raw.clone()).expect("raw of a parsed URI does not parse");
    assert_eq!(&again, uri, "URI parse is not deterministic");
    if let Some(host) = &uri.host {
        check_host(host);
    }
    let _ = uri.param("transport");
    let _ = uri.param("lr");
    let _ = uri.user_unescaped();
    let _ = uri.is_sip();
    let _ = uri.to_text();
    let _ = uri.to_string();
}

/// A host prints to text that parses back to the same host.
fn check_host(host: &Host) {
    let text = Bytes::from(host.to_string());
    let again = Host::parse(&text).expect("printed host does not parse");
    assert_eq!(&again, host, "host does not survive print and parse");
    let _ = host.ip();
}

fuzz_target!(|data: &[u8]| {
    let whole = Bytes::copy_from_slice(data);

    if let Ok(uri) = Uri::parse(whole.clone()) {
        check_uri(&whole, &uri);
    }
    if let Ok(host) = Host::parse(&whole) {
        check_host(&host);
    }

    if let Ok(na) = NameAddr::parse(whole.clone()) {
        check_uri(&whole, &na.uri);
        if !na.params.is_empty() {
            assert!(
                within(&whole, &na.params),
                "name-addr params are not a slice"
            );
        }
        let _ = na.tag();
        let _ = na.param("expires");
    }

    if let Ok(via) = Via::parse_in(&whole, &whole) {
        check_host(&via.host);
        let _ = via.branch();
        let _ = via.is_rfc3261();
        let _ = via.rport();
        let _ = via.is_reliable();
        let _ = via.sent_by();
        let _ = via.param("received");
    }

    // The same parsers on a part of a larger buffer (how the codec calls them): split at
    // the first comma, as the header splitter would.
    if let Some(comma) = data.iter().position(|&b| b == b',') {
        let part = &whole[..comma];
        if let Ok(na) = NameAddr::parse_in(&whole, part) {
            check_uri(&whole, &na.uri);
        }
        let _ = Via::parse_in(&whole, part).map(|v| v.sent_by());
    }
});
