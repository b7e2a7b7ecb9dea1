//! Where every interrupt and exception lands: `dispatch` hands those from
//! user mode to the boundary (`usermode`) and handles the kernel's own
//! (timer ticks, probe faults, fatal kernel faults);
//! `ist_dispatch` takes the vectors that arrive on IST stacks (debug
//! exception, NMI, machine check) and may interrupt the kernel anywhere.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::control::Cr2;

use super::idt::{EXCEPTION_NAMES, SPURIOUS_VECTOR, TIMER_VECTOR};
use super::trap_frame::{IstFrame, TrapFrame};
use crate::exit::{exit_qemu, ExitCode};

pub const DEBUG: u64 = 1;
pub const NMI: u64 = 2;
pub const PAGE_FAULT: u64 = 14;
pub const MACHINE_CHECK: u64 = 18;

/// DR6 bits: B0 to B3 (a breakpoint register matched) and BS (single step).
const DR6_HITS: u64 = 0xF;
const DR6_SINGLE_STEP: u64 = 1 << 14;
/// The value DR6 holds with no status bit set (its reserved bits read 1).
const DR6_CLEAR: u64 = 0xFFFF_0FF0;
const TRAP_FLAG: u64 = 1 << 8;

/// A record of debug exceptions and NMIs taken in kernel mode. The IST
/// handlers may interrupt code that holds any lock, so they take none and
/// only count here; `entry_traps` reads the counts (for the self-tests).
#[derive(Debug)]
pub struct EntryTraps {
    /// Debug exceptions taken in kernel mode.
    pub kernel_debug: u64,
    /// Of those, the ones that interrupted code running on the user's `gs`
    /// (the first instructions of the `syscall` entry, or the last ones of
    /// a return path).
    pub kernel_debug_user_gs: u64,
    /// `rip` and DR6 of the last kernel-mode debug exception.
    pub last_rip: u64,
    pub last_dr6: u64,
    /// NMIs, from either mode.
    pub nmi: u64,
}

static KERNEL_DEBUG: AtomicU64 = AtomicU64::new(0);
static KERNEL_DEBUG_USER_GS: AtomicU64 = AtomicU64::new(0);
static LAST_DEBUG_RIP: AtomicU64 = AtomicU64::new(0);
static LAST_DEBUG_DR6: AtomicU64 = AtomicU64::new(0);
static NMI_COUNT: AtomicU64 = AtomicU64::new(0);

pub fn entry_traps() -> EntryTraps {
    EntryTraps {
        kernel_debug: KERNEL_DEBUG.load(Ordering::Relaxed),
        kernel_debug_user_gs: KERNEL_DEBUG_USER_GS.load(Ordering::Relaxed),
        last_rip: LAST_DEBUG_RIP.load(Ordering::Relaxed),
        last_dr6: LAST_DEBUG_DR6.load(Ordering::Relaxed),
        nmi: NMI_COUNT.load(Ordering::Relaxed),
    }
}

/// Called by `idt::paranoid_entry` on the vector's IST stack, with `gs`
/// already the kernel's. Returns null when the trap is handled (the entry
/// returns to the interrupted code), or, for a debug exception from user
/// mode, the frame moved to the top of the kernel stack for `dispatch`.
pub extern "C" fn ist_dispatch(ist: &mut IstFrame) -> *mut TrapFrame {
    let frame = &mut ist.frame;
    match frame.vector {
        DEBUG => {
            let dr6 = take_dr6();
            if frame.is_from_user() {
                return move_to_kernel_stack(frame);
            }
            kernel_debug(frame, dr6, ist.user_gs != 0);
        }
        NMI => {
            // No lock: the NMI may have interrupted their holder.
            NMI_COUNT.fetch_add(1, Ordering::Relaxed);
            crate::console::emergency_print(format_args!(
                "NMI at rip {:#x} (cs {:#x}): ignored\n",
                frame.rip, frame.cs
            ));
        }
        MACHINE_CHECK => fatal(frame),
        _ => fatal(frame),
    }
    core::ptr::null_mut()
}

