//! A bucketized cuckoo hash table with cache-line buckets, the storage of every keyed table.
//!
//! Why this shape: a lookup that misses cache dominates the fast path (see the notes on
//! DPDK), so a key must resolve in at most two cache lines, both known from the hash alone
//! and so prefetchable for a whole burst before any frame is touched. Each bucket is one
//! 64-byte line of four 16-byte slots holding the full compact key and the value, so a hit
//! needs no second memory access. Two candidate buckets of four slots let the table fill to
//! [`MAX_LOAD_PERCENT`] without failed inserts (two-choice, four-way cuckoo hashing holds
//! about 95 %), about 19 bytes a 16-byte entry. A table may be sized sparser and look its
//! keys up home first ([`Slot::HOME_FIRST`]): one line a lookup, most of the time.
//!
//! The bucket count is not a power of two: indices come from Lemire's multiply-shift range
//! reduction, so memory follows the configured capacity instead of doubling.
//!
//! Inserts never allocate: the displacement path is searched in a fixed array first and only
//! then executed, so a full table leaves every existing entry in place.

use core::hint::black_box;
use zerocopy::FromZeros;

/// Slots per bucket: 4 × 16 bytes = one cache line.
pub const SLOTS: usize = 4;
/// Buckets are sized so the configured capacity fills at most this share of the slots.
pub const MAX_LOAD_PERCENT: usize = 85;
/// Longest displacement chain tried before an insert reports the table full.
const MAX_PATH: usize = 64;

/// A hook that starts loading the cache line at an address, for tests to watch prefetches.
/// Without one, the table prefetches with the `sys` crate's inline `PREFETCHT0` (feature
/// `dpdk`), or else reads the line's first slot through `black_box`, which the CPU also
/// overlaps across a burst (an unused load does not stall), only less well.
pub type PrefetchFn = fn(*const u8);

/// Starts loading `bucket` without a hook: an instruction where there is one, else a load
/// folded into `acc`.
#[inline(always)]
fn touch<S: Slot>(bucket: &Bucket<S>, acc: &mut u32) {
    #[cfg(feature = "dpdk")]
    {
        let _ = acc;
        ispmux_sys::prefetch_line((bucket as *const Bucket<S>).cast());
    }
    #[cfg(not(feature = "dpdk"))]
    {
        *acc ^= bucket.slots[0].word();
    }
}

/// What a table stores in a slot: a compact key plus a value, 16 bytes for the hot tables.
///
/// The all-zero slot must be empty: tables are allocated zeroed (see
/// [`CuckooTable::with_capacity`]).
pub trait Slot: Copy + FromZeros {
    /// The compact key.
    type Key: Copy + Eq;
    /// The slot value meaning "free".
    const EMPTY: Self;
    /// True for a free slot.
    fn is_empty(&self) -> bool;
    /// The key stored in an occupied slot (used when displacing it).
    fn key(&self) -> Self::Key;
    /// True when this occupied slot holds `key`. Must be false for an empty slot.
    fn matches(&self, key: &Self::Key) -> bool;
    /// A well-mixed 64-bit hash of `key`.
    fn hash(key: &Self::Key) -> u64;
    /// Any 32 bits of the slot: read by [`CuckooTable::prefetch_burst`] to pull the line in.
    fn word(&self) -> u32;
    /// Share of the slots the configured capacity fills at most.
    const MAX_LOAD_PERCENT: usize = MAX_LOAD_PERCENT;
    /// Home-first lookups: only a key's first candidate bucket (its home) is prefetched, and
    /// the second is read only for a key not found at home. Worth it for a table sized
    /// sparse enough that nearly every key is at home (inserts try the home first): one
    /// cache line per lookup instead of two. See the subscriber table.
    const HOME_FIRST: bool = false;
}

/// One cache line of slots.
#[derive(Clone, Copy, Debug, FromZeros)]
#[repr(C, align(64))]
pub struct Bucket<S> {
    slots: [S; SLOTS],
}

