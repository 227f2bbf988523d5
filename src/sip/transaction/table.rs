//! Many transactions by key, with one deadline for all of them.
//!
//! Deadlines live in a single `BinaryHeap` of (deadline, generation, key). Whenever a
//! transaction's earliest timer changes, a new heap entry with a fresh generation is
//! pushed and the entry remembers it; heap entries whose generation no longer matches are
//! stale and skipped when they surface (lazy deletion). The heap is rebuilt when stale
//! entries outnumber live ones, so memory stays proportional to the live transactions.
//!
//! Outputs are tagged with the transaction key and the caller's destination value `D`
//! (typically the transport address), so the driver knows where to send each message.
//! Terminated transactions are removed as soon as their outputs have been queued.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use super::{
    ClientInvite, ClientNonInvite, Disposition, ServerInvite, ServerNonInvite, TimerConfig,
    TransactionError, TransactionEvent, TransactionKey,
};

/// One transaction of any of the four kinds.
#[derive(Debug, Clone)]
pub enum Transaction {
    /// INVITE client transaction.
    ClientInvite(ClientInvite),
    /// Non-INVITE client transaction.
    ClientNonInvite(ClientNonInvite),
    /// INVITE server transaction.
    ServerInvite(ServerInvite),
    /// Non-INVITE server transaction.
    ServerNonInvite(ServerNonInvite),
}

impl Transaction {
    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        match self {
            Transaction::ClientInvite(t) => t.is_terminated(),
            Transaction::ClientNonInvite(t) => t.is_terminated(),
            Transaction::ServerInvite(t) => t.is_terminated(),
            Transaction::ServerNonInvite(t) => t.is_terminated(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Transaction::ClientInvite(t) => t.handle_timeout(now),
            Transaction::ClientNonInvite(t) => t.handle_timeout(now),
            Transaction::ServerInvite(t) => t.handle_timeout(now),
            Transaction::ServerNonInvite(t) => t.handle_timeout(now),
        }
    }

    fn handle_transport_error(&mut self) {
        match self {
            Transaction::ClientInvite(t) => t.handle_transport_error(),
            Transaction::ClientNonInvite(t) => t.handle_transport_error(),
            Transaction::ServerInvite(t) => t.handle_transport_error(),
            Transaction::ServerNonInvite(t) => t.handle_transport_error(),
        }
    }

    fn poll_transmit(&mut self) -> Option<Bytes> {
        match self {
            Transaction::ClientInvite(t) => t.poll_transmit(),
            Transaction::ClientNonInvite(t) => t.poll_transmit(),
            Transaction::ServerInvite(t) => t.poll_transmit(),
            Transaction::ServerNonInvite(t) => t.poll_transmit(),
        }
    }

    fn poll_event(&mut self) -> Option<TransactionEvent> {
        match self {
            Transaction::ClientInvite(t) => t.poll_event(),
            Transaction::ClientNonInvite(t) => t.poll_event(),
            Transaction::ServerInvite(t) => t.poll_event(),
            Transaction::ServerNonInvite(t) => t.poll_event(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Transaction::ClientInvite(t) => t.poll_timeout(),
            Transaction::ClientNonInvite(t) => t.poll_timeout(),
            Transaction::ServerInvite(t) => t.poll_timeout(),
            Transaction::ServerNonInvite(t) => t.poll_timeout(),
        }
    }
}

/// A message to send: where, for which transaction, and the serialized bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit<D> {
    /// The transaction that sends it.
    pub key: TransactionKey,
    /// The caller's destination value given when the transaction was inserted.
    pub destination: D,
    /// The serialized message.
    pub payload: Bytes,
}

/// A transaction event tagged with its transaction and destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedEvent<D> {
    /// The transaction that reports it.
    pub key: TransactionKey,
    /// The caller's destination value given when the transaction was inserted.
    pub destination: D,
    /// What happened.
    pub event: TransactionEvent,
}

/// A heap entry; ordered by deadline, then generation (unique), never by key.
#[derive(Debug, Clone)]
struct Scheduled {
    at: Instant,
    generation: u64,
    key: TransactionKey,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.generation).cmp(&(other.at, other.generation))
    }
}

#[derive(Debug)]
struct Entry<D> {
    txn: Transaction,
    destination: D,
    /// The (deadline, generation) of this entry's live heap entry, if any.
    scheduled: Option<(Instant, u64)>,
}

