//! Duplicate detection (RFC 5080 section 2.2.2): a NAS retransmission (same source, Identifier
//! and Request Authenticator) gets the cached answer, or is dropped while the original is still
//! being proxied, so nothing is proxied or counted twice.
//!
//! The cache must never hold up the event loop, however many answers it holds (a burst at
//! 130,000 requests/s leaves 650,000 of them for a 5 s lifetime). Three things did, each for
//! milliseconds, measured per engine step in the benchmark's poll rounds:
//! - a hash map growing by doubling rehashes everything it holds in one insert (4, 8, 16,
//!   43, 87 and 178 ms steps while a closed loop filled it);
//! - an answer per heap block: freeing hundreds of thousands of them, even off the loop in
//!   another thread, contended for the allocator with the loop's own allocations (a 30 ms
//!   step with one datagram while a retired generation was being freed);
//! - removing expired answers one by one (a lookup, a tombstone and a free each).
//!
//! So answers are kept in generations of a fixed capacity: a generation's map is allocated
//! once and never grows (a full one is sealed and a new one, up to twice as large, opened),
//! and its answers' octets are appended to large chunks it owns, so dropping it frees a
//! handful of blocks. A generation whose newest answer has expired is retired whole and handed
//! out ([`DuplicateCache::take_retired`]) for the caller to drop off the event loop. Expiry
//! stays exact: every answer carries its own, checked on lookup, youngest generation first.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::usage::UsageEvent;

/// Identity of a request from a NAS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub from: SocketAddr,
    pub acct: bool,
    pub id: u8,
    pub authenticator: [u8; 16],
}

/// State of a request seen before.
#[derive(Debug, Clone)]
pub enum Seen {
    InProgress,
    /// The answer sent, and the usage record committed with it (replayed idempotently).
    Answered(Vec<u8>, Vec<UsageEvent>),
}

/// Where an answer's octets are in its generation, its usage record, and when it expires.
struct Answer {
    chunk: u32,
    start: u32,
    len: u32,
    /// Empty (no allocation) for Access answers.
    events: Vec<UsageEvent>,
    expires: Instant,
}

/// Octets per chunk of answer storage: many answers per block, and a RADIUS packet (at most
/// 4096 octets) always fits.
const CHUNK: usize = 64 * 1024;
/// Answers the first generation holds, and the most any holds.
const MIN_ANSWERS: usize = 1024;
const MAX_ANSWERS: usize = 1 << 18;

/// Answers given in one stretch of time.
struct Generation {
    map: super::FastMap<RequestKey, Answer>,
    /// Answers the map holds without growing.
    capacity: usize,
    /// Answers stored, replaced ones included: their octets stay in the chunks until the
    /// generation is dropped, so this bounds the chunks as the capacity bounds the map.
    stored: usize,
    chunks: Vec<Vec<u8>>,
    /// When its newest answer was given: once that has expired, all have.
    newest: Instant,
}

impl Generation {
    fn new(capacity: usize, now: Instant) -> Self {
        let map = super::FastMap::with_capacity_and_hasher(capacity, Default::default());
        // What the allocation actually holds (at least what was asked).
        let capacity = map.capacity();
        Generation {
            map,
            capacity,
            stored: 0,
            chunks: Vec::new(),
            newest: now,
        }
    }

    fn is_full(&self) -> bool {
        self.stored >= self.capacity
    }

    /// Appends `bytes` to the chunk storage; `None` for more than a chunk holds.
    fn store(&mut self, bytes: &[u8]) -> Option<(u32, u32)> {
        if bytes.len() > CHUNK {
            return None;
        }
        let room = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= bytes.len());
        if !room {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let i = self.chunks.len() - 1;
        let c = self.chunks.last_mut()?;
        let start = c.len();
        c.extend_from_slice(bytes);
        self.stored += 1;
        Some((i as u32, start as u32))
    }

    fn bytes(&self, a: &Answer) -> &[u8] {
        let (start, len) = (a.start as usize, a.len as usize);
        self.chunks
            .get(a.chunk as usize)
            .and_then(|c| c.get(start..start + len))
            .unwrap_or_default()
    }
}

