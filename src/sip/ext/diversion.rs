//! Call forwarding history: History-Info (RFC 7044) and Diversion (RFC 5806).
//!
//! A forwarding hop is recorded the way 3GPP TS 24.604 (CDIV) and RFC 7044 s10 do it:
//! the entry of the target that was forwarded *from* gets a Reason header in its URI
//! (`<sip:bob@x?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%20Here%22>;index=1`), and the
//! new entry carries the RFC 4458 `cause` URI parameter and `mp` pointing at its parent
//! (`<sip:+4799999999@carrier;cause=486>;index=1.1;mp=1`). Diversion entries are
//! prepended, most recent first (RFC 5806 s4).
//!
//! [`forwarding_hops`] counts the hops a request already went through, for the limit on
//! forwarding chains.

use super::{headers, values, ExtName};
use crate::sip::message::header::{find_param, split_commas};
use crate::sip::message::name_addr::NameAddrError;
use crate::sip::message::uri::{unescape, UriError};
use crate::sip::message::{Header, Message, NameAddr, Scheme, Uri};
use bytes::Bytes;
use std::fmt;

/// The History-Info header (RFC 7044 s4.1).
pub const HISTORY_INFO: ExtName = ExtName::long("History-Info");
/// The Diversion header (RFC 5806 s4).
pub const DIVERSION: ExtName = ExtName::long("Diversion");

/// Deepest History-Info index accepted (`1.1.1...`): real chains are a few levels, and a
/// bound keeps a hostile header from costing more than its bytes.
pub const MAX_INDEX_DEPTH: usize = 32;

/// Why a History-Info or Diversion header is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiversionError {
    /// A quote or `<` left open.
    #[error("unbalanced quotes or angle brackets")]
    Unbalanced,
    /// A value did not parse as a name-addr.
    #[error("malformed entry: {0}")]
    NameAddr(#[from] NameAddrError),
    /// A URI given to a builder did not parse.
    #[error("malformed URI: {0}")]
    Uri(#[from] UriError),
    /// A History-Info entry without `index` (RFC 7044 s4.1 makes it mandatory).
    #[error("History-Info entry without index")]
    MissingIndex,
    /// An index that is not `digits *("." digits)`, or deeper than [`MAX_INDEX_DEPTH`].
    #[error("malformed History-Info index")]
    BadIndex,
    /// An `rc`/`mp`/`np` tag whose value is not an index.
    #[error("malformed History-Info rc/mp/np tag")]
    BadTag,
    /// A Diversion counter that is not 1-2 digits (RFC 5806 s4).
    #[error("malformed Diversion counter")]
    BadCounter,
    /// The parent index has no room for another child.
    #[error("History-Info index space exhausted")]
    IndexOverflow,
}

/// Why a call was forwarded; shared by History-Info causes and Diversion reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardReason {
    /// Always forwarded (call forwarding unconditional).
    Unconditional,
    /// Every terminal was busy.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// No terminal reachable (none registered, mobile not reachable).
    Unavailable,
    /// The user sent a ringing call elsewhere.
    Deflection,
}

impl ForwardReason {
    /// The RFC 4458 s3 cause code: 302 unconditional, 486 busy, 408 no reply, 503 not
    /// reachable, 487 deflection during alerting.
    pub fn cause(self) -> u16 {
        match self {
            ForwardReason::Unconditional => 302,
            ForwardReason::Busy => 486,
            ForwardReason::NoAnswer => 408,
            ForwardReason::Unavailable => 503,
            ForwardReason::Deflection => 487,
        }
    }

    /// Reads an RFC 4458 cause code (404 and 503 both mean the user was not reachable;
    /// 480, deflection on immediate response, and 487 both are deflections).
    pub fn from_cause(code: u16) -> Option<ForwardReason> {
        match code {
            302 => Some(ForwardReason::Unconditional),
            486 => Some(ForwardReason::Busy),
            408 => Some(ForwardReason::NoAnswer),
            404 | 503 => Some(ForwardReason::Unavailable),
            480 | 487 => Some(ForwardReason::Deflection),
            _ => None,
        }
    }

