//! No-panic sweep over every truncation of valid packets, byte-flipped variants and
//! pseudo-random input, through every parser and in-place rewriter of this module.

use std::time::Duration;

use super::event::{EventDetector, TelephoneEvent};
use super::header::{classify, is_rtcp, RtpPacket, RtpPacketMut};
use super::rewrite::StreamRewriter;
use super::rtcp::{packets, rewrite_ssrcs, validate_compound, RtcpView};
use super::stats::ReceiverStats;

/// Deterministic xorshift64 so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 24) as u8
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs everything that takes network bytes; returns how many parses succeeded.
fn exercise(bytes: &[u8], rewriter: &mut StreamRewriter, detector: &mut EventDetector) -> usize {
    let mut ok = 0;
    let _ = (classify(bytes), is_rtcp(bytes));
    if let Ok(p) = RtpPacket::parse(bytes) {
        ok += 1;
        let _ = (
            p.fields(),
            p.csrcs().count(),
            p.extension(),
            p.payload(),
            p.padding_len(),
        );
        let _ = detector.on_packet(&p);
    }
    let mut copy = bytes.to_vec();
    if let Ok(mut p) = RtpPacketMut::parse(&mut copy) {
        p.set_ssrc(1);
        p.set_sequence_number(2);
        p.set_timestamp(3);
        p.set_marker(true);
        let _ = p.set_payload_type(101);
        p.payload_mut().fill(0);
    }
    let mut copy = bytes.to_vec();
    let _ = rewriter.relay(&mut copy, Duration::from_millis(20));
    for packet in packets(bytes) {
        let Ok(packet) = packet else { break };
        ok += 1;
        match packet.view() {
            Ok(RtcpView::SenderReport(sr)) => ok += sr.report_blocks().count(),
            Ok(RtcpView::ReceiverReport(rr)) => ok += rr.report_blocks().count(),
            Ok(RtcpView::SourceDescription(sdes)) => {
                for chunk in sdes.chunks().flatten() {
                    ok += chunk.items().count();
                    let _ = chunk.cname();
                }
            }
            Ok(RtcpView::Goodbye(bye)) => ok += bye.ssrcs().count(),
            _ => {}
        }
    }
    let _ = validate_compound(bytes);
    let mut copy = bytes.to_vec();
    if rewrite_ssrcs(&mut copy, |_, s| s.rotate_left(7)).is_err() {
        assert_eq!(
            copy, bytes,
            "a failed rewrite must leave the packet untouched"
        );
    }
    ok += usize::from(TelephoneEvent::parse(bytes).is_ok());
    let _ = detector.on_payload(7, bytes);
    ok
}

fn valid_packets() -> Vec<Vec<u8>> {
    vec![
        super::header::tests::PCMU.to_vec(),
        super::header::tests::FULL.to_vec(),
        super::rtcp::tests::COMPOUND.to_vec(),
        vec![0x05, 0x8a, 0x03, 0x20],
    ]
}

#[test]
fn every_truncation_of_valid_packets_is_handled() {
    let mut rewriter = StreamRewriter::new(9, 8000, 0, 0);
    let mut detector = EventDetector::new();
    for packet in valid_packets() {
        assert!(exercise(&packet, &mut rewriter, &mut detector) > 0);
        for len in 0..packet.len() {
            exercise(&packet[..len], &mut rewriter, &mut detector);
        }
    }
}

#[test]
fn flipped_and_random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut rewriter = StreamRewriter::new(9, 8000, 0, 0);
    let mut detector = EventDetector::new();
    let mut stats = ReceiverStats::new(8000);
    let valid = valid_packets();
    let mut parsed = 0;
    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            let mut b = valid[rng.below(valid.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len());
                b[at] = rng.byte();
            }
            b
        } else {
            let len = rng.below(96);
            let mut b: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            // Mostly version 2, so the deeper paths are reached.
            if let Some(first) = b.first_mut() {
                *first = 0x80 | (*first & 0x3f);
            }
            b
        };
        bytes.truncate(rng.below(bytes.len() + 1).max(bytes.len() / 2));
        parsed += exercise(&bytes, &mut rewriter, &mut detector);
        let seq = (rng.next() & 0xffff) as u16;
        let _ = stats.on_packet(
            seq,
            rng.next() as u32,
            Duration::from_micros(rng.next() >> 20),
            160,
        );
        let _ = (
            stats.cumulative_lost(),
            stats.take_interval(),
            stats.jitter_ms(),
        );
        let _ = rewriter.next_generated(
            0,
            (rng.next() & 0xfff) as u32,
            Duration::from_micros(rng.next() >> 30),
        );
        let _ = rewriter.next_generated_event(
            101,
            rng.next() & 1 == 0,
            rng.next() as u16,
            Duration::ZERO,
        );
    }
    assert!(
        parsed > 1000,
        "the sweep must reach the parsers' success paths"
    );
}
