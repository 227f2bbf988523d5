//! What one relay tick sends (generated audio, conference mixes, RTCP reports), queued so
//! that the datagrams leaving from one socket go out together in `sendmmsg` batches.
//!
//! The relay hands each datagram over as a borrowed slice of its scratch buffer, so the
//! bytes are copied into one arena; the queue is then grouped by source port, keeping each
//! socket's datagrams in the order they were made (a burst after a stall is in timestamp
//! order). Both vectors keep their capacity between ticks: once grown to a tick's size,
//! nothing is allocated any more.

use std::net::SocketAddr;

/// One queued datagram: where from and to, and where its bytes are in the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Queued {
    /// The local port (socket) it leaves from.
    pub(super) from_port: u16,
    /// Position in the tick's output (keeps a socket's datagrams in order when grouped).
    order: u32,
    /// The far end.
    pub(super) to: SocketAddr,
    start: usize,
    len: usize,
}

/// The datagrams of one tick, grouped by source port before they are sent.
#[derive(Debug, Default)]
pub(super) struct TickQueue {
    bytes: Vec<u8>,
    queued: Vec<Queued>,
}

impl TickQueue {
    /// A queue with room for `datagrams` datagrams of `bytes` bytes in all.
    pub(super) fn with_capacity(datagrams: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            queued: Vec::with_capacity(datagrams),
        }
    }

    /// Queues a copy of `bytes` to go from `from_port` to `to`.
    pub(super) fn push(&mut self, from_port: u16, to: SocketAddr, bytes: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        let order = u32::try_from(self.queued.len()).unwrap_or(u32::MAX);
        self.queued.push(Queued {
            from_port,
            order,
            to,
            start,
            len: bytes.len(),
        });
    }

    /// Datagrams queued.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.queued.len()
    }

    /// Groups the queue by source port, each port's datagrams in the order queued (an
    /// unstable sort on unique keys: no allocation, same result as a stable one).
    pub(super) fn group_by_port(&mut self) {
        self.queued
            .sort_unstable_by_key(|queued| (queued.from_port, queued.order));
    }

    /// Runs of queued datagrams leaving from the same port, in queue order (grouped by
    /// port after [`Self::group_by_port`]).
    pub(super) fn runs(&self) -> impl Iterator<Item = &[Queued]> {
        self.queued.chunk_by(|a, b| a.from_port == b.from_port)
    }

    /// The bytes of a queued datagram.
    pub(super) fn bytes_of(&self, queued: &Queued) -> &[u8] {
        self.bytes
            .get(queued.start..queued.start + queued.len)
            .unwrap_or_default()
    }

    /// Empties the queue, keeping its capacity.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.queued.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn datagrams_group_by_port_in_the_order_made() {
        let mut queue = TickQueue::with_capacity(8, 64);
        // Two ticks' worth of a catch-up burst: ports interleaved, frames 1 then 2.
        for frame in 1..=2u8 {
            for port in [30_002u16, 30_000, 30_004] {
                queue.push(port, to(port), &[frame, (port & 0xff) as u8]);
            }
        }
        queue.push(30_001, to(1), &[9; 40]);
        assert_eq!(queue.len(), 7);
        queue.group_by_port();
        let runs: Vec<(u16, Vec<Vec<u8>>)> = queue
            .runs()
            .map(|run| {
                let bytes = run.iter().map(|q| queue.bytes_of(q).to_vec()).collect();
                (run[0].from_port, bytes)
            })
            .collect();
        assert_eq!(
            runs,
            vec![
                (30_000, vec![vec![1, 0x30], vec![2, 0x30]]),
                (30_001, vec![vec![9; 40]]),
                (30_002, vec![vec![1, 0x32], vec![2, 0x32]]),
                (30_004, vec![vec![1, 0x34], vec![2, 0x34]]),
            ]
        );
    }

    #[test]
    fn clearing_keeps_the_capacity() {
        let mut queue = TickQueue::with_capacity(2, 8);
        for n in 0..100u16 {
            queue.push(n, to(n), &[0; 172]);
        }
        let (queued, bytes) = (queue.queued.capacity(), queue.bytes.capacity());
        queue.clear();
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.runs().count(), 0);
        for n in 0..100u16 {
            queue.push(n, to(n), &[0; 172]);
        }
        assert_eq!(
            (queue.queued.capacity(), queue.bytes.capacity()),
            (queued, bytes)
        );
    }
}