    /// The RFC 5806 `reason` token.
    pub fn diversion_reason(self) -> &'static str {
        match self {
            ForwardReason::Unconditional => "unconditional",
            ForwardReason::Busy => "user-busy",
            ForwardReason::NoAnswer => "no-answer",
            ForwardReason::Unavailable => "unavailable",
            ForwardReason::Deflection => "deflection",
        }
    }

    /// Reads an RFC 5806 `reason` token (case-insensitive); `out-of-service` counts as
    /// unavailable, other reasons (`time-of-day`, `follow-me`...) are not mapped.
    pub fn from_diversion_reason(t: &[u8]) -> Option<ForwardReason> {
        const TABLE: [(&[u8], ForwardReason); 6] = [
            (b"unconditional", ForwardReason::Unconditional),
            (b"user-busy", ForwardReason::Busy),
            (b"no-answer", ForwardReason::NoAnswer),
            (b"unavailable", ForwardReason::Unavailable),
            (b"out-of-service", ForwardReason::Unavailable),
            (b"deflection", ForwardReason::Deflection),
        ];
        TABLE
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(t))
            .map(|(_, r)| *r)
    }

    /// The reason phrase that goes with [`ForwardReason::cause`] in a Reason header.
    fn text(self) -> &'static str {
        match self {
            ForwardReason::Unconditional => "Moved Temporarily",
            ForwardReason::Busy => "Busy Here",
            ForwardReason::NoAnswer => "Request Timeout",
            ForwardReason::Unavailable => "Service Unavailable",
            ForwardReason::Deflection => "Request Terminated",
        }
    }
}

/// A History-Info index (`1.1.2`): the position of an entry in the retargeting tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryIndex(Vec<u16>);

impl HistoryIndex {
    /// The first entry, `1`.
    pub fn root() -> HistoryIndex {
        HistoryIndex(vec![1])
    }

    /// Parses `digits *("." digits)` (RFC 7044 s4.1).
    pub fn parse(v: &[u8]) -> Option<HistoryIndex> {
        let mut out = Vec::new();
        for part in v.split(|&b| b == b'.') {
            if part.is_empty() || part.len() > 5 || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n: u32 = part.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0'));
            out.push(u16::try_from(n).ok()?);
            if out.len() > MAX_INDEX_DEPTH {
                return None;
            }
        }
        Some(HistoryIndex(out))
    }

    /// The `n`th child (`1.2` for n = 2 under `1`); `None` beyond [`MAX_INDEX_DEPTH`].
    pub fn child(&self, n: u16) -> Option<HistoryIndex> {
        if self.0.len() >= MAX_INDEX_DEPTH {
            return None;
        }
        let mut v = self.0.clone();
        v.push(n);
        Some(HistoryIndex(v))
    }

    /// The parent index; `None` for a top-level entry.
    pub fn parent(&self) -> Option<HistoryIndex> {
        (self.0.len() > 1).then(|| HistoryIndex(self.0[..self.0.len() - 1].to_vec()))
    }

    /// The last component (its number among its siblings).
    pub fn last(&self) -> u16 {
        self.0.last().copied().unwrap_or(0)
    }

    /// The components.
    pub fn parts(&self) -> &[u16] {
        &self.0
    }
}

impl fmt::Display for HistoryIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// How an entry's target was reached (RFC 7044 s4.1 tags), with the parent's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryTag {
    /// `rc`: a contact of the same user (a registered device).
    Rc(HistoryIndex),
    /// `mp`: the target changed to another user (forwarding).
    Mp(HistoryIndex),
    /// `np`: the target did not change.
    Np(HistoryIndex),
}

/// One History-Info entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The `hi-targeted-to-uri` and its header parameters.
    pub target: NameAddr,
    /// The `index` parameter.
    pub index: HistoryIndex,
    /// The `rc`/`mp`/`np` tag, if any.
    pub tag: Option<HistoryTag>,
    /// The cause of an escaped `Reason: SIP;cause=N` in the URI's headers.
    pub reason_cause: Option<u16>,
    /// The RFC 4458 `cause` URI parameter.
    pub cause_param: Option<u16>,
}

