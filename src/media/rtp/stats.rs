//! RFC 3550 receiver statistics for one incoming source: sequence validation with probation
//! (appendix A.1), expected/lost/fraction lost (A.3) and interarrival jitter (A.8).
//!
//! Follows the RFC's reference code, including its quirks: the first packet of a new source
//! only starts probation and is not counted, and duplicates count as received, so cumulative
//! loss can go negative.

use std::time::Duration;

use super::duration_to_ticks;
use super::header::RtpPacket;
use super::rtcp::{ReportBlock, MAX_CUMULATIVE_LOST, MIN_CUMULATIVE_LOST};

/// Largest forward sequence jump still taken as loss rather than a restart (A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward sequence jump still taken as reordering (A.1).
pub const MAX_MISORDER: u16 = 100;
/// Sequential packets needed before a new source is valid (A.1).
pub const MIN_SEQUENTIAL: u8 = 2;

const RTP_SEQ_MOD: u32 = 1 << 16;

/// What [`ReceiverStats`] made of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Counted (in order, lost-then-found, reordered or duplicate).
    Valid,
    /// The source is still in probation; not counted.
    Probation,
    /// A jump beyond MAX_DROPOUT/MAX_MISORDER; not counted unless the next packet confirms it.
    Rejected,
    /// The jump was confirmed by a sequential packet: statistics restarted from this one.
    Restarted,
}

impl SeqVerdict {
    /// Whether the packet was counted as received.
    pub fn is_counted(self) -> bool {
        matches!(self, Self::Valid | Self::Restarted)
    }
}

/// Loss over the interval since the previous report (A.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalLoss {
    /// Packets expected in the interval.
    pub expected: i64,
    /// Packets received in the interval.
    pub received: i64,
    /// Fraction lost in 1/256 units (0 when duplicates outnumber losses).
    pub fraction_lost: u8,
}

/// Receiver statistics for one SSRC; create a new one when the SSRC changes.
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    /// Sequence number wrap count, shifted (multiples of 65536) as in A.1.
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u8,
    received: u64,
    expected_prior: i64,
    received_prior: u64,
    /// Relative transit time of the previous counted packet, in timestamp units.
    transit: Option<u32>,
    /// Jitter scaled by 16, as in the integer form of A.8.
    jitter_q4: u64,
    bytes: u64,
}

