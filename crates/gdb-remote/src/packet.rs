//! Packet framing: `$payload#cc` with a modulo-256 checksum, the `+`/`-`
//! acknowledgements, the interrupt byte 0x03, `}` escapes and run-length
//! encoding (`X*n`: `X` repeated `n - 29` more times).
//!
//! [`Decoder`] turns a byte stream into [`Input`]s one byte at a time and
//! never fails: noise between packets is skipped, a `$` inside a packet
//! starts over (the cut packet is dropped), and a packet that is too long
//! or cannot be decoded is reported, not stored.

use alloc::vec::Vec;

use crate::hex;

/// The interrupt request gdb sends (Ctrl-C) while the target runs.
pub const INTERRUPT: u8 = 0x03;

/// The largest payload accepted by default, before and after decoding.
pub const DEFAULT_MAX_PAYLOAD: usize = 0x4000;

/// One thing received from the debugger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A packet with a valid checksum; the payload is decoded (escapes and
    /// run-length encoding undone).
    Packet(Vec<u8>),
    /// `+`: the last packet sent arrived.
    Ack,
    /// `-`: the last packet sent must be sent again.
    Nack,
    /// 0x03 between packets: stop the running target.
    Interrupt,
    /// A complete packet whose checksum is wrong (or not two hex digits):
    /// answer `-` so it is sent again.
    BadChecksum,
    /// A packet with a valid checksum that could not be used.
    Invalid(Invalid),
}

/// Why a well-checksummed packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Longer than the decoder's limit (raw or decoded).
    Overlong,
    /// A `}` at the end, or a run-length marker without a valid count or
    /// with nothing before it.
    BadEncoding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Body,
    Check1,
    Check2(u8),
}

/// Incremental packet decoder.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    raw: Vec<u8>,
    sum: u8,
    overlong: bool,
    max: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PAYLOAD)
    }
}

impl Decoder {
    /// A decoder accepting payloads of at most `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder {
            state: State::Idle,
            raw: Vec::new(),
            sum: 0,
            overlong: false,
            max,
        }
    }

    /// Forgets any partial packet.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.raw.clear();
        self.sum = 0;
        self.overlong = false;
    }

    /// True while inside a packet (between `$` and the checksum).
    pub fn in_packet(&self) -> bool {
        self.state != State::Idle
    }

    fn start(&mut self) {
        self.reset();
        self.state = State::Body;
    }

    /// Feeds one byte; returns what it completed, if anything.
    pub fn push(&mut self, byte: u8) -> Option<Input> {
        match self.state {
            State::Idle => match byte {
                b'$' => {
                    self.start();
                    None
                }
                b'+' => Some(Input::Ack),
                b'-' => Some(Input::Nack),
                INTERRUPT => Some(Input::Interrupt),
                _ => None,
            },
            State::Body => {
                match byte {
                    b'$' => self.start(),
                    b'#' => self.state = State::Check1,
                    _ => {
                        self.sum = self.sum.wrapping_add(byte);
                        if self.raw.len() < self.max {
                            self.raw.push(byte);
                        } else {
                            self.overlong = true;
                        }
                    }
                }
                None
            }
            State::Check1 => {
                if byte == b'$' {
                    self.start();
                } else {
                    self.state = State::Check2(byte);
                }
                None
            }
            State::Check2(first) => {
                if byte == b'$' {
                    self.start();
                    return None;
                }
                let given = hex::digit(first)
                    .zip(hex::digit(byte))
                    .map(|(h, l)| h << 4 | l);
                let input = if given != Some(self.sum) {
                    Input::BadChecksum
                } else if self.overlong {
                    Input::Invalid(Invalid::Overlong)
                } else {
                    match decode_payload(&self.raw, self.max) {
                        Ok(payload) => Input::Packet(payload),
                        Err(why) => Input::Invalid(why),
                    }
                };
                self.reset();
                Some(input)
            }
        }
    }

    /// Feeds a chunk of bytes; returns everything it completed, in order.
    pub fn push_all(&mut self, bytes: &[u8]) -> Vec<Input> {
        bytes.iter().filter_map(|&b| self.push(b)).collect()
    }
}

