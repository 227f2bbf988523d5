//! One media session's state: two legs, each with its far end, latch, receive statistics,
//! outgoing stream and what it hears.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::source::FrameSource;
use super::{DropCounts, DropReason};
use crate::media::control::{LegMedia, LegStats, MediaLeg, MediaSessionId, PortPair};
use crate::media::dtmf::InbandDetector;
use crate::media::mixer::ParticipantId;
use crate::media::rtp::{EventDetector, ReceiverStats, RtpPacket, StreamRewriter};

/// Where a far end may send from and where we send to (symmetric RTP with RTP-bleed
/// protection).
///
/// - A packet from the SDP's IP (any port) is always accepted and (re)latches the far end.
/// - A packet from another address is accepted and latched only while the latch window after
///   the leg's last `Update` is open and nothing has come from the SDP's IP yet (a far end
///   behind NAT that wrote its private address into SDP).
/// - Once latched, that exact address keeps being accepted; every other source is refused.
/// - RTCP is accepted from the SDP's IP or the IP RTP is latched to, and latches the RTCP
///   address (which makes rtcp-mux work: muxed RTCP latches the RTP address).
///
/// We only ever send to the latched address or, before anything was latched, to the SDP's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Latch {
    pub(super) rtp: Option<SocketAddr>,
    pub(super) rtcp: Option<SocketAddr>,
    /// Something came from the SDP's IP: other IPs are refused from now on.
    pub(super) heard_sdp_ip: bool,
}

/// Compares addresses as the kernel delivers them (IPv4-mapped IPv6 equals plain IPv4).
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

impl Latch {
    /// Applies the latching rules to an RTP packet from `src`; true if it is accepted.
    pub(super) fn accept_rtp(
        &mut self,
        sdp: Option<SocketAddr>,
        window_open: bool,
        src: SocketAddr,
    ) -> bool {
        if sdp.is_some_and(|sdp| same_ip(sdp.ip(), src.ip())) {
            self.rtp = Some(src);
            self.heard_sdp_ip = true;
            return true;
        }
        if self.rtp == Some(src) {
            return true;
        }
        if window_open && !self.heard_sdp_ip {
            self.rtp = Some(src);
            return true;
        }
        false
    }

    /// Applies the RTCP rule to a packet from `src`; true if it is accepted.
    pub(super) fn accept_rtcp(&mut self, sdp: Option<SocketAddr>, src: SocketAddr) -> bool {
        let known_ip = sdp.is_some_and(|sdp| same_ip(sdp.ip(), src.ip()))
            || self.rtp.is_some_and(|rtp| same_ip(rtp.ip(), src.ip()));
        if known_ip || self.rtcp == Some(src) {
            self.rtcp = Some(src);
            return true;
        }
        false
    }
}

/// Receive statistics across the far end's SSRC changes (a new [`ReceiverStats`] per SSRC,
/// loss of the earlier ones kept).
#[derive(Debug, Clone)]
pub(super) struct Reception {
    pub(super) stats: ReceiverStats,
    pub(super) ssrc: Option<u32>,
    lost_before: u64,
    pub(super) packets: u64,
    pub(super) bytes: u64,
}

impl Reception {
    pub(super) fn new(clock_rate: u32) -> Self {
        Self {
            stats: ReceiverStats::new(clock_rate),
            ssrc: None,
            lost_before: 0,
            packets: 0,
            bytes: 0,
        }
    }

    /// Starts statistics afresh (new far end or codec clock), keeping the totals.
    pub(super) fn restart(&mut self, clock_rate: u32) {
        self.lost_before = self.lost();
        self.stats = ReceiverStats::new(clock_rate);
        self.ssrc = None;
    }

    pub(super) fn on_rtp(&mut self, packet: &RtpPacket<'_>, now: Duration, clock_rate: u32) {
        if self.ssrc != Some(packet.ssrc()) {
            self.restart(clock_rate);
            self.ssrc = Some(packet.ssrc());
        }
        let _ = self.stats.on_rtp(packet, now);
        self.packets = self.packets.saturating_add(1);
        self.bytes = self
            .bytes
            .saturating_add(packet.payload().len().try_into().unwrap_or(u64::MAX));
    }

