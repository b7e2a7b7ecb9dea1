//! Requests: a packet's payload parsed into a typed [`Request`]. Known
//! packets with bad arguments are [`Malformed`]; packets this stub does not
//! implement are [`Request::Unknown`] (answered with an empty reply).

use alloc::vec::Vec;

use crate::hex;

/// A packet that names a known request but whose arguments are wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// A process or thread number in a thread id: `-1` (all), `0` (any) or a
/// positive number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Id {
    All,
    Any,
    Num(u64),
}

impl Id {
    fn parse(text: &[u8]) -> Option<Id> {
        match text {
            b"-1" => Some(Id::All),
            _ => match hex::parse_u64(text)? {
                0 => Some(Id::Any),
                n => Some(Id::Num(n)),
            },
        }
    }

    /// True if this selector picks `n`.
    pub fn matches(self, n: u64) -> bool {
        match self {
            Id::All | Id::Any => true,
            Id::Num(m) => m == n,
        }
    }
}

/// A thread id as gdb writes it: `tid`, or `p<pid>.<tid>` / `p<pid>` with
/// the multiprocess extensions (`p<pid>` alone means all its threads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId {
    pub pid: Option<Id>,
    pub tid: Id,
}

impl ThreadId {
    /// Parses a thread id; `None` if malformed.
    pub fn parse(text: &[u8]) -> Option<ThreadId> {
        if let Some(rest) = text.strip_prefix(b"p") {
            let mut parts = rest.splitn(2, |&c| c == b'.');
            let pid = Id::parse(parts.next()?)?;
            let tid = match parts.next() {
                Some(t) => Id::parse(t)?,
                None => Id::All,
            };
            Some(ThreadId {
                pid: Some(pid),
                tid,
            })
        } else {
            Some(ThreadId {
                pid: None,
                tid: Id::parse(text)?,
            })
        }
    }

    /// True if this id selects thread `tid` of process `pid`.
    pub fn matches(&self, pid: u64, tid: u64) -> bool {
        self.pid.is_none_or(|p| p.matches(pid)) && self.tid.matches(tid)
    }
}

/// How to resume the thread in a `vCont` action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeKind {
    Continue,
    Step,
    /// `t`: stop (for non-stop mode; an all-stop stub has nothing to do).
    Stop,
}

/// One action of `vCont;action[:thread];...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VContAction {
    pub kind: ResumeKind,
    /// `C sig` / `S sig`: the signal (gdb's numbering) to deliver.
    pub signal: Option<u8>,
    /// The threads it applies to; `None` applies to every thread no
    /// earlier action named.
    pub thread: Option<ThreadId>,
}

/// `Z`/`z` breakpoint types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakpointType {
    Software,
    Hardware,
    WriteWatch,
    ReadWatch,
    AccessWatch,
}

/// What `H` sets the thread for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadOp {
    /// `Hg`: register and memory access.
    General,
    /// `Hc`: resumption (`c`, `s`).
    Continue,
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `qSupported[:features]`: gdb's features, e.g. `multiprocess+`.
    Supported(Vec<Vec<u8>>),
    /// `QStartNoAckMode`.
    StartNoAckMode,
    /// `?`.
    HaltReason,
    /// `g`.
    ReadRegisters,
    /// `G hex`.
    WriteRegisters(Vec<u8>),
    /// `p n`.
    ReadRegister(usize),
    /// `P n=hex`.
    WriteRegister(usize, Vec<u8>),
    /// `m addr,len`.
    ReadMemory { addr: u64, len: usize },
    /// `M addr,len:hex` or `X addr,len:binary`.
    WriteMemory { addr: u64, data: Vec<u8> },
    /// `c [addr]` and `C sig[;addr]`.
    Continue {
        signal: Option<u8>,
        addr: Option<u64>,
    },
    /// `s [addr]` and `S sig[;addr]`.
    Step {
        signal: Option<u8>,
        addr: Option<u64>,
    },
    /// `vCont?`.
    VContQuery,
    /// `vCont;...`.
    VCont(Vec<VContAction>),
    /// `Z type,addr,kind`.
    InsertBreakpoint {
        ty: BreakpointType,
        addr: u64,
        kind: u64,
    },
    /// `z type,addr,kind`.
    RemoveBreakpoint {
        ty: BreakpointType,
        addr: u64,
        kind: u64,
    },
    /// `D` or `D;pid`.
    Detach(Option<u64>),
    /// `k`.
    Kill,
    /// `vKill;pid`.
    VKill(u64),
    /// `qAttached[:pid]`.
    Attached,
    /// `qC`.
    CurrentThread,
    /// `qfThreadInfo`.
    ThreadInfoFirst,
    /// `qsThreadInfo`.
    ThreadInfoNext,
    /// `Hg thread`, `Hc thread`.
    SetThread(ThreadOp, ThreadId),
    /// `T thread`.
    ThreadAlive(ThreadId),
    /// `qXfer:features:read:annex:offset,length`.
    ReadFeatures {
        annex: Vec<u8>,
        offset: usize,
        len: usize,
    },
    /// Anything else: answered with an empty packet.
    Unknown,
}

