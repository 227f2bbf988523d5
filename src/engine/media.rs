//! Media anchoring in the B2BUA (RFC 3264 offer/answer on each leg).
//!
//! An anchored call has two local port pairs, one per leg, and each leg negotiates its
//! own offer/answer with sentralbord: the caller's offer is answered by us, and we make
//! our own offer to the callee (the caller's codecs that the relay handles, plus G.711
//! variants we can transcode to). What each leg settled on goes to the media plane as
//! [`MediaCommand::Update`]; the media plane relays between the ports.
//!
//! Offer-less INVITEs are completed locally: the callee gets our offer, the caller's
//! 2xx carries our offer and its ACK the answer. A re-INVITE or UPDATE with an offer is
//! translated leg by leg the same way.

use super::b2bua::Side;
use super::pipeline::Refusal;
use super::{Engine, Output};
use crate::call::model::CallId;
use crate::media::codec::Codec;
use crate::media::control::{
    LegMedia, LegSource, MediaCommand, MediaEvent, MediaLeg, MediaSessionId, PortPair,
};
use crate::media::sdp::{
    self, AnchorConfig, CodecName, Direction, LocalMedia, MediaKind, NegotiatedStream, OriginState,
    RelayPorts, Role, Sdp,
};
use crate::sip::message::{Header, HeaderName, Message};
use bytes::Bytes;
use std::net::IpAddr;

/// Codecs the relay moves (same codec on both legs; G.711 also transcoded).
const RELAY_CODECS: &[CodecName] = &[
    CodecName::PCMU,
    CodecName::PCMA,
    CodecName::G722,
    CodecName::OPUS,
];

/// How long a new call waits for the media plane to open its session.
pub const MEDIA_OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The prompt played to a party on hold.
pub const MUSIC_ON_HOLD: &str = "moh/default";

/// How long an ended call's report waits for its media statistics.
pub const MEDIA_STATS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Codecs we can transcode to, added to an offer that lacks them.
const TRANSCODE_TO: &[CodecName] = &[CodecName::PCMU, CodecName::PCMA];

/// Media settings of the engine.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The address RTP is bound on and written into our SDP; `None`: the address of
    /// the SIP listener of the caller's leg.
    pub address: Option<IpAddr>,
    /// A party's hold is answered by sentralbord, which plays music on hold to the other
    /// party (instead of relaying the hold re-INVITE).
    pub moh_on_hold: bool,
}

/// One leg's side of offer/answer.
pub struct AnchoredLeg {
    /// Our ports on this leg.
    pub ports: PortPair,
    /// The `o=` line we use on this leg (its version goes up when our SDP changes).
    pub origin: OriginState,
    /// The far end's offer we answer (the latest).
    pub their_offer: Option<Sdp>,
    /// Our offer on this leg still waiting for the far end's answer.
    pub our_offer: Option<Sdp>,
    /// The speech codec this leg settled on.
    pub codec: Option<sdp::RtpMap>,
}

impl AnchoredLeg {
    pub(super) fn new(ports: PortPair, session_id: u64, address: IpAddr) -> Self {
        AnchoredLeg {
            ports,
            origin: OriginState::new(session_id, address),
            their_offer: None,
            our_offer: None,
            codec: None,
        }
    }

    fn relay_ports(&self) -> RelayPorts {
        RelayPorts {
            rtp: self.ports.rtp,
            rtcp: Some(self.ports.rtcp()),
        }
    }
}

/// What a call waiting for its media session keeps.
pub struct MediaOpening {
    /// Our media address.
    pub address: IpAddr,
    /// The caller's offer, if its INVITE had one.
    pub their_offer: Option<Sdp>,
}

/// Our offer to the callee for the caller's `offer`: its relayable codecs (plus the
/// G.711 we transcode to) on our `ports`, stamped with `origin`.
fn callee_offer(
    offer: &Sdp,
    address: IpAddr,
    ports: RelayPorts,
    origin: &mut OriginState,
) -> Result<Sdp, sdp::SdpError> {
    let mut slots = vec![None; offer.media.len()];
    if let Some(slot) = audio_index(offer).and_then(|i| slots.get_mut(i)) {
        *slot = Some(ports);
    }
    let config = AnchorConfig {
        address,
        ports: &slots,
        codecs: RELAY_CODECS,
        transcode_to: TRANSCODE_TO,
    };
    sdp::anchor(offer, &config, origin)
}

