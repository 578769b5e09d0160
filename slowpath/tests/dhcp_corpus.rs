//! Runs the `dhcp_codec` fuzz target's checks over its seed corpus, so CI exercises them
//! without a nightly toolchain.

use std::path::PathBuf;

#[test]
fn seed_corpus_passes_the_fuzz_checks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-dhcp/corpus/dhcp_codec");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("seed");
        ispmux_slowpath::dhcp::fuzzing::exercise(&data);
        n += 1;
    }
    assert!(n >= 5, "expected the seeds in {}", dir.display());
}

#[test]
fn seeds_decode_as_intended() {
    use ispmux_slowpath::dhcp::{DecodeError, Message};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-dhcp/corpus/dhcp_codec");
    let read = |n: &str| std::fs::read(dir.join(n)).expect("seed");
    let req = Message::decode(&read("relayed_request")).expect("relayed request");
    assert!(req.option(82).is_some());
    assert!(Message::decode(&read("overload_rfc3396")).is_ok());
    assert_eq!(
        Message::decode(&read("bootp_no_cookie")),
        Err(DecodeError::BadCookie)
    );
    assert!(matches!(
        Message::decode(&read("truncated_option")),
        Err(DecodeError::TruncatedOption { .. })
    ));
}

#[test]
fn frame_seed_is_a_punted_discover() {
    use ispmux_slowpath::dhcp::{frame, Message, MessageType};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-dhcp/corpus/dhcp_codec");
    let raw = std::fs::read(dir.join("frame_vlan100_discover")).expect("seed");
    let p = frame::parse_punt(&raw).expect("frame parses");
    assert_eq!(p.vlan, 100);
    let m = Message::decode(p.payload).expect("payload decodes");
    assert_eq!(m.message_type(), Some(MessageType::Discover));
    assert_eq!(m.client_mac(), Some(p.src_mac));
    let raw = std::fs::read(dir.join("frame_qinq_discover")).expect("seed");
    let q = frame::parse_punt(&raw).expect("QinQ frame parses");
    assert_eq!((q.vlan, q.inner_vlan, q.payload), (300, 100, p.payload));
}
