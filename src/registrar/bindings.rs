//! The registrar's live bindings (RFC 3261 s10.3 steps 6 to 8), in memory, keyed by
//! address-of-record. Every change is also returned as a [`BindingChange`] so the
//! runtime can persist it; on start the runtime loads what was persisted.

use crate::sip::message::{ContactValue, HeaderName, Message};
use std::collections::HashMap;

/// One registered contact of an address-of-record.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The registered user (store row id).
    pub user_id: i64,
    /// Address-of-record, `sip:user@realm`.
    pub aor: String,
    /// The Contact URI exactly as received.
    pub contact: String,
    /// Contact header parameters as received, without `expires` and `q` (`;a=b;c`).
    pub contact_params: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// q-value, if given.
    pub q: Option<f32>,
    /// Call-ID of the REGISTER that created or refreshed it.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// Where the REGISTER came from (`udp:192.0.2.1:5060`).
    pub source: String,
    /// `+sip.instance` (RFC 5626), if given.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626), if given.
    pub reg_id: Option<u32>,
    /// User-Agent of the REGISTER.
    pub user_agent: Option<String>,
    /// Last refresh, Unix seconds.
    pub updated_at: u64,
}

/// A change to persist.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingChange {
    /// Insert or replace the binding (keyed by aor + contact).
    Upsert(Binding),
    /// Remove one binding.
    Remove { aor: String, contact: String },
}

/// Registrar limits (from the daemon config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarLimits {
    /// Shortest accepted registration (423 below it).
    pub min_expires: u32,
    /// Longest granted registration (longer requests are shortened).
    pub max_expires: u32,
    /// Used when the REGISTER names no expiry.
    pub default_expires: u32,
    /// Most contacts one address-of-record may hold.
    pub max_contacts: usize,
}

impl Default for RegistrarLimits {
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
        }
    }
}

/// Why a REGISTER's bindings were refused, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingError {
    /// 400: malformed Contact or a misused `*`.
    BadRequest(&'static str),
    /// 423 Interval Too Brief; the response carries Min-Expires.
    IntervalTooBrief { min_expires: u32 },
    /// The AOR would exceed its contact limit.
    TooManyContacts,
    /// RFC 3261 s10.3 step 7: same Call-ID with a CSeq that is not higher.
    OutOfOrder,
}

impl BindingError {
    /// The status code and reason phrase.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            BindingError::BadRequest(r) => (400, r),
            BindingError::IntervalTooBrief { .. } => (423, "Interval Too Brief"),
            BindingError::TooManyContacts => (403, "Forbidden - Too Many Contacts"),
            BindingError::OutOfOrder => (400, "Bad Request - CSeq Out Of Order"),
        }
    }
}

/// The facts of one REGISTER the bindings need besides the message.
#[derive(Debug, Clone)]
pub struct RegisterContext<'a> {
    /// Authenticated user.
    pub user_id: i64,
    /// The address-of-record.
    pub aor: &'a str,
    /// Where the request came from.
    pub source: String,
    /// Now, Unix seconds.
    pub now_unix: u64,
}

/// All bindings, by address-of-record.
#[derive(Debug, Default)]
pub struct Bindings {
    by_aor: HashMap<String, Vec<Binding>>,
    /// The earliest expiry, cached: the engine asks on every loop turn, and scanning every
    /// binding each time showed up in the queue benchmark's profile. `None`: recompute
    /// (every change clears it).
    earliest: std::cell::Cell<Option<Option<u64>>>,
}

impl Bindings {
    /// Restores persisted bindings (expired ones are skipped).
    pub fn load(&mut self, bindings: Vec<Binding>, now_unix: u64) {
        self.earliest.set(None);
        for b in bindings.into_iter().filter(|b| b.expires_at > now_unix) {
            self.by_aor.entry(b.aor.clone()).or_default().push(b);
        }
    }