/// An anchored call's media state.
pub struct CallMedia {
    /// The media plane's session.
    pub session: MediaSessionId,
    /// Our media address (both legs).
    pub address: IpAddr,
    /// The leg facing the caller.
    pub caller: AnchoredLeg,
    /// The leg facing the callee.
    pub callee: AnchoredLeg,
    /// Our offer to the callee, encoded once for every branch.
    pub callee_offer_body: Bytes,
    /// The leg whose far end put the call on hold (the other hears music on hold).
    pub held_by: Option<MediaLeg>,
}

impl CallMedia {
    fn leg_mut(&mut self, leg: MediaLeg) -> &mut AnchoredLeg {
        match leg {
            MediaLeg::Caller => &mut self.caller,
            MediaLeg::Callee => &mut self.callee,
        }
    }
}

/// The media leg that faces a signalling side.
pub fn leg_of(side: Side) -> MediaLeg {
    match side {
        Side::Inbound => MediaLeg::Caller,
        Side::Branch(_) => MediaLeg::Callee,
    }
}

/// The first audio stream the relay can take, by `m=` index.
fn audio_index(offer: &Sdp) -> Option<usize> {
    offer.media.iter().position(|m| {
        m.kind == MediaKind::Audio && !m.is_rejected() && m.is_rtp() && !m.is_secure()
    })
}

/// What the media plane needs of one leg after offer/answer, where we played `role`.
pub(super) fn leg_media(n: &NegotiatedStream, role: Role) -> Option<LegMedia> {
    let codec = Codec::from_rtpmap(&n.codec.encoding, n.codec.clock_rate)?;
    let remote = n.remote(role);
    Some(LegMedia {
        remote_rtp: (!remote.rtp.ip().is_unspecified() && remote.rtp.port() != 0)
            .then_some(remote.rtp),
        remote_rtcp: remote.rtcp,
        codec,
        payload_type: n.codec.payload_type,
        telephone_event: n.telephone_event,
        // The far end's view is the mirror of ours.
        direction: n.direction(role).mirrored(),
        ptime_ms: remote
            .ptime
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(20),
    })
}

/// Sets an SDP body (and its Content-Type) on a message, replacing any other.
pub fn set_sdp_body(m: &mut Message, sdp: &Sdp) {
    m.remove(&HeaderName::ContentType);
    m.headers.push(Header::new(
        HeaderName::ContentType,
        Bytes::from_static(b"application/sdp"),
    ));
    m.body = Bytes::from(sdp.encode());
}

/// Why the media of a new call cannot be anchored.
fn refusal_for(e: &sdp::SdpError) -> Refusal {
    match e {
        sdp::SdpError::NoCommonCodec
        | sdp::SdpError::UnsupportedTransport { .. }
        | sdp::SdpError::NoAudioStream => {
            Refusal::plain(488, "Not Acceptable Here - No Usable Audio Stream")
        }
        _ => Refusal::plain(400, "Bad Request - Malformed SDP"),
    }
}

impl Engine {
    /// Whether a call arriving on listener `listener` and ringing `targets` is anchored:
    /// when the caller's profile or the profile of any target's side asks for it.
    pub(super) fn anchors(&self, listener: usize, targets: &[crate::call::plan::Target]) -> bool {
        if self.cfg.media.is_none() {
            return false;
        }
        let profile_anchors = |kind: crate::call::plan::TargetKind| {
            self.cfg.listeners.iter().any(|l| {
                let fits = match kind {
                    crate::call::plan::TargetKind::Phone => l.realm.is_some(),
                    _ => l.trusted.is_some(),
                };
                fits && l.anchor_media
            })
        };
        self.cfg
            .listeners
            .get(listener)
            .is_some_and(|l| l.anchor_media)
            || targets.iter().any(|t| profile_anchors(t.kind))
    }