/// Reads DR6 and clears its status bits (the CPU never clears them).
fn take_dr6() -> u64 {
    let dr6: u64;
    // SAFETY: reading and writing DR6 in ring 0 has no effect beyond the
    // status bits; DR6_CLEAR is its architectural "nothing happened" value.
    unsafe {
        core::arch::asm!("mov {}, dr6", out(reg) dr6, options(nomem, nostack));
        core::arch::asm!("mov dr6, {}", in(reg) DR6_CLEAR, options(nomem, nostack));
    }
    dr6
}

/// A debug exception in kernel mode. The kernel arms no breakpoint and
/// never runs with the trap flag, so it comes from user state reaching the
/// kernel: the trap flag or a breakpoint pending from a `mov ss`/`pop ss`
/// taking effect at the first instruction of the `syscall` entry or of an
/// exception stub (CVE-2018-8897), or an `int 1` the kernel executed. None
/// is the kernel's business: the trap is dropped (and the trap flag, if it
/// was the cause, cleared so the kernel does not step on). A user's own
/// trap flag is still in its saved `rflags` (`r11` for `syscall`): a
/// single-step the tracer asked for ends when the call returns, and an
/// untraced program traps after its next instruction, as on hardware.
fn kernel_debug(frame: &mut TrapFrame, dr6: u64, user_gs: bool) {
    KERNEL_DEBUG.fetch_add(1, Ordering::Relaxed);
    if user_gs {
        KERNEL_DEBUG_USER_GS.fetch_add(1, Ordering::Relaxed);
    }
    LAST_DEBUG_RIP.store(frame.rip, Ordering::Relaxed);
    LAST_DEBUG_DR6.store(dr6 & (DR6_HITS | DR6_SINGLE_STEP), Ordering::Relaxed);
    if dr6 & DR6_SINGLE_STEP != 0 {
        frame.rflags &= !TRAP_FLAG;
    }
}

/// Copies a frame from user mode to where the CPU would have put it
/// without an IST (the top of the current context's kernel stack, which
/// is empty while the context runs in user mode), so the exception takes
/// the same path, and leaves the same frame for ptrace, as any other.
fn move_to_kernel_stack(frame: &TrapFrame) -> *mut TrapFrame {
    let top = super::gdt::kernel_stack();
    let dest = (top - core::mem::size_of::<TrapFrame>() as u64) as *mut TrapFrame;
    // SAFETY: `top` is the current context's kernel stack top (rsp0), a
    // mapped, 16-byte aligned stack the CPU itself would have used for this
    // trap; nothing lives there while the context is in user mode, and the
    // IST stack `frame` is on does not overlap it.
    unsafe { dest.write(*frame) };
    dest
}

/// Called by `interrupt_entry` with the saved frame. Anything from user
/// mode goes to the boundary (`usermode::trap`); in kernel mode only the
/// timer (the idle loop's `hlt`), a probe's page fault and spurious
/// interrupts are expected.
pub extern "C" fn dispatch(frame: &mut TrapFrame) {
    if frame.is_from_user() {
        crate::usermode::trap(frame);
        return;
    }
    match frame.vector {
        v if v < 32 => kernel_exception(frame),
        v if v == TIMER_VECTOR as u64 => timer_interrupt(),
        v if v == SPURIOUS_VECTOR as u64 => {}
        _ => crate::warn!("unexpected interrupt vector {:#x}", frame.vector),
    }
}

/// The timer's work in either mode: acknowledge, count the tick, wake
/// sleepers, poll the console's input.
pub fn timer_interrupt() {
    super::apic::end_of_interrupt();
    crate::time::tick();
    crate::sched::timer_tick();
    crate::scheme::debug::poll_input();
}

fn kernel_exception(frame: &mut TrapFrame) {
    if frame.vector == PAGE_FAULT {
        if let Some(resume) = super::probe::fixup(frame.rip) {
            crate::selftest::note_probe_fault(Cr2::read_raw());
            frame.rip = resume;
            frame.rax = 1;
            return;
        }
    }
    fatal(frame)
}