impl HistoryEntry {
    /// Parses one History-Info value.
    pub fn parse(value: Bytes) -> Result<HistoryEntry, DiversionError> {
        let target = NameAddr::parse(value)?;
        let index = match target.param("index") {
            Some(Some(v)) => HistoryIndex::parse(v).ok_or(DiversionError::BadIndex)?,
            _ => return Err(DiversionError::MissingIndex),
        };
        let tag_of = |name: &str| -> Result<Option<HistoryIndex>, DiversionError> {
            match target.param(name) {
                None => Ok(None),
                Some(v) => v
                    .and_then(HistoryIndex::parse)
                    .map(Some)
                    .ok_or(DiversionError::BadTag),
            }
        };
        let tag = if let Some(i) = tag_of("rc")? {
            Some(HistoryTag::Rc(i))
        } else if let Some(i) = tag_of("mp")? {
            Some(HistoryTag::Mp(i))
        } else {
            tag_of("np")?.map(HistoryTag::Np)
        };
        let reason_cause = reason_cause(&target.uri);
        let cause_param = target.uri.param("cause").flatten().and_then(parse_code);
        Ok(HistoryEntry {
            target,
            index,
            tag,
            reason_cause,
            cause_param,
        })
    }

    /// Why this entry's target was reached or left: the `cause` URI parameter, else the
    /// escaped Reason.
    pub fn forward_reason(&self) -> Option<ForwardReason> {
        self.cause_param
            .or(self.reason_cause)
            .and_then(ForwardReason::from_cause)
    }

    /// Whether this entry records a forwarding hop (an `mp` tag or an RFC 4458 cause).
    pub fn is_forwarding_hop(&self) -> bool {
        matches!(self.tag, Some(HistoryTag::Mp(_))) || self.cause_param.is_some()
    }
}

fn parse_code(v: &[u8]) -> Option<u16> {
    if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0')))
}

/// The cause of an escaped `Reason=SIP;cause=N` among a URI's `?headers`.
fn reason_cause(uri: &Uri) -> Option<u16> {
    let hdrs = uri.headers.as_deref()?;
    hdrs.split(|&b| b == b'&').find_map(|h| {
        let (name, value) = split_once(h, b'=')?;
        if !name.eq_ignore_ascii_case(b"reason") {
            return None;
        }
        let value = unescape(value);
        let (proto, params) = split_once(&value, b';')?;
        if !proto.eq_ignore_ascii_case(b"SIP") {
            return None;
        }
        find_param(params, "cause").flatten().and_then(parse_code)
    })
}

fn split_once(v: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = v.iter().position(|&b| b == sep)?;
    Some((&v[..i], &v[i + 1..]))
}

/// Every History-Info entry, in order, or why one is malformed.
pub fn history_info(msg: &Message) -> Result<Vec<HistoryEntry>, DiversionError> {
    values(msg, HISTORY_INFO)
        .ok_or(DiversionError::Unbalanced)?
        .into_iter()
        .map(HistoryEntry::parse)
        .collect()
}

/// `uri` with the RFC 4458 `cause` parameter for `reason` (kept if one is there already);
/// use it as the forwarded leg's Request-URI too.
pub fn uri_with_cause(uri: &Uri, reason: ForwardReason) -> Bytes {
    if uri.param("cause").is_some() {
        return uri.raw.clone();
    }
    let raw = &uri.raw[..];
    let split = match uri.scheme {
        Scheme::Sip | Scheme::Sips => raw.iter().position(|&b| b == b'?').unwrap_or(raw.len()),
        _ => raw.len(),
    };
    let mut out = Vec::with_capacity(raw.len() + 10);
    out.extend_from_slice(&raw[..split]);
    out.extend_from_slice(format!(";cause={}", reason.cause()).as_bytes());
    out.extend_from_slice(&raw[split..]);
    Bytes::from(out)
}