    /// The unexpired bindings of an AOR.
    pub fn current<'a>(
        &'a self,
        aor: &str,
        now_unix: u64,
    ) -> impl Iterator<Item = &'a Binding> + 'a {
        self.by_aor
            .get(aor)
            .into_iter()
            .flatten()
            .filter(move |b| b.expires_at > now_unix)
    }

    /// Number of AORs with at least one binding.
    pub fn aor_count(&self) -> usize {
        self.by_aor.len()
    }

    /// Removes expired bindings and returns the removals to persist.
    pub fn expire(&mut self, now_unix: u64) -> Vec<BindingChange> {
        let mut removed = Vec::new();
        if self.next_expiry().is_none_or(|at| at > now_unix) {
            return removed;
        }
        self.earliest.set(None);
        self.by_aor.retain(|_, list| {
            list.retain(|b| {
                let keep = b.expires_at > now_unix;
                if !keep {
                    removed.push(BindingChange::Remove {
                        aor: b.aor.clone(),
                        contact: b.contact.clone(),
                    });
                }
                keep
            });
            !list.is_empty()
        });
        removed
    }

    /// The earliest expiry of any binding, Unix seconds.
    pub fn next_expiry(&self) -> Option<u64> {
        if let Some(cached) = self.earliest.get() {
            return cached;
        }
        let earliest = self.by_aor.values().flatten().map(|b| b.expires_at).min();
        self.earliest.set(Some(earliest));
        earliest
    }

    /// Applies a REGISTER's Contact headers (RFC 3261 s10.3 steps 6-8). Either every
    /// change is applied or none (a refused request changes nothing).
    pub fn apply(
        &mut self,
        req: &Message,
        ctx: &RegisterContext<'_>,
        limits: &RegistrarLimits,
    ) -> Result<Vec<BindingChange>, BindingError> {
        let contacts = req
            .contacts()
            .map_err(|_| BindingError::BadRequest("Bad Request - Malformed Contact"))?;
        let header_expires = req
            .expires()
            .map_err(|_| BindingError::BadRequest("Bad Request - Malformed Expires"))?;
        let call_id = req
            .call_id()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let user_agent = req
            .header(&HeaderName::UserAgent)
            .map(|h| String::from_utf8_lossy(&h.unfolded()).into_owned());
        let existing = self.by_aor.get(ctx.aor).cloned().unwrap_or_default();
        // Step 7: a request with the same Call-ID must carry a higher CSeq.
        let stale = |b: &Binding| b.call_id == call_id && cseq <= b.cseq;

        if contacts.iter().any(|c| matches!(c, ContactValue::Star)) {
            // Step 6: '*' only alone and only with Expires: 0.
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(BindingError::BadRequest(
                    "Bad Request - Invalid Wildcard Contact",
                ));
            }
            if existing.iter().any(stale) {
                return Err(BindingError::OutOfOrder);
            }
            let changes: Vec<BindingChange> = existing
                .iter()
                .map(|b| BindingChange::Remove {
                    aor: b.aor.clone(),
                    contact: b.contact.clone(),
                })
                .collect();
            self.earliest.set(None);
            self.by_aor.remove(ctx.aor);
            return Ok(changes);
        }

        let mut next = existing.clone();
        let mut changes = Vec::new();
        for c in &contacts {
            let ContactValue::Addr(na) = c else { continue };
            let expires = match na.param("expires") {
                Some(Some(v)) => parse_u32(v).unwrap_or(limits.default_expires),
                _ => header_expires.unwrap_or(limits.default_expires),
            };
            // RFC 3261 s10.3 step 7: 423 when 0 < expires < Min-Expires.
            if expires > 0 && expires < limits.min_expires {
                return Err(BindingError::IntervalTooBrief {
                    min_expires: limits.min_expires,
                });
            }
            let expires = expires.min(limits.max_expires);
            let contact = String::from_utf8_lossy(&na.uri.raw).into_owned();
            let pos = next.iter().position(|b| b.contact == contact);
            if let Some(p) = pos {
                if stale(&next[p]) {
                    return Err(BindingError::OutOfOrder);
                }
            }
            if expires == 0 {
                if let Some(p) = pos {
                    let b = next.remove(p);
                    changes.push(BindingChange::Remove {
                        aor: b.aor,
                        contact: b.contact,
                    });
                }
                continue;
            }
            let q = na
                .param("q")
                .flatten()
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<f32>().ok());
            let binding = Binding {
                user_id: ctx.user_id,
                aor: ctx.aor.to_string(),
                contact,
                contact_params: other_params(&na.params),
                expires_at: ctx.now_unix + u64::from(expires),
                q: q.filter(|q| (0.0..=1.0).contains(q)),
                call_id: call_id.clone(),
                cseq,
                source: ctx.source.clone(),
                instance: na
                    .param("+sip.instance")
                    .flatten()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                reg_id: na.param("reg-id").flatten().and_then(parse_u32),
                user_agent: user_agent.clone(),
                updated_at: ctx.now_unix,
            };
            match pos {
                Some(p) => next[p] = binding.clone(),
                None => next.push(binding.clone()),
            }
            changes.push(BindingChange::Upsert(binding));
        }
        next.retain(|b| b.expires_at > ctx.now_unix);
        if next.len() > limits.max_contacts {
            return Err(BindingError::TooManyContacts);
        }
        if next.is_empty() {
            self.earliest.set(None);
            self.by_aor.remove(ctx.aor);
        } else {
            self.earliest.set(None);
            self.by_aor.insert(ctx.aor.to_string(), next);
        }
        Ok(changes)
    }
}

