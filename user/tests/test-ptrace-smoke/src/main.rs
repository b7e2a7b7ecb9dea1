//! The tracing handshake end to end: a child stops itself, the parent
//! attaches and follows every syscall stop to the exit event.
#![no_std]
#![no_main]

extern crate alloc;

use rt::println;
use syscall::flag::{WaitFlags, SIGSTOP};
use tracer::{Stopped, Tracer, PTRACE_SYSCALL};

rt::entry!(main);

fn main(_args: &[&str]) -> i32 {
    let child = rt::process::fork_with(|| {
        let _ = syscall::kill(syscall::getpid().unwrap(), SIGSTOP);
        let _ = syscall::write(1, b"child: hello\n");
        3
    })
    .expect("fork");
    let (_, status) = rt::process::waitpid(child, WaitFlags::WUNTRACED).expect("waitpid");
    println!("stopped: {}", syscall::flag::wifstopped(status));
    let mut t = Tracer::attach(child).expect("attach");
    let _ = syscall::kill(child, syscall::flag::SIGCONT);
    loop {
        match t.resume(PTRACE_SYSCALL, |e| {
            println!("event cause={:#x} a={} b={}", e.cause, e.a, e.b)
        }) {
            Ok(Stopped::Reached(s)) => println!(
                "stop cause={} nr={} ret={:#x} rip={:#x}",
                s.cause, s.nr, s.ret, s.addr
            ),
            Ok(Stopped::Breakpoint(addr)) => {
                println!("unexpected int3 at {:#x}", addr);
                return 1;
            }
            Ok(Stopped::Exited(st)) => {
                println!("exited status={:#x}", st);
                break;
            }
            Err(e) => {
                println!("error {:?}", e);
                return 1;
            }
        }
    }
    drop(t);
    let status = rt::process::wait(child).expect("wait");
    println!("reaped: {}", rt::process::describe(status));
    0
}