/// The two candidate buckets of a key, computed once per frame and reused for the lookup
/// after the prefetch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    first: u32,
    second: u32,
}

/// The table cannot place another key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("table full")]
pub struct TableFull;

/// A fixed-capacity cuckoo hash table; see the module documentation.
#[derive(Clone)]
pub struct CuckooTable<S: Slot> {
    buckets: Box<[Bucket<S>]>,
    len: usize,
    capacity: usize,
    rng: u64,
    prefetch: Option<PrefetchFn>,
    /// Slot writes recorded for replay on replicas (the slow path's master copy only).
    journal: Journal<S>,
}

/// One physical slot write: replaying the writes of a table, in order, onto a replica with
/// the same layout gives the same table. Every prefix of the writes of one insert is itself
/// a consistent table (an entry being displaced is written to its new slot before its old
/// slot is reused), so a replica may stop anywhere between bursts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotWrite<S> {
    /// Bucket index.
    pub bucket: u32,
    /// Slot index in the bucket.
    pub slot: u8,
    /// Change of the table's length (+1 fills a free slot, −1 frees one), computed by the
    /// master so a replica never has to read the slot it overwrites.
    pub len_delta: i8,
    /// The new content.
    pub value: S,
}

/// Change of a table's length when a slot goes from `old` to `new`: +1 fills a free slot,
/// −1 frees one.
pub fn len_delta<S: Slot>(old: &S, new: &S) -> i8 {
    match (old.is_empty(), new.is_empty()) {
        (true, false) => 1,
        (false, true) => -1,
        _ => 0,
    }
}

/// The slot writes a master copy records for its replicas; off (and never allocating) on the
/// replicas themselves.
#[derive(Clone, Debug)]
pub struct Journal<S>(Option<Vec<SlotWrite<S>>>);

impl<S> Default for Journal<S> {
    fn default() -> Self {
        Self(None)
    }
}

impl<S> Journal<S> {
    /// Starts recording (slow path master copy; the journal allocates).
    pub fn enable(&mut self) {
        self.0.get_or_insert_with(Vec::new);
    }

    /// Records `w` when recording.
    pub fn record(&mut self, w: SlotWrite<S>) {
        if let Some(j) = &mut self.0 {
            j.push(w);
        }
    }

    /// Moves the recorded writes into `out`, oldest first.
    pub fn drain(&mut self, mut out: impl FnMut(SlotWrite<S>)) {
        if let Some(j) = &mut self.0 {
            for w in j.drain(..) {
                out(w);
            }
        }
    }
}

/// Murmur3's 64-bit finalizer: cheap, and every input bit affects every output bit.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

#[inline(always)]
fn reduce(h: u32, n: u32) -> u32 {
    ((u64::from(h) * u64::from(n)) >> 32) as u32
}

impl<S: Slot> CuckooTable<S> {
    /// A table for `capacity` keys; all memory is allocated here, never afterwards.
    ///
    /// The buckets are allocated zeroed (`calloc`: fresh, untouched pages for a big table),
    /// so the caller may still advise the kernel to back them with huge pages before the
    /// first insert touches them; see [`CuckooTable::memory_region`].
    pub fn with_capacity(capacity: usize) -> Self {
        assert!(S::new_zeroed().is_empty(), "a zeroed slot must be empty");
        let slots = capacity.max(1) * 100 / S::MAX_LOAD_PERCENT + 1;
        let n = slots.div_ceil(SLOTS).clamp(2, u32::MAX as usize);
        let buckets = <[Bucket<S>]>::new_box_zeroed_with_elems(n)
            .unwrap_or_else(|_| panic!("cannot allocate {n} table buckets"));
        Self {
            buckets,
            len: 0,
            capacity,
            rng: 0x9e37_79b9_7f4a_7c15,
            prefetch: None,
            journal: Journal::default(),
        }
    }

    /// Uses `f` to prefetch buckets (see [`PrefetchFn`]).
    pub fn set_prefetch(&mut self, f: Option<PrefetchFn>) {
        self.prefetch = f;
    }