/// `uri` with an escaped `Reason: SIP;cause=N;text="..."` header (RFC 7044 s4.1), unless
/// it has one or is not a SIP URI (only SIP URIs carry headers).
fn uri_with_reason(uri: &Uri, reason: ForwardReason) -> Bytes {
    if !uri.is_sip() || reason_cause(uri).is_some() {
        return uri.raw.clone();
    }
    let sep = if uri.headers.is_some() { '&' } else { '?' };
    let text = reason.text().replace(' ', "%20");
    let mut out = uri.raw.to_vec();
    out.extend_from_slice(
        format!(
            "{sep}Reason=SIP%3Bcause%3D{}%3Btext%3D%22{text}%22",
            reason.cause()
        )
        .as_bytes(),
    );
    Bytes::from(out)
}

/// Writes a name-addr value with a replaced URI, keeping its display name and params.
fn rewrite_entry(target: &NameAddr, uri: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(uri.len() + target.params.len() + 24);
    // Quoted display names keep their escapes and token ones have no '"' or '\',
    // so quoting either is safe.
    if let Some(d) = &target.display {
        out.push(b'"');
        out.extend_from_slice(d);
        out.extend_from_slice(b"\" ");
    }
    out.push(b'<');
    out.extend_from_slice(uri);
    out.push(b'>');
    if !target.params.is_empty() {
        out.push(b';');
        out.extend_from_slice(&target.params);
    }
    out
}

/// `<uri>params`, byte-exact (a URI may hold bytes that are not UTF-8).
fn angle_value(uri: &[u8], params: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(uri.len() + params.len() + 2);
    out.push(b'<');
    out.extend_from_slice(uri);
    out.push(b'>');
    out.extend_from_slice(params.as_bytes());
    out
}

/// The URI of `uri` without its `?headers`, for comparing targets.
fn without_headers(uri: &[u8]) -> &[u8] {
    match uri.iter().position(|&b| b == b'?') {
        Some(q) => &uri[..q],
        None => uri,
    }
}