/// Self-test `entry-traps`: a debug exception and an NMI taken in kernel
/// mode in the state the first instruction of the `syscall` entry has
/// (user `gs`, a user `rsp` that maps nothing), a real watchpoint on a
/// `mov ss` operand in that state, and a kernel-mode single-step trap. Each must come back with the counts and DR6 status
/// expected and the kernel's `gs` intact. Without the IST stacks the CPU
/// would push on the bad `rsp` (double fault); without the `IA32_GS_BASE`
/// check the handler would return with `gs` swapped the wrong way.
pub fn selftest() -> Result<(), alloc::string::String> {
    use alloc::format;
    use x86_64::registers::model_specific::GsBase;

    let kernel_gs = GsBase::read().as_u64();
    let ensure = |cond: bool, what: &str| {
        if cond {
            Ok(())
        } else {
            Err(format!("{what}: {:?}", entry_traps()))
        }
    };
    x86_64::instructions::interrupts::without_interrupts(|| {
        // Unmapped in every address space: page 0 of the lower half.
        let bad_rsp: u64 = 0x1000;
        for (nmi, user_gs) in [(false, true), (false, false), (true, true)] {
            let before = entry_traps();
            let after_int: u64;
            // SAFETY: interrupts are off; the stack pointer is parked in a
            // register and restored before anything uses the stack; the
            // two `swapgs` pair up; `int 1`/`int 2` from ring 0 reach the
            // IST handlers, which return here.
            unsafe {
                if nmi {
                    core::arch::asm!(
                        "mov {saved}, rsp",
                        "mov rsp, {bad}",
                        "swapgs",
                        "int 2",
                        "2:",
                        "swapgs",
                        "mov rsp, {saved}",
                        "lea {after}, [rip + 2b]",
                        saved = out(reg) _,
                        bad = in(reg) bad_rsp,
                        after = out(reg) after_int,
                    );
                } else if user_gs {
                    core::arch::asm!(
                        "mov {saved}, rsp",
                        "mov rsp, {bad}",
                        "swapgs",
                        "int 1",
                        "2:",
                        "swapgs",
                        "mov rsp, {saved}",
                        "lea {after}, [rip + 2b]",
                        saved = out(reg) _,
                        bad = in(reg) bad_rsp,
                        after = out(reg) after_int,
                    );
                } else {
                    core::arch::asm!(
                        "mov {saved}, rsp",
                        "mov rsp, {bad}",
                        "int 1",
                        "2:",
                        "mov rsp, {saved}",
                        "lea {after}, [rip + 2b]",
                        saved = out(reg) _,
                        bad = in(reg) bad_rsp,
                        after = out(reg) after_int,
                    );
                }
            }
            let now = entry_traps();
            ensure(GsBase::read().as_u64() == kernel_gs, "gs base changed")?;
            if nmi {
                ensure(now.nmi == before.nmi + 1, "NMI not counted")?;
                continue;
            }
            ensure(
                now.kernel_debug == before.kernel_debug + 1,
                "#DB not counted",
            )?;
            ensure(
                now.kernel_debug_user_gs == before.kernel_debug_user_gs + u64::from(user_gs),
                "user gs not recognised",
            )?;
            ensure(now.last_rip == after_int, "#DB rip")?;
            ensure(now.last_dr6 == 0, "int 1 left DR6 status")?;
        }
        watchpoint_on_mov_ss(bad_rsp, &ensure)?;
        // A real single-step trap in kernel mode: the handler clears TF.
        let before = entry_traps();
        let flags: u64;
        // SAFETY: sets TF for one instruction; the handler clears it in the
        // saved rflags; the stack is balanced (pushfq/popfq pairs).
        unsafe {
            core::arch::asm!(
                "pushfq",
                "or qword ptr [rsp], {tf}",
                "popfq",
                "nop",
                "nop",
                "pushfq",
                "pop {flags}",
                tf = const TRAP_FLAG,
                flags = out(reg) flags,
            );
        }
        let now = entry_traps();
        ensure(
            now.kernel_debug == before.kernel_debug + 1,
            "step trap not counted",
        )?;
        ensure(now.last_dr6 & DR6_SINGLE_STEP != 0, "DR6.BS not seen")?;
        ensure(flags & TRAP_FLAG == 0, "TF left set")?;
        ensure(GsBase::read().as_u64() == kernel_gs, "gs base changed")
    })
}

