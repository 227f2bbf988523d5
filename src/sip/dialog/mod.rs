//! SANS-IO SIP dialogs: RFC 3261 section 12.
//!
//! A [`Dialog`] holds the dialog state of 12.1 (id, CSeq numbers, local and remote URI,
//! remote target, route set, secure flag) and its [`DialogState`]
//! (early / confirmed / terminated). The state is only the state: there are no events in
//! it, and the dialog neither sends nor times anything. The caller extracts plain parts
//! from messages (this module does not depend on the codec) and asks:
//!
//! - [`Dialog::new_uac`] / [`Dialog::new_uas`]: build from the dialog-creating exchange
//!   (12.1.2 / 12.1.1), ordering the route set as each role requires;
//! - [`Dialog::next_local_cseq`] and [`Dialog::request_target`]: what an in-dialog request
//!   carries (12.2.1.1);
//! - [`Dialog::check_remote_cseq`]: whether a received request is in order (12.2.2);
//! - [`Dialog::target_refresh`], [`Dialog::confirm`], [`Dialog::confirm_uac`],
//!   [`Dialog::terminate`].
//!
//! [`DialogSet`] finds the dialog of a received request or response by [`DialogId`].
//! URIs, tags and Call-IDs are compared byte for byte, as RFC 3261 compares Call-IDs;
//! the caller passes tags exactly as received.

mod set;
mod uri;

pub use set::DialogSet;

use bytes::Bytes;

use crate::sip::Method;

/// The identity of a dialog (12): Call-ID, local tag and remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: Bytes,
    /// Our tag (From tag of requests we send, To tag of requests we receive).
    pub local_tag: Bytes,
    /// The peer's tag (empty for an RFC 2543 peer that sent no From tag).
    pub remote_tag: Bytes,
}

impl DialogId {
    /// Builds an id from its three parts.
    pub fn new(
        call_id: impl Into<Bytes>,
        local_tag: impl Into<Bytes>,
        remote_tag: impl Into<Bytes>,
    ) -> Self {
        Self {
            call_id: call_id.into(),
            local_tag: local_tag.into(),
            remote_tag: remote_tag.into(),
        }
    }

    /// The id a received request belongs to (12.2.2): local tag = its To tag,
    /// remote tag = its From tag.
    pub fn for_incoming_request(call_id: Bytes, from_tag: Bytes, to_tag: Bytes) -> Self {
        Self::new(call_id, to_tag, from_tag)
    }

    /// The id a received response belongs to (12.1.2): local tag = its From tag,
    /// remote tag = its To tag.
    pub fn for_incoming_response(call_id: Bytes, from_tag: Bytes, to_tag: Bytes) -> Self {
        Self::new(call_id, from_tag, to_tag)
    }
}

/// The state of a dialog (12: "early" and "confirmed", plus the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended (BYE, non-2xx final for an early dialog, timeout); kept until removed.
    Terminated,
}

/// Which side of the dialog-creating request we were on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogRole {
    /// We sent the request that created the dialog.
    Uac,
    /// We received it.
    Uas,
}

/// Errors from the dialog layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A request's CSeq is not above the remote sequence number (12.2.2): answer 500.
    #[error("CSeq {received} is out of order (remote sequence number is {current})")]
    CSeqOutOfOrder {
        /// The CSeq number of the received request.
        received: u32,
        /// The dialog's remote sequence number.
        current: u32,
    },
    /// An ACK or CANCEL whose CSeq names no request the peer sent in this dialog.
    #[error("ACK or CANCEL with CSeq {received} matches no request in the dialog")]
    UnmatchedCSeq {
        /// The CSeq number of the ACK or CANCEL.
        received: u32,
    },
    /// The local CSeq reached 2^32-1; no further request can be sent in this dialog.
    #[error("local CSeq space exhausted")]
    CSeqExhausted,
    /// The dialog is terminated.
    #[error("the dialog is terminated")]
    Terminated,
    /// The dialog-creating message gave no local tag.
    #[error("missing local tag")]
    MissingLocalTag,
    /// A UAC dialog needs the To tag of the response (12.1.2).
    #[error("missing remote tag")]
    MissingRemoteTag,
    /// No Contact URI to use as the remote target (12.1.1, 12.1.2).
    #[error("missing remote target (Contact)")]
    MissingRemoteTarget,
    /// The operation only applies to the other role (e.g. `confirm_uac` on a UAS dialog).
    #[error("operation does not apply to this dialog role")]
    WrongRole,
    /// A dialog with this id is already in the set.
    #[error("a dialog with this id already exists")]
    DuplicateDialog,
}