    /// Keys stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Address and length of the bucket array, for the `sys` crate to advise huge pages
    /// (`madvise(MADV_HUGEPAGE)`) right after allocation; nothing here dereferences it.
    pub fn memory_region(&self) -> (*const u8, usize) {
        (
            self.buckets.as_ptr().cast(),
            core::mem::size_of_val(&*self.buckets),
        )
    }

    /// The capacity the table was sized for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes this table holds: the bucket array plus the handle.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.buckets) + core::mem::size_of::<Self>()
    }

    /// The two candidate buckets of `key`.
    #[inline(always)]
    pub fn candidates(&self, key: &S::Key) -> Candidates {
        let h = S::hash(key);
        let n = self.buckets.len() as u32;
        let first = reduce(h as u32, n);
        let mut second = reduce((h >> 32) as u32, n);
        if second == first {
            second = if first + 1 == n { 0 } else { first + 1 };
        }
        Candidates { first, second }
    }

    /// The buckets a lookup loads ahead: both candidates, or the home alone for
    /// [`Slot::HOME_FIRST`] tables.
    #[inline(always)]
    fn prefetched(c: Candidates) -> impl Iterator<Item = u32> {
        [c.first, c.second]
            .into_iter()
            .take(if S::HOME_FIRST { 1 } else { 2 })
    }

    /// Starts loading the candidate buckets of a key (see `prefetched`).
    #[inline(always)]
    pub fn prefetch(&self, c: Candidates) {
        for b in Self::prefetched(c) {
            self.prefetch_bucket(b);
        }
    }

    /// Starts loading bucket `b`, through the hook when there is one.
    #[inline(always)]
    fn prefetch_bucket(&self, b: u32) {
        if let Some(bucket) = self.buckets.get(b as usize) {
            match self.prefetch {
                Some(f) => f((bucket as *const Bucket<S>).cast()),
                None => {
                    let mut acc = 0;
                    touch(bucket, &mut acc);
                    if cfg!(not(feature = "dpdk")) {
                        black_box(acc);
                    }
                }
            }
        }
    }

    /// Prefetches the buckets of a burst of keys whose candidates are already computed.
    ///
    /// Without a hook this is a tight loop of plain loads folded into one value: the loads
    /// are independent and the loop is a few instructions per bucket, so the CPU keeps a
    /// burst's worth of misses in flight (as many as its fill buffers allow) instead of
    /// waiting on each; only the final fold waits, once per burst.
    #[inline]
    pub fn prefetch_burst(&self, cands: &[Candidates]) {
        match self.prefetch {
            Some(f) => {
                for c in cands {
                    for b in Self::prefetched(*c) {
                        if let Some(bucket) = self.buckets.get(b as usize) {
                            f((bucket as *const Bucket<S>).cast());
                        }
                    }
                }
            }
            None => {
                let mut acc = 0u32;
                for c in cands {
                    for b in Self::prefetched(*c) {
                        if let Some(bucket) = self.buckets.get(b as usize) {
                            touch(bucket, &mut acc);
                        }
                    }
                }
                black_box(acc);
            }
        }
    }

    /// Prefetches buckets by index (for replaying writes: a store to a line already loaded
    /// needs no read-for-ownership wait when the store commits).
    #[inline]
    pub fn prefetch_buckets(&self, buckets: impl Iterator<Item = u32>) {
        let mut acc = 0u32;
        for b in buckets {
            if let Some(bucket) = self.buckets.get(b as usize) {
                match self.prefetch {
                    Some(f) => f((bucket as *const Bucket<S>).cast()),
                    None => touch(bucket, &mut acc),
                }
            }
        }
        black_box(acc);
    }

    /// Starts loading both candidate buckets of `key`, whatever [`Slot::HOME_FIRST`] says:
    /// what an insert or removal reads.
    pub fn prefetch_for_update(&self, key: &S::Key) {
        let c = self.candidates(key);
        self.prefetch_buckets([c.first, c.second].into_iter());
    }

    /// Computes the candidates of a key and prefetches them: the first pass over a burst.
    #[inline(always)]
    pub fn prepare(&self, key: &S::Key) -> Candidates {
        let c = self.candidates(key);
        self.prefetch(c);
        c
    }

    /// Looks a key up in its already computed candidates: the second pass over a burst.
    #[inline(always)]
    pub fn get_prepared(&self, key: &S::Key, c: Candidates) -> Option<&S> {
        for b in [c.first, c.second] {
            if let Some(bucket) = self.buckets.get(b as usize) {
                if let Some(s) = bucket.slots.iter().find(|s| s.matches(key)) {
                    return Some(s);
                }
            }
        }
        None
    }

    /// Looks a key up in its first candidate bucket only; `None` when it is not there and
    /// the second must be read (see [`CuckooTable::prefetch_second`]).
    #[inline(always)]
    pub fn get_first(&self, key: &S::Key, c: Candidates) -> Option<&S> {
        self.buckets
            .get(c.first as usize)
            .and_then(|b| b.slots.iter().find(|s| s.matches(key)))
    }

    /// Starts loading the second candidate bucket of a key not found in its first.
    #[inline(always)]
    pub fn prefetch_second(&self, c: Candidates) {
        self.prefetch_bucket(c.second);
    }

    /// Looks a key up.
    pub fn get(&self, key: &S::Key) -> Option<&S> {
        self.get_prepared(key, self.candidates(key))
    }

    /// Looks a burst of keys up, prefetching all of them before reading any.
    pub fn get_burst(&self, keys: &[S::Key], out: &mut [Option<S>]) {
        const CHUNK: usize = 64;
        let mut c = [Candidates::default(); CHUNK];
        for (keys, out) in keys.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
            for (k, c) in keys.iter().zip(c.iter_mut()) {
                *c = self.candidates(k);
            }
            self.prefetch_burst(&c[..keys.len()]);
            for ((k, c), o) in keys.iter().zip(c.iter()).zip(out.iter_mut()) {
                *o = self.get_prepared(k, *c).copied();
            }
        }
    }

    fn locate(&self, key: &S::Key, c: Candidates) -> Option<(usize, usize)> {
        for b in [c.first as usize, c.second as usize] {
            if let Some(i) = self.buckets[b].slots.iter().position(|s| s.matches(key)) {
                return Some((b, i));
            }
        }
        None
    }

    /// The only place slots change: keeps `len` and the journal.
    fn write(&mut self, b: usize, i: usize, value: S) {
        let Some(slot) = self.buckets.get_mut(b).and_then(|x| x.slots.get_mut(i)) else {
            return;
        };
        let len_delta = len_delta(slot, &value);
        *slot = value;
        self.len = self.len.wrapping_add_signed(isize::from(len_delta));
        self.journal.record(SlotWrite {
            bucket: b as u32,
            slot: i as u8,
            len_delta,
            value,
        });
    }

    /// Starts recording slot writes (slow path master copy; the journal allocates).
    pub fn enable_journal(&mut self) {
        self.journal.enable();
    }

    /// Moves the recorded writes into `out`, oldest first.
    pub fn drain_journal(&mut self, out: impl FnMut(SlotWrite<S>)) {
        self.journal.drain(out);
    }

    /// Replays one recorded write on a replica: a store, without reading the slot (a load
    /// miss would stall the worker; a store miss does not). `false` when the position does
    /// not exist (the replica's layout differs from the master's: a configuration error).
    #[inline]
    pub fn replay(&mut self, w: &SlotWrite<S>) -> bool {
        let Some(slot) = self
            .buckets
            .get_mut(w.bucket as usize)
            .and_then(|x| x.slots.get_mut(usize::from(w.slot)))
        else {
            return false;
        };
        *slot = w.value;
        self.len = self.len.wrapping_add_signed(isize::from(w.len_delta));
        true
    }

    /// True when `other` holds the same entries in the same slots, so it can replay this
    /// table's journal.
    pub fn same_layout(&self, other: &Self) -> bool
    where
        S: PartialEq,
    {
        self.buckets.len() == other.buckets.len()
            && self
                .buckets
                .iter()
                .zip(other.buckets.iter())
                .all(|(a, b)| a.slots == b.slots)
    }

    /// Overwrites the slot holding `value`'s key in place; `false` when the key is absent.
    pub fn replace(&mut self, value: S) -> bool {
        let key = value.key();
        let c = self.candidates(&key);
        match self.locate(&key, c) {
            Some((b, i)) => {
                self.write(b, i, value);
                true
            }
            None => false,
        }
    }

    /// Inserts `slot`, replacing (and returning) a slot with the same key.
    pub fn insert(&mut self, slot: S) -> Result<Option<S>, TableFull> {
        let key = slot.key();
        let c = self.candidates(&key);
        if let Some((b, i)) = self.locate(&key, c) {
            let old = self.buckets[b].slots[i];
            self.write(b, i, slot);
            return Ok(Some(old));
        }
        if self.len >= self.capacity {
            return Err(TableFull);
        }
        self.place(slot, c)?;
        Ok(None)
    }

    /// Removes and returns the slot holding `key`.
    pub fn remove(&mut self, key: &S::Key) -> Option<S> {
        let c = self.candidates(key);
        let (b, i) = self.locate(key, c)?;
        let old = self.buckets[b].slots[i];
        self.write(b, i, S::EMPTY);
        Some(old)
    }

    /// Every occupied slot, in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = &S> {
        self.buckets
            .iter()
            .flat_map(|b| b.slots.iter())
            .filter(|s| !s.is_empty())
    }

    fn free_slot(&self, b: usize) -> Option<usize> {
        self.buckets[b].slots.iter().position(|s| s.is_empty())
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64: only spreads displacement choices, needs no quality.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn place(&mut self, slot: S, c: Candidates) -> Result<(), TableFull> {
        for b in [c.first as usize, c.second as usize] {
            if let Some(i) = self.free_slot(b) {
                self.write(b, i, slot);
                return Ok(());
            }
        }
        let mut path = [(0usize, 0usize); MAX_PATH];
        // Random walk: record the chain of victims without moving anything, then move them
        // back to front once a free slot is found, so a failure changes nothing.
        let mut depth = 0;
        let r = self.next_rand();
        let mut cur = if r & 1 == 0 { c.first } else { c.second } as usize;
        while depth < MAX_PATH {
            let start = (self.next_rand() as usize) % SLOTS;
            let Some(i) = (0..SLOTS)
                .map(|k| (start + k) % SLOTS)
                .find(|&i| !path[..depth].contains(&(cur, i)))
            else {
                return Err(TableFull);
            };
            path[depth] = (cur, i);
            depth += 1;
            let vc = self.candidates(&self.buckets[cur].slots[i].key());
            let alt = if vc.first as usize == cur {
                vc.second
            } else {
                vc.first
            } as usize;
            if let Some(e) = self.free_slot(alt) {
                let mut to = (alt, e);
                for &from in path[..depth].iter().rev() {
                    let moved = self.buckets[from.0].slots[from.1];
                    self.write(to.0, to.1, moved);
                    to = from;
                }
                self.write(to.0, to.1, slot);
                return Ok(());
            }
            cur = alt;
        }
        Err(TableFull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, FromZeros)]
    struct T {
        k: u64,
        v: u64,
    }

    impl Slot for T {
        type Key = u64;
        const EMPTY: Self = T { k: 0, v: 0 };
        fn is_empty(&self) -> bool {
            self.k == 0
        }
        fn key(&self) -> u64 {
            self.k
        }
        fn matches(&self, key: &u64) -> bool {
            self.k == *key && *key != 0
        }
        fn hash(key: &u64) -> u64 {
            mix64(*key)
        }
        fn word(&self) -> u32 {
            self.k as u32
        }
    }

    #[test]
    fn bucket_is_one_cache_line() {
        assert_eq!(core::mem::size_of::<Bucket<T>>(), 64);
        assert_eq!(core::mem::align_of::<Bucket<T>>(), 64);
    }

    #[test]
    fn fills_to_capacity_and_finds_everything() {
        let n = 100_000;
        let mut t = CuckooTable::<T>::with_capacity(n);
        for k in 1..=n as u64 {
            assert_eq!(t.insert(T { k, v: k * 3 }), Ok(None), "key {k}");
        }
        assert_eq!(t.len(), n);
        assert_eq!(t.insert(T { k: u64::MAX, v: 0 }), Err(TableFull));
        for k in 1..=n as u64 {
            assert_eq!(t.get(&k).map(|s| s.v), Some(k * 3));
        }
        assert!(t.get(&(n as u64 + 1)).is_none());
        assert_eq!(t.iter().count(), n);
    }

    /// A replica replaying the master's journal after every update has the master's length
    /// and contents throughout, and the same layout at the end.
    #[test]
    fn journal_replay_keeps_replicas_identical() {
        let n = 20_000;
        let mut master = CuckooTable::<T>::with_capacity(n);
        let mut replica = master.clone();
        master.enable_journal();
        let mut log = Vec::new();
        for k in 1..=n as u64 {
            master.insert(T { k, v: k }).expect("room");
            if k % 3 == 0 {
                master.remove(&(k - 1));
            }
            master.drain_journal(|w| log.push(w));
            for w in log.drain(..) {
                assert!(replica.replay(&w));
            }
            assert_eq!(replica.len(), master.len());
        }
        assert!(replica.same_layout(&master));
        for k in 1..=n as u64 {
            assert_eq!(replica.get(&k).is_some(), master.get(&k).is_some());
        }
        assert!(!replica.replay(&SlotWrite {
            bucket: u32::MAX,
            slot: 0,
            len_delta: 1,
            value: T { k: 1, v: 1 }
        }));
    }

    /// Every prefix of the writes of an insert that displaces entries keeps all entries.
    #[test]
    fn displacement_prefixes_lose_nothing() {
        let n = 4_000;
        let mut master = CuckooTable::<T>::with_capacity(n);
        let mut replica = master.clone();
        master.enable_journal();
        let mut keys = Vec::new();
        for k in 1..=n as u64 {
            master.insert(T { k, v: k }).expect("room");
            let mut writes = Vec::new();
            master.drain_journal(|w| writes.push(w));
            for w in &writes {
                assert!(replica.replay(w));
                if writes.len() > 1 {
                    for old in &keys {
                        assert!(
                            replica.get(old).is_some(),
                            "key {old} lost mid-displacement"
                        );
                    }
                }
            }
            keys.push(k);
        }
    }

    #[test]
    fn replace_remove_and_burst() {
        let mut t = CuckooTable::<T>::with_capacity(16);
        t.set_prefetch(Some(|p: *const u8| {
            black_box(p);
        }));
        assert_eq!(t.insert(T { k: 5, v: 1 }), Ok(None));
        assert_eq!(t.insert(T { k: 5, v: 2 }), Ok(Some(T { k: 5, v: 1 })));
        assert_eq!(t.len(), 1);
        t.insert(T { k: 6, v: 3 }).expect("room");
        let mut out = [None; 3];
        t.get_burst(&[6, 7, 5], &mut out);
        assert_eq!(out, [Some(T { k: 6, v: 3 }), None, Some(T { k: 5, v: 2 })]);
        assert_eq!(t.remove(&5), Some(T { k: 5, v: 2 }));
        assert_eq!(t.remove(&5), None);
        assert_eq!(t.len(), 1);
        assert!(t.replace(T { k: 6, v: 9 }));
        assert!(!t.replace(T { k: 8, v: 9 }));
        assert_eq!(t.get(&6).map(|s| s.v), Some(9));
        assert_eq!(t.len(), 1);
    }
}