    /// Asks the media plane to open a new call's session (the INVITE's offer checked
    /// first, so an offer we cannot anchor is refused before anything rings).
    /// `required`: the switch itself plays to the caller (queues, feature codes).
    /// `Ok(None)`: not anchored.
    pub(super) fn request_media(
        &mut self,
        id: CallId,
        invite: &Message,
        listener: usize,
        listener_ip: IpAddr,
        targets: &[crate::call::plan::Target],
        required: bool,
    ) -> Result<Option<MediaOpening>, Refusal> {
        if required && self.cfg.media.is_none() {
            return Err(Refusal::plain(
                503,
                "Service Unavailable - No Media Plane For Queues",
            ));
        }
        if !required && !self.anchors(listener, targets) {
            return Ok(None);
        }
        let their_offer = if invite.body.is_empty() {
            None
        } else {
            Some(Sdp::parse(&invite.body).map_err(|e| refusal_for(&e))?)
        };
        let address = self
            .cfg
            .media
            .as_ref()
            .and_then(|m| m.address)
            .unwrap_or(listener_ip);
        if let Some(offer) = &their_offer {
            // A dry run with a stand-in port: only whether the offer can be anchored.
            let stand_in = RelayPorts {
                rtp: 2,
                rtcp: Some(3),
            };
            callee_offer(offer, address, stand_in, &mut OriginState::new(1, address))
                .map_err(|e| refusal_for(&e))?;
        }
        self.outputs.push_back(Output::Media(MediaCommand::Open {
            session: MediaSessionId(id.0),
            local_ip: address,
        }));
        Ok(Some(MediaOpening {
            address,
            their_offer,
        }))
    }

    /// The media plane opened a call's session on `caller` and `callee`: our offer to
    /// the callee is made and the call starts ringing.
    fn media_opened(
        &mut self,
        now: crate::util::time::Now,
        session: MediaSessionId,
        caller: PortPair,
        callee: PortPair,
    ) {
        let id = CallId(session.0);
        let opening = self
            .calls
            .get_mut(&id)
            .filter(|e| e.call.state != crate::call::model::CallState::Ended)
            .and_then(|e| e.media_opening.take());
        let Some((opening, plan)) = opening else {
            // The call ended (or never was) while its ports were being bound.
            self.outputs
                .push_back(Output::Media(MediaCommand::Close { session }));
            return;
        };
        let session_id = {
            use rand::Rng;
            self.rng.gen_range(1..(1u64 << 62))
        };
        let address = opening.address;
        let mut media = CallMedia {
            session,
            address,
            caller: AnchoredLeg::new(caller, session_id, address),
            callee: AnchoredLeg::new(callee, session_id.wrapping_add(1), address),
            callee_offer_body: Bytes::new(),
            held_by: None,
        };
        let offer = match &opening.their_offer {
            Some(offer) => callee_offer(
                offer,
                address,
                media.callee.relay_ports(),
                &mut media.callee.origin,
            ),
            None => {
                let mut sdp = sdp::offer(&self.local_media(address, &media.callee, None));
                media.callee.origin.stamp(&mut sdp);
                Ok(sdp)
            }
        };
        match offer {
            Ok(offer) => {
                media.callee_offer_body = Bytes::from(offer.encode());
                media.callee.our_offer = Some(offer);
                media.caller.their_offer = opening.their_offer;
                if let Some(e) = self.calls.get_mut(&id) {
                    e.media = Some(media);
                }
                self.ring_call(now, id, plan);
            }
            // Checked before the session was asked for; kept for safety.
            Err(e) => {
                let refusal = refusal_for(&e);
                self.outputs
                    .push_back(Output::Media(MediaCommand::Close { session }));
                self.refuse_opening(now, id, refusal.code, refusal.reason);
            }
        }
    }

