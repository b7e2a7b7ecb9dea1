//! `test-entry nmi`: keeps the CPU busy in user mode, in system calls and
//! in process creation while the host injects NMIs (QEMU monitor `nmi`),
//! so they land anywhere, the edges of the entry paths included. It stops
//! when the host writes a byte to the second serial port, then checks that
//! nothing it did was disturbed and exits 0.

use rt::process::{fork_with, wait};
use syscall::flag::{O_NONBLOCK, O_RDWR};

pub fn run() -> i32 {
    let port = match syscall::open("serial2:", O_RDWR | O_NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => {
            rt::println!("nmi-loop: open serial2: {}", rt::errno::describe(&e));
            return 1;
        }
    };
    let me = match syscall::getpid() {
        Ok(pid) => pid,
        Err(_) => return 1,
    };
    rt::println!("nmi-loop: ready");
    let mut rounds: u64 = 0;
    loop {
        rounds += 1;
        // User-mode work whose result is known.
        let mut x: u64 = rounds;
        for i in 0..10_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        let mut y: u64 = rounds;
        for i in 0..10_000u64 {
            y = y.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        if x != y {
            rt::println!("nmi-loop: user computation differs in round {}", rounds);
            return 1;
        }
        // System calls (sysret path) and their results.
        for _ in 0..200 {
            if syscall::getpid() != Ok(me) {
                rt::println!("nmi-loop: getpid changed in round {}", rounds);
                return 1;
            }
        }
        // A process created and reaped.
        let status = fork_with(|| 7).and_then(wait);
        if !matches!(status, Ok(s) if syscall::flag::wifexited(s) && syscall::flag::wexitstatus(s) == 7)
        {
            rt::println!("nmi-loop: child in round {}: {:?}", rounds, status);
            return 1;
        }
        let mut byte = [0u8; 1];
        if let Ok(1) = syscall::read(port, &mut byte) {
            break;
        }
    }
    let _ = syscall::close(port);
    rt::println!("nmi-loop: done");
    0
}
