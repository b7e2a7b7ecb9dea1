//! Reply payloads (framed later with [`crate::packet::frame`]): `OK`,
//! `Enn`, stop replies (`T`, `W`, `X`), thread ids, `qXfer` chunks.

use alloc::vec::Vec;

use crate::hex;

/// `OK`.
pub fn ok() -> Vec<u8> {
    b"OK".to_vec()
}

/// The empty reply: "not supported".
pub fn empty() -> Vec<u8> {
    Vec::new()
}

/// `Enn` with `code` as two hex digits.
pub fn error(code: u8) -> Vec<u8> {
    let mut out = b"E".to_vec();
    hex::encode_into(&mut out, &[code]);
    out
}

/// How thread ids are written: plain `tid`, or `p<pid>.<tid>` once gdb and
/// the stub agreed on the multiprocess extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadFormat {
    pub multiprocess: bool,
}

impl ThreadFormat {
    /// Appends the id of thread `tid` of process `pid`.
    pub fn push(self, out: &mut Vec<u8>, pid: u64, tid: u64) {
        if self.multiprocess {
            out.push(b'p');
            hex::push_number(out, pid);
            out.push(b'.');
        }
        hex::push_number(out, tid);
    }
}

/// A `T` stop reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StopReply<'a> {
    /// gdb's signal number.
    pub signal: u8,
    /// The stopped thread: `(pid, tid)`.
    pub thread: Option<(u64, u64)>,
    /// Stopped by a software breakpoint, with the pc already on it.
    pub swbreak: bool,
    /// Expedited registers: `(number, little-endian bytes)`.
    pub registers: &'a [(usize, &'a [u8])],
}

impl StopReply<'_> {
    /// `TssSWBREAK:;thread:ID;NN:VALUE;...`
    pub fn encode(&self, format: ThreadFormat) -> Vec<u8> {
        let mut out = b"T".to_vec();
        hex::encode_into(&mut out, &[self.signal]);
        if self.swbreak {
            out.extend_from_slice(b"swbreak:;");
        }
        if let Some((pid, tid)) = self.thread {
            out.extend_from_slice(b"thread:");
            format.push(&mut out, pid, tid);
            out.push(b';');
        }
        for &(n, value) in self.registers {
            match u8::try_from(n) {
                Ok(small) => hex::encode_into(&mut out, &[small]),
                Err(_) => hex::push_number(&mut out, n as u64),
            }
            out.push(b':');
            hex::encode_into(&mut out, value);
            out.push(b';');
        }
        out
    }
}

fn with_process(mut out: Vec<u8>, pid: Option<u64>) -> Vec<u8> {
    if let Some(pid) = pid {
        out.extend_from_slice(b";process:");
        hex::push_number(&mut out, pid);
    }
    out
}

/// `Wcc[;process:pid]`: the process exited with `code`.
pub fn exited(code: u8, pid: Option<u64>) -> Vec<u8> {
    let mut out = b"W".to_vec();
    hex::encode_into(&mut out, &[code]);
    with_process(out, pid)
}

/// `Xss[;process:pid]`: the process was killed by gdb signal `signal`.
pub fn killed(signal: u8, pid: Option<u64>) -> Vec<u8> {
    let mut out = b"X".to_vec();
    hex::encode_into(&mut out, &[signal]);
    with_process(out, pid)
}

/// `QC<id>`.
pub fn current_thread(format: ThreadFormat, pid: u64, tid: u64) -> Vec<u8> {
    let mut out = b"QC".to_vec();
    format.push(&mut out, pid, tid);
    out
}

/// `m<id>,<id>...` for `qfThreadInfo` (use `l` for the end of the list).
pub fn thread_list(format: ThreadFormat, threads: &[(u64, u64)]) -> Vec<u8> {
    if threads.is_empty() {
        return b"l".to_vec();
    }
    let mut out = b"m".to_vec();
    for (i, &(pid, tid)) in threads.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        format.push(&mut out, pid, tid);
    }
    out
}

/// A `qXfer` read reply for `data[offset..offset + len]`: `m` + bytes when
/// more follows, `l` + bytes for the last part.
pub fn xfer_chunk(data: &[u8], offset: usize, len: usize) -> Vec<u8> {
    let start = offset.min(data.len());
    let end = start.saturating_add(len).min(data.len());
    let mut out = Vec::with_capacity(end - start + 1);
    out.push(if end < data.len() { b'm' } else { b'l' });
    out.extend_from_slice(&data[start..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MP: ThreadFormat = ThreadFormat { multiprocess: true };
    const PLAIN: ThreadFormat = ThreadFormat {
        multiprocess: false,
    };

    #[test]
    fn simple() {
        assert_eq!(ok(), b"OK");
        assert_eq!(error(14), b"E0e");
        assert_eq!(empty(), b"");
        assert_eq!(exited(7, None), b"W07");
        assert_eq!(exited(7, Some(0x2a)), b"W07;process:2a");
        assert_eq!(killed(9, Some(3)), b"X09;process:3");
    }

    #[test]
    fn stop_replies() {
        let t = StopReply {
            signal: 5,
            thread: Some((0x2a, 0x2a)),
            swbreak: false,
            registers: &[],
        };
        assert_eq!(t.encode(MP), b"T05thread:p2a.2a;");
        assert_eq!(t.encode(PLAIN), b"T05thread:2a;");
        let rip = 0x401000u64.to_le_bytes();
        let t = StopReply {
            signal: 5,
            thread: Some((3, 3)),
            swbreak: true,
            registers: &[(16, &rip)],
        };
        assert_eq!(
            t.encode(PLAIN),
            b"T05swbreak:;thread:3;10:0010400000000000;"
        );
        let t = StopReply {
            signal: 2,
            ..StopReply::default()
        };
        assert_eq!(t.encode(MP), b"T02");
    }

    #[test]
    fn threads() {
        assert_eq!(current_thread(MP, 0x10, 0x10), b"QCp10.10");
        assert_eq!(current_thread(PLAIN, 0x10, 0x10), b"QC10");
        assert_eq!(thread_list(MP, &[(1, 1), (1, 2)]), b"mp1.1,p1.2");
        assert_eq!(thread_list(PLAIN, &[]), b"l");
    }

    #[test]
    fn xfer_chunks() {
        let data = b"0123456789";
        assert_eq!(xfer_chunk(data, 0, 4), b"m0123");
        assert_eq!(xfer_chunk(data, 8, 4), b"l89");
        assert_eq!(xfer_chunk(data, 6, 4), b"l6789");
        assert_eq!(xfer_chunk(data, 10, 4), b"l");
        assert_eq!(xfer_chunk(data, 100, usize::MAX), b"l");
    }
}
