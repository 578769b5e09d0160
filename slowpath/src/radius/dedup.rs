//! Duplicate detection (RFC 5080 section 2.2.2): a NAS retransmission (same source, Identifier
//! and Request Authenticator) gets the cached answer, or is dropped while the original is still
//! being proxied, so nothing is proxied or counted twice.
//!
//! Answers are kept in two generations, each holding what was answered during one lifetime
//! (TTL) of the cache: once the young generation is a TTL old, every answer in the old one has
//! expired, so the old one is retired whole and the young one takes its place. Nothing is
//! removed entry by entry: removing expired answers one at a time cost the event loop a hash
//! lookup, a tombstone and a free per answer, and after a burst (hundreds of thousands of
//! answers) that work, even spread a few entries per request, added tens of microseconds to
//! each request for seconds and queued them up (the proxy's p99 in the benchmark's open loop
//! after its closed loop). A retired generation is handed out ([`DuplicateCache::take_retired`])
//! so that the caller frees it off the event loop. Expiry stays exact: every answer carries
//! its expiry, checked on lookup.

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

/// An answer, its usage record, and when it expires.
type Answer = (Vec<u8>, Vec<UsageEvent>, Instant);

type Generation = super::FastMap<RequestKey, Answer>;

/// Generations of answers, all expired, to be dropped where that does not hold up the event
/// loop: dropping one frees each of its answers, milliseconds of work after a burst.
pub struct Retired(Vec<Generation>);