/// Undoes run-length encoding (on the raw bytes, as gdb does), then `}`
/// escapes.
fn decode_payload(raw: &[u8], max: usize) -> Result<Vec<u8>, Invalid> {
    let mut expanded: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'*' {
            let count = raw.get(i + 1).ok_or(Invalid::BadEncoding)?;
            let repeat = usize::from(count.checked_sub(29).ok_or(Invalid::BadEncoding)?);
            let last = *expanded.last().ok_or(Invalid::BadEncoding)?;
            if expanded.len() + repeat > max {
                return Err(Invalid::Overlong);
            }
            expanded.resize(expanded.len() + repeat, last);
            i += 2;
        } else {
            expanded.push(b);
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(expanded.len());
    let mut bytes = expanded.into_iter();
    while let Some(b) = bytes.next() {
        if b == b'}' {
            out.push(bytes.next().ok_or(Invalid::BadEncoding)? ^ 0x20);
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

/// The modulo-256 sum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

/// Frames `payload` as `$...#cc`, escaping `$`, `#`, `}` and `*`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.push(b'$');
    for &b in payload {
        if matches!(b, b'$' | b'#' | b'}' | b'*') {
            out.push(b'}');
            out.push(b ^ 0x20);
        } else {
            out.push(b);
        }
    }
    let sum = checksum(&out[1..]);
    out.push(b'#');
    hex::encode_into(&mut out, &[sum]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn packet(p: &[u8]) -> Input {
        Input::Packet(p.to_vec())
    }

    #[test]
    fn frames_and_checksums() {
        assert_eq!(frame(b"OK"), b"$OK#9a");
        assert_eq!(frame(b""), b"$#00");
        assert_eq!(frame(b"a$b"), b"$a}\x04b#44");
        assert_eq!(checksum(b"OK"), 0x9a);
    }

    #[test]
    fn decodes_a_packet_and_acks() {
        let mut d = Decoder::default();
        assert_eq!(
            d.push_all(b"+$OK#9a-\x03"),
            vec![Input::Ack, packet(b"OK"), Input::Nack, Input::Interrupt]
        );
        assert_eq!(d.push_all(b"$g#67"), vec![packet(b"g")]);
        // Upper-case checksum digits are fine.
        assert_eq!(d.push_all(b"$OK#9A"), vec![packet(b"OK")]);
    }

    #[test]
    fn what_it_frames_it_decodes() {
        let mut d = Decoder::default();
        let payload = b"x}#$*\x03\xff end";
        assert_eq!(d.push_all(&frame(payload)), vec![packet(payload)]);
    }

    #[test]
    fn bad_checksum_is_reported() {
        let mut d = Decoder::default();
        assert_eq!(d.push_all(b"$OK#00"), vec![Input::BadChecksum]);
        assert_eq!(d.push_all(b"$OK#zz"), vec![Input::BadChecksum]);
        // A checksum cut short by the next packet: that one counts.
        assert_eq!(d.push_all(b"$OK#9"), vec![]);
        assert_eq!(d.push_all(b"$g#67"), vec![packet(b"g")]);
        // A checksum with one digit then noise is a bad checksum.
        assert_eq!(
            d.push_all(b"$g#6x$g#67"),
            vec![Input::BadChecksum, packet(b"g")]
        );
    }

    #[test]
    fn truncated_packets_are_dropped() {
        let mut d = Decoder::default();
        // A packet cut by the start of the next one.
        assert_eq!(d.push_all(b"$m10,4$g#67"), vec![packet(b"g")]);
        // Cut after the '#' or the first checksum digit.
        assert_eq!(d.push_all(b"$OK#$g#67"), vec![packet(b"g")]);
        assert_eq!(d.push_all(b"$OK#9$g#67"), vec![packet(b"g")]);
        // Cut at the end: nothing yet, and still inside a packet.
        assert_eq!(d.push_all(b"$m10"), vec![]);
        assert!(d.in_packet());
        d.reset();
        assert!(!d.in_packet());
    }

    #[test]
    fn garbage_between_packets_is_skipped() {
        let mut d = Decoder::default();
        assert_eq!(
            d.push_all(b"hello\r\n#12\x00\xff$g#67junk#$?#3f"),
            vec![packet(b"g"), packet(b"?")]
        );
    }

    #[test]
    fn overlong_packets_are_refused_whole() {
        let mut d = Decoder::new(8);
        let mut long = Vec::from(&b"$"[..]);
        long.extend_from_slice(&[b'a'; 20]);
        long.push(b'#');
        hex::encode_into(&mut long, &[checksum(&[b'a'; 20])]);
        assert_eq!(d.push_all(&long), vec![Input::Invalid(Invalid::Overlong)]);
        // With a wrong checksum it is just a bad checksum.
        assert_eq!(
            d.push_all(b"$aaaaaaaaaaaaaaaaaaaa#00"),
            vec![Input::BadChecksum]
        );
        assert_eq!(d.push_all(b"$g#67"), vec![packet(b"g")]);
        // Run-length encoding cannot blow past the limit either.
        assert_eq!(
            d.push_all(&frame_raw(b"0*~")),
            vec![Input::Invalid(Invalid::Overlong)]
        );
    }

    /// Frames raw bytes without escaping them.
    fn frame_raw(raw: &[u8]) -> Vec<u8> {
        let mut out = vec![b'$'];
        out.extend_from_slice(raw);
        out.push(b'#');
        hex::encode_into(&mut out, &[checksum(raw)]);
        out
    }

    #[test]
    fn run_length_and_escapes() {
        let mut d = Decoder::default();
        // '0' then "*" with count ' ' (32 - 29 = 3 more).
        assert_eq!(d.push_all(&frame_raw(b"0* ")), vec![packet(b"0000")]);
        assert_eq!(d.push_all(&frame_raw(b"ab*\"c")), vec![packet(b"abbbbbbc")]);
        assert_eq!(d.push_all(&frame_raw(b"}\x03}]")), vec![packet(b"#}")]);
        for bad in [&b"*  "[..], b"a}", b"a*", b"a*\x10"] {
            assert_eq!(
                d.push_all(&frame_raw(bad)),
                vec![Input::Invalid(Invalid::BadEncoding)],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once() {
        let stream = b"+$qSupported:multiprocess+;swbreak+#xx$m1000,8#5e-\x03$c#63";
        let mut a = Decoder::default();
        let all = a.push_all(stream);
        let mut b = Decoder::default();
        let one: Vec<Input> = stream.iter().filter_map(|&c| b.push(c)).collect();
        assert_eq!(all, one);
        assert_eq!(all.len(), 6);
    }
}