/// Heap size below which stale entries are never compacted.
const COMPACT_MIN: usize = 64;

/// All live transactions of an endpoint, keyed by [`TransactionKey`], with one deadline.
///
/// Contract: after every input, drain `poll_transmit` and `poll_event`, then sleep until
/// `poll_timeout` and call `handle_timeout` then.
#[derive(Debug)]
pub struct TransactionTable<D: Clone> {
    cfg: TimerConfig,
    entries: HashMap<TransactionKey, Entry<D>>,
    heap: BinaryHeap<Reverse<Scheduled>>,
    next_generation: u64,
    transmits: VecDeque<Transmit<D>>,
    events: VecDeque<KeyedEvent<D>>,
}

impl<D: Clone> TransactionTable<D> {
    /// An empty table whose transactions use `cfg`.
    pub fn new(cfg: TimerConfig) -> Self {
        Self {
            cfg,
            entries: HashMap::new(),
            heap: BinaryHeap::new(),
            next_generation: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The timer configuration used for new transactions.
    pub fn config(&self) -> &TimerConfig {
        &self.cfg
    }

    /// Replaces the timer configuration for transactions created from now on (reload).
    pub fn set_config(&mut self, cfg: TimerConfig) {
        self.cfg = cfg;
    }

    /// How many live transactions the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a live transaction has this key (a request with a known key is a
    /// retransmission, 17.2.3).
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.entries.contains_key(key)
    }

    /// The transaction with this key, to inspect its state.
    pub fn get(&self, key: &TransactionKey) -> Option<&Transaction> {
        self.entries.get(key).map(|e| &e.txn)
    }

    /// The destination value stored with this transaction.
    pub fn destination(&self, key: &TransactionKey) -> Option<&D> {
        self.entries.get(key).map(|e| &e.destination)
    }

    /// Starts an INVITE client transaction that sends `request` to `destination`.
    pub fn start_client_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        destination: D,
        request: Bytes,
        reliable: bool,
    ) -> Result<(), TransactionError> {
        let txn = ClientInvite::new(now, request, reliable, &self.cfg);
        self.insert(key, destination, Transaction::ClientInvite(txn))
    }