fn split_once(text: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = text.iter().position(|&c| c == sep)?;
    Some((&text[..at], &text[at + 1..]))
}

fn addr_len(text: &[u8]) -> Option<(u64, usize)> {
    let (addr, len) = split_once(text, b',')?;
    Some((hex::parse_u64(addr)?, hex::parse_usize(len)?))
}

fn signal(text: &[u8]) -> Option<u8> {
    if text.len() != 2 {
        return None;
    }
    hex::decode(text).map(|v| v[0])
}

/// `c`/`s` argument: nothing or an address.
fn optional_addr(text: &[u8]) -> Result<Option<u64>, Malformed> {
    if text.is_empty() {
        Ok(None)
    } else {
        hex::parse_u64(text).map(Some).ok_or(Malformed)
    }
}

/// `C`/`S` argument: `sig[;addr]`.
fn signal_and_addr(text: &[u8]) -> Result<(u8, Option<u64>), Malformed> {
    let (sig, addr) = match split_once(text, b';') {
        Some((sig, addr)) => (sig, Some(hex::parse_u64(addr).ok_or(Malformed)?)),
        None => (text, None),
    };
    Ok((signal(sig).ok_or(Malformed)?, addr))
}

fn breakpoint(text: &[u8]) -> Option<(BreakpointType, u64, u64)> {
    // `type,addr,kind` may be followed by `;cond...` lists: ignored.
    let text = split_once(text, b';').map_or(text, |(head, _)| head);
    let mut parts = text.split(|&c| c == b',');
    let ty = match parts.next()? {
        b"0" => BreakpointType::Software,
        b"1" => BreakpointType::Hardware,
        b"2" => BreakpointType::WriteWatch,
        b"3" => BreakpointType::ReadWatch,
        b"4" => BreakpointType::AccessWatch,
        _ => return None,
    };
    let addr = hex::parse_u64(parts.next()?)?;
    let kind = hex::parse_u64(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some((ty, addr, kind))
}

fn vcont(text: &[u8]) -> Option<Vec<VContAction>> {
    let mut actions = Vec::new();
    // `text` starts after "vCont", with ';' before every action.
    let rest = text.strip_prefix(b";")?;
    for item in rest.split(|&c| c == b';') {
        let (action, thread) = match split_once(item, b':') {
            Some((a, t)) => (a, Some(ThreadId::parse(t)?)),
            None => (item, None),
        };
        let (kind, signal) = match action.first()? {
            b'c' if action.len() == 1 => (ResumeKind::Continue, None),
            b's' if action.len() == 1 => (ResumeKind::Step, None),
            b't' if action.len() == 1 => (ResumeKind::Stop, None),
            b'C' => (ResumeKind::Continue, Some(signal(&action[1..])?)),
            b'S' => (ResumeKind::Step, Some(signal(&action[1..])?)),
            _ => return None,
        };
        actions.push(VContAction {
            kind,
            signal,
            thread,
        });
    }
    Some(actions)
}

fn features_read(text: &[u8]) -> Option<Request> {
    // text: "annex:offset,length"
    let at = text.iter().rposition(|&c| c == b':')?;
    let (annex, range) = (&text[..at], &text[at + 1..]);
    let (offset, len) = addr_len(range)?;
    Some(Request::ReadFeatures {
        annex: annex.to_vec(),
        offset: usize::try_from(offset).ok()?,
        len,
    })
}

impl Request {
    /// Parses a decoded packet payload.
    pub fn parse(p: &[u8]) -> Result<Request, Malformed> {
        let Some((&first, rest)) = p.split_first() else {
            return Ok(Request::Unknown);
        };
        let m = |v: Option<Request>| v.ok_or(Malformed);
        match first {
            b'?' if rest.is_empty() => Ok(Request::HaltReason),
            b'g' if rest.is_empty() => Ok(Request::ReadRegisters),
            b'G' => m(hex::decode(rest).map(Request::WriteRegisters)),
            b'p' => m(hex::parse_usize(rest).map(Request::ReadRegister)),
            b'P' => m((|| {
                let (n, v) = split_once(rest, b'=')?;
                Some(Request::WriteRegister(
                    hex::parse_usize(n)?,
                    hex::decode(v)?,
                ))
            })()),
            b'm' => m(addr_len(rest).map(|(addr, len)| Request::ReadMemory { addr, len })),
            b'M' => m((|| {
                let (range, data) = split_once(rest, b':')?;
                let (addr, len) = addr_len(range)?;
                let data = hex::decode(data)?;
                (data.len() == len).then_some(Request::WriteMemory { addr, data })
            })()),
            b'X' => m((|| {
                let (range, data) = split_once(rest, b':')?;
                let (addr, len) = addr_len(range)?;
                (data.len() == len).then(|| Request::WriteMemory {
                    addr,
                    data: data.to_vec(),
                })
            })()),
            b'c' => Ok(Request::Continue {
                signal: None,
                addr: optional_addr(rest)?,
            }),
            b's' => Ok(Request::Step {
                signal: None,
                addr: optional_addr(rest)?,
            }),
            b'C' => {
                let (sig, addr) = signal_and_addr(rest)?;
                Ok(Request::Continue {
                    signal: Some(sig),
                    addr,
                })
            }
            b'S' => {
                let (sig, addr) = signal_and_addr(rest)?;
                Ok(Request::Step {
                    signal: Some(sig),
                    addr,
                })
            }
            b'Z' => m(
                breakpoint(rest).map(|(ty, addr, kind)| Request::InsertBreakpoint {
                    ty,
                    addr,
                    kind,
                }),
            ),
            b'z' => m(
                breakpoint(rest).map(|(ty, addr, kind)| Request::RemoveBreakpoint {
                    ty,
                    addr,
                    kind,
                }),
            ),
            b'D' => match rest {
                b"" => Ok(Request::Detach(None)),
                _ => m(rest
                    .strip_prefix(b";")
                    .and_then(hex::parse_u64)
                    .map(|pid| Request::Detach(Some(pid)))),
            },
            b'k' if rest.is_empty() => Ok(Request::Kill),
            b'H' => {
                let op = match rest.first() {
                    Some(b'g') => ThreadOp::General,
                    Some(b'c') => ThreadOp::Continue,
                    _ => return Ok(Request::Unknown),
                };
                m(ThreadId::parse(&rest[1..]).map(|t| Request::SetThread(op, t)))
            }
            b'T' => m(ThreadId::parse(rest).map(Request::ThreadAlive)),
            b'q' | b'Q' | b'v' => Self::parse_named(p),
            _ => Ok(Request::Unknown),
        }
    }

    /// `q...`, `Q...` and `v...` packets, named by a word.
    fn parse_named(p: &[u8]) -> Result<Request, Malformed> {
        let m = |v: Option<Request>| v.ok_or(Malformed);
        if let Some(rest) = p.strip_prefix(b"qSupported") {
            return match rest {
                b"" => Ok(Request::Supported(Vec::new())),
                _ => m(rest.strip_prefix(b":").map(|list| {
                    Request::Supported(
                        list.split(|&c| c == b';')
                            .filter(|f| !f.is_empty())
                            .map(<[u8]>::to_vec)
                            .collect(),
                    )
                })),
            };
        }
        if let Some(rest) = p.strip_prefix(b"qXfer:features:read:") {
            return m(features_read(rest));
        }
        if let Some(rest) = p.strip_prefix(b"vCont") {
            return match rest {
                b"?" => Ok(Request::VContQuery),
                _ if rest.first() == Some(&b';') => m(vcont(rest).map(Request::VCont)),
                _ => Ok(Request::Unknown),
            };
        }
        if let Some(rest) = p.strip_prefix(b"vKill") {
            return m(rest
                .strip_prefix(b";")
                .and_then(hex::parse_u64)
                .map(Request::VKill));
        }
        if let Some(rest) = p.strip_prefix(b"qAttached") {
            return match rest {
                b"" => Ok(Request::Attached),
                _ => m(rest
                    .strip_prefix(b":")
                    .and_then(hex::parse_u64)
                    .map(|_| Request::Attached)),
            };
        }
        Ok(match p {
            b"QStartNoAckMode" => Request::StartNoAckMode,
            b"qC" => Request::CurrentThread,
            b"qfThreadInfo" => Request::ThreadInfoFirst,
            b"qsThreadInfo" => Request::ThreadInfoNext,
            _ => Request::Unknown,
        })
    }
}

/// Whether `payload` is a `qSupported` packet, with or without features:
/// the first packet of every gdb session. A stub turns acknowledgements back
/// on before acking it, whatever the previous session chose with
/// `QStartNoAckMode` (a new gdb expects its `+`).
pub fn starts_session(payload: &[u8]) -> bool {
    payload
        .strip_prefix(b"qSupported")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case parses as `Malformed`.
    fn assert_all_malformed(cases: &[&[u8]]) {
        for bad in cases {
            assert_eq!(
                parse(bad),
                Err(Malformed),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }
    use alloc::vec;

    fn parse(p: &[u8]) -> Result<Request, Malformed> {
        Request::parse(p)
    }

    fn thread(pid: Option<Id>, tid: Id) -> ThreadId {
        ThreadId { pid, tid }
    }

    #[test]
    fn simple_requests() {
        assert_eq!(parse(b"?"), Ok(Request::HaltReason));
        assert_eq!(parse(b"g"), Ok(Request::ReadRegisters));
        assert_eq!(parse(b"k"), Ok(Request::Kill));
        assert_eq!(parse(b"D"), Ok(Request::Detach(None)));
        assert_eq!(parse(b"D;1f"), Ok(Request::Detach(Some(0x1f))));
        assert_eq!(parse(b"qC"), Ok(Request::CurrentThread));
        assert_eq!(parse(b"qfThreadInfo"), Ok(Request::ThreadInfoFirst));
        assert_eq!(parse(b"qsThreadInfo"), Ok(Request::ThreadInfoNext));
        assert_eq!(parse(b"qAttached"), Ok(Request::Attached));
        assert_eq!(parse(b"qAttached:2a"), Ok(Request::Attached));
        assert_eq!(parse(b"QStartNoAckMode"), Ok(Request::StartNoAckMode));
        assert_eq!(parse(b"vCont?"), Ok(Request::VContQuery));
        assert_eq!(parse(b"vKill;2a"), Ok(Request::VKill(0x2a)));
    }

    #[test]
    fn registers() {
        assert_eq!(
            parse(b"G0011ff"),
            Ok(Request::WriteRegisters(vec![0, 0x11, 0xff]))
        );
        assert_eq!(parse(b"p10"), Ok(Request::ReadRegister(16)));
        assert_eq!(
            parse(b"P10=0100000000000000"),
            Ok(Request::WriteRegister(16, vec![1, 0, 0, 0, 0, 0, 0, 0]))
        );
        assert_all_malformed(&[
            &b"G0"[..],
            b"Gzz",
            b"p",
            b"px",
            b"P10",
            b"P=00",
            b"P10=0",
            b"P1x=00",
        ]);
    }

    #[test]
    fn memory() {
        assert_eq!(
            parse(b"m401000,40"),
            Ok(Request::ReadMemory {
                addr: 0x401000,
                len: 0x40
            })
        );
        assert_eq!(
            parse(b"M401000,2:cc90"),
            Ok(Request::WriteMemory {
                addr: 0x401000,
                data: vec![0xcc, 0x90]
            })
        );
        assert_eq!(
            parse(b"X10,3:a#b"),
            Ok(Request::WriteMemory {
                addr: 0x10,
                data: b"a#b".to_vec()
            })
        );
        assert_eq!(
            parse(b"X10,0:"),
            Ok(Request::WriteMemory {
                addr: 0x10,
                data: vec![]
            })
        );
        assert_all_malformed(&[
            &b"m"[..],
            b"m10",
            b"m10,",
            b"m,4",
            b"mzz,4",
            b"m10,4x",
            b"M10,2:cc",
            b"M10,1:c",
            b"M10,1:zz",
            b"M10,1",
            b"X10,2:a",
            b"X10",
        ]);
    }

    #[test]
    fn resume() {
        assert_eq!(
            parse(b"c"),
            Ok(Request::Continue {
                signal: None,
                addr: None
            })
        );
        assert_eq!(
            parse(b"c401000"),
            Ok(Request::Continue {
                signal: None,
                addr: Some(0x401000)
            })
        );
        assert_eq!(
            parse(b"s"),
            Ok(Request::Step {
                signal: None,
                addr: None
            })
        );
        assert_eq!(
            parse(b"C0b"),
            Ok(Request::Continue {
                signal: Some(11),
                addr: None
            })
        );
        assert_eq!(
            parse(b"S02;1000"),
            Ok(Request::Step {
                signal: Some(2),
                addr: Some(0x1000)
            })
        );
        for bad in [&b"cx"[..], b"C", b"C1", b"C123", b"Cxx", b"S02;", b"S02;q"] {
            assert_eq!(
                parse(bad),
                Err(Malformed),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn vcont() {
        assert_eq!(
            parse(b"vCont;c"),
            Ok(Request::VCont(vec![VContAction {
                kind: ResumeKind::Continue,
                signal: None,
                thread: None
            }]))
        );
        assert_eq!(
            parse(b"vCont;s:p2a.2a;c:p2a.-1;C05;S0b:3;t"),
            Ok(Request::VCont(vec![
                VContAction {
                    kind: ResumeKind::Step,
                    signal: None,
                    thread: Some(thread(Some(Id::Num(42)), Id::Num(42)))
                },
                VContAction {
                    kind: ResumeKind::Continue,
                    signal: None,
                    thread: Some(thread(Some(Id::Num(42)), Id::All))
                },
                VContAction {
                    kind: ResumeKind::Continue,
                    signal: Some(5),
                    thread: None
                },
                VContAction {
                    kind: ResumeKind::Step,
                    signal: Some(11),
                    thread: Some(thread(None, Id::Num(3)))
                },
                VContAction {
                    kind: ResumeKind::Stop,
                    signal: None,
                    thread: None
                },
            ]))
        );
        assert_all_malformed(&[
            &b"vCont;"[..],
            b"vCont;x",
            b"vCont;c:",
            b"vCont;C",
            b"vCont;cc",
            b"vCont;c:zz",
            b"vCont;r1,2",
        ]);
        // vContX is some other packet.
        assert_eq!(parse(b"vContX"), Ok(Request::Unknown));
    }

    #[test]
    fn breakpoints() {
        assert_eq!(
            parse(b"Z0,401000,1"),
            Ok(Request::InsertBreakpoint {
                ty: BreakpointType::Software,
                addr: 0x401000,
                kind: 1
            })
        );
        assert_eq!(
            parse(b"z0,401000,1"),
            Ok(Request::RemoveBreakpoint {
                ty: BreakpointType::Software,
                addr: 0x401000,
                kind: 1
            })
        );
        assert_eq!(
            parse(b"Z2,1000,8"),
            Ok(Request::InsertBreakpoint {
                ty: BreakpointType::WriteWatch,
                addr: 0x1000,
                kind: 8
            })
        );
        assert_eq!(
            parse(b"Z0,10,1;X2,ab"),
            Ok(Request::InsertBreakpoint {
                ty: BreakpointType::Software,
                addr: 0x10,
                kind: 1
            })
        );
        assert_all_malformed(&[
            &b"Z"[..],
            b"Z0",
            b"Z0,",
            b"Z0,10",
            b"Z5,10,1",
            b"Z0,zz,1",
            b"z0,10,1,2",
        ]);
    }

    #[test]
    fn threads() {
        assert_eq!(
            parse(b"Hg0"),
            Ok(Request::SetThread(ThreadOp::General, thread(None, Id::Any)))
        );
        assert_eq!(
            parse(b"Hc-1"),
            Ok(Request::SetThread(
                ThreadOp::Continue,
                thread(None, Id::All)
            ))
        );
        assert_eq!(
            parse(b"Hgp2a.2a"),
            Ok(Request::SetThread(
                ThreadOp::General,
                thread(Some(Id::Num(42)), Id::Num(42))
            ))
        );
        assert_eq!(
            parse(b"Tp2a"),
            Ok(Request::ThreadAlive(thread(Some(Id::Num(42)), Id::All)))
        );
        assert_eq!(
            parse(b"T7"),
            Ok(Request::ThreadAlive(thread(None, Id::Num(7))))
        );
        assert_eq!(parse(b"Hx0"), Ok(Request::Unknown));
        for bad in [&b"Hg"[..], b"Hgq", b"T", b"Tp", b"Tp1.", b"Tp1.2.3", b"T-2"] {
            assert_eq!(
                parse(bad),
                Err(Malformed),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
        let t = ThreadId::parse(b"p2a.-1").unwrap();
        assert!(t.matches(42, 42));
        assert!(!t.matches(43, 43));
        assert!(ThreadId::parse(b"-1").unwrap().matches(5, 5));
        assert!(!ThreadId::parse(b"6").unwrap().matches(5, 5));
    }

    #[test]
    fn queries() {
        assert_eq!(
            parse(b"qSupported:multiprocess+;swbreak+;xmlRegisters=i386"),
            Ok(Request::Supported(vec![
                b"multiprocess+".to_vec(),
                b"swbreak+".to_vec(),
                b"xmlRegisters=i386".to_vec()
            ]))
        );
        assert_eq!(parse(b"qSupported"), Ok(Request::Supported(vec![])));
        assert_eq!(parse(b"qSupportedx"), Err(Malformed));
        assert!(starts_session(b"qSupported"));
        assert!(starts_session(b"qSupported:multiprocess+;swbreak+"));
        assert!(!starts_session(b"qSupportedx"));
        assert!(!starts_session(b"QStartNoAckMode"));
        assert!(!starts_session(b"qC"));
        assert!(!starts_session(b""));
        assert_eq!(
            parse(b"qXfer:features:read:target.xml:0,ffb"),
            Ok(Request::ReadFeatures {
                annex: b"target.xml".to_vec(),
                offset: 0,
                len: 0xffb
            })
        );
        assert_all_malformed(&[
            &b"qXfer:features:read:target.xml"[..],
            b"qXfer:features:read:target.xml:0",
            b"qXfer:features:read:target.xml:x,1",
            b"vKill",
            b"vKill;",
            b"qAttached:",
            b"D;",
            b"D1",
        ]);
    }

    #[test]
    fn unknown_packets() {
        for p in [
            &b""[..],
            b"vMustReplyEmpty",
            b"qTStatus",
            b"qOffsets",
            b"qSymbol::",
            b"!",
            b"qXfer:auxv:read::0,100",
            b"vFile:setfs:0",
            b"\x00\xff",
            b"gg",
            b"?x",
        ] {
            assert_eq!(parse(p), Ok(Request::Unknown), "{:?}", p);
        }
    }
}
