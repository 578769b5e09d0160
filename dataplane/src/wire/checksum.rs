//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// One's complement sum of `data` as big-endian 16-bit words, not yet folded or complemented.
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// Folds carries of a 32-bit partial sum into 16 bits.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum to store in a header whose checksum field is zero.
pub fn internet(data: &[u8]) -> u16 {
    !fold(sum(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 section 3 example bytes: 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(
            fold(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }
}