impl DialogError {
    /// The status code to answer the offending request with, if a response applies.
    pub fn sip_status(&self) -> Option<u16> {
        match self {
            // 12.2.2: "the request is out of order and MUST be rejected with a 500".
            DialogError::CSeqOutOfOrder { .. } => Some(500),
            // 12.2.2: no dialog for the request: 481 (Call/Transaction Does Not Exist).
            DialogError::Terminated => Some(481),
            DialogError::MissingRemoteTarget => Some(400),
            // ACK gets no response; a CANCEL is matched by the transaction layer.
            DialogError::UnmatchedCSeq { .. }
            | DialogError::CSeqExhausted
            | DialogError::MissingLocalTag
            | DialogError::MissingRemoteTag
            | DialogError::WrongRole
            | DialogError::DuplicateDialog => None,
        }
    }
}

/// What the caller extracted from the dialog-creating request and response.
#[derive(Debug, Clone)]
pub struct DialogParts {
    /// The Call-ID.
    pub call_id: Bytes,
    /// Our tag (UAC: From tag of the request; UAS: the To tag we put in the response).
    pub local_tag: Bytes,
    /// The peer's tag (UAC: To tag of the response; UAS: From tag of the request).
    pub remote_tag: Bytes,
    /// Our URI (UAC: From URI; UAS: To URI).
    pub local_uri: Bytes,
    /// The peer's URI (UAC: To URI; UAS: From URI).
    pub remote_uri: Bytes,
    /// The Contact URI of the peer (UAC: of the response; UAS: of the request), bare.
    pub remote_target: Bytes,
    /// The Record-Route entry values as they appear in the message, top first, each a
    /// full name-addr with its parameters (UAC: the response's; UAS: the request's).
    pub record_route: Vec<Bytes>,
    /// The CSeq number of the dialog-creating request.
    pub cseq: u32,
    /// 12.1.1 / 12.1.2: the request was sent over TLS with a SIPS Request-URI.
    pub secure: bool,
}

/// Where an in-dialog request goes (12.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    /// The Request-URI.
    pub request_uri: Bytes,
    /// The Route header field values, in order (empty: no Route header).
    pub route: Vec<Bytes>,
}

/// A SIP dialog (sans-IO state).
#[derive(Debug, Clone)]
pub struct Dialog {
    id: DialogId,
    role: DialogRole,
    state: DialogState,
    local_cseq: Option<u32>,
    remote_cseq: Option<u32>,
    local_uri: Bytes,
    remote_uri: Bytes,
    remote_target: Bytes,
    route_set: Vec<Bytes>,
    secure: bool,
}

impl Dialog {
    /// The dialog of a UAC, from the request it sent and the 1xx (with To tag) or 2xx
    /// response that created the dialog (12.1.2). `early` is true for a 1xx.
    pub fn new_uac(parts: DialogParts, early: bool) -> Result<Self, DialogError> {
        if parts.remote_tag.is_empty() {
            return Err(DialogError::MissingRemoteTag);
        }
        Self::build(parts, DialogRole::Uac, early)
    }

    /// The dialog of a UAS, from the request it received and the response it sends with
    /// its To tag (12.1.1). `early` is true when that response is a 1xx. The remote tag
    /// may be empty for an RFC 2543 peer.
    pub fn new_uas(parts: DialogParts, early: bool) -> Result<Self, DialogError> {
        Self::build(parts, DialogRole::Uas, early)
    }