impl ReceiverStats {
    /// Statistics for a source whose RTP clock runs at `clock_rate` Hz (8000 for G.711).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            bytes: 0,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        // A restarted source has a new timestamp base: do not take the jump as jitter.
        self.transit = None;
    }

    fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        let mut verdict = SeqVerdict::Valid;
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqVerdict::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a big jump: the other side restarted.
                self.init_seq(seq);
                verdict = SeqVerdict::Restarted;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::Rejected;
            }
        }
        // else: duplicate or reordered packet, counted without moving max_seq.
        self.received += 1;
        verdict
    }

    /// Records a packet whose arrival time is already in RTP timestamp units.
    pub fn on_packet_ticks(
        &mut self,
        seq: u16,
        rtp_timestamp: u32,
        arrival_ticks: u32,
        bytes: usize,
    ) -> SeqVerdict {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let verdict = self.update_seq(seq);
        if verdict.is_counted() {
            self.bytes = self.bytes.saturating_add(bytes as u64);
            self.update_jitter(rtp_timestamp, arrival_ticks);
        }
        verdict
    }

    /// Records a packet that arrived at monotonic time `arrival` (any fixed origin);
    /// `bytes` is added to [`Self::bytes_received`] if the packet is counted.
    pub fn on_packet(
        &mut self,
        seq: u16,
        rtp_timestamp: u32,
        arrival: Duration,
        bytes: usize,
    ) -> SeqVerdict {
        let ticks = self.ticks(arrival);
        self.on_packet_ticks(seq, rtp_timestamp, ticks, bytes)
    }

    /// Records a parsed packet, counting its payload bytes.
    pub fn on_rtp(&mut self, packet: &RtpPacket<'_>, arrival: Duration) -> SeqVerdict {
        self.on_packet(
            packet.sequence_number(),
            packet.timestamp(),
            arrival,
            packet.payload().len(),
        )
    }

    /// A time converted to RTP clock units, modulo 2^32 (only differences matter for jitter).
    fn ticks(&self, time: Duration) -> u32 {
        (duration_to_ticks(time, self.clock_rate) & 0xffff_ffff) as u32
    }

    fn update_jitter(&mut self, rtp_timestamp: u32, arrival_ticks: u32) {
        let transit = arrival_ticks.wrapping_sub(rtp_timestamp);
        if let Some(previous) = self.transit {
            let d = u64::from((transit.wrapping_sub(previous) as i32).unsigned_abs());
            // J += (|D| - J) / 16, kept scaled by 16 (A.8): J16 += |D| - round(J16 / 16).
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Whether the source has passed probation.
    pub fn is_valid(&self) -> bool {
        self.started && self.probation == 0
    }

    /// Packets counted as received (duplicates included, probation excluded).
    pub fn packets_received(&self) -> u64 {
        self.received
    }

    /// Bytes of the counted packets, as passed in.
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    /// Extended highest sequence number received (wrap count in the high 16 bits).
    pub fn extended_highest_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected since the base sequence number (0 before probation ends).
    pub fn packets_expected(&self) -> i64 {
        if !self.is_valid() {
            return 0;
        }
        i64::from(self.extended_highest_seq()) - i64::from(self.base_seq) + 1
    }

    /// Cumulative packets lost, clamped to the 24-bit signed RTCP range; negative when
    /// duplicates outnumber losses.
    pub fn cumulative_lost(&self) -> i32 {
        let lost = self.packets_expected() - self.received as i64;
        lost.clamp(
            i64::from(MIN_CUMULATIVE_LOST),
            i64::from(MAX_CUMULATIVE_LOST),
        ) as i32
    }

    /// Cumulative packets lost for display: never below zero.
    pub fn lost_for_display(&self) -> u32 {
        self.cumulative_lost().max(0).unsigned_abs()
    }

    /// Closes the current report interval and returns its loss (A.3); call once per report.
    pub fn take_interval(&mut self) -> IntervalLoss {
        let expected = self.packets_expected();
        let expected_interval = expected - self.expected_prior;
        self.expected_prior = expected;
        let received_interval = self.received as i64 - self.received_prior as i64;
        self.received_prior = self.received;
        let lost_interval = expected_interval - received_interval;
        let fraction_lost = if expected_interval <= 0 || lost_interval <= 0 {
            0
        } else {
            // 256 would mean "everything lost"; the 8-bit field tops out at 255.
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        IntervalLoss {
            expected: expected_interval,
            received: received_interval,
            fraction_lost,
        }
    }

    /// Interarrival jitter in timestamp units, as reported in RTCP.
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    /// Interarrival jitter in milliseconds, with the fraction the RTCP field drops.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_q4 as f64 / 16.0 * 1000.0 / f64::from(self.clock_rate)
    }

    /// A report block for this source; closes the report interval like [`Self::take_interval`].
    /// `last_sr`/`delay_since_last_sr` come from the last SR received from it (0 if none).
    pub fn report_block(
        &mut self,
        ssrc: u32,
        last_sr: u32,
        delay_since_last_sr: u32,
    ) -> ReportBlock {
        let interval = self.take_interval();
        ReportBlock {
            ssrc,
            fraction_lost: interval.fraction_lost,
            cumulative_lost: self.cumulative_lost(),
            extended_highest_seq: self.extended_highest_seq(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(stats: &mut ReceiverStats, seqs: &[u16]) -> Vec<SeqVerdict> {
        seqs.iter()
            .map(|&seq| stats.on_packet_ticks(seq, u32::from(seq) * 160, u32::from(seq) * 160, 172))
            .collect()
    }

    #[test]
    fn in_order_stream_after_probation() {
        let mut s = ReceiverStats::new(8000);
        let seqs: Vec<u16> = (100..110).collect();
        let verdicts = feed(&mut s, &seqs);
        assert_eq!(verdicts[0], SeqVerdict::Probation);
        assert!(verdicts[1..].iter().all(|v| *v == SeqVerdict::Valid));
        // The first packet only opened probation: base is 101.
        assert_eq!(s.packets_received(), 9);
        assert_eq!(s.packets_expected(), 9);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.extended_highest_seq(), 109);
        assert_eq!(s.bytes_received(), 9 * 172);
        assert_eq!(s.take_interval().fraction_lost, 0);
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn loss_shows_in_cumulative_and_interval_fraction() {
        let mut s = ReceiverStats::new(8000);
        feed(&mut s, &[100, 101, 102, 103, 104, 107, 108, 109, 110]);
        assert_eq!(s.packets_received(), 8);
        assert_eq!(s.packets_expected(), 10);
        assert_eq!(s.cumulative_lost(), 2);
        // 2 of 10: (2 << 8) / 10 = 51.
        let block = s.report_block(0xabcd, 0x1111, 0x2222);
        assert_eq!(block.fraction_lost, 51);
        assert_eq!(block.cumulative_lost, 2);
        assert_eq!(block.extended_highest_seq, 110);
        assert_eq!((block.last_sr, block.delay_since_last_sr), (0x1111, 0x2222));
        // Next interval without loss: fraction 0, cumulative stays 2.
        feed(&mut s, &(111..121).collect::<Vec<_>>());
        let interval = s.take_interval();
        assert_eq!(
            (interval.expected, interval.received, interval.fraction_lost),
            (10, 10, 0)
        );
        assert_eq!(s.cumulative_lost(), 2);
        // 121-130 lost, 131 received: (10 << 8) / 11 = 232.
        feed(&mut s, &[131]);
        assert_eq!(s.take_interval().fraction_lost, 232);
    }

    #[test]
    fn reordering_is_counted_without_loss() {
        let mut s = ReceiverStats::new(8000);
        let verdicts = feed(&mut s, &[100, 101, 102, 104, 103, 105]);
        assert_eq!(verdicts[4], SeqVerdict::Valid);
        assert_eq!(s.packets_received(), 5);
        assert_eq!(s.packets_expected(), 5);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.extended_highest_seq(), 105);
    }

    #[test]
    fn duplicates_make_loss_negative_and_display_zero() {
        let mut s = ReceiverStats::new(8000);
        feed(&mut s, &[100, 101, 102, 103, 104, 105, 103, 105]);
        assert_eq!(s.packets_received(), 7);
        assert_eq!(s.packets_expected(), 5);
        assert_eq!(s.cumulative_lost(), -2);
        assert_eq!(s.lost_for_display(), 0);
        assert_eq!(s.take_interval().fraction_lost, 0);
    }

    #[test]
    fn sequence_wrap_counts_a_cycle() {
        let mut s = ReceiverStats::new(8000);
        feed(&mut s, &[65533, 65534, 65535, 0, 1, 2]);
        assert_eq!(s.packets_received(), 5);
        assert_eq!(s.extended_highest_seq(), 65536 + 2);
        assert_eq!(s.packets_expected(), 5);
        assert_eq!(s.cumulative_lost(), 0);
        // A reordered packet from before the wrap does not add a cycle.
        feed(&mut s, &[65535]);
        assert_eq!(s.extended_highest_seq(), 65538);
    }

    #[test]
    fn restart_needs_two_sequential_packets() {
        let mut s = ReceiverStats::new(8000);
        feed(&mut s, &[100, 101, 102, 103, 104, 105]);
        // One stray far jump is ignored...
        assert_eq!(
            feed(&mut s, &[9000, 106]),
            vec![SeqVerdict::Rejected, SeqVerdict::Valid]
        );
        assert_eq!(s.packets_received(), 6);
        // ...two sequential ones restart the statistics from the second.
        assert_eq!(
            feed(&mut s, &[40000, 40001, 40002]),
            vec![
                SeqVerdict::Rejected,
                SeqVerdict::Restarted,
                SeqVerdict::Valid
            ]
        );
        assert_eq!(s.packets_received(), 2);
        assert_eq!(s.packets_expected(), 2);
        assert_eq!(s.extended_highest_seq(), 40002);
    }

    #[test]
    fn a_new_source_stays_in_probation_until_sequential() {
        let mut s = ReceiverStats::new(8000);
        assert_eq!(
            feed(&mut s, &[10, 12, 13, 14]),
            vec![
                SeqVerdict::Probation,
                SeqVerdict::Probation,
                SeqVerdict::Valid,
                SeqVerdict::Valid
            ]
        );
        assert!(s.is_valid());
        assert_eq!(s.packets_expected(), 2);
        assert_eq!(s.packets_received(), 2);
        let fresh = ReceiverStats::new(8000);
        assert_eq!((fresh.packets_expected(), fresh.cumulative_lost()), (0, 0));
    }

    #[test]
    fn gap_within_max_dropout_is_loss() {
        let mut s = ReceiverStats::new(8000);
        feed(&mut s, &[100, 101, 2000]);
        assert_eq!(s.packets_expected(), 1900);
        assert_eq!(s.cumulative_lost(), 1898);
    }

    #[test]
    fn jitter_follows_the_integer_a8_recursion() {
        // 20 ms G.711 frames; the 4th packet arrives 40 ticks (5 ms) late.
        let ts = [0u32, 160, 320, 480, 640];
        let arrivals = [1000u32, 1160, 1320, 1520, 1640];
        let mut s = ReceiverStats::new(8000);
        let mut jitters = Vec::new();
        for (i, (&t, &a)) in ts.iter().zip(&arrivals).enumerate() {
            s.on_packet_ticks(i as u16, t, a, 160);
            jitters.push(s.jitter());
        }
        // Transits 1000, 1000, 1040, 1000 -> |D| 0, 40, 40:
        // J16 = 0, 0 + 40 - 0 = 40 (J=2), 40 + 40 - 3 = 77 (J=4).
        assert_eq!(jitters, vec![0, 0, 0, 2, 4]);
        assert!((s.jitter_ms() - 77.0 / 16.0 / 8.0).abs() < 1e-9);
    }

    #[test]
    fn arrival_durations_convert_to_clock_units() {
        let mut by_time = ReceiverStats::new(8000);
        let mut by_ticks = ReceiverStats::new(8000);
        let late_ms = [0u64, 0, 0, 5, 0, 12, 0];
        for (i, late) in late_ms.iter().enumerate() {
            let arrival_ms = 3_600_000 + 20 * i as u64 + late;
            by_time.on_packet(
                i as u16,
                160 * i as u32,
                Duration::from_millis(arrival_ms),
                160,
            );
            by_ticks.on_packet_ticks(i as u16, 160 * i as u32, (arrival_ms * 8) as u32, 160);
        }
        assert_eq!(by_time.jitter(), by_ticks.jitter());
        assert!(by_time.jitter() > 0);
    }
}
