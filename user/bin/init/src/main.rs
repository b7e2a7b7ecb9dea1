//! The first process: prints a banner, runs `/bin/sh`, reaps orphans, and exits with the shell's status.
#![no_std]
#![no_main]

use rt::{eprintln, println};
use syscall::flag::WaitFlags;

rt::entry!(main);

const SHELL: &str = "/bin/sh";

/// Runs the shell with our own arguments (so `init -c "cmd"` runs one command)
/// and waits for it, reaping any orphaned children handed to us meanwhile.
fn main(args: &[&str]) -> i32 {
    let pid = syscall::getpid().unwrap_or(0);
    println!("init: pid {}, starting {}", pid, SHELL);
    let shell_args = args.get(1..).unwrap_or(&[]);
    let shell = match rt::process::spawn(SHELL, shell_args) {
        Ok(shell) => shell,
        Err(e) => {
            eprintln!("init: cannot start {}: {}", SHELL, rt::errno::describe(&e));
            return 127;
        }
    };
    loop {
        match rt::process::waitpid(0, WaitFlags::empty()) {
            Ok((got, status)) if got == shell => {
                println!("init: {} {}", SHELL, rt::process::describe(status));
                return rt::process::exit_code(status);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("init: waitpid: {}", rt::errno::describe(&e));
                return 1;
            }
        }
    }
}