/// The CVE-2018-8897 shape with a real data breakpoint: DR0 watches the
/// operand of a `mov ss`, which delays the #DB past the next instruction;
/// it arrives with the user's `gs` swapped in and an unmapped `rsp`. The
/// handler must see B0 in DR6, recognise the `gs`, and come back.
fn watchpoint_on_mov_ss(
    bad_rsp: u64,
    ensure: &impl Fn(bool, &str) -> Result<(), alloc::string::String>,
) -> Result<(), alloc::string::String> {
    static SELECTOR: AtomicU64 = AtomicU64::new(super::gdt::KERNEL_SS as u64);
    let before = entry_traps();
    // DR7: L0, R/W0 = 11 (reads and writes), LEN0 = 01 (2 bytes).
    let dr7: u64 = 1 | (0b11 << 16) | (0b01 << 18);
    let (after_mov, after_next): (u64, u64);
    // SAFETY: interrupts are off (the caller); DR0/DR7 arm one watchpoint
    // on a static of ours and are disarmed before the stack is used again;
    // `mov ss` reloads the selector SS already holds; the two `swapgs`
    // pair up and the stack pointer is restored from a register.
    unsafe {
        core::arch::asm!(
            "mov dr0, {addr}",
            "mov dr7, {dr7}",
            "mov {saved}, rsp",
            "mov rsp, {bad}",
            "swapgs",
            "mov ss, word ptr [{addr}]",
            "2: nop",
            "3: swapgs",
            "mov rsp, {saved}",
            "xor {dr7:e}, {dr7:e}",
            "mov dr7, {dr7}",
            "lea {a}, [rip + 2b]",
            "lea {b}, [rip + 3b]",
            addr = in(reg) SELECTOR.as_ptr(),
            dr7 = inout(reg) dr7 => _,
            saved = out(reg) _,
            bad = in(reg) bad_rsp,
            a = out(reg) after_mov,
            b = out(reg) after_next,
        );
    }
    let now = entry_traps();
    ensure(
        now.kernel_debug == before.kernel_debug + 1,
        "watchpoint #DB not counted",
    )?;
    ensure(
        now.kernel_debug_user_gs == before.kernel_debug_user_gs + 1,
        "user gs not recognised at the watchpoint",
    )?;
    ensure(now.last_dr6 & 1 != 0, "DR6.B0 not seen")?;
    ensure(
        now.last_rip == after_mov || now.last_rip == after_next,
        "watchpoint #DB rip",
    )
}

/// Reports an exception the kernel cannot recover from and ends the run.
pub fn fatal(frame: &TrapFrame) -> ! {
    let vector = frame.vector as usize;
    let name = EXCEPTION_NAMES.get(vector).copied().unwrap_or("interrupt");
    let p = crate::console::emergency_print;
    p(format_args!(
        "\nKERNEL FAULT: {} (vector {}) error code {:#x}\n",
        name, vector, frame.error_code
    ));
    p(format_args!(
        "  rip {:#018x}  cs {:#x}  rflags {:#x}\n",
        frame.rip, frame.cs, frame.rflags
    ));
    if frame.vector == PAGE_FAULT {
        p(format_args!("  cr2 {:#018x}\n", Cr2::read_raw()));
    }
    dump_registers(frame);
    exit_qemu(ExitCode::Exception)
}

pub fn dump_registers(f: &TrapFrame) {
    let p = crate::console::emergency_print;
    p(format_args!(
        "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}\n",
        f.rax, f.rbx, f.rcx, f.rdx
    ));
    p(format_args!(
        "  rsi {:#018x} rdi {:#018x} rbp {:#018x} rsp {:#018x}\n",
        f.rsi, f.rdi, f.rbp, f.rsp
    ));
    p(format_args!(
        "  r8  {:#018x} r9  {:#018x} r10 {:#018x} r11 {:#018x}\n",
        f.r8, f.r9, f.r10, f.r11
    ));
    p(format_args!(
        "  r12 {:#018x} r13 {:#018x} r14 {:#018x} r15 {:#018x}\n",
        f.r12, f.r13, f.r14, f.r15
    ));
}