    /// Starts a non-INVITE client transaction that sends `request` to `destination`.
    pub fn start_client_non_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        destination: D,
        request: Bytes,
        reliable: bool,
    ) -> Result<(), TransactionError> {
        let txn = ClientNonInvite::new(now, request, reliable, &self.cfg);
        self.insert(key, destination, Transaction::ClientNonInvite(txn))
    }

    /// Creates an INVITE server transaction for a new request; responses go to `destination`.
    pub fn start_server_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        destination: D,
        reliable: bool,
    ) -> Result<(), TransactionError> {
        let txn = ServerInvite::new(now, reliable, &self.cfg);
        self.insert(key, destination, Transaction::ServerInvite(txn))
    }

    /// Creates a non-INVITE server transaction for a new request.
    pub fn start_server_non_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        destination: D,
        reliable: bool,
    ) -> Result<(), TransactionError> {
        let txn = ServerNonInvite::new(now, reliable, &self.cfg);
        self.insert(key, destination, Transaction::ServerNonInvite(txn))
    }

    /// A response matched a client transaction. `build_ack` is only called for the first
    /// 300-699 response to an INVITE (see [`ClientInvite::handle_response`]).
    pub fn handle_response<F>(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        status: u16,
        build_ack: F,
    ) -> Result<Disposition, TransactionError>
    where
        F: FnOnce() -> Bytes,
    {
        let entry = self
            .entries
            .get_mut(key)
            .ok_or(TransactionError::NotFound)?;
        let result = match &mut entry.txn {
            Transaction::ClientInvite(t) => t.handle_response(now, status, build_ack),
            Transaction::ClientNonInvite(t) => t.handle_response(now, status),
            _ => Err(TransactionError::WrongKind),
        };
        self.after_input(key);
        result
    }

    /// A retransmission of the request arrived for a server transaction.
    pub fn handle_request_retransmission(
        &mut self,
        now: Instant,
        key: &TransactionKey,
    ) -> Result<(), TransactionError> {
        let entry = self
            .entries
            .get_mut(key)
            .ok_or(TransactionError::NotFound)?;
        match &mut entry.txn {
            Transaction::ServerInvite(t) => t.handle_request_retransmission(now),
            Transaction::ServerNonInvite(t) => t.handle_request_retransmission(now),
            _ => return Err(TransactionError::WrongKind),
        }
        self.after_input(key);
        Ok(())
    }

    /// The TU sends a response through a server transaction.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        status: u16,
        response: Bytes,
    ) -> Result<(), TransactionError> {
        let entry = self
            .entries
            .get_mut(key)
            .ok_or(TransactionError::NotFound)?;
        let result = match &mut entry.txn {
            Transaction::ServerInvite(t) => t.send_response(now, status, response),
            Transaction::ServerNonInvite(t) => t.send_response(now, status, response),
            _ => Err(TransactionError::WrongKind),
        };
        self.after_input(key);
        result
    }

    /// An ACK matched an INVITE server transaction.
    pub fn handle_ack(
        &mut self,
        now: Instant,
        key: &TransactionKey,
    ) -> Result<Disposition, TransactionError> {
        let entry = self
            .entries
            .get_mut(key)
            .ok_or(TransactionError::NotFound)?;
        let result = match &mut entry.txn {
            Transaction::ServerInvite(t) => Ok(t.handle_ack(now)),
            _ => Err(TransactionError::WrongKind),
        };
        self.after_input(key);
        result
    }

    /// The transport failed to send a message of this transaction.
    pub fn handle_transport_error(&mut self, key: &TransactionKey) -> Result<(), TransactionError> {
        let entry = self
            .entries
            .get_mut(key)
            .ok_or(TransactionError::NotFound)?;
        entry.txn.handle_transport_error();
        self.after_input(key);
        Ok(())
    }

    /// Fires the timers of every transaction due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.at > now {
                break;
            }
            let Some(Reverse(s)) = self.heap.pop() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&s.key) else {
                continue;
            };
            if entry.scheduled != Some((s.at, s.generation)) {
                continue;
            }
            entry.scheduled = None;
            entry.txn.handle_timeout(now);
            // Re-arms strictly after `now` (retransmission intervals are at least 1 ms and
            // every one-shot timer that was due has fired), so this loop ends.
            self.after_input(&s.key);
        }
        self.maybe_compact();
    }

    /// The earliest deadline of any transaction.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        loop {
            let Reverse(top) = self.heap.peek()?;
            let live = self
                .entries
                .get(&top.key)
                .is_some_and(|e| e.scheduled == Some((top.at, top.generation)));
            if live {
                return Some(top.at);
            }
            self.heap.pop();
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<D>> {
        self.transmits.pop_front()
    }

    /// The next transaction event.
    pub fn poll_event(&mut self) -> Option<KeyedEvent<D>> {
        self.events.pop_front()
    }

    fn insert(
        &mut self,
        key: TransactionKey,
        destination: D,
        txn: Transaction,
    ) -> Result<(), TransactionError> {
        if self.entries.contains_key(&key) {
            return Err(TransactionError::DuplicateKey);
        }
        self.entries.insert(
            key.clone(),
            Entry {
                txn,
                destination,
                scheduled: None,
            },
        );
        self.after_input(&key);
        self.maybe_compact();
        Ok(())
    }

    /// Moves a transaction's outputs to the table queues, reschedules its deadline, and
    /// removes it once terminated.
    fn after_input(&mut self, key: &TransactionKey) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        while let Some(payload) = entry.txn.poll_transmit() {
            self.transmits.push_back(Transmit {
                key: key.clone(),
                destination: entry.destination.clone(),
                payload,
            });
        }
        while let Some(event) = entry.txn.poll_event() {
            self.events.push_back(KeyedEvent {
                key: key.clone(),
                destination: entry.destination.clone(),
                event,
            });
        }
        if entry.txn.is_terminated() {
            self.entries.remove(key);
            return;
        }
        let next = entry.txn.poll_timeout();
        if next == entry.scheduled.map(|(at, _)| at) {
            return;
        }
        match next {
            Some(at) => {
                let generation = self.next_generation;
                self.next_generation = self.next_generation.wrapping_add(1);
                entry.scheduled = Some((at, generation));
                self.heap.push(Reverse(Scheduled {
                    at,
                    generation,
                    key: key.clone(),
                }));
            }
            None => entry.scheduled = None,
        }
    }

    /// Rebuilds the heap from the live entries when stale entries dominate it.
    fn maybe_compact(&mut self) {
        if self.heap.len() <= COMPACT_MIN || self.heap.len() <= 2 * self.entries.len() {
            return;
        }
        self.heap = self
            .entries
            .iter()
            .filter_map(|(key, e)| {
                e.scheduled.map(|(at, generation)| {
                    Reverse(Scheduled {
                        at,
                        generation,
                        key: key.clone(),
                    })
                })
            })
            .collect();
    }

    /// The number of heap entries, live or stale (tests check compaction).
    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_util::{base, ms};
    use crate::sip::transaction::{ServerInviteState, Timer};
    use crate::sip::Method;

    type Table = TransactionTable<u32>;

    fn ckey(n: u32, method: Method) -> TransactionKey {
        TransactionKey::client(Bytes::from(format!("z9hG4bK{n}")), method)
    }

    fn skey(n: u32) -> TransactionKey {
        TransactionKey::Server {
            branch: Bytes::from(format!("z9hG4bKs{n}")),
            sent_by: Bytes::from_static(b"10.0.0.1:5060"),
            method: Method::Invite,
        }
    }

    fn transmits(t: &mut Table) -> Vec<Transmit<u32>> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }

    fn events(t: &mut Table) -> Vec<KeyedEvent<u32>> {
        std::iter::from_fn(|| t.poll_event()).collect()
    }

    #[test]
    fn outputs_are_tagged_with_key_and_destination() {
        let t0 = base();
        let mut t = Table::new(TimerConfig::default());
        let k = ckey(1, Method::Options);
        t.start_client_non_invite(t0, k.clone(), 42, Bytes::from_static(b"OPTIONS"), false)
            .unwrap();
        let out = transmits(&mut t);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].key, k);
        assert_eq!(out[0].destination, 42);
        assert_eq!(&out[0].payload[..], b"OPTIONS");
        assert_eq!(t.destination(&k), Some(&42));
        assert_eq!(
            t.start_client_non_invite(t0, k, 1, Bytes::new(), false),
            Err(TransactionError::DuplicateKey)
        );
    }

    #[test]
    fn deadline_ordering_with_many_transactions() {
        let t0 = base();
        let mut t = Table::new(TimerConfig::default());
        // 200 INVITE client transactions over TCP started 10 ms apart, in scrambled
        // order: only timer B, due at start + 32 s.
        let n = 200u32;
        let mut order: Vec<u32> = (0..n).collect();
        // A fixed permutation (multiplication by a unit mod n).
        order.iter_mut().for_each(|i| *i = (*i * 7) % n);
        for &i in &order {
            let start = t0 + ms(10 * u64::from(i));
            t.start_client_invite(start, ckey(i, Method::Invite), i, Bytes::new(), true)
                .unwrap();
        }
        transmits(&mut t);
        assert_eq!(t.len(), n as usize);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(32_000)));
        // Walk the deadlines: each wake-up times out exactly the next transaction.
        let mut seen = Vec::new();
        while let Some(at) = t.poll_timeout() {
            t.handle_timeout(at);
            for e in events(&mut t) {
                if e.event == TransactionEvent::Timeout(Timer::B) {
                    seen.push(e.destination);
                    assert_eq!(at, t0 + ms(32_000 + 10 * u64::from(e.destination)));
                }
            }
        }
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        assert!(t.is_empty());
    }

    #[test]
    fn handle_timeout_fires_every_due_transaction_at_once() {
        let t0 = base();
        let mut t = Table::new(TimerConfig::default());
        for i in 0..10 {
            t.start_client_non_invite(t0, ckey(i, Method::Bye), i, Bytes::new(), false)
                .unwrap();
        }
        transmits(&mut t);
        // At 0.5 s every one retransmits once (timer E).
        t.handle_timeout(t0 + ms(500));
        let mut dests: Vec<u32> = transmits(&mut t)
            .into_iter()
            .map(|x| x.destination)
            .collect();
        dests.sort_unstable();
        assert_eq!(dests, (0..10).collect::<Vec<_>>());
        assert_eq!(t.poll_timeout(), Some(t0 + ms(1500)));
    }

    #[test]
    fn lazy_deletion_skips_stale_deadlines() {
        let t0 = base();
        let mut t = Table::new(TimerConfig::default());
        let k = ckey(1, Method::Invite);
        t.start_client_invite(t0, k.clone(), 1, Bytes::from_static(b"INV"), false)
            .unwrap();
        transmits(&mut t);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(500)));
        // A 180 disarms A and B: the heap entry for 0.5 s is now stale.
        let d = t
            .handle_response(t0 + ms(100), &k, 180, Bytes::new)
            .unwrap();
        assert_eq!(d, Disposition::PassUp);
        assert_eq!(t.poll_timeout(), None);
        t.handle_timeout(t0 + ms(1000));
        assert!(transmits(&mut t).is_empty());
        assert_eq!(
            t.len(),
            1,
            "Proceeding has no timer but stays until a final"
        );
        // The 486: ACK built by the caller, timer D armed.
        let d = t
            .handle_response(t0 + ms(2000), &k, 486, || Bytes::from_static(b"ACK"))
            .unwrap();
        assert_eq!(d, Disposition::PassUp);
        let out = transmits(&mut t);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].payload[..], b"ACK");
        assert_eq!(t.poll_timeout(), Some(t0 + ms(34_000)));
        t.handle_timeout(t0 + ms(34_000));
        let ev = events(&mut t);
        assert_eq!(
            ev.last().map(|e| e.event),
            Some(TransactionEvent::Terminated)
        );
        assert!(!t.contains(&k));
        assert_eq!(
            t.handle_response(t0 + ms(34_001), &k, 486, Bytes::new),
            Err(TransactionError::NotFound)
        );
    }

    #[test]
    fn server_invite_through_the_table() {
        let t0 = base();
        let mut t = Table::new(TimerConfig::default());
        let k = skey(1);
        t.start_server_invite(t0, k.clone(), 7, false).unwrap();
        assert_eq!(t.poll_timeout(), Some(t0 + ms(200)));
        t.handle_timeout(t0 + ms(200));
        let ev = events(&mut t);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event, TransactionEvent::SendTrying);
        assert_eq!(ev[0].destination, 7);
        t.send_response(t0 + ms(201), &k, 100, Bytes::from_static(b"100"))
            .unwrap();
        t.send_response(t0 + ms(300), &k, 404, Bytes::from_static(b"404"))
            .unwrap();
        assert_eq!(transmits(&mut t).len(), 2);
        t.handle_request_retransmission(t0 + ms(400), &k).unwrap();
        assert_eq!(&transmits(&mut t)[0].payload[..], b"404");
        assert_eq!(t.handle_ack(t0 + ms(500), &k), Ok(Disposition::Absorb));
        assert!(matches!(
            t.get(&k),
            Some(Transaction::ServerInvite(s)) if s.state() == ServerInviteState::Confirmed
        ));
        assert_eq!(
            t.handle_response(t0, &k, 200, Bytes::new),
            Err(TransactionError::WrongKind)
        );
        t.handle_timeout(t0 + ms(5500));
        assert!(t.is_empty());
    }

    #[test]
    fn transport_error_removes_and_reports() {
        let t0 = base();
        let mut t = Table::new(TimerConfig::default());
        let k = ckey(3, Method::Register);
        t.start_client_non_invite(t0, k.clone(), 3, Bytes::new(), true)
            .unwrap();
        t.handle_transport_error(&k).unwrap();
        let ev: Vec<TransactionEvent> = events(&mut t).into_iter().map(|e| e.event).collect();
        assert_eq!(
            ev,
            vec![
                TransactionEvent::TransportError,
                TransactionEvent::Terminated
            ]
        );
        assert!(t.is_empty());
        assert_eq!(t.poll_timeout(), None, "stale heap entry skipped");
    }

    #[test]
    fn heap_is_compacted_when_stale_entries_pile_up() {
        let t0 = base();
        let mut t = Table::new(TimerConfig::default());
        // TCP INVITEs rejected at once: each leaves a stale timer B entry 32 s out.
        for i in 0..100 {
            let k = ckey(i, Method::Invite);
            t.start_client_invite(t0, k.clone(), i, Bytes::new(), true)
                .unwrap();
            let d = t.handle_response(t0, &k, 486, Bytes::new).unwrap();
            assert_eq!(d, Disposition::PassUp);
        }
        assert!(t.is_empty());
        // Bounded while inserting (each insert may compact)...
        assert!(t.heap_len() > 0 && t.heap_len() <= COMPACT_MIN + 1);
        // ...and poll_timeout drops the stale entries that surface.
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.heap_len(), 0);
    }
}
