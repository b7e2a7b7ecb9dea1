//! gdbserver: `gdbserver PROGRAM ARGS...` starts PROGRAM held at its first
//! instruction and serves the host's gdb over `serial2:` with the GDB
//! remote protocol (registers, memory, software breakpoints, continue,
//! single-step, signals, Ctrl-C, detach, kill). When the program is gone it
//! prints the program's status and exits with it.
#![no_std]
#![no_main]

extern crate alloc;

mod inferior;
mod link;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use gdb_remote::amd64::{self, File};
use gdb_remote::reply::{self, StopReply, ThreadFormat};
use gdb_remote::request::{BreakpointType, ResumeKind, ThreadId};
use gdb_remote::{hex, signal, Input, Request};
use syscall::error::Error;
use syscall::flag::{O_CLOEXEC, O_RDWR};

use inferior::{Inferior, Resume, Stop};
use link::Link;

rt::entry!(main);

/// Set by `-v`: log packets and trace events to the console.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Logs to the console (stderr) with `-v`.
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::VERBOSE.load(core::sync::atomic::Ordering::Relaxed) {
            rt::eprintln!("gdbserver: {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use debug;

/// The largest memory read answered at once (the reply doubles it in hex
/// and must fit in the packet size announced, 0x4000).
const MAX_READ: usize = 0x1f00;

/// The `PacketSize` announced in `qSupported`.
const PACKET_SIZE: usize = 0x4000;

fn main(args: &[&str]) -> i32 {
    let mut args = &args[1.min(args.len())..];
    if args.first() == Some(&"-v") {
        VERBOSE.store(true, Ordering::Relaxed);
        args = &args[1..];
    }
    if args.is_empty() {
        rt::eprintln!("usage: gdbserver [-v] PROGRAM [ARGS...]");
        return 2;
    }
    let program = args[0];
    let inferior = match Inferior::start(program, &args[1..]) {
        Ok(inferior) => inferior,
        Err(why) => {
            rt::eprintln!("gdbserver: {}", why);
            return 1;
        }
    };
    let port = match syscall::open("serial2:", O_RDWR | O_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            rt::eprintln!("gdbserver: serial2: {}", rt::errno::describe(&e));
            let _ = inferior.kill();
            return 1;
        }
    };
    let mut server = Server {
        link: Link::new(port),
        inferior: Some(inferior),
        format: ThreadFormat {
            multiprocess: false,
        },
        swbreak: false,
    };
    if let Some(inferior) = server.inferior.as_mut() {
        if let Err(e) = inferior.watch_link(&server.link) {
            rt::eprintln!("gdbserver: event: {}", rt::errno::describe(&e));
        }
        rt::println!(
            "gdbserver: process {} ({}) held at its entry point",
            inferior.pid,
            program
        );
    }
    rt::println!("gdbserver: waiting for gdb on serial2:");
    let status = server.serve();
    match status {
        Ok(status) => {
            rt::println!("gdbserver: {} {}", program, rt::process::describe(status));
            rt::process::exit_code(status)
        }
        Err(e) => {
            rt::eprintln!("gdbserver: {}", rt::errno::describe(&e));
            1
        }
    }
}

struct Server {
    link: Link,
    /// `None` once it was killed or detached.
    inferior: Option<Inferior>,
    format: ThreadFormat,
    /// gdb understands `swbreak` stop reasons (pc left on the breakpoint).
    swbreak: bool,
}

/// What to do after a request.
enum Next {
    Reply(Vec<u8>),
    /// The reply was already sent.
    Sent,
    /// Send this reply, then end with the wait status.
    Finish(Vec<u8>, usize),
    /// End with the wait status without a reply.
    Quit(usize),
}

/// `Enn` from an errno.
fn errno_reply(e: Error) -> Vec<u8> {
    reply::error(e.errno.clamp(1, 255) as u8)
}

impl Server {
    fn inferior(&mut self) -> &mut Inferior {
        self.inferior
            .as_mut()
            .expect("served only while the process exists")
    }

    fn pid(&self) -> u64 {
        self.inferior.as_ref().map_or(0, |i| i.pid as u64)
    }

    /// Serves gdb until the process is gone; returns its wait status.
    fn serve(&mut self) -> syscall::error::Result<usize> {
        loop {
            match self.link.next()? {
                Input::Ack | Input::Interrupt => {}
                Input::Nack => self.link.resend()?,
                Input::BadChecksum => self.link.nack()?,
                Input::Invalid(_) => {
                    self.link.ack()?;
                    self.link.send(&reply::error(1))?;
                }
                Input::Packet(payload) => {
                    debug!("<- {}", alloc::string::String::from_utf8_lossy(&payload));
                    self.link.ack_packet(&payload)?;
                    // Another process may have killed the program while it
                    // was stopped: its exit event is then waiting, and
                    // every request sees it.
                    if let Some(inferior) = self.inferior.as_mut() {
                        inferior.check_gone();
                    }
                    let next = match Request::parse(&payload) {
                        Ok(request) => self.handle(request),
                        Err(_) => Next::Reply(reply::error(1)),
                    };
                    if let Next::Reply(r) | Next::Finish(r, _) = &next {
                        debug!("-> {}", alloc::string::String::from_utf8_lossy(r));
                    }
                    match next {
                        Next::Reply(r) => self.link.send(&r)?,
                        Next::Sent => {}
                        Next::Finish(r, status) => {
                            self.link.send(&r)?;
                            return Ok(status);
                        }
                        Next::Quit(status) => return Ok(status),
                    }
                }
            }
        }
    }

    fn stop_reply(&mut self) -> Next {
        let pid = self.pid();
        let process = self.format.multiprocess.then_some(pid);
        let swbreak = self.swbreak;
        let inferior = self.inferior();
        let (signal, at_breakpoint) = match inferior.stop {
            Stop::Exited(status) => {
                let r = if syscall::flag::wifsignaled(status) {
                    reply::killed(signal::to_gdb(syscall::flag::wtermsig(status)), process)
                } else {
                    reply::exited(syscall::flag::wexitstatus(status) as u8, process)
                };
                return Next::Finish(r, status);
            }
            Stop::Signal { sig, .. } | Stop::Delivered(sig) => (signal::to_gdb(sig), false),
            // `swbreak` only while gdb's breakpoint is still there.
            Stop::Breakpoint { addr, ours } => {
                (signal::GDB_TRAP, ours && inferior.is_planted(addr))
            }
            Stop::Entry | Stop::Step => (signal::GDB_TRAP, false),
        };
        let regs = match inferior.registers() {
            Ok(regs) => regs,
            Err(e) if inferior.check_gone() => {
                debug!(
                    "registers: {}: the process is gone",
                    rt::errno::describe(&e)
                );
                return self.stop_reply();
            }
            Err(e) => return Next::Reply(errno_reply(e)),
        };
        let values: Vec<(usize, Vec<u8>)> = [amd64::RBP, amd64::RSP, amd64::RIP]
            .iter()
            .filter_map(|&n| Some((n, regs.get(n)?)))
            .collect();
        let expedited: Vec<(usize, &[u8])> =
            values.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        Next::Reply(
            StopReply {
                signal,
                thread: Some((pid, pid)),
                swbreak: at_breakpoint && swbreak,
                registers: &expedited,
            }
            .encode(self.format),
        )
    }

    fn resume(&mut self, how: Resume, gdb_signal: Option<u8>, addr: Option<u64>) -> Next {
        let signal = gdb_signal.and_then(signal::from_gdb);
        let swbreak = self.swbreak;
        let Some(inferior) = self.inferior.as_mut() else {
            return Next::Reply(reply::error(1));
        };
        if let Some(addr) = addr {
            if let Err(e) = inferior.set_pc(addr) {
                return Next::Reply(errno_reply(e));
            }
        }
        match inferior.resume(how, signal, &mut self.link) {
            Ok(Stop::Breakpoint { addr, ours: true }) if !swbreak => {
                // Without `swbreak`, gdb backs the pc up over the int3
                // itself, as after a hardware trap.
                if let Err(e) = inferior.set_pc(addr + 1) {
                    return Next::Reply(errno_reply(e));
                }
            }
            Ok(_) => {}
            Err(e) => {
                debug!("resume: {}", rt::errno::describe(&e));
                return Next::Reply(errno_reply(e));
            }
        }
        self.stop_reply()
    }

    fn handle(&mut self, request: Request) -> Next {
        let pid = self.pid();
        let is_us = |t: &ThreadId| t.matches(pid, pid);
        let ok_if = |cond: bool| Next::Reply(if cond { reply::ok() } else { reply::error(1) });
        match request {
            Request::Supported(features) => {
                let has = |name: &[u8]| features.iter().any(|f| f == name);
                self.format.multiprocess = has(b"multiprocess+");
                self.swbreak = has(b"swbreak+");
                // A new session starts with acknowledgements on (already
                // turned on before the packet was acked).
                self.link.no_ack = false;
                let mut r = alloc::format!(
                    "PacketSize={PACKET_SIZE:x};QStartNoAckMode+;qXfer:features:read+;swbreak+"
                );
                if self.format.multiprocess {
                    r.push_str(";multiprocess+");
                }
                Next::Reply(r.into_bytes())
            }
            Request::StartNoAckMode => {
                if let Err(e) = self.link.send(&reply::ok()) {
                    return Next::Reply(errno_reply(e));
                }
                self.link.no_ack = true;
                Next::Sent
            }
            Request::HaltReason => self.stop_reply(),
            Request::ReadRegisters => match self.inferior().registers() {
                Ok(regs) => Next::Reply(hex::encode(&regs.to_g())),
                Err(e) => Next::Reply(errno_reply(e)),
            },
            Request::WriteRegisters(image) => {
                let inferior = self.inferior();
                let result = inferior.registers().and_then(|mut regs| {
                    regs.set_from_g(&image)
                        .map_err(|_| Error::new(syscall::error::EINVAL))?;
                    inferior.set_registers(&regs, &[File::Int, File::Float, File::Env])
                });
                Next::Reply(result.map_or_else(errno_reply, |_| reply::ok()))
            }
            Request::ReadRegister(n) => {
                let value = self.inferior().registers().map(|regs| regs.get(n));
                Next::Reply(match value {
                    Ok(Some(bytes)) => hex::encode(&bytes),
                    Ok(None) => reply::error(0x45),
                    Err(e) => errno_reply(e),
                })
            }
            Request::WriteRegister(n, bytes) => {
                let Some(file) = amd64::file_of(n) else {
                    return Next::Reply(reply::error(0x45));
                };
                let inferior = self.inferior();
                let result = inferior.registers().and_then(|mut regs| {
                    regs.set(n, &bytes)
                        .map_err(|_| Error::new(syscall::error::EINVAL))?;
                    inferior.set_registers(&regs, &[file])
                });
                Next::Reply(result.map_or_else(errno_reply, |_| reply::ok()))
            }
            Request::ReadMemory { addr, len } => {
                if len == 0 {
                    return Next::Reply(reply::error(1));
                }
                let len = len.min(MAX_READ);
                Next::Reply(match self.inferior().read_memory(addr, len) {
                    Ok(bytes) => hex::encode(&bytes),
                    Err(e) => errno_reply(e),
                })
            }
            Request::WriteMemory { addr, data } => Next::Reply(
                self.inferior()
                    .write_memory(addr, &data)
                    .map_or_else(errno_reply, |_| reply::ok()),
            ),
            Request::Continue { signal, addr } => self.resume(Resume::Continue, signal, addr),
            Request::Step { signal, addr } => self.resume(Resume::Step, signal, addr),
            Request::VContQuery => Next::Reply(b"vCont;c;C;s;S".to_vec()),
            Request::VCont(actions) => {
                let mine = actions.iter().find(|a| a.thread.as_ref().is_none_or(is_us));
                match mine.map(|a| (a.kind, a.signal)) {
                    Some((ResumeKind::Continue, sig)) => self.resume(Resume::Continue, sig, None),
                    Some((ResumeKind::Step, sig)) => self.resume(Resume::Step, sig, None),
                    // Nothing to resume: still stopped.
                    Some((ResumeKind::Stop, _)) | None => self.stop_reply(),
                }
            }
            Request::InsertBreakpoint { ty, addr, .. } => match ty {
                BreakpointType::Software => Next::Reply(
                    self.inferior()
                        .insert_breakpoint(addr)
                        .map_or_else(errno_reply, |_| reply::ok()),
                ),
                _ => Next::Reply(reply::empty()),
            },
            Request::RemoveBreakpoint { ty, addr, .. } => match ty {
                BreakpointType::Software => Next::Reply(
                    self.inferior()
                        .remove_breakpoint(addr)
                        .map_or_else(errno_reply, |_| reply::ok()),
                ),
                _ => Next::Reply(reply::empty()),
            },
            Request::Detach(target) => {
                if target.is_some_and(|p| p != pid) {
                    return Next::Reply(reply::error(1));
                }
                if let Err(e) = self.link.send(&reply::ok()) {
                    return Next::Reply(errno_reply(e));
                }
                rt::println!("gdbserver: detached; process {} runs on", pid);
                let inferior = self.inferior.take().expect("present while serving");
                match inferior.detach() {
                    Ok(status) => Next::Quit(status),
                    Err(e) => {
                        rt::eprintln!("gdbserver: detach: {}", rt::errno::describe(&e));
                        Next::Quit(1 << 8)
                    }
                }
            }
            Request::Kill | Request::VKill(_) => {
                if let Request::VKill(target) = request {
                    if target != pid {
                        return Next::Reply(reply::error(1));
                    }
                }
                let inferior = self.inferior.take().expect("present while serving");
                let status = inferior.kill().unwrap_or(syscall::flag::SIGKILL);
                rt::println!("gdbserver: killed process {}", pid);
                if matches!(request, Request::Kill) {
                    Next::Quit(status)
                } else {
                    Next::Finish(reply::ok(), status)
                }
            }
            Request::Attached => Next::Reply(b"0".to_vec()),
            Request::CurrentThread => Next::Reply(reply::current_thread(self.format, pid, pid)),
            Request::ThreadInfoFirst => Next::Reply(reply::thread_list(self.format, &[(pid, pid)])),
            Request::ThreadInfoNext => Next::Reply(reply::thread_list(self.format, &[])),
            Request::SetThread(_, thread) => ok_if(is_us(&thread)),
            Request::ThreadAlive(thread) => ok_if(is_us(&thread)),
            Request::ReadFeatures { annex, offset, len } => {
                if annex != b"target.xml" {
                    return Next::Reply(reply::error(0));
                }
                let xml = amd64::target_xml();
                Next::Reply(reply::xfer_chunk(xml.as_bytes(), offset, len))
            }
            Request::Unknown => Next::Reply(reply::empty()),
        }
    }
}
