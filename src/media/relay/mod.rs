//! The RTP relay: the sans-IO core of the media plane. It owns every media session, takes
//! the engine's [`MediaCommand`]s, rewrites each received datagram in place and says where
//! to send it, generates tones and prompts on a shared 20 ms tick, and reports
//! [`MediaEvent`]s. No sockets, no clock: time is a [`Duration`] since any fixed origin.
//!
//! Per packet (`on_packet`):
//! 1. The local port finds the session and leg (a table indexed by port, no hashing).
//! 2. Latching decides whether the source may send (see [`session::Latch`]: symmetric RTP,
//!    NAT within [`RelayConfig::latch_window`] after an `Update`, RTP bleed refused).
//! 3. Statistics, media-timeout activity and DTMF detection (RFC 4733 events, or in-band
//!    tones on G.711 when the leg negotiated no telephone-event) happen whether or not the
//!    packet can be relayed: an IVR must hear digits while the caller hears a prompt.
//! 4. Relaying maps the payload type to the other leg's, transcodes PCMU <-> PCMA in place
//!    (same length), and passes the packet through the other leg's [`StreamRewriter`], so
//!    each far end sees one SSRC with continuous numbering whatever happens upstream.
//!
//! RTCP is terminated, not relayed: since every leg's stream is renumbered (and may be
//! transcoded or generated), the far end's reports describe a stream the other side never
//! sent. Each leg instead gets our own SR (or RR before we sent anything) + SDES every
//! [`RelayConfig::rtcp_interval`] (randomised by +-50%), built from that leg's
//! [`StreamRewriter`] and receive statistics, with LSR/DLSR from the last SR it sent us.
//!
//! Per tick (`tick`, one 20 ms grid for all sessions): every leg that hears generated audio
//! gets one 20 ms G.711 frame, the one conference [`Mixer`] mixes every room (see
//! `conference`); once a second the sessions are checked for the media timeout and due
//! RTCP reports. The grid is the media clock of every generated stream: a tick that runs
//! late (the thread stalled) makes the frames it missed at once, each with its own due
//! time and so its own RTP timestamp, up to [`MAX_CATCH_UP_TICKS`]; older ones are skipped
//! and the streams' timestamps jump over them. Either way every later frame is on time
//! for the far end's jitter buffer.
//!
//! Conferences: any leg can be a participant of a room (`MediaCommand::JoinConference`).
//! Its packets are latched, counted and searched for DTMF as above, then its audio goes
//! into the mixer instead of to the other leg ([`PacketAction::Mixed`]); what it hears is
//! its mix, sent through its own [`StreamRewriter`] like generated audio. RTCP, statistics
//! and the media timeout are unchanged.
//!
//! Nothing on `on_packet` or `tick` allocates: scratch buffers live in the relay, sessions
//! are allocated on `Open`, sources on `Source`. Events go to a queue preallocated for
//! [`RelayConfig::max_queued_events`]; beyond that they are dropped and counted.

mod conference;
pub mod prompts;
mod session;
pub mod source;

#[cfg(test)]
mod conference_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::media::codec::{self, Codec};
use crate::media::control::{
    DigitSource, LegMedia, LegSource, LegStats, MediaCommand, MediaEvent, MediaLeg, MediaSessionId,
    PortPair,
};
use crate::media::mixer::{Mixer, MixerConfig, ParticipantStatus, RtpAudio};
use crate::media::rtp::rtcp::{
    self, delay_since_last_sr, ntp_from_unix, ntp_middle32, write_report_compound, ReportBlock,
    RtcpView, SenderInfo,
};
use crate::media::rtp::{
    classify, header::RTP_HEADER_LEN, write_header, PacketKind, RtpPacket, RtpPacketMut,
    StreamRewriter,
};
pub use conference::{MUSIC_ON_HOLD, TALKING_MIN_INTERVAL};
pub use session::LegCounters;
use session::{Leg, Output, Session};
pub use source::{FrameFill, FrameSource, NoPrompts, PromptFactory, SilenceSource, ToneSource};

/// The shared tick: one generated frame per generating leg per tick.
pub const TICK: Duration = Duration::from_millis(20);
/// Most frames one late tick sends at once (100 ms): a longer stall skips the older ones,
/// since a receiver's jitter buffer has played past them anyway, and bursting them would
/// only deepen an overload.
pub const MAX_CATCH_UP_TICKS: u64 = 5;
/// Samples (and G.711 bytes) of one generated 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// How often sessions are checked for the media timeout and due RTCP.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Samples decoded at a time for in-band DTMF detection.
const DECODE_CHUNK: usize = 320;
/// Scratch for packets we build (RTP header + one frame, or an RTCP compound).
const BUILD_BUFFER: usize = 1024;
/// Number of local ports the dispatch table covers.
const PORT_SPACE: usize = 1 << 16;