    /// Our local media description on a leg; `prefer` goes first (the codec the other
    /// leg settled on, so no transcoding is needed when both can do it).
    pub(super) fn local_media(
        &self,
        address: IpAddr,
        leg: &AnchoredLeg,
        prefer: Option<&sdp::RtpMap>,
    ) -> LocalMedia {
        let mut codecs: Vec<CodecName> = Vec::new();
        if let Some(p) = prefer {
            codecs.push(p.name());
        }
        for c in TRANSCODE_TO {
            let listed = codecs
                .iter()
                .any(|k| k.clock_rate == c.clock_rate && k.name.eq_ignore_ascii_case(&c.name));
            if !listed {
                codecs.push(c.clone());
            }
        }
        LocalMedia {
            address,
            rtp_port: leg.ports.rtp,
            rtcp_port: Some(leg.ports.rtcp()),
            codecs,
            telephone_event: true,
            direction: Direction::SendRecv,
            ptime: None,
        }
    }

    /// The far end of `leg` answered our offer with `body`: tell the media plane.
    /// Returns false when the answer is unusable.
    pub(super) fn take_answer(&mut self, id: CallId, leg: MediaLeg, body: &[u8]) -> bool {
        let Ok(answer) = Sdp::parse(body) else {
            return false;
        };
        let Some(media) = self.calls.get_mut(&id).and_then(|e| e.media.as_mut()) else {
            return false;
        };
        let session = media.session;
        let l = media.leg_mut(leg);
        let Some(offer) = l.our_offer.as_ref() else {
            return false;
        };
        let Some(n) = sdp::negotiated(offer, &answer).into_iter().next() else {
            return false;
        };
        l.codec = Some(n.codec.clone());
        let Some(lm) = leg_media(&n, Role::Offerer) else {
            return false;
        };
        self.outputs.push_back(Output::Media(MediaCommand::Update {
            session,
            leg,
            media: lm,
        }));
        true
    }

    /// Our answer to the far end of `leg`'s latest offer, preferring the codec the other
    /// leg settled on; tells the media plane. `None` when there is no offer to answer or
    /// it cannot be answered.
    fn answer_leg(&mut self, id: CallId, leg: MediaLeg) -> Option<Sdp> {
        let media = self.calls.get(&id).and_then(|e| e.media.as_ref())?;
        let this = match leg {
            MediaLeg::Caller => &media.caller,
            MediaLeg::Callee => &media.callee,
        };
        let other = match leg {
            MediaLeg::Caller => &media.callee,
            MediaLeg::Callee => &media.caller,
        };
        let offer = this.their_offer.clone()?;
        let local = self.local_media(media.address, this, other.codec.as_ref());
        let session = media.session;
        let mut answer = sdp::answer(&offer, &local).ok()?;
        let media = self.calls.get_mut(&id).and_then(|e| e.media.as_mut())?;
        let l = media.leg_mut(leg);
        l.origin.stamp(&mut answer);
        let n = sdp::negotiated(&offer, &answer).into_iter().next()?;
        l.codec = Some(n.codec.clone());
        if let Some(lm) = leg_media(&n, Role::Answerer) {
            self.outputs.push_back(Output::Media(MediaCommand::Update {
                session,
                leg,
                media: lm,
            }));
        }
        Some(answer)
    }

    /// Our offer on `leg` (when its far end sent none): the codecs the other leg settled
    /// on first. Kept until the far end answers.
    fn offer_on_leg(&mut self, id: CallId, leg: MediaLeg) -> Option<Sdp> {
        let media = self.calls.get(&id).and_then(|e| e.media.as_ref())?;
        let (this, other) = match leg {
            MediaLeg::Caller => (&media.caller, &media.callee),
            MediaLeg::Callee => (&media.callee, &media.caller),
        };
        let mut offer = sdp::offer(&self.local_media(media.address, this, other.codec.as_ref()));
        let media = self.calls.get_mut(&id).and_then(|e| e.media.as_mut())?;
        let l = media.leg_mut(leg);
        l.origin.stamp(&mut offer);
        l.our_offer = Some(offer.clone());
        Some(offer)
    }

