//! Media direction attributes (RFC 8866 section 6.7) and RFC 3264 answer rules.

use std::fmt;

/// Which way media flows, from the point of view of whoever wrote the SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`, also the default when no direction attribute is present.
    #[default]
    SendRecv,
    /// `a=sendonly`: we send, we do not want to receive (the usual "hold").
    SendOnly,
    /// `a=recvonly`: we receive, we do not send.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// The direction with the given send and receive flags.
    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    /// True if the writer of the SDP sends media.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// True if the writer of the SDP wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The same flow seen from the other end: sendonly <-> recvonly.
    pub fn mirrored(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    /// What both allow: sends only if both send, receives only if both receive.
    pub fn intersect(self, other: Self) -> Self {
        Self::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The direction to put in an answer to `offer` when we (the answerer) would like `self`.
    ///
    /// RFC 3264 section 6.1: the answer mirrors the offer (sendonly -> recvonly, recvonly ->
    /// sendonly, inactive -> inactive, sendrecv -> sendrecv), narrowed by our own wish
    /// (`SendRecv.answer_to(x)` is the plain mirror; an answerer on hold passes `SendOnly`).
    pub fn answer_to(self, offer: Self) -> Self {
        offer.mirrored().intersect(self)
    }

    /// This direction without the receive flag (how an RFC 2543 `c=0.0.0.0` hold reads).
    pub fn without_receive(self) -> Self {
        Self::from_flags(self.sends(), false)
    }

    /// The attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute, case-insensitively; `None` for other attributes.
    pub fn from_attribute(name: &str) -> Option<Self> {
        [
            Self::SendRecv,
            Self::SendOnly,
            Self::RecvOnly,
            Self::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::*;
    use super::*;

    #[test]
    fn answer_mirrors_the_offer_rfc_3264_section_6_1() {
        assert_eq!(SendRecv.answer_to(SendRecv), SendRecv);
        assert_eq!(SendRecv.answer_to(SendOnly), RecvOnly);
        assert_eq!(SendRecv.answer_to(RecvOnly), SendOnly);
        assert_eq!(SendRecv.answer_to(Inactive), Inactive);
    }

    #[test]
    fn answerer_preference_narrows_the_mirror() {
        // The answerer is itself on hold: it only sends (music on hold).
        assert_eq!(SendOnly.answer_to(SendRecv), SendOnly);
        assert_eq!(SendOnly.answer_to(SendOnly), Inactive);
        assert_eq!(SendOnly.answer_to(RecvOnly), SendOnly);
        // The answerer only listens.
        assert_eq!(RecvOnly.answer_to(SendRecv), RecvOnly);
        assert_eq!(RecvOnly.answer_to(RecvOnly), Inactive);
        assert_eq!(Inactive.answer_to(SendRecv), Inactive);
    }

    #[test]
    fn flags_intersection_and_names() {
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
            assert_eq!(d.mirrored().mirrored(), d);
            assert_eq!(d.intersect(SendRecv), d);
            assert_eq!(d.intersect(Inactive), Inactive);
            assert_eq!(Direction::from_attribute(d.as_str()), Some(d));
        }
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        assert_eq!(SendRecv.without_receive(), SendOnly);
        assert_eq!(RecvOnly.without_receive(), Inactive);
        assert_eq!(Direction::from_attribute("SENDONLY"), Some(SendOnly));
        assert_eq!(Direction::from_attribute("ptime"), None);
        assert_eq!(Direction::default(), SendRecv);
    }
}