fn parse_u32(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

// Keeps the header parameters other than `expires` and `q`, as written.
fn other_params(params: &[u8]) -> String {
    let mut out = String::new();
    for seg in params.split(|&b| b == b';') {
        let name = seg.split(|&b| b == b'=').next().unwrap_or_default();
        let name = crate::sip::message::header::trim(name);
        if name.is_empty()
            || name.eq_ignore_ascii_case(b"expires")
            || name.eq_ignore_ascii_case(b"q")
        {
            continue;
        }
        out.push(';');
        out.push_str(&String::from_utf8_lossy(crate::sip::message::header::trim(
            seg,
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, Parsed};
    use bytes::Bytes;

    fn register(contact: &str, expires: Option<u32>, call_id: &str, cseq: u32) -> Message {
        let mut s = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}\r\n\
From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
        );
        if !contact.is_empty() {
            s.push_str(&format!("Contact: {contact}\r\n"));
        }
        if let Some(e) = expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        match parse(Bytes::from(s)) {
            Parsed::Valid(m) => m,
            Parsed::Invalid { error, .. } => panic!("{error:?}"),
        }
    }

    fn ctx(now: u64) -> RegisterContext<'static> {
        RegisterContext {
            user_id: 1,
            aor: "sip:alice@example.com",
            source: "udp:127.0.0.1:5070".into(),
            now_unix: now,
        }
    }

    #[test]
    fn add_refresh_remove() {
        let mut b = Bindings::default();
        let l = RegistrarLimits::default();
        let ch = b
            .apply(
                &register(
                    "<sip:a@1.2.3.4>;q=0.5;+sip.instance=\"<urn:x>\"",
                    Some(600),
                    "c1",
                    1,
                ),
                &ctx(1000),
                &l,
            )
            .expect("ok");
        assert_eq!(ch.len(), 1);
        let cur: Vec<_> = b.current("sip:alice@example.com", 1000).collect();
        assert_eq!(cur.len(), 1);
        assert_eq!(cur[0].expires_at, 1600);
        assert_eq!(cur[0].q, Some(0.5));
        assert_eq!(cur[0].instance.as_deref(), Some("<urn:x>"));
        // Second contact with its own expires param beats the header.
        b.apply(
            &register("<sip:b@1.2.3.4>;expires=120", Some(600), "c1", 2),
            &ctx(1000),
            &l,
        )
        .expect("ok");
        assert_eq!(b.current("sip:alice@example.com", 1000).count(), 2);
        // Same Call-ID, not higher CSeq: refused, nothing changes.
        assert_eq!(
            b.apply(
                &register("<sip:a@1.2.3.4>", Some(0), "c1", 1),
                &ctx(1000),
                &l
            ),
            Err(BindingError::OutOfOrder)
        );
        assert_eq!(b.current("sip:alice@example.com", 1000).count(), 2);
        // Expiry.
        assert_eq!(b.expire(1121).len(), 1);
        // Wildcard removal.
        let ch = b
            .apply(&register("*", Some(0), "c1", 3), &ctx(1200), &l)
            .expect("ok");
        assert_eq!(ch.len(), 1);
        assert_eq!(b.current("sip:alice@example.com", 1200).count(), 0);
    }

    #[test]
    fn refusals_change_nothing() {
        let mut b = Bindings::default();
        let l = RegistrarLimits::default();
        assert_eq!(
            b.apply(&register("<sip:a@1.2.3.4>", Some(30), "c", 1), &ctx(0), &l),
            Err(BindingError::IntervalTooBrief { min_expires: 60 })
        );
        assert!(matches!(
            b.apply(&register("*", Some(60), "c", 1), &ctx(0), &l),
            Err(BindingError::BadRequest(_))
        ));
        assert!(matches!(
            b.apply(
                &register("sip:u@example.com?Route=%3Csip:x%3E", None, "c", 1),
                &ctx(0),
                &l
            ),
            Err(BindingError::BadRequest(_))
        ));
        let many = (0..11)
            .map(|i| format!("<sip:u{i}@1.2.3.4>"))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            b.apply(&register(&many, None, "c", 1), &ctx(0), &l),
            Err(BindingError::TooManyContacts)
        );
        assert_eq!(b.aor_count(), 0);
        // Longer than max is shortened.
        b.apply(
            &register("<sip:a@1.2.3.4>", Some(99999), "c", 2),
            &ctx(0),
            &l,
        )
        .expect("ok");
        assert_eq!(b.next_expiry(), Some(3600));
    }

    #[test]
    fn the_cached_earliest_expiry_follows_every_change() {
        let mut b = Bindings::default();
        let l = RegistrarLimits::default();
        assert_eq!(b.next_expiry(), None);
        b.apply(&register("<sip:a@1.2.3.4>", Some(600), "c", 1), &ctx(0), &l)
            .expect("ok");
        assert_eq!(b.next_expiry(), Some(600));
        b.apply(&register("<sip:a@1.2.3.4>", Some(300), "c", 2), &ctx(0), &l)
            .expect("ok");
        assert_eq!(b.next_expiry(), Some(300), "a refresh moves it");
        assert!(b.expire(299).is_empty(), "nothing due yet");
        assert_eq!(b.expire(300).len(), 1);
        assert_eq!(b.next_expiry(), None, "expired bindings are gone");
        b.apply(&register("<sip:a@1.2.3.4>", Some(600), "c", 3), &ctx(0), &l)
            .expect("ok");
        let kept: Vec<Binding> = b.current("sip:alice@example.com", 0).cloned().collect();
        let mut restored = Bindings::default();
        assert_eq!(restored.next_expiry(), None);
        restored.load(kept, 0);
        assert_eq!(restored.next_expiry(), Some(600), "restored bindings count");
    }
}
