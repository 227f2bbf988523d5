//! RFC 4733 telephone-events: the 4-byte payload, a detector that reports each key press
//! once, and a generator for the packets of an event we send ourselves.
//!
//! ```text
//! |     event     |E|R| volume    |          duration             |
//! ```
//!
//! All packets of one event carry the RTP timestamp of its start; the duration grows with
//! each update and the final (E) packet is sent three times.

use std::time::Duration;

use super::duration_to_ticks;
use super::error::RtpError;
use super::header::RtpPacket;
use crate::media::dtmf::DtmfDigit;

/// Length of one telephone-event payload.
pub const EVENT_PAYLOAD_LEN: usize = 4;
/// Largest volume (-63 dBm0).
pub const MAX_VOLUME: u8 = 63;
/// Volume used for DTMF we generate (-10 dBm0, a common default).
pub const DEFAULT_DTMF_VOLUME: u8 = 10;
/// Interval between update packets of generated events (RFC 4733 suggests 50 ms).
pub const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_millis(50);
/// How many times the end packet is sent (RFC 4733 §2.5.1.4).
pub const END_PACKET_COPIES: u8 = 3;
/// Events whose timestamp is at most this far behind the current one are stale duplicates
/// (e.g. a late retransmitted end of the previous press), not new events.
const STALE_WINDOW: u32 = 1 << 22;

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-15 DTMF, others tones/signals).
    pub code: u8,
    /// E bit: this packet ends the event.
    pub end: bool,
    /// R bit: reserved, sent as 0 and ignored on receipt.
    pub reserved: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event of a payload (redundant events of RFC 4733 §2.5.1.5 are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, RtpError> {
        let b: &[u8; EVENT_PAYLOAD_LEN] = payload.first_chunk().ok_or(RtpError::Truncated {
            needed: EVENT_PAYLOAD_LEN,
            available: payload.len(),
        })?;
        Ok(Self {
            code: b[0],
            end: b[1] & 0x80 != 0,
            reserved: b[1] & 0x40 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Result<[u8; EVENT_PAYLOAD_LEN], RtpError> {
        if self.volume > MAX_VOLUME {
            return Err(RtpError::InvalidVolume(self.volume));
        }
        let flags = if self.end { 0x80 } else { 0 } | if self.reserved { 0x40 } else { 0 };
        let [hi, lo] = self.duration.to_be_bytes();
        Ok([self.code, flags | self.volume, hi, lo])
    }

    /// Writes the payload into `buf`; returns its length (4).
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, RtpError> {
        let bytes = self.to_bytes()?;
        let available = buf.len();
        let dst: &mut [u8; EVENT_PAYLOAD_LEN] =
            buf.first_chunk_mut().ok_or(RtpError::BufferTooSmall {
                needed: EVENT_PAYLOAD_LEN,
                available,
            })?;
        *dst = bytes;
        Ok(EVENT_PAYLOAD_LEN)
    }

    /// The DTMF key, for event codes 0-15.
    pub fn digit(&self) -> Option<DtmfDigit> {
        DtmfDigit::from_event(self.code)
    }
}

/// What the detector learned from one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventReport {
    /// Event code.
    pub code: u8,
    /// The DTMF key, for codes 0-15.
    pub digit: Option<DtmfDigit>,
    /// RTP timestamp of the event's start (identifies the event).
    pub timestamp: u32,
    /// First packet seen of this event: act on the key now.
    pub is_new: bool,
    /// The event has ended (first end packet seen); `duration` is then final.
    pub ended: bool,
    /// Duration so far in timestamp units, including long-event segments.
    pub duration: u32,
}

impl EventReport {
    /// The duration as time, for a `clock_rate` Hz stream.
    pub fn duration_at(&self, clock_rate: u32) -> Duration {
        Duration::from_micros(u64::from(self.duration) * 1_000_000 / u64::from(clock_rate.max(1)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ActiveEvent {
    code: u8,
    start_timestamp: u32,
    /// Timestamp of the current segment (differs from the start only for long events).
    segment_timestamp: u32,
    /// Duration of the segments before the current one.
    earlier_segments: u32,
    segment_duration: u16,
    ended: bool,
}

impl ActiveEvent {
    fn report(&self, is_new: bool) -> EventReport {
        EventReport {
            code: self.code,
            digit: DtmfDigit::from_event(self.code),
            timestamp: self.start_timestamp,
            is_new,
            ended: self.ended,
            duration: self
                .earlier_segments
                .saturating_add(u32::from(self.segment_duration)),
        }
    }
}

/// Turns the telephone-event packets of one stream into one report per key press (on its
/// first packet) plus one when it ends; robust to lost starts and repeated end packets.
#[derive(Debug, Clone, Default)]
pub struct EventDetector {
    ssrc: Option<u32>,
    current: Option<ActiveEvent>,
}

impl EventDetector {
    /// A detector with no event seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the current event (e.g. after a re-INVITE).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The latest event, if any, as a report with `is_new` false.
    pub fn current(&self) -> Option<EventReport> {
        self.current.map(|event| event.report(false))
    }

    /// Feeds a telephone-event RTP packet (the caller has checked the payload type);
    /// a new SSRC resets the detector.
    pub fn on_packet(&mut self, packet: &RtpPacket<'_>) -> Result<Option<EventReport>, RtpError> {
        if self.ssrc != Some(packet.ssrc()) {
            self.reset();
            self.ssrc = Some(packet.ssrc());
        }
        self.on_payload(packet.timestamp(), packet.payload())
    }

    /// Feeds one telephone-event payload with its RTP timestamp.
    pub fn on_payload(
        &mut self,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<EventReport>, RtpError> {
        let event = TelephoneEvent::parse(payload)?;
        Ok(self.on_event(timestamp, &event))
    }

    /// Feeds one parsed event with its RTP timestamp.
    pub fn on_event(&mut self, timestamp: u32, event: &TelephoneEvent) -> Option<EventReport> {
        if let Some(current) = &mut self.current {
            let delta = timestamp.wrapping_sub(current.segment_timestamp);
            if delta == 0 {
                current.segment_duration = current.segment_duration.max(event.duration);
                if event.end && !current.ended {
                    current.ended = true;
                    return Some(current.report(false));
                }
                return None;
            }
            let forward = (delta as i32) > 0;
            // A long event goes on in a new segment that starts inside the time already
            // covered (RFC 4733 §2.5.1.3); a new press starts after the old one ended.
            if forward
                && !current.ended
                && event.code == current.code
                && delta <= u32::from(current.segment_duration)
            {
                current.earlier_segments = current.earlier_segments.saturating_add(delta);
                current.segment_timestamp = timestamp;
                current.segment_duration = event.duration;
                if event.end {
                    current.ended = true;
                    return Some(current.report(false));
                }
                return None;
            }
            if !forward && delta.wrapping_neg() <= STALE_WINDOW {
                return None;
            }
        }
        let event = ActiveEvent {
            code: event.code,
            start_timestamp: timestamp,
            segment_timestamp: timestamp,
            earlier_segments: 0,
            segment_duration: event.duration,
            ended: event.end,
        };
        self.current = Some(event);
        Some(event.report(true))
    }
}

/// One packet of a generated event: its payload and how to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedEvent {
    /// The telephone-event payload.
    pub payload: [u8; EVENT_PAYLOAD_LEN],
    /// First packet of the event: set the marker bit.
    pub start: bool,
    /// An end packet (one of three copies).
    pub end: bool,
    /// Duration field of this packet, in timestamp units.
    pub duration: u16,
    /// When to send it, in timestamp units after the event start.
    pub send_offset: u32,
}

/// Produces the packets of one event we send: a start packet (duration 0), updates every
/// interval, then three identical end packets, all due at the end (sent back to back).
///
/// Events longer than 0xFFFF timestamp units (8.2 s at 8 kHz) are cut to that length.
#[derive(Debug, Clone)]
pub struct EventGenerator {
    code: u8,
    volume: u8,
    total: u16,
    interval: u32,
    started: bool,
    next_update: u32,
    ends_left: u8,
}

impl EventGenerator {
    /// An event `code` of `duration_ticks`, updated every `interval_ticks`.
    pub fn new(
        code: u8,
        volume: u8,
        duration_ticks: u32,
        interval_ticks: u32,
    ) -> Result<Self, RtpError> {
        if volume > MAX_VOLUME {
            return Err(RtpError::InvalidVolume(volume));
        }
        Ok(Self {
            code,
            volume,
            total: u16::try_from(duration_ticks).unwrap_or(u16::MAX),
            interval: interval_ticks.max(1),
            started: false,
            next_update: 0,
            ends_left: END_PACKET_COPIES,
        })
    }

    /// A DTMF key press of `duration` on a `clock_rate` Hz stream, default volume and interval.
    pub fn dtmf(digit: DtmfDigit, duration: Duration, clock_rate: u32) -> Self {
        let ticks =
            |d: Duration| u32::try_from(duration_to_ticks(d, clock_rate)).unwrap_or(u32::MAX);
        Self {
            code: digit.event(),
            volume: DEFAULT_DTMF_VOLUME,
            total: u16::try_from(ticks(duration)).unwrap_or(u16::MAX),
            interval: ticks(DEFAULT_UPDATE_INTERVAL).max(1),
            started: false,
            next_update: 0,
            ends_left: END_PACKET_COPIES,
        }
    }

    /// The event's total duration in timestamp units.
    pub fn duration(&self) -> u16 {
        self.total
    }

    fn packet(&self, duration: u16, start: bool, end: bool) -> GeneratedEvent {
        // Volume was checked at construction, so the byte layout is built directly.
        let [hi, lo] = duration.to_be_bytes();
        let flags = if end { 0x80 } else { 0 };
        GeneratedEvent {
            payload: [self.code, flags | self.volume, hi, lo],
            start,
            end,
            duration,
            send_offset: u32::from(duration),
        }
    }
}

impl Iterator for EventGenerator {
    type Item = GeneratedEvent;

    fn next(&mut self) -> Option<GeneratedEvent> {
        let total = u32::from(self.total);
        if !self.started {
            self.started = true;
            self.next_update = self.interval;
            // A zero-length event starts with its first end packet.
            let end = total == 0;
            if end {
                self.ends_left -= 1;
            }
            return Some(self.packet(0, true, end));
        }
        if self.next_update < total {
            // Below `total`, so it fits in u16.
            let duration = u16::try_from(self.next_update).unwrap_or(self.total);
            self.next_update = self.next_update.saturating_add(self.interval);
            return Some(self.packet(duration, false, false));
        }
        if self.ends_left == 0 {
            return None;
        }
        self.ends_left -= 1;
        Some(self.packet(self.total, false, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            code,
            end,
            reserved: false,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn parses_and_builds_payloads() {
        // Digit 5, E=1, volume 10, duration 800 (100 ms at 8 kHz).
        let end = TelephoneEvent::parse(&[0x05, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(end, ev(5, true, 800));
        assert_eq!(end.digit().map(DtmfDigit::as_char), Some('5'));
        assert_eq!(end.to_bytes(), Ok([0x05, 0x8a, 0x03, 0x20]));
        // '#', R bit set, volume 10, duration 160.
        let hash = TelephoneEvent::parse(&[0x0b, 0x4a, 0x00, 0xa0, 0xff]).unwrap();
        assert_eq!(
            (
                hash.code,
                hash.end,
                hash.reserved,
                hash.volume,
                hash.duration
            ),
            (11, false, true, 10, 160)
        );
        assert_eq!(hash.digit().map(DtmfDigit::as_char), Some('#'));
        assert_eq!(
            TelephoneEvent::parse(&[0x20, 0, 0, 0]).unwrap().digit(),
            None
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(RtpError::Truncated {
                needed: 4,
                available: 3
            })
        );
        let loud = TelephoneEvent { volume: 64, ..end };
        assert_eq!(loud.to_bytes(), Err(RtpError::InvalidVolume(64)));
        let mut buf = [0u8; 3];
        assert!(matches!(
            end.write(&mut buf),
            Err(RtpError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn reports_a_press_once_when_it_starts_and_once_when_it_ends() {
        let mut d = EventDetector::new();
        let first = d.on_event(1000, &ev(1, false, 0)).unwrap();
        assert!(first.is_new && !first.ended);
        assert_eq!(first.digit.map(DtmfDigit::as_char), Some('1'));
        assert_eq!(d.on_event(1000, &ev(1, false, 400)), None);
        let ended = d.on_event(1000, &ev(1, true, 800)).unwrap();
        assert!(!ended.is_new && ended.ended);
        assert_eq!(ended.duration, 800);
        assert_eq!(ended.duration_at(8000), Duration::from_millis(100));
        assert_eq!(d.on_event(1000, &ev(1, true, 800)), None);
        assert_eq!(d.on_event(1000, &ev(1, true, 800)), None);
        assert_eq!(d.current().map(|r| r.ended), Some(true));
    }

    #[test]
    fn lost_start_reports_on_the_first_end_packet_only() {
        let mut d = EventDetector::new();
        let report = d.on_event(5000, &ev(9, true, 960)).unwrap();
        assert!(report.is_new && report.ended);
        assert_eq!(report.duration, 960);
        assert_eq!(d.on_event(5000, &ev(9, true, 960)), None);
        assert_eq!(d.on_event(5000, &ev(9, true, 960)), None);
    }

    #[test]
    fn the_same_key_twice_is_two_presses() {
        let mut d = EventDetector::new();
        // First press: start and one update; all of its end packets are lost.
        assert!(d.on_event(1000, &ev(3, false, 0)).unwrap().is_new);
        assert_eq!(d.on_event(1000, &ev(3, false, 400)), None);
        // Second press of the same key starts after the first one (not inside it).
        assert!(d.on_event(2600, &ev(3, false, 0)).unwrap().is_new);
        assert!(d.on_event(2600, &ev(3, true, 800)).unwrap().ended);
        // Third press after a cleanly ended one.
        assert!(d.on_event(4200, &ev(3, false, 0)).unwrap().is_new);
        assert_eq!(
            d.current().map(|r| (r.timestamp, r.ended)),
            Some((4200, false))
        );
    }

    #[test]
    fn late_end_of_the_previous_press_is_ignored() {
        let mut d = EventDetector::new();
        d.on_event(1000, &ev(4, true, 800));
        assert!(d.on_event(2600, &ev(5, false, 0)).unwrap().is_new);
        assert_eq!(d.on_event(1000, &ev(4, true, 800)), None);
        assert_eq!(d.current().map(|r| r.code), Some(5));
    }

    #[test]
    fn long_event_segments_are_one_press() {
        let mut d = EventDetector::new();
        assert!(d.on_event(0xffff_0000, &ev(0, false, 0)).unwrap().is_new);
        assert_eq!(d.on_event(0xffff_0000, &ev(0, false, 0xffff)), None);
        // The next segment starts 0xFFFF later (crossing the timestamp wrap).
        let next = 0xffff_0000u32.wrapping_add(0xffff);
        assert_eq!(d.on_event(next, &ev(0, false, 800)), None);
        let end = d.on_event(next, &ev(0, true, 1600)).unwrap();
        assert!(end.ended && !end.is_new);
        assert_eq!(end.timestamp, 0xffff_0000);
        assert_eq!(end.duration, 0xffff + 1600);
    }

    #[test]
    fn a_new_ssrc_resets_the_detector() {
        let packet = |ssrc: u32| {
            let mut bytes = [0u8; 16];
            crate::media::rtp::header::write_header(
                &mut bytes,
                &crate::media::rtp::header::RtpHeaderFields {
                    marker: true,
                    payload_type: 101,
                    sequence_number: 1,
                    timestamp: 1000,
                    ssrc,
                },
            )
            .unwrap();
            bytes[12..].copy_from_slice(&[7, 0x8a, 0x03, 0x20]);
            bytes
        };
        let mut d = EventDetector::new();
        let a = packet(1);
        let b = packet(2);
        assert!(
            d.on_packet(&RtpPacket::parse(&a).unwrap())
                .unwrap()
                .unwrap()
                .is_new
        );
        assert_eq!(d.on_packet(&RtpPacket::parse(&a).unwrap()).unwrap(), None);
        assert!(
            d.on_packet(&RtpPacket::parse(&b).unwrap())
                .unwrap()
                .unwrap()
                .is_new
        );
        assert!(d.on_payload(1, &[1, 2]).is_err());
    }

    #[test]
    fn generator_sends_start_updates_and_three_ends() {
        let digit = DtmfDigit::from_char('7').unwrap();
        let packets: Vec<_> =
            EventGenerator::dtmf(digit, Duration::from_millis(120), 8000).collect();
        let summary: Vec<_> = packets
            .iter()
            .map(|p| (p.start, p.end, p.duration, p.send_offset))
            .collect();
        assert_eq!(
            summary,
            vec![
                (true, false, 0, 0),
                (false, false, 400, 400),
                (false, false, 800, 800),
                (false, true, 960, 960),
                (false, true, 960, 960),
                (false, true, 960, 960),
            ]
        );
        assert_eq!(packets[0].payload, [7, 0x0a, 0, 0]);
        assert_eq!(packets[5].payload, [7, 0x8a, 0x03, 0xc0]);
        // What we send, our own detector reads as one press.
        let mut d = EventDetector::new();
        let reports: Vec<_> = packets
            .iter()
            .filter_map(|p| d.on_payload(4242, &p.payload).unwrap())
            .collect();
        assert_eq!(reports.len(), 2);
        assert!(reports[0].is_new && reports[1].ended);
        assert_eq!(reports[1].duration, 960);
    }

    #[test]
    fn generator_edge_cases() {
        // Zero length: start and end coincide, the first end packet carries the marker.
        let zero: Vec<_> = EventGenerator::new(1, 10, 0, 400).unwrap().collect();
        assert_eq!(zero.len(), 3);
        assert!(zero[0].start && zero[0].end);
        assert!(zero[1..].iter().all(|p| !p.start && p.end));
        // Over-long events are cut at 0xFFFF.
        let long = EventGenerator::new(1, 10, 100_000, 400).unwrap();
        assert_eq!(long.duration(), 0xffff);
        assert_eq!(long.last().map(|p| p.duration), Some(0xffff));
        assert!(matches!(
            EventGenerator::new(1, 64, 800, 400),
            Err(RtpError::InvalidVolume(64))
        ));
    }
}
