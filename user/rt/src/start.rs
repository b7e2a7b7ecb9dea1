//! Process start-up: decodes the initial stack into arguments and environment and runs `main`.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

static INITIAL_SP: AtomicUsize = AtomicUsize::new(0);
static ARGS_PTR: AtomicUsize = AtomicUsize::new(0);
static ARGS_LEN: AtomicUsize = AtomicUsize::new(0);
static ENV_PTR: AtomicUsize = AtomicUsize::new(0);
static ENV_LEN: AtomicUsize = AtomicUsize::new(0);

/// Reads the NUL-terminated string at `ptr` as UTF-8 (`"?"` if it is not).
///
/// # Safety
/// `ptr` must point at a NUL-terminated string that lives for the whole program.
unsafe fn c_str(ptr: *const u8) -> &'static str {
    let mut len = 0;
    // SAFETY: the caller promises a NUL terminator, so every byte up to and
    // including it is readable.
    while unsafe { *ptr.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes before the terminator were just read.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    core::str::from_utf8(bytes).unwrap_or("?")
}

/// Leaks `v` and records it in the two statics, so it can be handed out as a
/// `'static` slice.
fn store(v: Vec<&'static str>, ptr: &AtomicUsize, len: &AtomicUsize) -> &'static [&'static str] {
    let leaked: &'static [&'static str] = v.leak();
    ptr.store(leaked.as_ptr() as usize, Ordering::Release);
    len.store(leaked.len(), Ordering::Release);
    leaked
}

fn load(ptr: &AtomicUsize, len: &AtomicUsize) -> &'static [&'static str] {
    let p = ptr.load(Ordering::Acquire);
    if p == 0 {
        return &[];
    }
    // SAFETY: `p` and the length were stored together by `store` from a leaked
    // slice, which is never freed.
    unsafe { core::slice::from_raw_parts(p as *const &'static str, len.load(Ordering::Acquire)) }
}

/// The program arguments; `args()[0]` is the program path.
pub fn args() -> &'static [&'static str] {
    load(&ARGS_PTR, &ARGS_LEN)
}

/// The environment strings (`KEY=VALUE`), in the order the kernel gave them.
pub fn env() -> &'static [&'static str] {
    load(&ENV_PTR, &ENV_LEN)
}

/// The stack pointer the kernel gave the process at `_start`.
pub fn initial_sp() -> usize {
    INITIAL_SP.load(Ordering::Relaxed)
}

/// Decodes the initial stack, runs `main` and exits with its status.
///
/// # Safety
/// `sp` must be the initial stack pointer of the process: it points at `argc`,
/// then `argc` pointers to NUL-terminated strings, a null pointer, the
/// environment pointers and a null pointer.
pub unsafe fn run(sp: *const usize, main: fn(&[&str]) -> i32) -> ! {
    INITIAL_SP.store(sp as usize, Ordering::Relaxed);
    // SAFETY: the caller guarantees the layout described above.
    let argc = unsafe { *sp };
    // SAFETY: the argv array follows argc on the initial stack.
    let argv = unsafe { sp.add(1) } as *const *const u8;
    let mut args = Vec::with_capacity(argc);
    for i in 0..argc {
        // SAFETY: argv has argc valid entries, each a NUL-terminated string.
        args.push(unsafe { c_str(*argv.add(i)) });
    }
    let mut env = Vec::new();
    // SAFETY: argv[argc] is the null terminator; envp starts right after it.
    let mut envp = unsafe { argv.add(argc + 1) };
    loop {
        // SAFETY: envp walks a null-terminated array of string pointers.
        let p = unsafe { *envp };
        if p.is_null() {
            break;
        }
        // SAFETY: p is a non-null environment string pointer from the kernel.
        env.push(unsafe { c_str(p) });
        // SAFETY: the array continues at least until its null terminator.
        envp = unsafe { envp.add(1) };
    }
    store(env, &ENV_PTR, &ENV_LEN);
    let args = store(args, &ARGS_PTR, &ARGS_LEN);
    let code = main(args);
    crate::process::exit((code & 0xff) as usize)
}
