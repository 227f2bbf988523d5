//! Choosing the agent for a caller: the single-agent strategies over the available
//! candidates of one queue, and the seeded random source behind `Strategy::Random`.
//!
//! Ring-all needs no choice (every candidate rings) and is handled by the engine.

use std::time::Instant;

use super::model::{AgentId, Strategy};

/// An available member of the queue who may be offered the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The agent.
    pub agent: AgentId,
    /// The member's `order` in this queue.
    pub order: u32,
    /// Since when the agent is idle: the later of the last call's end and the login
    /// (`None`: unknown, counts as idle the longest).
    pub idle_since: Option<Instant>,
    /// Queue calls the agent answered since local midnight.
    pub calls_today: u32,
}

impl Candidate {
    /// The member's place in the queue's fixed order (ties in `order` by agent id).
    fn rank(&self) -> (u32, AgentId) {
        (self.order, self.agent)
    }
}

/// Picks one candidate (an index into `candidates`) for a single-agent strategy.
/// `last_offered` is the queue's round-robin memory (the rank of the member offered last).
/// Returns `None` only when `candidates` is empty. `RingAll` picks like `Linear` (the
/// engine rings every candidate instead).
pub(crate) fn choose(
    strategy: Strategy,
    candidates: &[Candidate],
    last_offered: Option<(u32, AgentId)>,
    rng: &mut Rng,
) -> Option<usize> {
    if candidates.is_empty() {
        return None;
    }
    match strategy {
        Strategy::RingAll | Strategy::Linear => min_index(candidates, Candidate::rank),
        Strategy::RoundRobin => last_offered
            .and_then(|last| {
                candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.rank() > last)
                    .min_by_key(|(_, c)| c.rank())
                    .map(|(i, _)| i)
            })
            .or_else(|| min_index(candidates, Candidate::rank)),
        // `None` (unknown) sorts before every instant: idle the longest.
        Strategy::LongestIdle => min_index(candidates, |c| (c.idle_since, c.rank())),
        Strategy::FewestCalls => min_index(candidates, |c| (c.calls_today, c.idle_since, c.rank())),
        Strategy::Random => {
            let n = u64::try_from(candidates.len()).unwrap_or(u64::MAX);
            usize::try_from(rng.next_u64() % n).ok()
        }
    }
}

fn min_index<K: Ord>(candidates: &[Candidate], key: impl Fn(&Candidate) -> K) -> Option<usize> {
    (0..candidates.len()).min_by_key(|&i| key(&candidates[i]))
}

/// SplitMix64: a small, fast, seedable generator (deterministic for a given seed).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn base() -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    fn cand(agent: i64, order: u32, idle: Option<Instant>, calls: u32) -> Candidate {
        Candidate {
            agent: AgentId(agent),
            order,
            idle_since: idle,
            calls_today: calls,
        }
    }

    fn pick(s: Strategy, c: &[Candidate], last: Option<(u32, AgentId)>) -> Option<AgentId> {
        choose(s, c, last, &mut Rng::new(1)).map(|i| c[i].agent)
    }

    #[test]
    fn linear_takes_the_lowest_order() {
        let c = [
            cand(1, 3, None, 0),
            cand(2, 1, None, 0),
            cand(3, 2, None, 0),
        ];
        assert_eq!(pick(Strategy::Linear, &c, None), Some(AgentId(2)));
        assert_eq!(pick(Strategy::Linear, &[], None), None);
    }

    #[test]
    fn round_robin_starts_after_the_last_and_wraps() {
        let c = [
            cand(1, 1, None, 0),
            cand(2, 2, None, 0),
            cand(3, 3, None, 0),
        ];
        assert_eq!(pick(Strategy::RoundRobin, &c, None), Some(AgentId(1)));
        assert_eq!(
            pick(Strategy::RoundRobin, &c, Some((1, AgentId(1)))),
            Some(AgentId(2))
        );
        assert_eq!(
            pick(Strategy::RoundRobin, &c, Some((3, AgentId(3)))),
            Some(AgentId(1))
        );
        // The last one offered is no longer a candidate: the next after its place.
        assert_eq!(
            pick(Strategy::RoundRobin, &c[..1], Some((2, AgentId(9)))),
            Some(AgentId(1))
        );
        assert_eq!(
            pick(Strategy::RoundRobin, &c, Some((2, AgentId(9)))),
            Some(AgentId(3))
        );
    }

    #[test]
    fn longest_idle_and_fewest_calls() {
        let t = base();
        let c = [
            cand(1, 1, Some(t + Duration::from_secs(5)), 2),
            cand(2, 2, Some(t), 3),
            cand(3, 3, Some(t + Duration::from_secs(9)), 2),
        ];
        assert_eq!(pick(Strategy::LongestIdle, &c, None), Some(AgentId(2)));
        // Fewest calls: 1 and 3 have two; 1 is idle longer.
        assert_eq!(pick(Strategy::FewestCalls, &c, None), Some(AgentId(1)));
        let unknown = [cand(4, 4, None, 0), c[1]];
        assert_eq!(
            pick(Strategy::LongestIdle, &unknown, None),
            Some(AgentId(4))
        );
    }

    #[test]
    fn random_is_seeded_and_covers_all() {
        let c: Vec<_> = (1..=5).map(|a| cand(a, 0, None, 0)).collect();
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|_| choose(Strategy::Random, &c, None, &mut rng).unwrap_or(99))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let seen = draw(7);
        for i in 0..5 {
            assert!(seen.contains(&i), "candidate {i} never drawn");
        }
    }
}
