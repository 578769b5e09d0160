//! The MACs registered with an ISP in the subscriber registry, wherever they attach, as a
//! filter: what lets a worker drop a DHCP storm from unknown MACs itself.
//!
//! A DHCP logon from a MAC the registry does not hold is always refused (the registry is
//! keyed by MAC, claim 20), so the slow path learns nothing from a million of them a second
//! but the refusal. With this filter a worker tells such a frame from a logon with one
//! memory read and drops it (`unregistered`), at about the cost of the `unknown_mac` drop of
//! any other frame from an unknown source; the slow path, the punt ring and the logons of
//! registered subscribers never see the storm. [`DhcpFilter`] says when the filter may be
//! trusted, and how many unregistered logons a worker still punts so their refusals are
//! recorded.
//!
//! Why a Bloom filter and not a set of MACs: a worker only needs "surely not registered",
//! and the tables have a budget of 64 bytes per subscriber per copy, of which the subscriber,
//! downstream and label tables already take 56. This is a blocked Bloom filter (Putze,
//! Sanders, Singler 2007): each MAC sets [`BITS`] bits of one 64-bit word, 16 bits of filter
//! per MAC of capacity, so 2 bytes a subscriber per copy, one cache line a lookup, and a
//! false positive rate near 1 % at full capacity (a registered-looking stranger is punted
//! and refused by the slow path, as every stranger was before the filter). There are no
//! false negatives: the master copy keeps a count per bit and clears a bit only when no
//! registered MAC sets it any more; copies without counts never clear one.

use super::cuckoo::mix64;
use crate::wire::MacAddr;

/// Bits a MAC sets, all in one word.
pub const BITS: u32 = 3;
/// Filter bits per MAC of capacity.
pub const BITS_PER_MAC: usize = 16;

/// Eight words, cache-line aligned as the other tables' buckets (for huge-page advice).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(64))]
struct Line([u64; 8]);

/// The registered MACs, as a blocked Bloom filter; see the module documentation.
#[derive(Clone)]
pub struct RegisteredFilter {
    lines: Box<[Line]>,
    /// Words in `lines`.
    words: usize,
    /// Registered MACs setting each bit, saturating (a saturated bit stays set): the master
    /// copy only, from [`RegisteredFilter::enable_journal`].
    counts: Option<Box<[u8]>>,
    /// Word writes not yet drained (index, new word): the master copy only.
    journal: Option<Vec<(u32, u64)>>,
}

impl RegisteredFilter {
    /// An empty filter for `capacity` MACs.
    pub fn with_capacity(capacity: usize) -> Self {
        let lines = (capacity.max(1) * BITS_PER_MAC)
            .div_ceil(512)
            .clamp(2, u32::MAX as usize / 8);
        Self {
            lines: vec![Line::default(); lines].into_boxed_slice(),
            words: lines * 8,
            counts: None,
            journal: None,
        }
    }

    /// The word and mask of `mac`.
    #[inline(always)]
    fn position(&self, mac: MacAddr) -> (usize, u64) {
        let h = mix64(mac.to_u64());
        // Lemire's range reduction on the high half, bits from the low half.
        let word = (((h >> 32) * self.words as u64) >> 32) as usize;
        let mask = (0..BITS).fold(0u64, |m, i| m | 1 << ((h >> (6 * i)) & 63));
        (word, mask)
    }

    /// False when `mac` is surely not registered.
    #[inline(always)]
    pub fn may_contain(&self, mac: MacAddr) -> bool {
        let (w, mask) = self.position(mac);
        self.word(w).is_some_and(|x| x & mask == mask)
    }

    /// Starts loading the line `mac` is looked up in: the headend's look-ahead does for
    /// DHCP frames, so a storm of them does not wait on memory one frame at a time.
    #[inline(always)]
    pub fn prefetch(&self, mac: MacAddr) {
        let (w, _) = self.position(mac);
        if let Some(line) = self.lines.get(w / 8) {
            #[cfg(feature = "dpdk")]
            ispmux_sys::prefetch_line((line as *const Line).cast());
            #[cfg(not(feature = "dpdk"))]
            core::hint::black_box(line.0[0]);
        }
    }

    /// Adds `mac`. The caller adds a MAC at most once and removes only what it added.
    pub fn insert(&mut self, mac: MacAddr) {
        let (w, mask) = self.position(mac);
        if let Some(counts) = self.counts.as_mut() {
            for b in bits(mask) {
                if let Some(c) = counts.get_mut(w * 64 + b) {
                    *c = c.saturating_add(1);
                }
            }
        }
        self.set_word(w, |x| x | mask);
    }