    pub(super) fn lost(&self) -> u64 {
        self.lost_before
            .saturating_add(u64::from(self.stats.lost_for_display()))
    }
}

/// What a leg's far end hears.
pub(super) enum Output {
    /// The other leg's media.
    Relay,
    /// Audio we generate.
    Generated(Box<dyn FrameSource>),
    /// The mix of its conference room (it is this mixer participant; what it sends goes
    /// into the room instead of to the other leg).
    Conference(ParticipantId),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Relay => f.write_str("Relay"),
            Output::Generated(_) => f.write_str("Generated"),
            Output::Conference(participant) => write!(f, "Conference({})", participant.0),
        }
    }
}

/// Per-leg counters beyond [`LegStats`]: why packets from this leg's far end were dropped,
/// and RTCP traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegCounters {
    /// Packets from this leg's far end (or its port) that were not relayed, by reason.
    pub drops: DropCounts,
    /// RTCP compound packets received from the far end.
    pub rtcp_received: u64,
    /// RTCP reports we sent to the far end.
    pub rtcp_sent: u64,
    /// Generated frames that could not be encoded for this leg's codec.
    pub frames_not_encodable: u64,
}

/// One leg of a session.
#[derive(Debug)]
pub(super) struct Leg {
    pub(super) ports: PortPair,
    pub(super) media: Option<LegMedia>,
    /// When the leg's last `Update` arrived (opens the latch window).
    pub(super) updated_at: Duration,
    pub(super) latch: Latch,
    /// The one stream toward this leg's far end.
    pub(super) out: StreamRewriter,
    pub(super) reception: Reception,
    pub(super) output: Output,
    pub(super) events: EventDetector,
    pub(super) inband: InbandDetector,
    /// Last RTP received (or the leg's last Update/Open): for the media timeout.
    pub(super) last_activity: Duration,
    pub(super) packets_sent: u64,
    pub(super) octets_sent: u64,
    pub(super) next_rtcp: Duration,
    /// Middle 32 bits of the NTP time of the last SR received, and when it arrived.
    pub(super) last_sr: Option<(u32, Duration)>,
    pub(super) counters: LegCounters,
}

impl Leg {
    pub(super) fn new(
        ports: PortPair,
        out: StreamRewriter,
        now: Duration,
        next_rtcp: Duration,
    ) -> Self {
        Self {
            ports,
            media: None,
            updated_at: now,
            latch: Latch::default(),
            out,
            reception: Reception::new(8000),
            output: Output::Relay,
            events: EventDetector::new(),
            inband: InbandDetector::new(),
            last_activity: now,
            packets_sent: 0,
            octets_sent: 0,
            next_rtcp,
            last_sr: None,
            counters: LegCounters::default(),
        }
    }

    /// Where RTP for this far end goes: the latched address, else the SDP's; nowhere while
    /// the SDP has no address (not known yet, or `c=0.0.0.0` hold).
    pub(super) fn rtp_destination(&self) -> Option<SocketAddr> {
        let sdp = self.media.as_ref()?.remote_rtp?;
        Some(self.latch.rtp.unwrap_or(sdp))
    }

    /// Where RTCP for this far end goes: latched, else the SDP's RTCP address, else the SDP's
    /// RTP port + 1; nowhere while the SDP has no address.
    pub(super) fn rtcp_destination(&self) -> Option<SocketAddr> {
        let media = self.media.as_ref()?;
        media.remote_rtp?;
        if let Some(latched) = self.latch.rtcp {
            return Some(latched);
        }
        media.remote_rtcp.or_else(|| {
            let rtp = media.remote_rtp?;
            let port = rtp.port().checked_add(1)?;
            Some(SocketAddr::new(rtp.ip(), port))
        })
    }

    /// Whether the far end is silent for the media timeout; a far end that said it does not
    /// send (hold) is never silent.
    pub(super) fn is_silent(&self, now: Duration, timeout: Duration) -> bool {
        if self.media.as_ref().is_some_and(|m| !m.direction.sends()) {
            return false;
        }
        now.saturating_sub(self.last_activity) >= timeout
    }

