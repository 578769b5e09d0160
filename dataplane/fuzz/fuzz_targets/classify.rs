//! Fuzzes header classification and every role of a node. From `dataplane/`, on nightly:
//! `cargo +nightly fuzz run classify /tmp/classify-corpus fuzz/corpus/classify` (new inputs
//! go to the first directory, so the checked-in seeds stay as they are). The seeds are
//! replayed on stable by the plain test `dataplane/tests/fuzz_corpus.rs`.

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