    fn build(parts: DialogParts, role: DialogRole, early: bool) -> Result<Self, DialogError> {
        if parts.local_tag.is_empty() {
            return Err(DialogError::MissingLocalTag);
        }
        if parts.remote_target.is_empty() {
            return Err(DialogError::MissingRemoteTarget);
        }
        let mut route_set = parts.record_route;
        if role == DialogRole::Uac {
            // 12.1.2: "The route set MUST be set to the list of URIs in the Record-Route
            // header field from the response, taken in reverse order and preserving all
            // URI parameters."
            route_set.reverse();
        }
        // 12.1.1 (UAS): "The route set MUST be set to the list of URIs in the Record-Route
        // header field from the request, taken in order and preserving all URI
        // parameters."
        let (local_cseq, remote_cseq) = match role {
            // 12.1.2: "The local sequence number MUST be set to the value of the sequence
            // number in the CSeq header field of the request. The remote sequence number
            // MUST be empty".
            DialogRole::Uac => (Some(parts.cseq), None),
            // 12.1.1: "The remote sequence number MUST be set to the value of the sequence
            // number in the CSeq header field of the request. The local sequence number
            // MUST be empty."
            DialogRole::Uas => (None, Some(parts.cseq)),
        };
        Ok(Self {
            id: DialogId::new(parts.call_id, parts.local_tag, parts.remote_tag),
            role,
            state: if early {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            local_cseq,
            remote_cseq,
            local_uri: parts.local_uri,
            remote_uri: parts.remote_uri,
            remote_target: parts.remote_target,
            route_set,
            secure: parts.secure,
        })
    }

    /// The dialog id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Whether we were UAC or UAS of the dialog-creating request.
    pub fn role(&self) -> DialogRole {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// The local sequence number (`None` until a UAS sends its first request).
    pub fn local_cseq(&self) -> Option<u32> {
        self.local_cseq
    }

    /// The remote sequence number (`None` until a UAC receives the peer's first request).
    pub fn remote_cseq(&self) -> Option<u32> {
        self.remote_cseq
    }

    /// Our URI (From of our requests).
    pub fn local_uri(&self) -> &Bytes {
        &self.local_uri
    }

    /// The peer's URI (To of our requests).
    pub fn remote_uri(&self) -> &Bytes {
        &self.remote_uri
    }

    /// The peer's Contact URI.
    pub fn remote_target(&self) -> &Bytes {
        &self.remote_target
    }

    /// The route set, in the order our requests must visit it.
    pub fn route_set(&self) -> &[Bytes] {
        &self.route_set
    }

    /// Whether the dialog is secure (SIPS over TLS, 12.1).
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The CSeq number for our next in-dialog request (12.2.1.1): one above the last.
    ///
    /// "If the local sequence number is empty, an initial value MUST be chosen using the
    /// guidelines of Section 8.1.1.5" (any value below 2^31): a UAS starts at 1.
    /// ACK and CANCEL reuse the CSeq of the request they refer to and must not call this.
    pub fn next_local_cseq(&mut self) -> Result<u32, DialogError> {
        let next = match self.local_cseq {
            None => 1,
            Some(n) => n.checked_add(1).ok_or(DialogError::CSeqExhausted)?,
        };
        self.local_cseq = Some(next);
        Ok(next)
    }

    /// Checks a received in-dialog request's CSeq and records it (12.2.2).
    ///
    /// A request whose number is not above the remote sequence number is out of order:
    /// 12.2.2 requires 500 for a lower number, and an equal number on a new transaction
    /// is treated the same way because every new request "MUST" increment it
    /// (12.2.1.1); retransmissions never get here, the transaction layer absorbs them.
    /// ACK and CANCEL carry the CSeq of the request they refer to: they are accepted when
    /// that number is not above the remote sequence number, and never change it.
    pub fn check_remote_cseq(&mut self, cseq: u32, method: &Method) -> Result<(), DialogError> {
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        if matches!(method, Method::Ack | Method::Cancel) {
            return match self.remote_cseq {
                Some(current) if cseq <= current => Ok(()),
                _ => Err(DialogError::UnmatchedCSeq { received: cseq }),
            };
        }
        match self.remote_cseq {
            // "If the remote sequence number is empty, it MUST be set to the value of the
            // sequence number in the CSeq header field value in the request."
            None => {}
            // "If the remote sequence number was not empty, but the sequence number of the
            // request is lower than the remote sequence number, the request is out of
            // order and MUST be rejected with a 500 (Server Internal Error) response."
            Some(current) if cseq <= current => {
                return Err(DialogError::CSeqOutOfOrder {
                    received: cseq,
                    current,
                })
            }
            Some(_) => {}
        }
        self.remote_cseq = Some(cseq);
        Ok(())
    }

    /// Replaces the remote target after a target refresh (12.2: re-INVITE or UPDATE and
    /// their 2xx). 12.2.1.2 / 12.2.2: only the remote target changes, never the route set.
    pub fn target_refresh(&mut self, new_remote_target: Bytes) -> Result<(), DialogError> {
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        if new_remote_target.is_empty() {
            return Err(DialogError::MissingRemoteTarget);
        }
        self.remote_target = new_remote_target;
        Ok(())
    }

    /// Moves an early dialog to "confirmed" (a 2xx was sent or received). Idempotent.
    pub fn confirm(&mut self) -> Result<(), DialogError> {
        match self.state {
            DialogState::Terminated => Err(DialogError::Terminated),
            DialogState::Early | DialogState::Confirmed => {
                self.state = DialogState::Confirmed;
                Ok(())
            }
        }
    }

    /// UAC: the 2xx for an early dialog arrived. 13.2.2.4: "the dialog MUST be
    /// transitioned to the "confirmed" state, and the route set for the dialog MUST be
    /// recomputed based on the 2xx response"; its Contact replaces the remote target.
    /// On an already confirmed dialog (a 2xx retransmission) nothing changes.
    pub fn confirm_uac(
        &mut self,
        record_route: Vec<Bytes>,
        remote_target: Option<Bytes>,
    ) -> Result<(), DialogError> {
        if self.role != DialogRole::Uac {
            return Err(DialogError::WrongRole);
        }
        match self.state {
            DialogState::Terminated => Err(DialogError::Terminated),
            DialogState::Confirmed => Ok(()),
            DialogState::Early => {
                let mut route_set = record_route;
                route_set.reverse();
                self.route_set = route_set;
                if let Some(target) = remote_target.filter(|t| !t.is_empty()) {
                    self.remote_target = target;
                }
                self.state = DialogState::Confirmed;
                Ok(())
            }
        }
    }

    /// Ends the dialog.
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// The Request-URI and Route values of our next in-dialog request (12.2.1.1).
    pub fn request_target(&self) -> RequestTarget {
        let Some(first) = self.route_set.first() else {
            // "If the route set is empty, the UAC MUST place the remote target URI into
            // the Request-URI. The UAC MUST NOT add a Route header field to the request."
            return RequestTarget {
                request_uri: self.remote_target.clone(),
                route: Vec::new(),
            };
        };
        let first_uri = first.slice(uri::name_addr_uri(first));
        if uri::has_lr_param(&first_uri) {
            // "If the route set is not empty, and the first URI in the route set contains
            // the lr parameter, the UAC MUST place the remote target URI into the
            // Request-URI and MUST include a Route header field containing the route set
            // values in order, including all parameters."
            return RequestTarget {
                request_uri: self.remote_target.clone(),
                route: self.route_set.clone(),
            };
        }
        // "If the route set is not empty, and its first URI does not contain the lr
        // parameter, the UAC MUST place the first URI from the route set into the
        // Request-URI, stripping any parameters that are not allowed in a Request-URI.
        // The UAC MUST add a Route header field containing the remainder of the route set
        // values in order, including all parameters. The UAC MUST then place the remote
        // target URI into the Route header field as the last value."
        let mut route: Vec<Bytes> = self.route_set[1..].to_vec();
        let mut last = Vec::with_capacity(self.remote_target.len() + 2);
        last.push(b'<');
        last.extend_from_slice(&self.remote_target);
        last.push(b'>');
        route.push(Bytes::from(last));
        RequestTarget {
            request_uri: uri::request_uri_form(&first_uri),
            route,
        }
    }
}

#[cfg(test)]
mod tests;
