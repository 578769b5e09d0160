//! The node's label space: local labels allocated to FECs, and given back for reuse once
//! every peer has released them.

use std::collections::BTreeSet;

use super::wire::LABEL_MAX;

/// The first label that is not reserved (RFC 3032 §2.1 reserves 0 to 15).
pub const FIRST_UNRESERVED: u32 = 16;

/// Labels `first..=last`, handed out lowest first.
#[derive(Debug, Clone)]
pub struct LabelSpace {
    first: u32,
    last: u32,
    /// Every label below this one has been handed out at some time.
    next: u32,
    /// Labels released, reused before new ones.
    free: BTreeSet<u32>,
}

impl LabelSpace {
    /// The range clamped to the unreserved 20-bit labels.
    pub fn new(first: u32, last: u32) -> LabelSpace {
        let first = first.max(FIRST_UNRESERVED);
        LabelSpace {
            first,
            last: last.min(LABEL_MAX),
            next: first,
            free: BTreeSet::new(),
        }
    }

    /// A label not in use, or None when the range is exhausted.
    pub fn allocate(&mut self) -> Option<u32> {
        if let Some(l) = self.free.pop_first() {
            return Some(l);
        }
        (self.next <= self.last).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Gives a label back.
    pub fn release(&mut self, label: u32) {
        if (self.first..self.next).contains(&label) {
            self.free.insert(label);
        }
    }

    /// Labels handed out and not given back.
    pub fn in_use(&self) -> usize {
        (self.next - self.first) as usize - self.free.len()
    }
}

#[test]
fn allocates_lowest_reuses_released_and_exhausts() {
    let mut s = LabelSpace::new(0, 18);
    assert_eq!(s.allocate(), Some(16));
    assert_eq!(s.allocate(), Some(17));
    assert_eq!(s.allocate(), Some(18));
    assert_eq!(s.allocate(), None);
    assert_eq!(s.in_use(), 3);
    s.release(17);
    s.release(99);
    assert_eq!(s.in_use(), 2);
    assert_eq!(s.allocate(), Some(17));
    assert_eq!(s.allocate(), None);
}
