//! Cuts LDP PDUs out of a session's TCP byte stream (RFC 5036 §3.1: PDUs follow each other
//! on the stream, each announcing its length).

use super::wire::{self, DecodeError, DEFAULT_MAX_PDU_LEN};

/// Bytes of a TCP stream waiting to form whole PDUs.
#[derive(Debug, Clone)]
pub struct Framer {
    buf: Vec<u8>,
    max_pdu_len: u16,
    broken: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_PDU_LEN)
    }
}

impl Framer {
    /// A framer accepting PDU Lengths up to `max_pdu_len`.
    pub fn new(max_pdu_len: u16) -> Framer {
        Framer {
            buf: Vec::new(),
            max_pdu_len,
            broken: false,
        }
    }

    /// Sets the maximum PDU length once the session has negotiated it.
    pub fn set_max_pdu_len(&mut self, max_pdu_len: u16) {
        self.max_pdu_len = max_pdu_len;
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.broken {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that are not yet part of a whole PDU.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole PDU, None until one has arrived. A bad PDU Length is a fatal error
    /// (Bad PDU Length, RFC 5036 §3.9): the framing of everything after it is lost, so the
    /// framer stops and every later call returns the same error.
    pub fn next_pdu(&mut self) -> Option<Result<Vec<u8>, DecodeError>> {
        let head: [u8; 4] = self.buf.get(..4)?.try_into().ok()?;
        let total = match wire::pdu_total_len(&head, self.max_pdu_len) {
            Ok(t) => t,
            Err(e) => {
                self.broken = true;
                return Some(Err(e));
            }
        };
        if self.buf.len() < total {
            return None;
        }
        let rest = self.buf.split_off(total);
        Some(Ok(std::mem::replace(&mut self.buf, rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keepalive() -> Vec<u8> {
        // Version 1, PDU Length 14, 10.0.0.1:0, KeepAlive ID 7.
        vec![0, 1, 0, 14, 10, 0, 0, 1, 0, 0, 0x02, 0x01, 0, 4, 0, 0, 0, 7]
    }

    #[test]
    fn byte_by_byte_then_two_at_once() {
        let mut f = Framer::default();
        let k = keepalive();
        for (i, b) in k.iter().enumerate() {
            assert_eq!(f.next_pdu(), None, "early at {i}");
            f.push(&[*b]);
        }
        assert_eq!(f.next_pdu(), Some(Ok(k.clone())));
        assert_eq!(f.next_pdu(), None);
        let mut two = k.clone();
        two.extend_from_slice(&k);
        two.push(0);
        f.push(&two);
        assert_eq!(f.next_pdu(), Some(Ok(k.clone())));
        assert_eq!(f.next_pdu(), Some(Ok(k)));
        assert_eq!(f.next_pdu(), None);
        assert_eq!(f.pending(), 1);
    }

    #[test]
    fn bad_length_is_fatal_and_sticks() {
        let mut f = Framer::new(4096);
        f.push(&[0, 1, 0x10, 0x01]);
        let e = Some(Err(DecodeError::BadPduLength {
            len: 4097,
            max: 4096,
        }));
        assert_eq!(f.next_pdu(), e);
        f.push(&keepalive());
        assert_eq!(f.next_pdu(), e);
        let mut f = Framer::new(4096);
        f.push(&[0, 1, 0, 5]);
        assert!(matches!(f.next_pdu(), Some(Err(_))));
        // A smaller negotiated maximum applies to the next PDU.
        let mut f = Framer::new(4096);
        f.set_max_pdu_len(13);
        f.push(&keepalive());
        assert!(matches!(f.next_pdu(), Some(Err(_))));
    }
}
