//! FPU and SSE state is per context: two processes (and a thread) keep
//! distinct values in every xmm register and in st0 across many context
//! switches (yields and timer preemption), and a signal handler's own SSE
//! use does not leak into the interrupted code.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::arch::asm;

use rt::test::Tests;
use syscall::flag::SIGUSR1;

rt::entry!(main);

/// Loads a pattern derived from `seed` into xmm0..xmm15 and 1.5*seed into
/// st0, yields `rounds` times (also spinning, so the timer preempts), then
/// stores the registers back and checks them. Returns the first mismatch.
fn hold_registers(seed: u64, rounds: usize) -> Result<(), String> {
    let mut input = [0u64; 32];
    for (i, v) in input.iter_mut().enumerate() {
        *v = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(i as u64);
    }
    let mut output = [0u64; 32];
    let x87_in = 1.5f64 * seed as f64;
    let mut x87_out = 0f64;
    for _ in 0..rounds {
        // SAFETY: loads and stores only the given arrays (32 qwords each);
        // every xmm register and the x87 stack are declared clobbered, and
        // the syscall clobbers rcx/r11 as declared.
        unsafe {
            asm!(
                "movdqu xmm0, [{i} + 0]",
                "movdqu xmm1, [{i} + 16]",
                "movdqu xmm2, [{i} + 32]",
                "movdqu xmm3, [{i} + 48]",
                "movdqu xmm4, [{i} + 64]",
                "movdqu xmm5, [{i} + 80]",
                "movdqu xmm6, [{i} + 96]",
                "movdqu xmm7, [{i} + 112]",
                "movdqu xmm8, [{i} + 128]",
                "movdqu xmm9, [{i} + 144]",
                "movdqu xmm10, [{i} + 160]",
                "movdqu xmm11, [{i} + 176]",
                "movdqu xmm12, [{i} + 192]",
                "movdqu xmm13, [{i} + 208]",
                "movdqu xmm14, [{i} + 224]",
                "movdqu xmm15, [{i} + 240]",
                "fld qword ptr [{xi}]",
                // sched_yield, then a short spin the timer may cut.
                "mov eax, {yield_nr}",
                "syscall",
                "mov ecx, 20000",
                "2:",
                "dec ecx",
                "jnz 2b",
                "fstp qword ptr [{xo}]",
                "movdqu [{o} + 0], xmm0",
                "movdqu [{o} + 16], xmm1",
                "movdqu [{o} + 32], xmm2",
                "movdqu [{o} + 48], xmm3",
                "movdqu [{o} + 64], xmm4",
                "movdqu [{o} + 80], xmm5",
                "movdqu [{o} + 96], xmm6",
                "movdqu [{o} + 112], xmm7",
                "movdqu [{o} + 128], xmm8",
                "movdqu [{o} + 144], xmm9",
                "movdqu [{o} + 160], xmm10",
                "movdqu [{o} + 176], xmm11",
                "movdqu [{o} + 192], xmm12",
                "movdqu [{o} + 208], xmm13",
                "movdqu [{o} + 224], xmm14",
                "movdqu [{o} + 240], xmm15",
                i = in(reg) input.as_ptr(),
                o = in(reg) output.as_mut_ptr(),
                xi = in(reg) &x87_in,
                xo = in(reg) &mut x87_out,
                yield_nr = const syscall::number::SYS_YIELD,
                out("rax") _, out("rcx") _, out("r11") _,
                out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
            );
        }
        if output != input {
            let i = output
                .iter()
                .zip(input.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(format!(
                "xmm{} half {}: expected {:#x}, got {:#x}",
                i / 2,
                i % 2,
                input[i],
                output[i]
            ));
        }
        if x87_out != x87_in {
            return Err(format!("st0: expected {x87_in}, got {x87_out}"));
        }
    }
    Ok(())
}

fn two_processes() -> Result<(), String> {
    let child = rt::process::fork_with(|| match hold_registers(7, 200) {
        Ok(()) => 0,
        Err(e) => {
            rt::eprintln!("child: {}", e);
            1
        }
    })
    .map_err(|e| format!("fork: {e:?}"))?;
    let mine = hold_registers(11, 200);
    let status = rt::process::wait(child).map_err(|e| format!("wait: {e:?}"))?;
    mine?;
    rt::test::expect_exit("child holding other values", status, 0)
}

fn thread_and_process() -> Result<(), String> {
    fn thread_body(seed: usize) {
        if hold_registers(seed as u64, 100).is_err() {
            rt::process::exit(1);
        }
    }
    let thread =
        rt::thread::spawn(64 * 1024, thread_body, 23).map_err(|e| format!("thread: {e:?}"))?;
    let mine = hold_registers(29, 100);
    let status = thread.join().map_err(|e| format!("join: {e:?}"))?;
    mine?;
    rt::test::expect_exit("thread holding other values", status, 0)
}

extern "C" fn clobbering_handler(_sig: usize) {
    // SAFETY: writes only xmm registers, which the handler may use freely.
    unsafe {
        asm!(
            "pcmpeqd xmm0, xmm0",
            "pcmpeqd xmm15, xmm15",
            out("xmm0") _,
            out("xmm15") _,
        );
    }
}

fn handler_does_not_leak() -> Result<(), String> {
    let action = syscall::SigAction {
        sa_handler: Some(clobbering_handler),
        ..Default::default()
    };
    syscall::sigaction(SIGUSR1, Some(&action), None).map_err(|e| format!("sigaction: {e:?}"))?;
    let pattern: [u64; 2] = [0x1111_2222_3333_4444, 0x5555_6666_7777_8888];
    let mut after = [0u64; 2];
    let pid = syscall::getpid().map_err(|e| format!("getpid: {e:?}"))?;
    // SAFETY: kill(getpid(), SIGUSR1) with xmm0 holding a pattern; the
    // handler runs inside the call; xmm0 is stored afterwards.
    unsafe {
        asm!(
            "movdqu xmm0, [{p}]",
            "syscall",
            "movdqu [{a}], xmm0",
            p = in(reg) pattern.as_ptr(),
            a = in(reg) after.as_mut_ptr(),
            inlateout("rax") syscall::number::SYS_KILL => _,
            in("rdi") pid,
            in("rsi") SIGUSR1,
            out("rcx") _, out("r11") _, out("xmm0") _, out("xmm15") _,
        );
    }
    if after != pattern {
        return Err(format!(
            "xmm0 after the handler: {after:x?}, expected {pattern:x?}"
        ));
    }
    Ok(())
}

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    testkit::run(&mut t, "sse_and_x87_per_process", two_processes);
    testkit::run(&mut t, "sse_and_x87_per_thread", thread_and_process);
    testkit::run(
        &mut t,
        "signal_handler_sse_does_not_leak",
        handler_does_not_leak,
    );
    t.finish()
}
