//! Fuzzes header classification and every role of a node: `cargo fuzz run classify`
//! (from `dataplane/`, nightly). Seeds: `corpus/classify`, replayed by the plain test
//! `dataplane/tests/fuzz_corpus.rs` on stable.

#![no_main]

use ispmux_dataplane::roles::harness::ClassifyHarness;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    static HARNESS: RefCell<ClassifyHarness> = RefCell::new(ClassifyHarness::new());
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|h| {
        h.borrow_mut().run(data);
    });
});