    /// A callee branch's 18x or 2xx carried SDP (the answer to our offer): the SDP for
    /// the caller's response, when anchored (our answer to its offer, or our offer when
    /// it sent none). `None`: not anchored (relay the body as is) — `Some(None)`: no body.
    pub(super) fn callee_sdp_for_caller(
        &mut self,
        id: CallId,
        body: &[u8],
        reliable_or_final: bool,
    ) -> Option<Option<Sdp>> {
        self.calls.get(&id)?.media.as_ref()?;
        if !self.take_answer(id, MediaLeg::Callee, body) {
            tracing::warn!(call = id.0, "callee's SDP answer is unusable; no media");
        }
        let caller_offered = self
            .calls
            .get(&id)
            .and_then(|e| e.media.as_ref())
            .is_some_and(|m| m.caller.their_offer.is_some());
        if caller_offered {
            return Some(self.answer_leg(id, MediaLeg::Caller));
        }
        // Offer-less INVITE: our offer goes in the 2xx (or a reliable provisional); an
        // unreliable 18x carries none (RFC 3261 s13.2.1). The same offer is repeated
        // until the caller answers.
        if !reliable_or_final {
            return Some(None);
        }
        let existing = self
            .calls
            .get(&id)
            .and_then(|e| e.media.as_ref())
            .and_then(|m| m.caller.our_offer.clone());
        Some(existing.or_else(|| self.offer_on_leg(id, MediaLeg::Caller)))
    }

    /// The caller's SDP once more for our 2xx when the callee's 2xx had none (its
    /// answer came in a reliable provisional): the same answer (or our same offer).
    /// `None`: not anchored.
    pub(super) fn caller_sdp_again(&mut self, id: CallId) -> Option<Option<Sdp>> {
        let media = self.calls.get(&id)?.media.as_ref()?;
        if media.caller.their_offer.is_some() {
            return Some(self.answer_leg(id, MediaLeg::Caller));
        }
        let existing = media.caller.our_offer.clone();
        Some(existing.or_else(|| self.offer_on_leg(id, MediaLeg::Caller)))
    }

    /// An ACK (or PRACK) from a side carried SDP: the answer to our offer on its leg.
    pub(super) fn answer_in_ack(&mut self, id: CallId, side: Side, body: &[u8]) {
        let leg = leg_of(side);
        let pending = self
            .calls
            .get(&id)
            .and_then(|e| e.media.as_ref())
            .is_some_and(|m| match leg {
                MediaLeg::Caller => m.caller.our_offer.is_some(),
                MediaLeg::Callee => m.callee.our_offer.is_some(),
            });
        if pending && !self.take_answer(id, leg, body) {
            tracing::warn!(call = id.0, "SDP answer in ACK is unusable");
        }
    }

    /// A mid-call request with an offer from `from`: the offer for the other side's
    /// leg (`None`: not anchored, relay the body as is).
    pub(super) fn translate_offer(
        &mut self,
        id: CallId,
        from: Side,
        body: &[u8],
    ) -> Option<Result<Sdp, Refusal>> {
        self.calls.get(&id)?.media.as_ref()?;
        let offer = match Sdp::parse(body) {
            Ok(o) => o,
            Err(e) => return Some(Err(refusal_for(&e))),
        };
        let from_leg = leg_of(from);
        let to_leg = from_leg.other();
        let media = self.calls.get_mut(&id).and_then(|e| e.media.as_mut())?;
        let address = media.address;
        media.leg_mut(from_leg).their_offer = Some(offer.clone());
        let target = media.leg_mut(to_leg);
        let mut ports = vec![None; offer.media.len()];
        if let Some(slot) = audio_index(&offer).and_then(|i| ports.get_mut(i)) {
            *slot = Some(target.relay_ports());
        }
        let config = AnchorConfig {
            address,
            ports: &ports,
            codecs: RELAY_CODECS,
            transcode_to: TRANSCODE_TO,
        };
        Some(match sdp::anchor(&offer, &config, &mut target.origin) {
            Ok(out) => {
                target.our_offer = Some(out.clone());
                Ok(out)
            }
            Err(e) => Err(refusal_for(&e)),
        })
    }