/// Generations of answers, all expired, to be dropped where that does not hold up the event
/// loop: each is a map allocation and a few chunks, tens of megabytes after a burst, whose
/// unmapping takes milliseconds.
pub struct Retired(Vec<Generation>);

impl Retired {
    /// Answers held.
    pub fn len(&self) -> usize {
        self.0.iter().map(|g| g.map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the generations one at a time with `pause` between them, so that a background
    /// thread doing it never holds a CPU or the allocator for long. Returns how many answers
    /// were freed.
    pub fn free_gently(self, pause: Duration) -> usize {
        let mut freed = 0;
        for (i, g) in self.0.into_iter().enumerate() {
            if i > 0 {
                std::thread::sleep(pause);
            }
            freed += g.map.len();
            drop(g);
        }
        freed
    }
}

/// Cache of requests seen recently.
pub struct DuplicateCache {
    /// Requests being proxied: no more than are outstanding, kept apart from the answers so
    /// that retiring a generation never has to look for them.
    in_progress: super::FastMap<RequestKey, ()>,
    /// Oldest first; answers go to the last.
    generations: VecDeque<Generation>,
    /// Capacity of the next generation opened.
    next_capacity: usize,
    ttl: Duration,
    /// Generations retired and not yet taken.
    retired: Vec<Generation>,
}

impl DuplicateCache {
    pub fn new(ttl: Duration) -> Self {
        DuplicateCache {
            in_progress: super::FastMap::default(),
            generations: VecDeque::new(),
            next_capacity: MIN_ANSWERS,
            ttl,
            retired: Vec::new(),
        }
    }

    /// Retires the generations whose every answer has expired.
    fn age(&mut self, now: Instant) {
        while let Some(g) = self.generations.front() {
            if g.newest + self.ttl > now {
                break;
            }
            if let Some(g) = self.generations.pop_front() {
                // Answers stop coming: the next generation need be no larger than this one
                // had to be.
                if self.generations.is_empty() {
                    self.next_capacity = g.map.len().clamp(MIN_ANSWERS, MAX_ANSWERS);
                }
                self.retired.push(g);
            }
        }
    }

    /// The answer to `key` still valid at `now`, and its generation.
    fn answer(&self, now: Instant, key: &RequestKey) -> Option<(&Generation, &Answer)> {
        // The youngest generation first: a key answered again after its first answer expired
        // has its newer answer there.
        self.generations
            .iter()
            .rev()
            .filter_map(|g| g.map.get(key).map(|a| (g, a)))
            .find(|(_, a)| a.expires > now)
    }

    /// The earlier state of `key`, or none (and `key` is now in progress).
    pub fn check(&mut self, now: Instant, key: &RequestKey) -> Option<Seen> {
        self.age(now);
        if self.in_progress.contains_key(key) {
            return Some(Seen::InProgress);
        }
        if let Some((g, a)) = self.answer(now, key) {
            return Some(Seen::Answered(g.bytes(a).to_vec(), a.events.clone()));
        }
        self.in_progress.insert(key.clone(), ());
        None
    }

    /// The generation taking answers now, opened when there is none or the last is full.
    fn young(&mut self, now: Instant) -> &mut Generation {
        if self.generations.back().is_none_or(Generation::is_full) {
            if self.generations.back().is_some() {
                // Filled within a lifetime: the load needs a larger one.
                self.next_capacity = (self.next_capacity * 2).min(MAX_ANSWERS);
            }
            self.generations
                .push_back(Generation::new(self.next_capacity, now));
        }
        let last = self.generations.len() - 1;
        &mut self.generations[last]
    }

    /// Records the answer; it is kept for the cache's lifetime from now.
    pub fn answered(&mut self, now: Instant, key: RequestKey, bytes: &[u8], u: &[UsageEvent]) {
        self.age(now);
        self.in_progress.remove(&key);
        let expires = now + self.ttl;
        let g = self.young(now);
        let Some((chunk, start)) = g.store(bytes) else {
            // Longer than any RADIUS packet: not cached, a retransmission is proxied again.
            return;
        };
        g.newest = now;
        g.map.insert(
            key,
            Answer {
                chunk,
                start,
                len: bytes.len() as u32,
                events: u.to_vec(),
                expires,
            },
        );
    }

    /// Forgets a request given up on, so a retransmission is proxied afresh.
    pub fn forget(&mut self, key: &RequestKey) {
        self.in_progress.remove(key);
    }

    /// Entries held, expired answers not yet retired included.
    pub fn len(&self) -> usize {
        self.in_progress.len() + self.generations.iter().map(|g| g.map.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lets time pass without a request (from the timers), so that expired answers are
    /// retired when requests stop coming.
    pub fn tick(&mut self, now: Instant) {
        self.age(now);
    }

    /// When [`tick`](Self::tick) has work to do: when the oldest generation expires.
    pub fn next_tick(&self) -> Option<Instant> {
        self.generations.front().map(|g| g.newest + self.ttl)
    }

    /// The generations retired since the last call, for the caller to drop.
    pub fn take_retired(&mut self) -> Option<Retired> {
        if self.retired.is_empty() {
            return None;
        }
        Some(Retired(std::mem::take(&mut self.retired)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> RequestKey {
        let mut authenticator = [0; 16];
        authenticator[..4].copy_from_slice(&i.to_be_bytes());
        RequestKey {
            from: "127.0.0.1:5000".parse().expect("addr"),
            acct: false,
            id: i as u8,
            authenticator,
        }
    }

    #[test]
    fn retransmission_gets_cached_answer_until_expiry() {
        let t0 = Instant::now();
        let mut c = DuplicateCache::new(Duration::from_secs(5));
        let k = key(9);
        assert!(c.check(t0, &k).is_none());
        assert!(matches!(c.check(t0, &k), Some(Seen::InProgress)));
        c.answered(t0, k.clone(), &[2, 9], &[]);
        assert!(
            matches!(c.check(t0 + Duration::from_secs(4), &k), Some(Seen::Answered(b, u)) if b == vec![2, 9] && u.is_empty())
        );
        assert!(c.check(t0 + Duration::from_secs(6), &k).is_none());
        c.forget(&k);
        assert!(c.check(t0 + Duration::from_secs(6), &k).is_none());
    }

    /// An answer given late in a generation outlives the generation's retirement by the
    /// young one becoming old; it expires exactly a TTL after it was given, and only then is
    /// it retired, whole with its generation, never looked up one by one.
    #[test]
    fn expiry_is_exact_across_generations() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let ms = Duration::from_millis;
        let mut c = DuplicateCache::new(ttl);
        let n = 1000;
        for i in 0..n {
            assert!(c.check(t0, &key(i)).is_none());
            c.answered(t0, key(i), &[1], &[]);
        }
        let late = t0 + ms(4900);
        assert!(c.check(late, &key(n)).is_none());
        c.answered(late, key(n), &[2], &[]);
        assert_eq!(c.len(), n as usize + 1);
        assert!(c.take_retired().is_none(), "nothing retired within a TTL");
        // The young generation becomes old; the first answers expire, the late one stays.
        let t1 = t0 + ttl + ms(1);
        assert!(c.check(t1, &key(0)).is_none(), "expired exactly at its TTL");
        assert!(matches!(c.check(t1, &key(n)), Some(Seen::Answered(b, _)) if b == vec![2]));
        assert!(c.take_retired().is_none(), "the empty old generation");
        // A TTL later the old generation (the first answers and the late one) is retired.
        let t2 = t1 + ttl;
        assert!(matches!(
            c.check(late + ttl - ms(1), &key(n)),
            Some(Seen::Answered(..))
        ));
        assert!(
            c.check(t2, &key(n)).is_none(),
            "the late answer expired in turn"
        );
        let r = c.take_retired().expect("retired");
        assert_eq!(r.len(), n as usize + 1);
        assert_eq!(c.len(), 2, "only the two requests in progress");
    }

    /// A key answered again after its first answer expired is found with its new answer,
    /// though the old one is still held in the older generation.
    #[test]
    fn a_newer_answer_wins() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let mut c = DuplicateCache::new(ttl);
        assert!(c.check(t0, &key(1)).is_none());
        c.answered(t0, key(1), &[1], &[]);
        let t1 = t0 + ttl + Duration::from_millis(1);
        assert!(c.check(t1, &key(1)).is_none());
        c.answered(t1, key(1), &[2], &[]);
        assert!(matches!(c.check(t1, &key(1)), Some(Seen::Answered(b, _)) if b == vec![2]));
    }

    /// A cache holding answers to keys 0 to 9, all given at `t0`.
    fn answered_ten(ttl: Duration, t0: Instant) -> DuplicateCache {
        let mut c = DuplicateCache::new(ttl);
        for i in 0..10 {
            assert!(c.check(t0, &key(i)).is_none());
            c.answered(t0, key(i), &[1], &[]);
        }
        c
    }

    /// With no requests for two TTLs, a tick retires everything answered.
    #[test]
    fn idle_ticks_retire_every_generation() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let mut c = answered_ten(ttl, t0);
        assert_eq!(c.next_tick(), Some(t0 + ttl));
        c.tick(t0 + 3 * ttl);
        assert!(c.is_empty());
        assert_eq!(c.take_retired().map(|r| r.len()), Some(10));
        assert_eq!(c.next_tick(), None, "nothing left to age");
    }

    /// Past a generation's capacity a new, larger one is opened: no map ever grows (a grown
    /// map rehashes everything it holds in one insert), every answer stays found, and each
    /// generation is retired a TTL after its own newest answer, not before.
    #[test]
    fn full_generations_are_sealed_not_grown() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let ms = Duration::from_millis;
        let mut c = DuplicateCache::new(ttl);
        let n = 8 * MIN_ANSWERS as u32;
        for i in 0..n {
            let t = t0 + ms(u64::from(i) * 1000 / u64::from(n));
            assert!(c.check(t, &key(i)).is_none());
            c.answered(t, key(i), &i.to_be_bytes(), &[]);
        }
        assert!(
            c.generations.len() >= 3,
            "{} generations",
            c.generations.len()
        );
        for g in &c.generations {
            assert!(g.map.capacity() == g.capacity, "a map grew");
            assert!(g.map.len() <= g.capacity);
        }
        let caps: Vec<usize> = c.generations.iter().map(|g| g.capacity).collect();
        assert!(caps.windows(2).all(|w| w[1] >= w[0]), "{caps:?}");
        for i in (0..n).step_by(7) {
            assert!(
                matches!(c.check(t0 + ms(1000), &key(i)), Some(Seen::Answered(b, _)) if b == i.to_be_bytes()),
                "answer {i}"
            );
        }
        // The first generation's newest answer was given before the last one's.
        let first_newest = c.generations[0].newest;
        c.tick(first_newest + ttl - ms(1));
        assert!(c.take_retired().is_none());
        c.tick(first_newest + ttl);
        let r = c.take_retired().expect("the first generation");
        assert_eq!(r.0.len(), 1);
        c.tick(t0 + ms(1000) + ttl);
        assert!(c.generations.is_empty());
        let r = c.take_retired().expect("the rest");
        assert!(!r.is_empty());
        // Only the requests checked above and never answered are left in progress.
        assert_eq!(c.len(), 0);
    }

    /// An answer's octets come back exactly, across chunk boundaries, and one longer than a
    /// chunk is not cached (its retransmission is proxied again).
    #[test]
    fn answers_round_trip_through_chunks() {
        let t0 = Instant::now();
        let mut c = DuplicateCache::new(Duration::from_secs(5));
        let body = |i: u32| vec![i as u8; 1 + (i as usize * 37) % 4096];
        for i in 0..100 {
            assert!(c.check(t0, &key(i)).is_none());
            c.answered(t0, key(i), &body(i), &[]);
        }
        assert!(c.generations[0].chunks.len() > 1);
        for i in 0..100 {
            assert!(matches!(c.check(t0, &key(i)), Some(Seen::Answered(b, _)) if b == body(i)));
        }
        assert!(c.check(t0, &key(500)).is_none());
        c.answered(t0, key(500), &vec![0; CHUNK + 1], &[]);
        assert!(c.check(t0, &key(500)).is_none(), "not cached");
    }

    /// Gentle freeing drops every retired answer.
    #[test]
    fn retired_generations_free_every_answer() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let mut c = answered_ten(ttl, t0);
        c.tick(t0 + 3 * ttl);
        let r = c.take_retired().expect("retired");
        assert_eq!(r.free_gently(Duration::ZERO), 10);
    }
}
