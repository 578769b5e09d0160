//! The checks of the `ldp_pdu` fuzz target, shared with a corpus test and a proptest so the
//! normal test suite runs them on stable Rust. A panic is a finding.

use super::framer::Framer;
use super::wire;

/// Any bytes as one PDU: a decode that succeeds encodes, and the encoding decodes to the
/// same PDU with nothing rejected or ignored (what was rejected or ignored is not encoded),
/// in no more bytes than it came in. The same bytes through the framer, in two pieces, give
/// PDUs that are each a prefix of the stream.
pub fn exercise(data: &[u8]) {
    if let Ok(d) = wire::decode(data, u16::MAX) {
        let bytes = match d.pdu.to_bytes() {
            Ok(b) => b,
            Err(e) => panic!("decoded PDU does not encode: {e}"),
        };
        assert!(bytes.len() <= data.len(), "encoding grew");
        match wire::decode(&bytes, u16::MAX) {
            Ok(again) => {
                assert_eq!(again.pdu, d.pdu, "round trip changed the PDU");
                assert!(again.rejected.is_empty() && again.ignored == 0);
            }
            Err(e) => panic!("re-encoded PDU does not decode: {e}"),
        }
    }
    let mut f = Framer::default();
    let cut = data.len() / 2;
    f.push(&data[..cut]);
    let mut seen = 0;
    let drain = |f: &mut Framer, seen: &mut usize| {
        while let Some(r) = f.next_pdu() {
            match r {
                Ok(p) => {
                    assert_eq!(data.get(*seen..*seen + p.len()), Some(&p[..]));
                    *seen += p.len();
                }
                Err(_) => break,
            }
        }
    };
    drain(&mut f, &mut seen);
    f.push(&data[cut..]);
    drain(&mut f, &mut seen);
    assert!(seen <= data.len());
}