    /// The response to a relayed offer came back from `answered_by` with SDP: the SDP
    /// for the response to the side that made the offer (`None`: not anchored).
    /// When the relayed request had no offer, `body` is the far end's offer: it is
    /// answered in our ACK (returned second) and our offer goes to the asking side.
    pub(super) fn translate_answer(
        &mut self,
        id: CallId,
        answered_by: Side,
        body: &[u8],
    ) -> Option<(Option<Sdp>, Option<Sdp>)> {
        self.calls.get(&id)?.media.as_ref()?;
        let to_leg = leg_of(answered_by);
        let from_leg = to_leg.other();
        let we_offered = self
            .calls
            .get(&id)
            .and_then(|e| e.media.as_ref())
            .is_some_and(|m| match to_leg {
                MediaLeg::Caller => m.caller.our_offer.is_some(),
                MediaLeg::Callee => m.callee.our_offer.is_some(),
            });
        if we_offered {
            if !self.take_answer(id, to_leg, body) {
                tracing::warn!(call = id.0, "SDP answer to a re-offer is unusable");
            }
            return Some((self.answer_leg(id, from_leg), None));
        }
        // The far end offered in its 2xx (our request had none): answer it in the ACK,
        // and offer the asking side our leg's media.
        let Ok(offer) = Sdp::parse(body) else {
            return Some((None, None));
        };
        if let Some(m) = self.calls.get_mut(&id).and_then(|e| e.media.as_mut()) {
            m.leg_mut(to_leg).their_offer = Some(offer);
        }
        let ack_answer = self.answer_leg(id, to_leg);
        let our_offer = self.offer_on_leg(id, from_leg);
        Some((our_offer, ack_answer))
    }

    /// A re-INVITE from `side` that puts the call on hold (or resumes the hold it made)
    /// is answered here when music on hold is on: the holder gets our answer, the other
    /// party hears music on hold (or the holder again) in the same RTP stream, and
    /// nothing reaches the other party's signalling. Returns true when handled.
    pub(super) fn hold_locally(
        &mut self,
        now: crate::util::time::Now,
        id: CallId,
        side: Side,
        req: &Message,
        key: &crate::sip::transaction::TransactionKey,
    ) -> bool {
        if !self.cfg.media.as_ref().is_some_and(|m| m.moh_on_hold) || req.body.is_empty() {
            return false;
        }
        let Some(entry) = self.calls.get(&id) else {
            return false;
        };
        let (Some(media), true) = (entry.media.as_ref(), entry.call.winner.is_some()) else {
            return false;
        };
        let Ok(offer) = Sdp::parse(&req.body) else {
            return false;
        };
        let Some(stream) = audio_index(&offer).and_then(|i| offer.media.get(i)) else {
            return false;
        };
        let leg = leg_of(side);
        let holding = offer.is_media_held(stream);
        let resuming = !holding && media.held_by == Some(leg);
        // Only one party's hold is ours to answer; anything else is relayed.
        let free = media.held_by.is_none() || media.held_by == Some(leg);
        if !(resuming || holding && free) {
            return false;
        }
        let (session, tenant) = (media.session, entry.tenant);
        let local = match side {
            Side::Inbound => Some((entry.inbound.peer.local, entry.inbound.peer.proto)),
            Side::Branch(b) => entry
                .branches
                .get(b.0 as usize)
                .map(|l| (l.peer.local, l.peer.proto)),
        };
        if let Some(m) = self.calls.get_mut(&id).and_then(|e| e.media.as_mut()) {
            m.leg_mut(leg).their_offer = Some(offer);
        }
        let Some(answer) = self.answer_leg(id, leg) else {
            return false;
        };
        let mut ok = Message::response_to(req, 200, "OK", None);
        if let Some((addr, proto)) = local {
            ok.push(HeaderName::Contact, super::b2bua::contact_for(addr, proto));
        }
        set_sdp_body(&mut ok, &answer);
        self.add_common(&mut ok);
        let bytes = ok.encode();
        let _ = self.txns.send_response(now.mono, key, 200, bytes.clone());
        let requester = self.calls.get(&id).and_then(|e| match side {
            Side::Inbound => Some(e.inbound.peer),
            Side::Branch(b) => e.branches.get(b.0 as usize).map(|l| l.peer),
        });
        if let (Some(peer), Ok(cseq)) = (requester, req.cseq()) {
            self.track_reinvite_ok(now, id, side, cseq.seq, bytes, peer);
        }
        let source = if holding {
            LegSource::Prompts {
                tenant,
                names: vec![MUSIC_ON_HOLD.to_owned()],
                looped: true,
            }
        } else {
            LegSource::Relay
        };
        self.outputs.push_back(Output::Media(MediaCommand::Source {
            session,
            leg: leg.other(),
            source,
        }));
        let interval = self.calls.get_mut(&id).and_then(|e| {
            if let Some(m) = e.media.as_mut() {
                m.held_by = holding.then_some(leg);
            }
            e.session_interval
        });
        // A re-INVITE refreshes the session (RFC 4028 s10).
        if let Some(interval) = interval {
            self.refresh_session(now, id, interval);
        }
        true
    }

