//! The peers protocol's variable-length integer ("intencode"/"intdecode" in
//! HAProxy's peers.c).
//!
//! A value below 240 is one byte. Otherwise the first byte is `0xF0 | low
//! 4 bits`, and the rest, after subtracting 240 and shifting by 4, follows in
//! 7-bit groups: every byte but the last is `0x80 | group`, and each step
//! subtracts 128 before shifting by 7. Decoding adds every raw byte (flag bit
//! included) shifted by 4, 11, 18, ... bits. The subtractions make the code
//! bijective: every value has exactly one encoding.
//!
//! | bytes | smallest value        |
//! |-------|-----------------------|
//! | 1     | 0                     |
//! | 2     | 240                   |
//! | 3     | 2 288                 |
//! | 4     | 264 432               |
//! | 5     | 33 818 864            |
//! | 10    | 1 161 999 626 690 365 680 (`u64::MAX` needs 10) |

/// The longest encoding of a `u64`. Longer runs of continuation bytes are
/// rejected ([`VarintError::TooLong`]), so a decoder never reads more than
/// this many bytes for one integer.
pub const MAX_VARINT_LEN: usize = 10;

/// Values from this one up take two bytes or more.
const TWO_BYTES_MIN: u64 = 0xF0;
/// Bits of the value carried by the first byte of a long encoding.
const FIRST_BITS: u32 = 4;
/// Continuation flag of the following bytes.
const MORE: u64 = 0x80;
/// Bits of the value carried by each following byte.
const NEXT_BITS: u32 = 7;

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarintError {
    /// The input ends before the last byte (on a stream: wait for more).
    Truncated,
    /// More than [`MAX_VARINT_LEN`] bytes: no `u64` is encoded this way.
    TooLong,
    /// Ten bytes whose value does not fit in a `u64`.
    Overflow,
}

/// Appends the encoding of `v` to `out` (1 to 10 bytes).
pub fn encode_varint(v: u64, out: &mut Vec<u8>) {
    if v < TWO_BYTES_MIN {
        out.push(v as u8);
        return;
    }
    out.push((v as u8) | TWO_BYTES_MIN as u8);
    let mut rest = (v - TWO_BYTES_MIN) >> FIRST_BITS;
    while rest >= MORE {
        out.push((rest as u8) | MORE as u8);
        rest = (rest - MORE) >> NEXT_BITS;
    }
    out.push(rest as u8);
}

/// The number of bytes [`encode_varint`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    let mut out = Vec::with_capacity(MAX_VARINT_LEN);
    encode_varint(v, &mut out);
    out.len()
}

/// Reads one varint at the start of `buf`: the value and the number of
/// bytes it took.
pub fn decode_varint(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let Some(&first) = buf.first() else {
        return Err(VarintError::Truncated);
    };
    if u64::from(first) < TWO_BYTES_MIN {
        return Ok((u64::from(first), 1));
    }
    // u128: ten raw bytes shifted up to 60 bits may exceed u64 before the
    // final range check.
    let mut value = u128::from(first);
    let mut shift = FIRST_BITS;
    let mut used = 1;
    loop {
        if used == MAX_VARINT_LEN {
            return Err(VarintError::TooLong);
        }
        let Some(&b) = buf.get(used) else {
            return Err(VarintError::Truncated);
        };
        value += u128::from(b) << shift;
        shift += NEXT_BITS;
        used += 1;
        if u64::from(b) < MORE {
            break;
        }
    }
    u64::try_from(value)
        .map(|v| (v, used))
        .map_err(|_| VarintError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_varint(v, &mut out);
        out
    }

    #[test]
    fn byte_exact_encodings() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(1), [0x01]);
        assert_eq!(enc(239), [0xEF]);
        // 240: first byte 0xF0 | (240 & 0x0F), then (240-240)>>4 = 0.
        assert_eq!(enc(240), [0xF0, 0x00]);
        assert_eq!(enc(241), [0xF1, 0x00]);
        assert_eq!(enc(255), [0xFF, 0x00]);
        assert_eq!(enc(256), [0xF0, 0x01]);
        // Last two-byte value: 240 + 15 + 127 * 16.
        assert_eq!(enc(2287), [0xFF, 0x7F]);
        assert_eq!(enc(2288), [0xF0, 0x80, 0x00]);
        assert_eq!(enc(264_431), [0xFF, 0xFF, 0x7F]);
        assert_eq!(enc(264_432), [0xF0, 0x80, 0x80, 0x00]);
        assert_eq!(enc(33_818_863), [0xFF, 0xFF, 0xFF, 0x7F]);
        assert_eq!(enc(33_818_864), [0xF0, 0x80, 0x80, 0x80, 0x00]);
        // 3600000 (one hour in ms, a typical table expiry).
        assert_eq!(enc(3_600_000), [0xF0, 0xD9, 0xDC, 0x0C]);
    }

    #[test]
    fn length_boundaries_match_the_spec_table() {
        let mins = [
            0u64,
            240,
            2288,
            264_432,
            33_818_864,
            4_328_786_160,
            554_084_600_048,
            70_922_828_777_712,
            9_078_122_083_518_704,
            1_161_999_626_690_365_680,
        ];
        for (i, &min) in mins.iter().enumerate() {
            assert_eq!(varint_len(min), i + 1, "min of {} bytes", i + 1);
            if min > 0 {
                assert_eq!(varint_len(min - 1), i, "max of {} bytes", i);
            }
        }
        assert_eq!(varint_len(u64::MAX), MAX_VARINT_LEN);
    }

    #[test]
    fn round_trips_around_every_boundary() {
        let mut values = vec![u64::MAX, u64::MAX - 1, 1 << 63, u32::MAX as u64];
        for bits in 0..64 {
            let p = 1u64 << bits;
            values.extend([p - 1, p, p + 1]);
        }
        for min in [240u64, 2288, 264_432, 33_818_864, 4_328_786_160] {
            values.extend([min - 1, min, min + 1]);
        }
        for v in values {
            let e = enc(v);
            assert_eq!(decode_varint(&e), Ok((v, e.len())), "{v}");
            // Every strict prefix is incomplete, never a wrong value.
            for cut in 0..e.len() {
                assert_eq!(decode_varint(&e[..cut]), Err(VarintError::Truncated), "{v}");
            }
            // Trailing bytes are not consumed.
            let mut longer = e.clone();
            longer.push(0x42);
            assert_eq!(decode_varint(&longer), Ok((v, e.len())));
        }
    }

    #[test]
    fn every_two_and_three_byte_code_decodes_to_its_own_encoding() {
        // Bijective: decoding any well-formed sequence and re-encoding gives
        // the same bytes.
        for b0 in 0xF0..=0xFFu8 {
            for b1 in 0..=0xFFu8 {
                let seq: Vec<u8> = if b1 < 0x80 {
                    vec![b0, b1]
                } else {
                    vec![b0, b1, 0x33]
                };
                let (v, used) = decode_varint(&seq).unwrap();
                assert_eq!(used, seq.len());
                assert_eq!(enc(v), seq);
            }
        }
    }

    #[test]
    fn rejects_too_long_and_overflow() {
        // Eleven bytes of continuation: rejected after ten, without reading on.
        let long = [
            0xF0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ];
        assert_eq!(decode_varint(&long), Err(VarintError::TooLong));
        assert_eq!(decode_varint(&long[..10]), Err(VarintError::TooLong));
        // Ten bytes ending in a large final group: beyond u64.
        let big = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        assert_eq!(decode_varint(&big), Err(VarintError::Overflow));
        assert_eq!(decode_varint(&[]), Err(VarintError::Truncated));
    }
}