/// Tunables of the relay.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// No RTP from either leg for this long ends the call ([`MediaEvent::Timeout`]).
    pub media_timeout: Duration,
    /// How long after a leg's `Update` a source other than the SDP's IP may be latched.
    pub latch_window: Duration,
    /// Mean interval between our RTCP reports to each far end.
    pub rtcp_interval: Duration,
    /// The SDES CNAME in our RTCP (at most 255 bytes).
    pub cname: String,
    /// Wall-clock time (since the Unix epoch) at relay time zero, for RTCP NTP timestamps.
    pub wall_clock_origin: Duration,
    /// Seed for SSRCs and initial sequence numbers and timestamps (random in production).
    pub seed: u64,
    /// Events kept for [`Relay::poll_event`] before newer ones are dropped.
    pub max_queued_events: usize,
    /// The conference mixer's tunables (its sample rate is always the relay's 8 kHz).
    pub mixer: MixerConfig,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            media_timeout: Duration::from_secs(60),
            latch_window: Duration::from_secs(3),
            rtcp_interval: Duration::from_secs(5),
            cname: "sentralbord".to_string(),
            wall_clock_origin: Duration::ZERO,
            seed: 0,
            max_queued_events: 16_384,
            mixer: MixerConfig::default(),
        }
    }
}

/// Why a received datagram was not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// No session owns the local port.
    UnknownPort,
    /// Not a valid RTP/RTCP packet (or `len` beyond the buffer).
    Malformed,
    /// STUN, DTLS or anything else that is not RTP/RTCP.
    NotMedia,
    /// The leg has no SDP yet: nobody may send on it.
    NotNegotiated,
    /// The source is neither the SDP's IP nor latchable (RTP bleed protection).
    Stranger,
    /// The far end's SDP says it does not send.
    NotSending,
    /// A payload type not negotiated on the leg.
    UnknownPayloadType,
    /// The other leg has no far end yet.
    NoPeer,
    /// The other leg's far end does not want media (hold).
    PeerNotReceiving,
    /// The other leg hears generated audio (tone, prompt, silence).
    PeerHearsGenerated,
    /// The legs' codecs differ and cannot be converted.
    CodecMismatch,
    /// A telephone-event, but the other leg negotiated none.
    NoTelephoneEvent,
    /// A late packet from before the current input of the other leg's stream.
    Stale,
    /// RTCP: read and consumed (we send our own reports).
    RtcpTerminated,
    /// A telephone-event from a conference leg: its digit was read, nobody hears it.
    EventInConference,
    /// The other leg is in a conference: it hears the room, not this leg.
    PeerInConference,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 16] = [
        DropReason::UnknownPort,
        DropReason::Malformed,
        DropReason::NotMedia,
        DropReason::NotNegotiated,
        DropReason::Stranger,
        DropReason::NotSending,
        DropReason::UnknownPayloadType,
        DropReason::NoPeer,
        DropReason::PeerNotReceiving,
        DropReason::PeerHearsGenerated,
        DropReason::CodecMismatch,
        DropReason::NoTelephoneEvent,
        DropReason::Stale,
        DropReason::RtcpTerminated,
        DropReason::EventInConference,
        DropReason::PeerInConference,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Dropped datagrams by [`DropReason`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounts([u64; DropReason::ALL.len()]);

impl DropCounts {
    /// Datagrams dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0.get(reason.index()).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn add(&mut self, reason: DropReason) {
        if let Some(count) = self.0.get_mut(reason.index()) {
            *count = count.saturating_add(1);
        }
    }
}

/// Relay-wide counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Datagrams relayed.
    pub relayed: u64,
    /// Generated RTP packets sent.
    pub generated: u64,
    /// RTCP reports sent.
    pub rtcp_sent: u64,
    /// RTP audio packets of conference legs that went into the mixer (not relayed, not dropped).
    pub mixed: u64,
    /// Ticks run late, in a burst after a stall (each stamped with its own due time).
    pub catch_up_ticks: u64,
    /// Ticks skipped after a stall longer than [`MAX_CATCH_UP_TICKS`] ticks.
    pub skipped_ticks: u64,
    /// Datagrams not relayed, by reason.
    pub drops: DropCounts,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
}

/// What to do with a received datagram.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketAction {
    /// The buffer's first `len` bytes were rewritten in place: send them from our local
    /// port `from_port` to `to`.
    Send {
        /// The local port to send from.
        from_port: u16,
        /// The far end.
        to: SocketAddr,
        /// Bytes to send (equal to the received length).
        len: usize,
    },
    /// The RTP audio of a conference leg went into the mixer: nothing to send now (its room
    /// hears it in the next ticks' mixes). Not a drop.
    Mixed,
    /// Do not send anything.
    Drop(DropReason),
}

/// Which of a leg's two ports a local port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortKind {
    Rtp,
    Rtcp,
}

/// What a local port belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PortRoute {
    slot: u32,
    leg: MediaLeg,
    kind: PortKind,
}

/// Events for the engine, bounded.
#[derive(Debug)]
struct EventQueue {
    queue: VecDeque<MediaEvent>,
    limit: usize,
    dropped: u64,
}

impl EventQueue {
    fn push(&mut self, event: MediaEvent) {
        if self.queue.len() >= self.limit {
            self.dropped = self.dropped.saturating_add(1);
            tracing::warn!(?event, "media event queue full, event dropped");
        } else {
            self.queue.push_back(event);
        }
    }
}

/// What a payload is, by payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Audio,
    TelephoneEvent,
}