    /// A mid-call request from a caller the switch answered and nobody else has yet (a
    /// queue caller): answered here. An offer gets our answer on the caller's leg; an
    /// offer-less re-INVITE gets our offer (its ACK answers it).
    pub(super) fn answer_in_dialog_here(
        &mut self,
        now: crate::util::time::Now,
        req: &Message,
        key: &crate::sip::transaction::TransactionKey,
        method: &crate::sip::Method,
        id: CallId,
        side: Side,
    ) {
        use crate::sip::Method;
        let leg = leg_of(side);
        let mut ok = Message::response_to(req, 200, "OK", None);
        let local = self.calls.get(&id).and_then(|e| match side {
            Side::Inbound => Some(e.inbound.peer),
            Side::Branch(b) => e.branches.get(b.0 as usize).map(|l| l.peer),
        });
        let local = local.map(|p| (p.local, p.proto, p));
        if matches!(method, Method::Invite | Method::Update) {
            if let Some((addr, proto, _)) = local {
                ok.push(HeaderName::Contact, super::b2bua::contact_for(addr, proto));
            }
            let sdp = if req.body.is_empty() {
                if *method == Method::Invite {
                    self.offer_on_leg(id, leg)
                } else {
                    None
                }
            } else {
                let Ok(offer) = Sdp::parse(&req.body) else {
                    let mut r = Message::response_to(req, 400, "Bad Request - Malformed SDP", None);
                    self.add_common(&mut r);
                    let _ = self.txns.send_response(now.mono, key, 400, r.encode());
                    return;
                };
                if let Some(m) = self.calls.get_mut(&id).and_then(|e| e.media.as_mut()) {
                    m.leg_mut(leg).their_offer = Some(offer);
                }
                self.answer_leg(id, leg)
            };
            if let Some(sdp) = sdp {
                set_sdp_body(&mut ok, &sdp);
            }
        }
        self.add_common(&mut ok);
        let bytes = ok.encode();
        let _ = self.txns.send_response(now.mono, key, 200, bytes.clone());
        if *method == Method::Invite {
            if let (Some((_, _, peer)), Ok(cseq)) = (local, req.cseq()) {
                self.track_reinvite_ok(now, id, side, cseq.seq, bytes, peer);
            }
        }
        let interval = self.calls.get(&id).and_then(|e| e.session_interval);
        if let (Some(interval), true) =
            (interval, matches!(method, Method::Invite | Method::Update))
        {
            self.refresh_session(now, id, interval);
        }
    }