/// Records a forwarding hop from `from_target` to `to_target` in History-Info.
///
/// The parent is the last entry for `from_target` (one is created when missing: `1` in an
/// empty header, else a child of the last entry). Its URI gains the escaped Reason; the
/// new entry is the parent's next child, with `mp` and the RFC 4458 cause. Returns the
/// new entry's index. Other entries are kept byte-exact.
pub fn append_history_hop(
    msg: &mut Message,
    from_target: &Uri,
    to_target: &Uri,
    reason: ForwardReason,
) -> Result<HistoryIndex, DiversionError> {
    let raw_values = values(msg, HISTORY_INFO).ok_or(DiversionError::Unbalanced)?;
    let mut entries: Vec<(HistoryEntry, Vec<u8>)> = Vec::with_capacity(raw_values.len() + 2);
    for v in raw_values {
        let e = HistoryEntry::parse(v.clone())?;
        entries.push((e, v.to_vec()));
    }
    let key = without_headers(&from_target.raw);
    let parent_pos = match entries
        .iter()
        .rposition(|(e, _)| without_headers(&e.target.uri.raw) == key)
    {
        Some(p) => p,
        None => {
            let index = match entries.last() {
                None => HistoryIndex::root(),
                Some((last, _)) => next_child(&entries, &last.index)?,
            };
            let value = angle_value(&from_target.raw, &format!(";index={index}"));
            let e = HistoryEntry::parse(Bytes::from(value.clone()))?;
            entries.push((e, value));
            entries.len() - 1
        }
    };
    let parent = entries[parent_pos].0.clone();
    let reasoned = uri_with_reason(&parent.target.uri, reason);
    entries[parent_pos].1 = rewrite_entry(&parent.target, &reasoned);

    let index = next_child(&entries, &parent.index)?;
    let uri = uri_with_cause(to_target, reason);
    let value = angle_value(&uri, &format!(";index={index};mp={}", parent.index));
    let e = HistoryEntry::parse(Bytes::from(value.clone()))?;
    entries.push((e, value));

    let joined = entries
        .iter()
        .map(|(_, v)| v.as_slice())
        .collect::<Vec<_>>()
        .join(&b", "[..]);
    let header = Header::other(HISTORY_INFO.long, joined);
    // One header line at the place of the first old one, so the rest keeps its order.
    match msg
        .headers
        .iter()
        .position(|h| HISTORY_INFO.matches(&h.raw_name))
    {
        Some(first) => {
            msg.headers[first] = header;
            let mut i = first + 1;
            while i < msg.headers.len() {
                if HISTORY_INFO.matches(&msg.headers[i].raw_name) {
                    msg.headers.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        None => msg.headers.push(header),
    }
    Ok(index)
}

/// The next free child index under `parent`.
fn next_child(
    entries: &[(HistoryEntry, Vec<u8>)],
    parent: &HistoryIndex,
) -> Result<HistoryIndex, DiversionError> {
    let max = entries
        .iter()
        .filter(|(e, _)| e.index.parent().as_ref() == Some(parent))
        .map(|(e, _)| e.index.last())
        .max()
        .unwrap_or(0);
    let n = max.checked_add(1).ok_or(DiversionError::IndexOverflow)?;
    parent.child(n).ok_or(DiversionError::IndexOverflow)
}

/// One Diversion entry (RFC 5806 s4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiversionEntry {
    /// The address the call was diverted from, with its parameters.
    pub addr: NameAddr,
    /// The `reason` parameter, when it is one we map.
    pub reason: Option<ForwardReason>,
    /// The `counter` parameter (hops this entry stands for; 1 when absent).
    pub counter: u8,
}

impl DiversionEntry {
    /// Parses one Diversion value.
    pub fn parse(value: Bytes) -> Result<DiversionEntry, DiversionError> {
        let addr = NameAddr::parse(value)?;
        let reason = addr
            .param("reason")
            .flatten()
            .and_then(ForwardReason::from_diversion_reason);
        let counter = match addr.param("counter") {
            None => 1,
            Some(Some(v)) if (1..=2).contains(&v.len()) && v.iter().all(u8::is_ascii_digit) => {
                v.iter().fold(0u8, |a, d| a * 10 + (d - b'0'))
            }
            Some(_) => return Err(DiversionError::BadCounter),
        };
        Ok(DiversionEntry {
            addr,
            reason,
            counter,
        })
    }
}

/// Every Diversion entry, most recent first, or why one is malformed.
pub fn diversions(msg: &Message) -> Result<Vec<DiversionEntry>, DiversionError> {
    values(msg, DIVERSION)
        .ok_or(DiversionError::Unbalanced)?
        .into_iter()
        .map(DiversionEntry::parse)
        .collect()
}

/// Formats a Diversion value: `<uri>;reason=user-busy;counter=1`.
pub fn format_diversion(
    diverted_from: &str,
    reason: ForwardReason,
) -> Result<String, DiversionError> {
    Uri::parse(Bytes::copy_from_slice(diverted_from.as_bytes()))?;
    Ok(format!(
        "<{diverted_from}>;reason={};counter=1",
        reason.diversion_reason()
    ))
}

/// Adds a Diversion entry above the existing ones (RFC 5806: most recent first).
pub fn prepend_diversion(
    msg: &mut Message,
    diverted_from: &str,
    reason: ForwardReason,
) -> Result<(), DiversionError> {
    let header = Header::other(DIVERSION.long, format_diversion(diverted_from, reason)?);
    match msg
        .headers
        .iter()
        .position(|h| DIVERSION.matches(&h.raw_name))
    {
        Some(first) => msg.headers.insert(first, header),
        None => msg.headers.push(header),
    }
    Ok(())
}

/// How many forwarding hops a request already went through, for the hop limit.
///
/// History-Info and Diversion may both describe the same hops, so the larger count wins:
/// History-Info entries with `mp` or a `cause`, and the sum of Diversion counters. An
/// unreadable Diversion value still counts as one hop, so garbage cannot reset the limit.
pub fn forwarding_hops(msg: &Message) -> usize {
    let history = headers(msg, HISTORY_INFO)
        .flat_map(raw_parts)
        .filter(|v| HistoryEntry::parse(v.clone()).is_ok_and(|e| e.is_forwarding_hop()))
        .count();
    let diversion = headers(msg, DIVERSION)
        .flat_map(raw_parts)
        .map(|v| DiversionEntry::parse(v).map_or(1, |d| usize::from(d.counter.max(1))))
        .fold(0usize, usize::saturating_add);
    history.max(diversion)
}

/// The comma-separated parts of one header; a header that does not split is one part.
fn raw_parts(h: &Header) -> Vec<Bytes> {
    let un = h.unfolded();
    match split_commas(&un) {
        Some(parts) => parts
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(Bytes::copy_from_slice)
            .collect(),
        None => vec![Bytes::copy_from_slice(&un)],
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::invite_with;
    use super::*;

    fn uri(s: &'static str) -> Uri {
        Uri::parse(Bytes::from_static(s.as_bytes())).expect("valid URI in test")
    }

    fn idx(s: &str) -> HistoryIndex {
        HistoryIndex::parse(s.as_bytes()).expect("valid index in test")
    }

    #[test]
    fn reasons_and_causes() {
        for r in [
            ForwardReason::Unconditional,
            ForwardReason::Busy,
            ForwardReason::NoAnswer,
            ForwardReason::Unavailable,
            ForwardReason::Deflection,
        ] {
            assert_eq!(ForwardReason::from_cause(r.cause()), Some(r));
            assert_eq!(
                ForwardReason::from_diversion_reason(r.diversion_reason().as_bytes()),
                Some(r)
            );
        }
        assert_eq!(ForwardReason::Busy.cause(), 486);
        assert_eq!(ForwardReason::NoAnswer.cause(), 408);
        assert_eq!(ForwardReason::Unconditional.cause(), 302);
        assert_eq!(
            ForwardReason::from_cause(404),
            Some(ForwardReason::Unavailable)
        );
        assert_eq!(
            ForwardReason::from_cause(480),
            Some(ForwardReason::Deflection)
        );
        assert_eq!(ForwardReason::from_cause(200), None);
        assert_eq!(
            ForwardReason::from_diversion_reason(b"USER-BUSY"),
            Some(ForwardReason::Busy)
        );
        assert_eq!(ForwardReason::from_diversion_reason(b"time-of-day"), None);
    }

    #[test]
    fn index_parse_and_format() {
        assert_eq!(idx("1.1.2").to_string(), "1.1.2");
        assert_eq!(idx("1.1.2").parent(), Some(idx("1.1")));
        assert_eq!(idx("1").parent(), None);
        assert_eq!(idx("1").child(3), Some(idx("1.3")));
        for bad in ["", "1.", ".1", "1..1", "1.a", "70000", "1,1"] {
            assert_eq!(HistoryIndex::parse(bad.as_bytes()), None, "{bad}");
        }
        let deep = vec!["1"; MAX_INDEX_DEPTH + 1].join(".");
        assert_eq!(HistoryIndex::parse(deep.as_bytes()), None);
        let max = vec!["1"; MAX_INDEX_DEPTH].join(".");
        assert_eq!(
            HistoryIndex::parse(max.as_bytes()).and_then(|i| i.child(1)),
            None
        );
    }

    #[test]
    fn parse_rfc7044_style_entries() {
        let m = invite_with(
            "History-Info: <sip:bob@example.com>;index=1,\r\n \
             <sip:bob@192.0.2.5?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%20Here%22>;index=1.1;rc=1\r\n\
             History-Info: \"Voicemail\" <sip:vm@example.com;cause=486>;index=1.2;mp=1\r\n",
        );
        let e = history_info(&m).expect("valid");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].index, idx("1"));
        assert_eq!(e[0].tag, None);
        assert_eq!(e[1].tag, Some(HistoryTag::Rc(idx("1"))));
        assert_eq!(e[1].reason_cause, Some(486));
        assert_eq!(e[1].forward_reason(), Some(ForwardReason::Busy));
        assert!(!e[1].is_forwarding_hop());
        assert_eq!(e[2].tag, Some(HistoryTag::Mp(idx("1"))));
        assert_eq!(e[2].cause_param, Some(486));
        assert!(e[2].is_forwarding_hop());
        assert_eq!(forwarding_hops(&m), 1);
    }

    #[test]
    fn malformed_history_is_a_typed_error() {
        let cases = [
            ("<sip:a@x>", DiversionError::MissingIndex),
            ("<sip:a@x>;index", DiversionError::MissingIndex),
            ("<sip:a@x>;index=1.x", DiversionError::BadIndex),
            ("<sip:a@x>;index=1.1;mp", DiversionError::BadTag),
            ("<sip:a@x>;index=1.1;rc=z", DiversionError::BadTag),
            ("<sip:a@x;index=1", DiversionError::Unbalanced),
        ];
        for (v, err) in cases {
            let m = invite_with(&format!("History-Info: {v}\r\n"));
            assert_eq!(history_info(&m), Err(err), "{v}");
        }
        let m = invite_with("History-Info: <sip:@>;index=1\r\n");
        assert!(matches!(history_info(&m), Err(DiversionError::NameAddr(_))));
        // Odd Reason escapes never panic and give no cause.
        let m = invite_with("History-Info: <sip:a@x?Reason=SIP%3Bcause%3D4861>;index=1\r\n");
        assert_eq!(history_info(&m).expect("valid")[0].reason_cause, None);
        let m = invite_with("History-Info: <sip:a@x?Reason=Q.850%3Bcause%3D17>;index=1\r\n");
        assert_eq!(history_info(&m).expect("valid")[0].reason_cause, None);
    }

    #[test]
    fn append_to_empty_message() {
        let mut m = invite_with("");
        let i = append_history_hop(
            &mut m,
            &uri("sip:+4721000000@sb.example"),
            &uri("sip:+4799999999@carrier.example;user=phone"),
            ForwardReason::Busy,
        )
        .expect("valid");
        assert_eq!(i, idx("1.1"));
        let wire = String::from_utf8(m.encode().to_vec()).expect("utf8");
        assert!(
            wire.contains(
                "History-Info: <sip:+4721000000@sb.example?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%20Here%22>;index=1, \
                 <sip:+4799999999@carrier.example;user=phone;cause=486>;index=1.1;mp=1\r\n"
            ),
            "{wire}"
        );
        let e = history_info(&m).expect("re-parses");
        assert_eq!(e[0].reason_cause, Some(486));
        assert_eq!(e[1].forward_reason(), Some(ForwardReason::Busy));
        assert_eq!(forwarding_hops(&m), 1);
    }

    #[test]
    fn append_after_existing_chain() {
        // Already forwarded once by the carrier (1 -> 1.1); we forward 1.1 again.
        let mut m = invite_with(
            "History-Info: <sip:+4722000000@carrier.example>;index=1\r\n\
             X-Between: kept\r\n\
             history-info: \"Ola\" <sip:+4721000000@sb.example;cause=302>;index=1.1;mp=1\r\n",
        );
        let i = append_history_hop(
            &mut m,
            &uri("sip:+4721000000@sb.example;cause=302"),
            &uri("tel:+4791234567"),
            ForwardReason::NoAnswer,
        )
        .expect("valid");
        assert_eq!(i, idx("1.1.1"));
        let e = history_info(&m).expect("re-parses");
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].reason_cause, Some(408));
        assert_eq!(e[1].target.display.as_deref(), Some(&b"Ola"[..]));
        assert_eq!(&e[2].target.uri.raw[..], b"tel:+4791234567;cause=408");
        assert_eq!(e[2].tag, Some(HistoryTag::Mp(idx("1.1"))));
        assert_eq!(forwarding_hops(&m), 2);
        // One History-Info line, in the first one's place; other headers untouched.
        let names: Vec<&[u8]> = m.headers.iter().map(|h| &h.raw_name[..]).collect();
        let hi = names
            .iter()
            .position(|n| *n == b"History-Info")
            .expect("present");
        assert_eq!(names[hi + 1], b"X-Between");
        assert_eq!(
            names
                .iter()
                .filter(|n| n.eq_ignore_ascii_case(b"history-info"))
                .count(),
            1
        );

        // Unknown parent: a new sibling under the last entry, then the hop below it.
        let i = append_history_hop(
            &mut m,
            &uri("sip:201@sb.example"),
            &uri("sip:202@sb.example"),
            ForwardReason::Unconditional,
        )
        .expect("valid");
        assert_eq!(i, idx("1.1.1.1.1"));
    }

    #[test]
    fn sibling_indexes_count_up() {
        let mut m = invite_with(
            "History-Info: <sip:u@sb.example>;index=1, <sip:u@10.0.0.5>;index=1.1;rc=1, <sip:u@10.0.0.6>;index=1.2;rc=1\r\n",
        );
        let i = append_history_hop(
            &mut m,
            &uri("sip:u@sb.example"),
            &uri("sip:vm@sb.example"),
            ForwardReason::Unavailable,
        )
        .expect("valid");
        assert_eq!(i, idx("1.3"));
        // An existing Reason is not duplicated.
        let mut m2 = m.clone();
        append_history_hop(
            &mut m2,
            &uri("sip:u@sb.example"),
            &uri("sip:x@sb.example"),
            ForwardReason::Busy,
        )
        .expect("valid");
        let e = history_info(&m2).expect("valid");
        assert_eq!(e[0].reason_cause, Some(503));
        assert_eq!(e.len(), 5);
    }

    #[test]
    fn append_refuses_garbage() {
        let mut m = invite_with("History-Info: <sip:a@x>\r\n");
        let before = m.clone();
        assert_eq!(
            append_history_hop(
                &mut m,
                &uri("sip:a@x"),
                &uri("sip:b@x"),
                ForwardReason::Busy
            ),
            Err(DiversionError::MissingIndex)
        );
        assert_eq!(m, before);
    }

    #[test]
    fn cause_param_placement() {
        assert_eq!(
            &uri_with_cause(
                &uri("sip:vm@x;transport=tcp?subject=hi"),
                ForwardReason::Busy
            )[..],
            b"sip:vm@x;transport=tcp;cause=486?subject=hi"
        );
        assert_eq!(
            &uri_with_cause(&uri("sip:vm@x;cause=302"), ForwardReason::Busy)[..],
            b"sip:vm@x;cause=302"
        );
        assert_eq!(
            &uri_with_reason(&uri("sip:a@x?subject=hi"), ForwardReason::Busy)[..],
            b"sip:a@x?subject=hi&Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%20Here%22"
        );
        assert_eq!(
            &uri_with_reason(&uri("tel:+4721000000"), ForwardReason::Busy)[..],
            b"tel:+4721000000"
        );
    }

    #[test]
    fn diversion_parse_and_prepend() {
        let mut m = invite_with(
            "Diversion: <sip:+4721000000@carrier.example>;reason=\"no-answer\";counter=1;privacy=off;screen=no\r\n",
        );
        let d = diversions(&m).expect("valid");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].reason, Some(ForwardReason::NoAnswer));
        assert_eq!(d[0].counter, 1);
        prepend_diversion(&mut m, "sip:+4722000000@sb.example", ForwardReason::Busy)
            .expect("valid");
        let d = diversions(&m).expect("valid");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].reason, Some(ForwardReason::Busy));
        assert_eq!(&d[0].addr.uri.raw[..], b"sip:+4722000000@sb.example");
        assert_eq!(forwarding_hops(&m), 2);
        let wire = String::from_utf8(m.encode().to_vec()).expect("utf8");
        assert!(wire.contains(
            "Diversion: <sip:+4722000000@sb.example>;reason=user-busy;counter=1\r\nDiversion: <sip:+4721000000"
        ));
        assert!(matches!(
            prepend_diversion(&mut m, "not a uri", ForwardReason::Busy),
            Err(DiversionError::Uri(_))
        ));
    }

    #[test]
    fn diversion_counters_and_garbage() {
        let m = invite_with(
            "Diversion: <sip:a@x>;reason=unconditional;counter=3, sip:b@x;reason=time-of-day\r\n",
        );
        let d = diversions(&m).expect("valid");
        assert_eq!(d[0].counter, 3);
        assert_eq!(d[1].reason, None);
        assert_eq!(d[1].counter, 1);
        assert_eq!(forwarding_hops(&m), 4);

        let m = invite_with("Diversion: <sip:a@x>;counter=100\r\n");
        assert_eq!(diversions(&m), Err(DiversionError::BadCounter));
        let m = invite_with("Diversion: <sip:a@x>;counter\r\nDiversion: @@@\r\n");
        assert_eq!(diversions(&m), Err(DiversionError::BadCounter));
        assert_eq!(forwarding_hops(&m), 2, "garbage still counts");
        assert_eq!(forwarding_hops(&invite_with("")), 0);
    }
}