/// The media relay: every session's state, driven by commands, packets and ticks.
pub struct Relay {
    config: RelayConfig,
    prompts: Box<dyn PromptFactory>,
    sessions: Vec<Option<Session>>,
    free_slots: Vec<u32>,
    by_id: HashMap<MediaSessionId, u32>,
    /// Local port -> session slot, leg and port kind.
    routes: Box<[Option<PortRoute>]>,
    /// Legs hearing generated audio (visited every tick).
    generating: Vec<(u32, MediaLeg)>,
    events: EventQueue,
    rng: StdRng,
    next_tick: Option<Duration>,
    next_housekeeping: Duration,
    counters: RelayCounters,
    pcm: Box<[i16; DECODE_CHUNK]>,
    build: Box<[u8; BUILD_BUFFER]>,
    conferences: conference::Conferences,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("sessions", &self.by_id.len())
            .field("generating", &self.generating.len())
            .field("conferences", &self.conferences.room_count())
            .field("participants", &self.conferences.participant_count())
            .field("next_tick", &self.next_tick)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay with no sessions; `prompts` resolves [`LegSource::Prompts`].
    pub fn new(config: RelayConfig, prompts: Box<dyn PromptFactory>) -> Self {
        let limit = config.max_queued_events;
        let rng = StdRng::seed_from_u64(config.seed);
        // Generated audio (prompts, beeps, music) is 8 kHz: so is the mix.
        let mixer = Mixer::new(MixerConfig {
            sample_rate: source::GENERATED_SAMPLE_RATE,
            ..config.mixer.clone()
        });
        Self {
            config,
            prompts,
            sessions: Vec::new(),
            free_slots: Vec::new(),
            by_id: HashMap::new(),
            routes: vec![None; PORT_SPACE].into_boxed_slice(),
            generating: Vec::new(),
            events: EventQueue {
                queue: VecDeque::with_capacity(limit.min(4096)),
                limit,
                dropped: 0,
            },
            rng,
            next_tick: None,
            next_housekeeping: Duration::ZERO,
            counters: RelayCounters::default(),
            pcm: Box::new([0; DECODE_CHUNK]),
            build: Box::new([0; BUILD_BUFFER]),
            conferences: conference::Conferences::new(mixer),
        }
    }

    /// Sessions open.
    pub fn session_count(&self) -> usize {
        self.by_id.len()
    }

    /// Relay-wide counters.
    pub fn counters(&self) -> RelayCounters {
        RelayCounters {
            events_dropped: self.events.dropped,
            ..self.counters.clone()
        }
    }

    /// A leg's counters (drops by reason, RTCP), while its session is open.
    pub fn leg_counters(&self, session: MediaSessionId, leg: MediaLeg) -> Option<&LegCounters> {
        let session = self.session(session)?;
        Some(&session.leg(leg).counters)
    }

    /// A leg's statistics so far, while its session is open.
    pub fn leg_stats(&self, session: MediaSessionId, leg: MediaLeg) -> Option<LegStats> {
        Some(self.session(session)?.leg(leg).stats())
    }

    /// Conference rooms open.
    pub fn conference_count(&self) -> usize {
        self.conferences.room_count()
    }

    /// Legs in a conference room.
    pub fn participant_count(&self) -> usize {
        self.conferences.participant_count()
    }

    /// A conference leg's mixer state (muted, talking, level, jitter buffer), for the CLI.
    pub fn participant_status(
        &self,
        session: MediaSessionId,
        leg: MediaLeg,
    ) -> Option<ParticipantStatus> {
        let Output::Conference(participant) = self.session(session)?.leg(leg).output else {
            return None;
        };
        self.conferences.mixer.status(participant)
    }

    fn session(&self, id: MediaSessionId) -> Option<&Session> {
        let slot = *self.by_id.get(&id)?;
        self.sessions.get(slot as usize)?.as_ref()
    }

    fn session_mut(&mut self, id: MediaSessionId) -> Option<(u32, &mut Session)> {
        let slot = *self.by_id.get(&id)?;
        let session = self.sessions.get_mut(slot as usize)?.as_mut()?;
        Some((slot, session))
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.queue.pop_front()
    }

    /// When [`Relay::tick`] wants to be called next (`None`: no session open).
    pub fn next_tick(&self) -> Option<Duration> {
        self.next_tick
    }

    /// Applies an engine command.
    pub fn command(&mut self, now: Duration, command: MediaCommand) {
        match command {
            // The driver binds the ports and calls `open` with them.
            MediaCommand::Open { session, .. } => {
                tracing::debug!(session = session.0, "Open reaches the relay through open()");
            }
            MediaCommand::Update {
                session,
                leg,
                media,
            } => self.update(now, session, leg, media),
            MediaCommand::Source {
                session,
                leg,
                source,
            } => self.set_source(session, leg, source),
            MediaCommand::Close { session } => self.close(session),
            MediaCommand::JoinConference {
                session,
                leg,
                room,
                muted,
                tenant,
            } => self.join_conference(session, leg, room, muted, tenant),
            MediaCommand::LeaveConference { session, leg } => {
                self.leave_conference(session, leg);
            }
            MediaCommand::MuteParticipant {
                session,
                leg,
                muted,
            } => self.mute_participant(session, leg, muted),
            MediaCommand::ConferencePrompt { room, sound } => self.room_sound(room, &sound),
            MediaCommand::ParticipantPrompt {
                session,
                leg,
                sound,
            } => self.participant_sound(session, leg, &sound),
            MediaCommand::CloseConference { room } => self.close_conference(room),
        }
    }