    /// Closes an ended call's media (the media plane frees its ports); the call's report waits
    /// for the statistics for at most [`MEDIA_STATS_WAIT`].
    pub(super) fn close_media(&mut self, id: CallId) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(media) = entry.media.take() else {
            return;
        };
        entry.awaiting_media_stats = !self.final_hangup;
        if let (Some(now), false) = (self.last_now, self.final_hangup) {
            self.arm(
                now.mono + MEDIA_STATS_WAIT,
                id,
                super::b2bua::CallTimer::MediaStatsDeadline,
            );
        }
        self.outputs.push_back(Output::Media(MediaCommand::Close {
            session: media.session,
        }));
    }

    /// An event from the media plane.
    pub(super) fn on_media_event(&mut self, now: crate::util::time::Now, event: MediaEvent) {
        match event {
            MediaEvent::Timeout { session } if self.adhoc.third_session(session).is_some() => {
                if let Some(id) = self.adhoc.third_session(session) {
                    tracing::info!(call = id.0, "no RTP from the added party: hung up");
                    self.adhoc_third_media_timeout(now, id);
                }
            }
            MediaEvent::Opened {
                session, callee, ..
            } if self.adhoc.third_session(session).is_some() => {
                if let Some(id) = self.adhoc.third_session(session) {
                    self.adhoc_media_opened(now, id, callee);
                }
            }
            MediaEvent::OpenFailed { session } if self.adhoc.third_session(session).is_some() => {
                if let Some(id) = self.adhoc.third_session(session) {
                    self.adhoc_open_failed(now, id);
                }
            }
            MediaEvent::Closed { session, .. }
            | MediaEvent::Digit { session, .. }
            | MediaEvent::PlaybackDone { session, .. }
            | MediaEvent::Talking { session, .. }
                if self.adhoc.third_session(session).is_some() => {}
            MediaEvent::ConferenceRefused { session, leg, .. }
                if self.adhoc.third_session(session).is_some()
                    || self.adhoc_room_of(CallId(session.0)).is_some() =>
            {
                self.adhoc_refused(now, session, leg);
            }
            MediaEvent::Timeout { session } => {
                let id = CallId(session.0);
                // A call still ringing has no media to lose (a phone rings for minutes
                // without early media); the clock restarts when it is answered.
                if self.caller_answered(id) {
                    tracing::info!(call = id.0, "no RTP for the media timeout: hanging up");
                    self.hang_up_for_media(now, id, "media timeout");
                }
            }
            MediaEvent::Opened {
                session,
                caller,
                callee,
            } => self.media_opened(now, session, caller, callee),
            MediaEvent::OpenFailed { session } => {
                let id = CallId(session.0);
                tracing::warn!(call = id.0, "no media ports could be bound");
                self.refuse_opening(now, id, 503, "Service Unavailable - No Media Ports");
            }
            MediaEvent::Digit {
                session,
                leg,
                digit,
                source,
            } => {
                if leg == MediaLeg::Caller && self.is_conference_call(CallId(session.0)) {
                    // A conference caller's keys may be its PIN: never logged.
                    tracing::debug!(call = session.0, ?leg, ?source, "DTMF digit (not shown)");
                    self.conference_digit(now, CallId(session.0), digit);
                } else {
                    tracing::info!(call = session.0, ?leg, %digit, ?source, "DTMF digit");
                    self.adhoc_key(now, CallId(session.0), leg, digit.as_char());
                }
            }
            MediaEvent::Talking {
                session,
                leg: MediaLeg::Caller,
                talking,
            } => self.conference_talking(CallId(session.0), talking),
            MediaEvent::Talking { .. } | MediaEvent::ConferencePlaybackDone { .. } => {}
            MediaEvent::ConferenceRefused { session, .. } => {
                tracing::warn!(call = session.0, "the media plane refused a conference leg");
                self.conference_hang_up(now, CallId(session.0), "conference media refused");
            }
            MediaEvent::PlaybackDone { session, leg }
                if self.adhoc_playback_done(CallId(session.0), leg) => {}
            MediaEvent::PlaybackDone {
                session,
                leg: MediaLeg::Caller,
            } if self.is_conference_call(CallId(session.0)) => {
                self.conference_playback_done(now, CallId(session.0));
            }
            MediaEvent::PlaybackDone {
                session,
                leg: MediaLeg::Caller,
            } => self.queue_playback_done(now, CallId(session.0)),
            MediaEvent::PlaybackDone { .. } => {}
            MediaEvent::Closed {
                session,
                caller,
                callee,
            } => self.media_stats_arrived(CallId(session.0), Some((caller, callee))),
        }
    }

    /// An ended call's media statistics arrived (or their deadline passed: `None`):
    /// the call is reported now.
    pub(super) fn media_stats_arrived(
        &mut self,
        id: CallId,
        stats: Option<(
            crate::media::control::LegStats,
            crate::media::control::LegStats,
        )>,
    ) {
        let Some(entry) = self.calls.get_mut(&id) else {
            return;
        };
        if !entry.awaiting_media_stats {
            return;
        }
        entry.awaiting_media_stats = false;
        if stats.is_some() {
            entry.media_stats = stats;
        }
        self.finish(id);
    }
}
