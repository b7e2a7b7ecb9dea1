//! Hex digits as the remote protocol writes them: byte strings, and
//! big-endian numbers (addresses, lengths, register numbers).

use alloc::vec::Vec;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The value of one hex digit (either case).
pub fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Appends two lower-case hex digits per byte of `bytes` to `out`.
pub fn encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xF)]);
    }
}

/// Two lower-case hex digits per byte.
pub fn encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    encode_into(&mut out, bytes);
    out
}

/// Decodes pairs of hex digits; `None` for an odd length or a non-digit.
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A big-endian hex number of at most 64 significant bits (leading zeros
/// allowed); `None` if empty, not hex, or too large.
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &c in text {
        let d = digit(c)?;
        if value >> 60 != 0 {
            return None;
        }
        value = value << 4 | u64::from(d);
    }
    Some(value)
}

/// Like [`parse_u64`], for values that must fit in `usize`.
pub fn parse_usize(text: &[u8]) -> Option<usize> {
    usize::try_from(parse_u64(text)?).ok()
}

/// Appends `value` as lower-case hex without leading zeros (`0` for zero).
pub fn push_number(out: &mut Vec<u8>, value: u64) {
    let digits = (64 - value.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(DIGITS[((value >> (i * 4)) & 0xF) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        assert_eq!(encode(&[0x00, 0xAB, 0x7F]), b"00ab7f");
        assert_eq!(decode(b"00AB7f"), Some(alloc::vec![0x00, 0xAB, 0x7F]));
        assert_eq!(decode(b""), Some(alloc::vec![]));
    }

    #[test]
    fn bad_hex_is_refused() {
        assert_eq!(decode(b"abc"), None);
        assert_eq!(decode(b"zz"), None);
        assert_eq!(decode(b"0g"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"12x"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"10000000000000000"), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"00000000ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_u64(b"DeadBeef"), Some(0xdead_beef));
        let mut out = Vec::new();
        push_number(&mut out, 0);
        out.push(b',');
        push_number(&mut out, 0x1f);
        out.push(b',');
        push_number(&mut out, u64::MAX);
        assert_eq!(out, b"0,1f,ffffffffffffffff");
    }
}