    /// A random interval around the RTCP mean (0.5x to 1.5x, RFC 3550 6.3.1).
    fn rtcp_delay(&mut self) -> Duration {
        let factor = self.rng.gen_range(0.5..1.5);
        self.config.rtcp_interval.mul_f64(factor)
    }

    fn new_leg(&mut self, ports: PortPair, now: Duration, avoid_ssrc: Option<u32>) -> Leg {
        let mut ssrc = self.rng.gen::<u32>();
        while Some(ssrc) == avoid_ssrc {
            ssrc = self.rng.gen();
        }
        let out = StreamRewriter::new(ssrc, 8000, self.rng.gen(), self.rng.gen());
        let next_rtcp = now + self.rtcp_delay();
        Leg::new(ports, out, now, next_rtcp)
    }

    /// Opens a session on ports the caller has bound; reports [`MediaEvent::Opened`], or
    /// [`MediaEvent::OpenFailed`] when the id or a port is already in use.
    pub fn open(&mut self, now: Duration, id: MediaSessionId, caller: PortPair, callee: PortPair) {
        if self.by_id.contains_key(&id) {
            tracing::warn!(session = id.0, "media session opened twice; ignored");
            return;
        }
        let ports = [caller.rtp, caller.rtcp(), callee.rtp, callee.rtcp()];
        let conflict = ports.iter().enumerate().find(|&(i, &port)| {
            ports
                .get(..i)
                .is_some_and(|earlier| earlier.contains(&port))
                || self
                    .routes
                    .get(usize::from(port))
                    .is_some_and(Option::is_some)
        });
        if let Some((_, &port)) = conflict {
            tracing::warn!(session = id.0, port, "media port already in a session");
            self.events.push(MediaEvent::OpenFailed { session: id });
            return;
        }
        let caller_leg = self.new_leg(caller, now, None);
        let avoid = Some(caller_leg.out.out_ssrc());
        let callee_leg = self.new_leg(callee, now, avoid);
        let session = Session {
            id,
            caller: caller_leg,
            callee: callee_leg,
            timeout_reported: false,
        };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                if let Some(entry) = self.sessions.get_mut(slot as usize) {
                    *entry = Some(session);
                }
                slot
            }
            None => {
                self.sessions.push(Some(session));
                u32::try_from(self.sessions.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_id.insert(id, slot);
        let legs = [(MediaLeg::Caller, caller), (MediaLeg::Callee, callee)];
        for (leg, pair) in legs {
            for (port, kind) in [(pair.rtp, PortKind::Rtp), (pair.rtcp(), PortKind::Rtcp)] {
                if let Some(route) = self.routes.get_mut(usize::from(port)) {
                    *route = Some(PortRoute { slot, leg, kind });
                }
            }
        }
        if self.next_tick.is_none() {
            self.next_tick = Some(now + TICK);
            self.next_housekeeping = now + HOUSEKEEPING;
        }
        self.events.push(MediaEvent::Opened {
            session: id,
            caller,
            callee,
        });
    }

    fn update(&mut self, now: Duration, id: MediaSessionId, which: MediaLeg, media: LegMedia) {
        // Drawn up front: a timestamp base in case the clock rate changes.
        let new_ts_base: u32 = self.rng.gen();
        let Some((_, session)) = self.session_mut(id) else {
            tracing::debug!(session = id.0, "update for an unknown media session");
            return;
        };
        session.timeout_reported = false;
        let (leg, other) = session.split(which);
        let old = leg.media.take();
        let old_ip = old.as_ref().and_then(|m| m.remote_rtp).map(|a| a.ip());
        let new_ip = media.remote_rtp.map(|a| a.ip());
        if new_ip.is_some() && new_ip != old_ip {
            // A new far end: what was latched belonged to the previous one.
            leg.latch = session::Latch::default();
        }
        let far_end_changed = old.as_ref().map(|m| m.remote_rtp) != Some(media.remote_rtp);
        let codec_changed = old.as_ref().map(|m| m.codec) != Some(media.codec);
        let clock_rate = media.codec.rtp_clock_rate();
        if far_end_changed || codec_changed {
            leg.reception.restart(clock_rate);
            leg.events.reset();
            leg.inband.reset();
            // What the other far end hears from this one starts a new input, even if the new
            // far end happens to continue the old numbering.
            other.out.force_switch();
        }
        if leg.out.clock_rate() != clock_rate {
            // Keep the SSRC and sequence; the timestamp restarts on the new clock.
            let next_seq = leg
                .out
                .last_sequence_number()
                .map_or(0, |seq| seq.wrapping_add(1));
            let ssrc = leg.out.out_ssrc();
            leg.out = StreamRewriter::new(ssrc, clock_rate, next_seq, new_ts_base);
        }
        let codec = media.codec;
        leg.media = Some(media);
        leg.updated_at = now;
        leg.last_activity = now;
        if codec_changed {
            self.conference_codec_changed(id, which, codec);
        }
    }

    fn set_source(&mut self, id: MediaSessionId, which: MediaLeg, source: LegSource) {
        let output = match source {
            LegSource::Relay => Output::Relay,
            LegSource::Silence => Output::Generated(Box::new(SilenceSource)),
            LegSource::Tone(kind) => Output::Generated(Box::new(ToneSource::new(kind))),
            LegSource::Prompts {
                tenant,
                names,
                looped,
            } => match self.prompts.open(tenant, &names, looped) {
                Some(source) => Output::Generated(source),
                None => {
                    tracing::warn!(
                        session = id.0,
                        ?names,
                        "no playable prompt; playing silence"
                    );
                    if !looped {
                        self.events.push(MediaEvent::PlaybackDone {
                            session: id,
                            leg: which,
                        });
                    }
                    Output::Generated(Box::new(SilenceSource))
                }
            },
        };
        let Some(&slot) = self.by_id.get(&id) else {
            tracing::debug!(session = id.0, "source for an unknown media session");
            return;
        };
        self.set_output(slot, which, output);
    }

    /// Changes what a leg hears: keeps the list of generating legs, and takes a leg out of
    /// its conference room unless it stays in the same one.
    fn set_output(&mut self, slot: u32, which: MediaLeg, output: Output) {
        let Some(session) = self
            .sessions
            .get_mut(slot as usize)
            .and_then(Option::as_mut)
        else {
            return;
        };
        let leg = session.leg_mut(which);
        let generated = matches!(output, Output::Generated(_));
        let previous = std::mem::replace(&mut leg.output, output);
        if let Output::Conference(old) = previous {
            if !matches!(leg.output, Output::Conference(new) if new == old) {
                self.conferences.detach(old, &*self.prompts);
            }
        }
        let entry = (slot, which);
        let listed = self.generating.iter().position(|&e| e == entry);
        match (generated, listed) {
            (true, None) => self.generating.push(entry),
            (false, Some(at)) => {
                self.generating.swap_remove(at);
            }
            _ => {}
        }
    }

    fn close(&mut self, id: MediaSessionId) {
        let Some(slot) = self.by_id.remove(&id) else {
            // Every Close gets its Closed, even after PortFailed or a double Close.
            self.events.push(MediaEvent::Closed {
                session: id,
                caller: LegStats::default(),
                callee: LegStats::default(),
            });
            return;
        };
        let Some(session) = self.sessions.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        for leg in [&session.caller, &session.callee] {
            if let Output::Conference(participant) = leg.output {
                self.conferences.detach(participant, &*self.prompts);
            }
        }
        for leg in [&session.caller, &session.callee] {
            for port in [leg.ports.rtp, leg.ports.rtcp()] {
                if let Some(route) = self.routes.get_mut(usize::from(port)) {
                    if route.is_some_and(|r| r.slot == slot) {
                        *route = None;
                    }
                }
            }
        }
        self.generating.retain(|&(s, _)| s != slot);
        self.free_slots.push(slot);
        self.events.push(MediaEvent::Closed {
            session: id,
            caller: session.caller.stats(),
            callee: session.callee.stats(),
        });
        if self.by_id.is_empty() {
            self.next_tick = None;
        }
    }

    /// Handles a datagram received on `local_port` from `src`: `buf[..len]` is rewritten in
    /// place when the answer is [`PacketAction::Send`].
    pub fn on_packet(
        &mut self,
        now: Duration,
        local_port: u16,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> PacketAction {
        let action = self.handle_packet(now, local_port, src, buf, len);
        match action {
            PacketAction::Send { .. } => self.counters.relayed += 1,
            PacketAction::Mixed => self.counters.mixed += 1,
            PacketAction::Drop(reason) => self.counters.drops.add(reason),
        }
        action
    }

    fn handle_packet(
        &mut self,
        now: Duration,
        local_port: u16,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> PacketAction {
        let Some(route) = self.routes.get(usize::from(local_port)).copied().flatten() else {
            return PacketAction::Drop(DropReason::UnknownPort);
        };
        let Some(session) = self
            .sessions
            .get_mut(route.slot as usize)
            .and_then(Option::as_mut)
        else {
            return PacketAction::Drop(DropReason::UnknownPort);
        };
        let Some(packet) = buf.get_mut(..len) else {
            session.leg_mut(route.leg).count_drop(DropReason::Malformed);
            return PacketAction::Drop(DropReason::Malformed);
        };
        let kind = classify(packet);
        let action = match (route.kind, kind) {
            (_, PacketKind::Rtcp) => on_rtcp(session.leg_mut(route.leg), now, src, packet),
            (PortKind::Rtp, PacketKind::Rtp) => {
                let mut context = PacketContext {
                    now,
                    config: &self.config,
                    events: &mut self.events,
                    pcm: &mut self.pcm[..],
                    mixer: &mut self.conferences.mixer,
                };
                on_rtp(session, route.leg, src, packet, &mut context)
            }
            _ => PacketAction::Drop(DropReason::NotMedia),
        };
        if let PacketAction::Drop(reason) = action {
            session.leg_mut(route.leg).count_drop(reason);
        }
        action
    }

    /// Emits what is due at `now`: one generated frame per generating leg and one mix per
    /// conference leg for every 20 ms frame due on the tick grid, and (once a second) media
    /// timeouts and RTCP reports. `out(from_port, to, bytes)` sends a datagram.
    ///
    /// The grid never moves: after a stall the frames missed go out at once, each stamped
    /// with its due time (so its RTP timestamp is the media clock's), at most
    /// [`MAX_CATCH_UP_TICKS`] of them; older ones are skipped, which the streams show as a
    /// timestamp jump of their length (see `StreamRewriter::next_generated`).
    pub fn tick(&mut self, now: Duration, out: &mut impl FnMut(u16, SocketAddr, &[u8])) {
        let Some(due) = self.next_tick else {
            return;
        };
        if now < due {
            return;
        }
        // The last grid point at or before `now`, and how many are due up to it.
        let behind = now - due;
        let tick_nanos = TICK.as_nanos().max(1);
        let into_tick = u64::try_from(behind.as_nanos() % tick_nanos).unwrap_or(0);
        let last = now - Duration::from_nanos(into_tick);
        let due_ticks = u64::try_from(behind.as_nanos() / tick_nanos)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let run = due_ticks.min(MAX_CATCH_UP_TICKS);
        let counters = &mut self.counters;
        counters.skipped_ticks = counters.skipped_ticks.saturating_add(due_ticks - run);
        counters.catch_up_ticks = counters.catch_up_ticks.saturating_add(run - 1);
        self.next_tick = Some(last + TICK);
        for back in (0..run).rev() {
            let at = last.saturating_sub(TICK * u32::try_from(back).unwrap_or(0));
            self.tick_frame(at, out);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING;
            self.housekeeping(now, out);
        }
    }

    /// One frame of every generated stream and every conference mix, due at `at`.
    fn tick_frame(&mut self, at: Duration, out: &mut impl FnMut(u16, SocketAddr, &[u8])) {
        for index in 0..self.generating.len() {
            let Some(&(slot, leg)) = self.generating.get(index) else {
                break;
            };
            let Some(session) = self
                .sessions
                .get_mut(slot as usize)
                .and_then(Option::as_mut)
            else {
                continue;
            };
            let id = session.id;
            let leg_state = session.leg_mut(leg);
            let pcm = self.pcm.get_mut(..FRAME_SAMPLES).unwrap_or_default();
            let frame = generate_frame(leg_state, at, pcm, &mut self.build[..], out);
            if frame.sent {
                self.counters.generated += 1;
            }
            if frame.finished {
                self.events
                    .push(MediaEvent::PlaybackDone { session: id, leg });
                // The leg keeps a live stream until the engine says what it hears next
                // (a zero-sized source: no allocation).
                leg_state.output = Output::Generated(Box::new(SilenceSource));
            }
        }
        self.tick_conferences(at, out);
    }

    fn housekeeping(&mut self, now: Duration, out: &mut impl FnMut(u16, SocketAddr, &[u8])) {
        let timeout = self.config.media_timeout;
        for session in self.sessions.iter_mut().flatten() {
            if !session.timeout_reported
                && session.caller.is_silent(now, timeout)
                && session.callee.is_silent(now, timeout)
            {
                session.timeout_reported = true;
                self.events.push(MediaEvent::Timeout {
                    session: session.id,
                });
            }
            for leg in [&mut session.caller, &mut session.callee] {
                if now < leg.next_rtcp {
                    continue;
                }
                let factor = self.rng.gen_range(0.5..1.5);
                leg.next_rtcp = now + self.config.rtcp_interval.mul_f64(factor);
                let report = ReportContext {
                    now,
                    cname: self.config.cname.as_bytes(),
                    wall_clock_origin: self.config.wall_clock_origin,
                };
                if send_report(leg, &report, &mut self.build[..], out) {
                    self.counters.rtcp_sent += 1;
                }
            }
        }
    }
}

/// What `on_rtp` borrows from the relay besides the session.
struct PacketContext<'a> {
    now: Duration,
    config: &'a RelayConfig,
    events: &'a mut EventQueue,
    pcm: &'a mut [i16],
    mixer: &'a mut Mixer,
}

/// An RTP packet from `inbound`'s far end: account for it, detect DTMF, relay it.
fn on_rtp(
    session: &mut Session,
    inbound_leg: MediaLeg,
    src: SocketAddr,
    packet: &mut [u8],
    context: &mut PacketContext<'_>,
) -> PacketAction {
    let now = context.now;
    let Session {
        id,
        caller,
        callee,
        timeout_reported,
    } = session;
    let id = *id;
    let (inbound, outbound) = match inbound_leg {
        MediaLeg::Caller => (caller, callee),
        MediaLeg::Callee => (callee, caller),
    };
    let Some(media) = inbound.media.as_ref() else {
        return PacketAction::Drop(DropReason::NotNegotiated);
    };
    let (remote_rtp, codec, payload_type, telephone_event, direction) = (
        media.remote_rtp,
        media.codec,
        media.payload_type,
        media.telephone_event,
        media.direction,
    );
    let window_open = now.saturating_sub(inbound.updated_at) < context.config.latch_window;
    if !inbound.latch.accept_rtp(remote_rtp, window_open, src) {
        return PacketAction::Drop(DropReason::Stranger);
    }
    if !direction.sends() {
        return PacketAction::Drop(DropReason::NotSending);
    }
    let payload_kind = {
        let Ok(parsed) = RtpPacket::parse(packet) else {
            return PacketAction::Drop(DropReason::Malformed);
        };
        let pt = parsed.payload_type();
        let payload_kind = if pt == payload_type {
            Payload::Audio
        } else if Some(pt) == telephone_event {
            Payload::TelephoneEvent
        } else {
            return PacketAction::Drop(DropReason::UnknownPayloadType);
        };
        inbound
            .reception
            .on_rtp(&parsed, now, codec.rtp_clock_rate());
        inbound.last_activity = now;
        *timeout_reported = false;
        let events = &mut *context.events;
        match payload_kind {
            Payload::TelephoneEvent => {
                if let Ok(Some(report)) = inbound.events.on_packet(&parsed) {
                    if let (true, Some(digit)) = (report.is_new, report.digit) {
                        events.push(MediaEvent::Digit {
                            session: id,
                            leg: inbound_leg,
                            digit,
                            source: DigitSource::Rfc4733,
                        });
                    }
                }
            }
            Payload::Audio if telephone_event.is_none() && codec.is_convertible() => {
                for chunk in parsed.payload().chunks(context.pcm.len().max(1)) {
                    let Some(pcm) = context.pcm.get_mut(..chunk.len()) else {
                        break;
                    };
                    if codec::decode_to_linear(codec, chunk, pcm).is_err() {
                        break;
                    }
                    inbound.inband.process_with(pcm, |digit| {
                        events.push(MediaEvent::Digit {
                            session: id,
                            leg: inbound_leg,
                            digit,
                            source: DigitSource::Inband,
                        });
                    });
                }
            }
            Payload::Audio => {}
        }
        if let Output::Conference(participant) = inbound.output {
            if payload_kind != Payload::Audio {
                return PacketAction::Drop(DropReason::EventInConference);
            }
            context
                .mixer
                .push(participant, RtpAudio::from_packet(&parsed), now);
            return PacketAction::Mixed;
        }
        payload_kind
    };
    relay_to(outbound, codec, payload_kind, packet, now)
}

/// Rewrites a packet from the other leg for `outbound`'s far end.
fn relay_to(
    outbound: &mut Leg,
    in_codec: Codec,
    payload_kind: Payload,
    packet: &mut [u8],
    now: Duration,
) -> PacketAction {
    match outbound.output {
        Output::Relay => {}
        Output::Generated(_) => return PacketAction::Drop(DropReason::PeerHearsGenerated),
        Output::Conference(_) => return PacketAction::Drop(DropReason::PeerInConference),
    }
    let Some(out_media) = outbound.media.as_ref() else {
        return PacketAction::Drop(DropReason::NoPeer);
    };
    if !out_media.direction.receives() {
        return PacketAction::Drop(DropReason::PeerNotReceiving);
    }
    let Some(to) = outbound.rtp_destination() else {
        return PacketAction::Drop(DropReason::NoPeer);
    };
    let out_codec = out_media.codec;
    let (out_pt, transcode) = match payload_kind {
        Payload::Audio => {
            if in_codec != out_codec && !(in_codec.is_convertible() && out_codec.is_convertible()) {
                return PacketAction::Drop(DropReason::CodecMismatch);
            }
            (out_media.payload_type, in_codec != out_codec)
        }
        Payload::TelephoneEvent => match out_media.telephone_event {
            Some(pt) => (pt, false),
            None => return PacketAction::Drop(DropReason::NoTelephoneEvent),
        },
    };
    let payload_len = {
        let Ok(mut editor) = RtpPacketMut::parse(packet) else {
            return PacketAction::Drop(DropReason::Malformed);
        };
        if editor.set_payload_type(out_pt).is_err() {
            return PacketAction::Drop(DropReason::UnknownPayloadType);
        }
        if transcode
            && codec::transcode_in_place(in_codec, out_codec, editor.payload_mut()).is_err()
        {
            return PacketAction::Drop(DropReason::CodecMismatch);
        }
        editor.payload().len()
    };
    match outbound.out.relay(packet, now) {
        Ok(outcome) if outcome.should_send() => {}
        Ok(_) => return PacketAction::Drop(DropReason::Stale),
        Err(_) => return PacketAction::Drop(DropReason::Malformed),
    }
    outbound.count_sent(payload_len);
    PacketAction::Send {
        from_port: outbound.ports.rtp,
        to,
        len: packet.len(),
    }
}

/// An RTCP packet from `leg`'s far end: read the SR time for our LSR/DLSR, then drop it.
fn on_rtcp(leg: &mut Leg, now: Duration, src: SocketAddr, packet: &[u8]) -> PacketAction {
    let Some(media) = leg.media.as_ref() else {
        return PacketAction::Drop(DropReason::NotNegotiated);
    };
    if !leg.latch.accept_rtcp(media.remote_rtp, src) {
        return PacketAction::Drop(DropReason::Stranger);
    }
    for part in rtcp::packets(packet) {
        let Ok(part) = part else {
            return PacketAction::Drop(DropReason::Malformed);
        };
        if let Ok(RtcpView::SenderReport(sr)) = part.view() {
            if leg.reception.ssrc.is_none_or(|ssrc| ssrc == sr.ssrc) {
                leg.last_sr = Some((ntp_middle32(sr.info.ntp_timestamp), now));
            }
        }
    }
    leg.counters.rtcp_received = leg.counters.rtcp_received.saturating_add(1);
    PacketAction::Drop(DropReason::RtcpTerminated)
}

/// What one tick did for a generating leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GeneratedFrame {
    sent: bool,
    finished: bool,
}

/// Fills one frame from `leg`'s source and sends it to its far end if it can receive.
fn generate_frame(
    leg: &mut Leg,
    now: Duration,
    pcm: &mut [i16],
    build: &mut [u8],
    out: &mut impl FnMut(u16, SocketAddr, &[u8]),
) -> GeneratedFrame {
    let Output::Generated(source) = &mut leg.output else {
        return GeneratedFrame {
            sent: false,
            finished: false,
        };
    };
    // The source runs in real time even when nothing can be sent (hold), so a prompt ends
    // when it would have ended.
    let fill = source.fill(pcm);
    GeneratedFrame {
        sent: send_generated(leg, now, pcm, build, out),
        finished: fill == FrameFill::Finished,
    }
}

fn send_generated(
    leg: &mut Leg,
    now: Duration,
    pcm: &[i16],
    build: &mut [u8],
    out: &mut impl FnMut(u16, SocketAddr, &[u8]),
) -> bool {
    let samples = u32::try_from(pcm.len()).unwrap_or(0);
    send_frame(leg, now, samples, build, out, |codec, payload| {
        codec::encode_from_linear(codec, pcm, payload).ok()
    })
}

/// Sends one frame of `samples` samples that `write(codec, payload)` writes in the leg's
/// codec (returning its length) to the leg's far end, as the next packet of its stream;
/// true if sent. Nothing goes to a far end that does not receive or has no address.
fn send_frame(
    leg: &mut Leg,
    now: Duration,
    samples: u32,
    build: &mut [u8],
    out: &mut (impl FnMut(u16, SocketAddr, &[u8]) + ?Sized),
    write: impl FnOnce(Codec, &mut [u8]) -> Option<usize>,
) -> bool {
    let Some(media) = leg.media.as_ref() else {
        return false;
    };
    if !media.direction.receives() {
        return false;
    }
    let Some(to) = leg.rtp_destination() else {
        return false;
    };
    let (codec, payload_type) = (media.codec, media.payload_type);
    if !codec.is_convertible() {
        leg.counters.frames_not_encodable = leg.counters.frames_not_encodable.saturating_add(1);
        return false;
    }
    // The payload first: a frame that cannot be written must not use a sequence number.
    let Some(payload) = build.get_mut(RTP_HEADER_LEN..) else {
        return false;
    };
    let Some(payload_len) = write(codec, payload) else {
        return false;
    };
    let header = leg.out.next_generated(payload_type, samples, now);
    if write_header(build, &header) != Ok(RTP_HEADER_LEN) {
        return false;
    }
    let Some(bytes) = build.get(..RTP_HEADER_LEN + payload_len) else {
        return false;
    };
    out(leg.ports.rtp, to, bytes);
    leg.count_sent(payload_len);
    true
}

/// What an RTCP report needs from the relay configuration.
struct ReportContext<'a> {
    now: Duration,
    cname: &'a [u8],
    wall_clock_origin: Duration,
}