    /// Removes `mac`, added before. Clears the bits no other MAC sets; without counts (a copy
    /// that is not the master) clears nothing.
    pub fn remove(&mut self, mac: MacAddr) {
        let (w, mask) = self.position(mac);
        let Some(counts) = self.counts.as_mut() else {
            return;
        };
        let mut clear = 0u64;
        for b in bits(mask) {
            if let Some(c) = counts.get_mut(w * 64 + b) {
                if *c != u8::MAX {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        clear |= 1 << b;
                    }
                }
            }
        }
        self.set_word(w, |x| x & !clear);
    }

    #[inline(always)]
    fn word(&self, w: usize) -> Option<u64> {
        self.lines.get(w / 8).map(|l| l.0[w % 8])
    }

    fn word_mut(&mut self, w: usize) -> Option<&mut u64> {
        self.lines.get_mut(w / 8).map(|l| &mut l.0[w % 8])
    }

    fn set_word(&mut self, w: usize, f: impl FnOnce(u64) -> u64) {
        let Some(x) = self.word_mut(w) else {
            return;
        };
        let new = f(*x);
        if new != *x {
            *x = new;
            if let Some(j) = self.journal.as_mut() {
                j.push((w as u32, new));
            }
        }
    }

    /// Counts from now on which MACs set each bit, so removing one can clear bits: the
    /// master copy, before its MACs are inserted (bits set before are counted as saturated,
    /// never cleared). Allocates a byte per bit (at start-up).
    pub fn enable_counts(&mut self) {
        if self.counts.is_none() {
            let counts = self
                .lines
                .iter()
                .flat_map(|l| l.0)
                .flat_map(|x| (0..64).map(move |b| u8::from(x >> b & 1 == 1) * u8::MAX))
                .collect();
            self.counts = Some(counts);
        }
    }

    /// Makes this the master copy: counts bits ([`Self::enable_counts`]) and records every
    /// word write for the replicas.
    pub fn enable_journal(&mut self) {
        self.enable_counts();
        self.journal = Some(Vec::new());
    }

    /// Takes `master`'s bits (a replica built before the workers start); `false` when the
    /// sizes differ.
    pub fn copy_bits(&mut self, master: &Self) -> bool {
        if self.lines.len() != master.lines.len() {
            return false;
        }
        self.lines.copy_from_slice(&master.lines);
        true
    }

    /// Moves the recorded word writes into `out`, oldest first.
    pub fn drain_journal(&mut self, mut out: impl FnMut(u32, u64)) {
        if let Some(j) = self.journal.as_mut() {
            for (w, x) in j.drain(..) {
                out(w, x);
            }
        }
    }

    /// Replays a word write of the master; `false` when the index does not fit.
    pub fn replay(&mut self, index: u32, word: u64) -> bool {
        match self.word_mut(index as usize) {
            Some(x) => {
                *x = word;
                true
            }
            None => false,
        }
    }

    /// True when `other` holds the same words.
    pub fn same_layout(&self, other: &Self) -> bool {
        self.lines == other.lines
    }

    /// The words, for advising huge pages.
    pub fn memory_region(&self) -> (*const u8, usize) {
        (self.lines.as_ptr().cast(), self.words * 8)
    }

    /// Bytes a copy holds (the master's counts are not counted: one copy, on the slow path).
    pub fn memory_bytes(&self) -> usize {
        self.words * 8
    }
}

fn bits(mask: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |b| mask >> b & 1 == 1)
}

/// How workers treat DHCP from a MAC that is neither in their subscriber table nor
/// registered. Set by the slow path, replicated like every table write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhcpFilter {
    /// The registered filter holds every MAC of the registry, so a MAC it rules out is not
    /// registered. False until the slow path has loaded the registry, and when it does not
    /// run the logon proxy: every DHCP frame is then punted.
    pub complete: bool,
    /// Unregistered logons each worker still punts per second, so the slow path refuses
    /// and records them; the rest are dropped in the worker as `unregistered`.
    pub punts_per_s: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(i: u64) -> MacAddr {
        MacAddr::from_u64(0x0200_0000_0000 | i)
    }

    #[test]
    fn no_false_negatives_and_few_false_positives_at_capacity() {
        let n = 100_000u64;
        let mut f = RegisteredFilter::with_capacity(n as usize);
        f.enable_journal();
        for i in 0..n {
            f.insert(mac(i));
        }
        assert!((0..n).all(|i| f.may_contain(mac(i))));
        let strangers = 200_000u64;
        let fp = (n..n + strangers)
            .filter(|i| f.may_contain(mac(*i)))
            .count();
        let rate = fp as f64 / strangers as f64;
        assert!(rate < 0.015, "false positive rate {rate}");
        assert!(f.memory_bytes() as f64 / n as f64 <= 2.0);
    }

    #[test]
    fn removing_clears_only_what_no_other_mac_needs() {
        let n = 20_000u64;
        let mut f = RegisteredFilter::with_capacity(n as usize);
        f.enable_journal();
        for i in 0..n {
            f.insert(mac(i));
        }
        for i in (0..n).step_by(2) {
            f.remove(mac(i));
        }
        assert!(
            (1..n).step_by(2).all(|i| f.may_contain(mac(i))),
            "a kept MAC lost"
        );
        let left = (0..n).step_by(2).filter(|i| f.may_contain(mac(*i))).count();
        assert!(left < n as usize / 20, "{left} removed MACs still match");
        for i in (1..n).step_by(2) {
            f.remove(mac(i));
        }
        assert!(f.lines.iter().all(|l| *l == Line::default()), "empty again");
    }

    #[test]
    fn replicas_replaying_the_journal_match_the_master() {
        let mut master = RegisteredFilter::with_capacity(1000);
        let mut replica = master.clone();
        master.enable_journal();
        for i in 0..500 {
            master.insert(mac(i));
        }
        for i in 0..250 {
            master.remove(mac(i * 2));
        }
        master.drain_journal(|w, x| assert!(replica.replay(w, x)));
        assert!(replica.same_layout(&master));
        assert!(!replica.replay(u32::MAX, 1));
        // A copy without counts never clears a bit: a remove cannot make a false negative.
        let mut copy = replica.clone();
        copy.remove(mac(1));
        assert!(copy.may_contain(mac(1)));
    }
}