    pub(super) fn count_sent(&mut self, payload_len: usize) {
        self.packets_sent = self.packets_sent.saturating_add(1);
        self.octets_sent = self
            .octets_sent
            .saturating_add(payload_len.try_into().unwrap_or(u64::MAX));
    }

    pub(super) fn count_drop(&mut self, reason: DropReason) {
        self.counters.drops.add(reason);
    }

    pub(super) fn stats(&self) -> LegStats {
        LegStats {
            packets_received: self.reception.packets,
            packets_sent: self.packets_sent,
            packets_lost: self.reception.lost(),
            jitter_ms: self.reception.stats.jitter_ms(),
            bytes_received: self.reception.bytes,
            codec: self.media.as_ref().map(|m| m.codec),
        }
    }
}

/// One call's media.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: MediaSessionId,
    pub(super) caller: Leg,
    pub(super) callee: Leg,
    /// A timeout was reported and no RTP came since: do not report it again.
    pub(super) timeout_reported: bool,
}

impl Session {
    pub(super) fn leg_mut(&mut self, leg: MediaLeg) -> &mut Leg {
        match leg {
            MediaLeg::Caller => &mut self.caller,
            MediaLeg::Callee => &mut self.callee,
        }
    }

    pub(super) fn leg(&self, leg: MediaLeg) -> &Leg {
        match leg {
            MediaLeg::Caller => &self.caller,
            MediaLeg::Callee => &self.callee,
        }
    }

    /// The leg a packet came in on and the other one.
    pub(super) fn split(&mut self, inbound: MediaLeg) -> (&mut Leg, &mut Leg) {
        match inbound {
            MediaLeg::Caller => (&mut self.caller, &mut self.callee),
            MediaLeg::Callee => (&mut self.callee, &mut self.caller),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn latch_accepts_the_sdp_ip_at_any_time_and_strangers_only_before_it() {
        let sdp = Some(addr("192.0.2.10:4000"));
        let mut latch = Latch::default();
        // NAT: a stranger within the window, nothing from the SDP IP yet.
        assert!(latch.accept_rtp(sdp, true, addr("198.51.100.7:31000")));
        assert_eq!(latch.rtp, Some(addr("198.51.100.7:31000")));
        // The latched address keeps working after the window.
        assert!(latch.accept_rtp(sdp, false, addr("198.51.100.7:31000")));
        // Another stranger after the window is refused.
        assert!(!latch.accept_rtp(sdp, false, addr("198.51.100.8:31000")));
        // The SDP IP, any port, re-latches even after the window...
        assert!(latch.accept_rtp(sdp, false, addr("192.0.2.10:4002")));
        assert_eq!(latch.rtp, Some(addr("192.0.2.10:4002")));
        // ...and from then on strangers are refused even inside a window.
        assert!(!latch.accept_rtp(sdp, true, addr("198.51.100.7:31000")));
        // IPv4-mapped IPv6 is the same IP.
        assert!(latch.accept_rtp(sdp, false, addr("[::ffff:192.0.2.10]:4000")));
        // No SDP address: strangers only within the window.
        let mut blind = Latch::default();
        assert!(!blind.accept_rtp(None, false, addr("198.51.100.7:1")));
        assert!(blind.accept_rtp(None, true, addr("198.51.100.7:1")));
    }

    #[test]
    fn rtcp_is_accepted_from_the_sdp_ip_or_the_latched_rtp_ip() {
        let sdp = Some(addr("192.0.2.10:4000"));
        let mut latch = Latch::default();
        assert!(!latch.accept_rtcp(sdp, addr("198.51.100.7:31001")));
        assert!(latch.accept_rtcp(sdp, addr("192.0.2.10:4001")));
        assert_eq!(latch.rtcp, Some(addr("192.0.2.10:4001")));
        assert!(latch.accept_rtp(sdp, true, addr("192.0.2.10:4000")));
        let mut nat = Latch::default();
        assert!(nat.accept_rtp(sdp, true, addr("198.51.100.7:31000")));
        assert!(nat.accept_rtcp(sdp, addr("198.51.100.7:31001")));
        assert!(!nat.accept_rtcp(sdp, addr("203.0.113.99:31001")));
    }
}