/// Sends our SR (or RR before we sent anything) + SDES to `leg`'s far end; true if sent.
fn send_report(
    leg: &mut Leg,
    report: &ReportContext<'_>,
    build: &mut [u8],
    out: &mut impl FnMut(u16, SocketAddr, &[u8]),
) -> bool {
    let now = report.now;
    let received = leg.reception.ssrc;
    if leg.packets_sent == 0 && received.is_none() {
        return false;
    }
    let Some(to) = leg.rtcp_destination() else {
        return false;
    };
    let sender_info = (leg.packets_sent > 0).then(|| SenderInfo {
        ntp_timestamp: ntp_from_unix(report.wall_clock_origin + now),
        rtp_timestamp: leg.out.timestamp_at(now).unwrap_or(0),
        // The SR counters wrap modulo 2^32 (RFC 3550 6.4.1).
        packet_count: (leg.packets_sent & 0xffff_ffff) as u32,
        octet_count: (leg.octets_sent & 0xffff_ffff) as u32,
    });
    let block_storage: [ReportBlock; 1];
    let blocks: &[ReportBlock] = match received {
        Some(ssrc) => {
            let (last_sr, delay) = leg.last_sr.map_or((0, 0), |(lsr, at)| {
                (lsr, delay_since_last_sr(now.saturating_sub(at)))
            });
            block_storage = [leg.reception.stats.report_block(ssrc, last_sr, delay)];
            &block_storage
        }
        None => &[],
    };
    let Ok(len) = write_report_compound(
        build,
        leg.out.out_ssrc(),
        sender_info.as_ref(),
        blocks,
        report.cname,
    ) else {
        return false;
    };
    let Some(bytes) = build.get(..len) else {
        return false;
    };
    out(leg.ports.rtcp(), to, bytes);
    leg.counters.rtcp_sent = leg.counters.rtcp_sent.saturating_add(1);
    true
}