impl Retired {
    /// Answers held.
    pub fn len(&self) -> usize {
        self.0.iter().map(Generation::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frees the answers a chunk at a time with a pause between chunks, so a background
    /// thread doing it never holds a CPU, or the allocator the event loop also uses, for
    /// long: freeing a burst's generation at once stalled the proxy thread for milliseconds
    /// on two CPUs. Returns how many answers were freed.
    pub fn free_gently(self, chunk: usize, pause: std::time::Duration) -> usize {
        let chunk = chunk.max(1);
        let mut freed = 0;
        for mut generation in self.0 {
            let mut drain = generation.drain();
            loop {
                let n = drain.by_ref().take(chunk).count();
                freed += n;
                if n < chunk {
                    break;
                }
                std::thread::sleep(pause);
            }
        }
        freed
    }
}

/// Cache of requests seen recently.
pub struct DuplicateCache {
    /// Requests being proxied: no more than are outstanding, kept apart from the answers so
    /// that retiring a generation never has to look for them.
    in_progress: super::FastMap<RequestKey, ()>,
    /// Answered since `since`.
    young: Generation,
    /// Answered in the TTL before `since`.
    old: Generation,
    since: Instant,
    ttl: Duration,
    /// Generations retired and not yet taken.
    retired: Vec<Generation>,
}

impl DuplicateCache {
    pub fn new(ttl: Duration) -> Self {
        DuplicateCache::starting(ttl, Instant::now())
    }

    /// A cache whose first generation starts at `now`.
    pub fn starting(ttl: Duration, now: Instant) -> Self {
        DuplicateCache {
            in_progress: super::FastMap::default(),
            young: Generation::default(),
            old: Generation::default(),
            since: now,
            ttl,
            retired: Vec::new(),
        }
    }

    /// Starts a new generation once the young one is a TTL old.
    fn age(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.since);
        if age < self.ttl {
            return;
        }
        // Retired generations nobody took are dropped here (a caller that takes them never
        // gets this far with any).
        self.retired.clear();
        // Sized like the generation before, so that it does not grow through every doubling
        // (each rehashing all it holds) while the load stays the same.
        let fresh = Generation::with_capacity_and_hasher(self.young.len(), Default::default());
        let young = std::mem::replace(&mut self.young, fresh);
        let old = std::mem::replace(&mut self.old, young);
        self.retired.push(old);
        if age >= 2 * self.ttl {
            // Nothing answered for a TTL or more: what was young has expired too.
            self.retired.push(std::mem::take(&mut self.old));
        }
        self.since = now;
    }

    /// The answer to `key` still valid at `now`.
    fn answer(&self, now: Instant, key: &RequestKey) -> Option<&Answer> {
        // The young generation first: a key answered again after its first answer expired
        // has its newer answer there.
        [&self.young, &self.old]
            .into_iter()
            .filter_map(|g| g.get(key))
            .find(|(_, _, expires)| *expires > now)
    }

    /// The earlier state of `key`, or none (and `key` is now in progress).
    pub fn check(&mut self, now: Instant, key: &RequestKey) -> Option<Seen> {
        self.age(now);
        if self.in_progress.contains_key(key) {
            return Some(Seen::InProgress);
        }
        if let Some((bytes, u, _)) = self.answer(now, key) {
            return Some(Seen::Answered(bytes.clone(), u.clone()));
        }
        self.in_progress.insert(key.clone(), ());
        None
    }

    /// Records the answer; it is kept for the cache's lifetime from now.
    pub fn answered(&mut self, now: Instant, key: RequestKey, bytes: Vec<u8>, u: Vec<UsageEvent>) {
        self.age(now);
        self.in_progress.remove(&key);
        self.young.insert(key, (bytes, u, now + self.ttl));
    }

    /// Forgets a request given up on, so a retransmission is proxied afresh.
    pub fn forget(&mut self, key: &RequestKey) {
        self.in_progress.remove(key);
    }

    /// Entries held, expired answers not yet retired included.
    pub fn len(&self) -> usize {
        self.in_progress.len() + self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lets time pass without a request (from the timers), so that expired answers are
    /// retired when requests stop coming.
    pub fn tick(&mut self, now: Instant) {
        self.age(now);
    }

    /// When [`tick`](Self::tick) has work to do: the next generation, if there are answers.
    pub fn next_tick(&self) -> Option<Instant> {
        (!self.young.is_empty() || !self.old.is_empty()).then(|| self.since + self.ttl)
    }

    /// The generations retired since the last call, for the caller to drop.
    pub fn take_retired(&mut self) -> Option<Retired> {
        if self.retired.iter().all(Generation::is_empty) {
            self.retired.clear();
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
        let mut c = DuplicateCache::starting(Duration::from_secs(5), t0);
        let k = key(9);
        assert!(c.check(t0, &k).is_none());
        assert!(matches!(c.check(t0, &k), Some(Seen::InProgress)));
        c.answered(t0, k.clone(), vec![2, 9], vec![]);
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
        let mut c = DuplicateCache::starting(ttl, t0);
        let n = 1000;
        for i in 0..n {
            assert!(c.check(t0, &key(i)).is_none());
            c.answered(t0, key(i), vec![1], vec![]);
        }
        let late = t0 + ms(4900);
        assert!(c.check(late, &key(n)).is_none());
        c.answered(late, key(n), vec![2], vec![]);
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
        let mut c = DuplicateCache::starting(ttl, t0);
        assert!(c.check(t0, &key(1)).is_none());
        c.answered(t0, key(1), vec![1], vec![]);
        let t1 = t0 + ttl + Duration::from_millis(1);
        assert!(c.check(t1, &key(1)).is_none());
        c.answered(t1, key(1), vec![2], vec![]);
        assert!(matches!(c.check(t1, &key(1)), Some(Seen::Answered(b, _)) if b == vec![2]));
    }

    /// A cache holding answers to keys 0 to 9, all given at `t0`.
    fn answered_ten(ttl: Duration, t0: Instant) -> DuplicateCache {
        let mut c = DuplicateCache::starting(ttl, t0);
        for i in 0..10 {
            assert!(c.check(t0, &key(i)).is_none());
            c.answered(t0, key(i), vec![1], vec![]);
        }
        c
    }

    /// With no requests for two TTLs, a tick retires everything answered.
    #[test]
    fn idle_ticks_retire_both_generations() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let mut c = answered_ten(ttl, t0);
        assert_eq!(c.next_tick(), Some(t0 + ttl));
        c.tick(t0 + 3 * ttl);
        assert!(c.is_empty());
        assert_eq!(c.take_retired().map(|r| r.len()), Some(10));
        assert_eq!(c.next_tick(), None, "nothing left to age");
    }

    /// Gentle freeing frees every answer, across chunk boundaries.
    #[test]
    fn retired_answers_are_all_freed_in_chunks() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let mut c = answered_ten(ttl, t0);
        c.tick(t0 + 3 * ttl);
        let r = c.take_retired().expect("retired");
        assert_eq!(r.free_gently(3, Duration::ZERO), 10);
    }
}
