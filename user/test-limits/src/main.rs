//! Resource limits: one flood per limit in `sys:limits` (open files, pipe
//! bytes per user, `event:` registrations per queue and per process,
//! contexts per user, nested signal frames, `fexec` arguments), each run in
//! a forked child so it dies with its process. Every flood must end in the
//! documented errno (or signal), change nothing, and leave the kernel
//! working: memory back to its baseline, and exit, close, waitpid, SIGKILL
//! and a fresh trace session still work. One check fills the whole kernel
//! heap (several users' pipes) and shows that closing, detaching, SIGKILL,
//! exiting and waitpid still work while it is full.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use rt::ensure;
use rt::test::{expect_eq, expect_errno, expect_exit, expect_killed, in_child, Ctx, Tests};
use syscall::data::Event;
use syscall::error::{Error, E2BIG, EAGAIN, EFAULT, EMFILE, ENOMEM};
use syscall::flag::{
    EventFlags, SigActionFlags, WaitFlags, F_GETFD, O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR,
    SIGCONT, SIGKILL, SIGSEGV, SIGSTOP, SIGUSR1,
};
use tracer::{Tracer, PTRACE_CONT};

rt::entry!(main);

/// `key=value` lines of a `sys:` file, read in 256-byte pieces (reads that
/// small need no heap admission, so this works with the heap full).
fn sys_fields(fd: usize) -> Result<Vec<(String, u64)>, String> {
    tracer::seek_to(fd, 0).ctx("seek to 0")?;
    let mut text = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = rt::io::read(fd, &mut buf).ctx("read sys: file")?;
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(text).map_err(|_| String::from("sys: file is not UTF-8"))?;
    Ok(text
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((String::from(k), v.parse().ok()?))
        })
        .collect())
}

fn field(fields: &[(String, u64)], key: &str) -> Result<usize, String> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v as usize)
        .ok_or_else(|| format!("no {key} in {fields:?}"))
}

/// One value of `sys:limits`.
fn limit(key: &str) -> Result<usize, String> {
    let fd = syscall::open("sys:limits", O_RDONLY).ctx("open sys:limits")?;
    let fields = sys_fields(fd);
    let _ = syscall::close(fd);
    field(&fields?, key)
}

/// (free frames, heap bytes in use) from `sys:memory`.
fn memory() -> Result<(usize, usize), String> {
    let fd = syscall::open("sys:memory", O_RDONLY).ctx("open sys:memory")?;
    let fields = sys_fields(fd);
    let _ = syscall::close(fd);
    let fields = fields?;
    Ok((field(&fields, "frames_free")?, field(&fields, "heap_used")?))
}

fn expect_memory(what: &str, before: (usize, usize)) -> Result<(), String> {
    let after = memory()?;
    ensure!(
        before == after,
        "{what}: memory not back: frames_free {} -> {}, heap_used {} -> {}",
        before.0,
        after.0,
        before.1,
        after.1
    );
    Ok(())
}

/// Runs `flood` in a child; afterwards the memory must be back where it
/// was and the kernel must still do the basic things.
fn flood_in_child(what: &str, flood: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let before = memory()?;
    in_child(flood)?;
    expect_memory(what, before)?;
    kernel_still_works()
}

/// Exit and waitpid, SIGKILL, close, and a fresh trace session from attach
/// to the tracee's exit.
fn kernel_still_works() -> Result<(), String> {
    let pid = rt::process::fork_with(|| 3).ctx("fork after the flood")?;
    let status = rt::process::wait(pid).ctx("waitpid after the flood")?;
    expect_exit("a child after the flood", status, 3)?;

    let (rd, wr) = rt::io::pipe(0).ctx("pipe after the flood")?;
    let blocked = rt::process::fork_with(|| {
        let mut b = [0u8; 1];
        let _ = syscall::read(rd, &mut b);
        0
    })
    .ctx("fork a blocked child")?;
    syscall::kill(blocked, SIGKILL).ctx("SIGKILL after the flood")?;
    let status = rt::process::wait(blocked).ctx("waitpid the killed child")?;
    expect_killed("a child killed after the flood", status, SIGKILL)?;
    syscall::close(rd).ctx("close after the flood")?;
    syscall::close(wr).ctx("close after the flood")?;

    let tracee = rt::process::fork_with(|| {
        let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGSTOP);
        7
    })
    .ctx("fork a tracee")?;
    rt::process::waitpid(tracee, WaitFlags::WUNTRACED).ctx("waitpid WUNTRACED")?;
    let mut t = Tracer::attach(tracee).ctx("attach after the flood")?;
    syscall::kill(tracee, SIGCONT).ctx("SIGCONT")?;
    t.resume_collect(PTRACE_CONT).ctx("trace to the end")?;
    let traced_exit = t.exit_status;
    t.detach().ctx("detach")?;
    let status = rt::process::wait(tracee).ctx("waitpid the tracee")?;
    expect_exit("the traced child", status, 7)?;
    ensure!(traced_exit.is_some(), "the trace session saw no exit event");
    Ok(())
}

fn become_user(uid: usize) -> Result<(), String> {
    syscall::setregid(uid, uid).ctx("setregid")?;
    syscall::setreuid(uid, uid).ctx("setreuid")?;
    Ok(())
}

fn limits_file_lists_every_limit() -> Result<(), String> {
    for key in [
        "heap_size",
        "heap_reserve",
        "heap_free",
        "open_files",
        "pipe_capacity",
        "pipe_bytes_per_user",
        "event_per_queue",
        "event_per_process",
        "contexts",
        "contexts_per_user",
        "nested_signals",
        "fexec_args",
        "fexec_arg_bytes",
    ] {
        let value = limit(key)?;
        ensure!(value > 0, "sys:limits {key}={value}");
    }
    ensure!(
        limit("heap_free")? > limit("heap_reserve")?,
        "an idle kernel already below its heap reserve"
    );
    Ok(())
}

/// Opens `null:` until `EMFILE`: exactly `open_files` descriptors, then
/// dup, pipe2 and open all say `EMFILE`; one close makes room for one.
fn open_files_until_emfile() -> Result<(), String> {
    let max = limit("open_files")?;
    flood_in_child("open files", || {
        let mut opened = 0usize;
        let refusal = loop {
            match syscall::open("null:", O_RDWR) {
                Ok(_) => opened += 1,
                Err(e) => break e,
            }
            ensure!(opened <= max, "{opened} descriptors opened, limit {max}");
        };
        expect_errno("open past the limit", Err::<(), _>(refusal), EMFILE)?;
        for fd in 0..max {
            syscall::fcntl(fd, F_GETFD, 0).ctx(&format!("fd {fd} of a full table"))?;
        }
        expect_errno("dup with a full table", syscall::dup(0, &[]), EMFILE)?;
        expect_errno("pipe2 with a full table", rt::io::pipe(0), EMFILE)?;
        expect_errno(
            "open event: with a full table",
            syscall::open("event:", O_RDWR),
            EMFILE,
        )?;
        syscall::close(max - 1).ctx("close the last descriptor")?;
        let fd = syscall::open("null:", O_RDWR).ctx("open after a close")?;
        expect_eq("the freed descriptor", fd, max - 1)
    })
}

/// Fills 64 KiB pipes as user 1000 until refused: the user's pipes then
/// hold exactly `pipe_bytes_per_user`, a blocking write is refused too
/// (not put to sleep), the refused pipe stays empty, and closing one full
/// pipe gives its bytes back.
fn pipes_fill_until_refused() -> Result<(), String> {
    let per_user = limit("pipe_bytes_per_user")?;
    let capacity = limit("pipe_capacity")?;
    flood_in_child("pipe flood", || {
        become_user(1000)?;
        let chunk = vec![0x5au8; capacity];
        let mut pipes = Vec::new();
        let mut buffered = 0;
        let refusal = loop {
            let (rd, wr) = rt::io::pipe(O_NONBLOCK).ctx("pipe2")?;
            match syscall::write(wr, &chunk) {
                Ok(n) => {
                    // Only the last pipe may take less: what the limit left.
                    ensure!(
                        n == capacity || buffered + n == per_user,
                        "a fresh pipe took {n} bytes with {buffered} buffered, limit {per_user}"
                    );
                    buffered += n;
                    pipes.push((rd, wr));
                }
                Err(e) => {
                    let mut stat = syscall::data::Stat::default();
                    syscall::fstat(rd, &mut stat).ctx("fstat the refused pipe")?;
                    expect_eq("bytes in the refused pipe", stat.st_size, 0)?;
                    let _ = syscall::close(rd);
                    let _ = syscall::close(wr);
                    break e;
                }
            }
            ensure!(
                buffered <= per_user,
                "{buffered} bytes buffered, limit {per_user}"
            );
        };
        expect_errno(
            "a write past the user's limit",
            Err::<(), _>(refusal),
            EAGAIN,
        )?;
        expect_eq("pipe bytes buffered", buffered, per_user)?;
        expect_eq("pipe_bytes_used", limit("pipe_bytes_used")?, per_user)?;
        // A blocking write is refused as well: waiting could be for ever.
        let (rd, wr) = rt::io::pipe(0).ctx("pipe2")?;
        expect_errno(
            "a blocking write past the limit",
            syscall::write(wr, b"x"),
            EAGAIN,
        )?;
        // One full pipe closed: its bytes can be used again.
        ensure!(!pipes.is_empty(), "no pipe was filled");
        let (frd, fwr) = pipes.remove(0);
        syscall::close(frd).ctx("close")?;
        syscall::close(fwr).ctx("close")?;
        let n = syscall::write(wr, &chunk).ctx("write after a close")?;
        expect_eq("bytes written after a close", n, capacity)?;
        let mut back = vec![0u8; capacity];
        let got = rt::io::read_full(rd, &mut back).ctx("read back")?;
        ensure!(
            got == capacity && back == chunk,
            "read back {got} bytes, equal: {}",
            back == chunk
        );
        for (rd, wr) in pipes {
            syscall::close(rd).ctx("close")?;
            syscall::close(wr).ctx("close")?;
        }
        let _ = syscall::close(rd);
        let _ = syscall::close(wr);
        expect_eq(
            "pipe_bytes_used after closing",
            limit("pipe_bytes_used")?,
            0,
        )
    })
}

fn register(queue: usize, fd: usize, flags: EventFlags) -> syscall::Result<usize> {
    syscall::write(
        queue,
        &Event {
            id: fd,
            flags,
            data: fd,
        },
    )
}

/// Registers `null:` handles until refused: `event_per_queue` in one
/// queue, `event_per_process` in all; a refused batch registers the
/// records before the refused one; closing a queue gives its count back.
fn events_register_until_refused() -> Result<(), String> {
    let per_queue = limit("event_per_queue")?;
    let per_process = limit("event_per_process")?;
    flood_in_child("event flood", || {
        let queues_needed = per_process / per_queue + 1;
        let mut queues = Vec::new();
        for _ in 0..queues_needed {
            queues.push(syscall::open("event:", O_RDWR).ctx("open event:")?);
        }
        let mut fds = Vec::new();
        for _ in 0..per_queue + 2 {
            fds.push(syscall::open("null:", O_RDWR).ctx("open null:")?);
        }
        let q0 = queues[0];
        for (i, &fd) in fds.iter().enumerate().take(per_queue) {
            register(q0, fd, EventFlags::EVENT_READ).ctx(&format!("registration {i}"))?;
        }
        expect_errno(
            "a registration past the queue's limit",
            register(q0, fds[per_queue], EventFlags::EVENT_READ),
            EAGAIN,
        )?;
        register(q0, fds[0], EventFlags::EVENT_WRITE).ctx("changing a registration")?;
        register(q0, fds[0], EventFlags::empty()).ctx("removing a registration")?;
        // Room for one: a batch of two registers the first, reports 24.
        let mut batch = Vec::new();
        for fd in [fds[per_queue], fds[per_queue + 1]] {
            let event = Event {
                id: fd,
                flags: EventFlags::EVENT_READ,
                data: 0,
            };
            batch.extend_from_slice(&event);
        }
        let n = syscall::write(q0, &batch).ctx("a batch of two with room for one")?;
        expect_eq("bytes of a half-refused batch", n, 24)?;
        // The other queues until the process's limit.
        let mut total = per_queue;
        let mut refusal = None;
        'fill: for &q in &queues[1..] {
            for &fd in fds.iter().take(per_queue) {
                match register(q, fd, EventFlags::EVENT_READ) {
                    Ok(_) => total += 1,
                    Err(e) => {
                        refusal = Some((q, e));
                        break 'fill;
                    }
                }
                ensure!(total <= per_process, "{total} registrations");
            }
        }
        let refusal = refusal.ok_or_else(|| format!("{total} registrations, none refused"))?;
        expect_eq("registrations when refused", total, per_process)?;
        expect_errno(
            "a registration past the process's limit",
            Err::<(), _>(refusal.1),
            EAGAIN,
        )?;
        syscall::close(q0).ctx("close a full queue")?;
        register(refusal.0, fds[per_queue + 1], EventFlags::EVENT_READ)
            .ctx("a registration after closing a queue")?;
        Ok(())
    })
}

/// The flood: many processes each registering all they may in
/// `event:` queues, until the heap is full and a registration (or the
/// `open` or `fork` before it) says `ENOMEM`. Everything exits and the
/// memory comes back (second round compared, as for the heap-full check).
fn events_from_many_processes_until_enomem() -> Result<(), String> {
    event_flood_round().map_err(|e| format!("first round: {e}"))?;
    let before = memory()?;
    event_flood_round().map_err(|e| format!("second round: {e}"))?;
    expect_memory("event flood", before)?;
    kernel_still_works()
}

fn event_flood_round() -> Result<(), String> {
    let per_queue = limit("event_per_queue")?;
    let per_process = limit("event_per_process")?;
    let (report_rd, report_wr) = rt::io::pipe(0).ctx("pipe")?;
    let (ctl_rd, ctl_wr) = rt::io::pipe(0).ctx("pipe")?;
    let mut flooders = Vec::new();
    let mut heap_refused = false;
    while !heap_refused && flooders.len() < 1000 {
        let flood = || -> syscall::Result<()> {
            let null = syscall::open("null:", O_RDWR)?;
            let mut ids = vec![null];
            while ids.len() < per_queue {
                ids.push(syscall::dup(null, &[])?);
            }
            let mut records = Vec::new();
            for &id in &ids {
                let event = Event {
                    id,
                    flags: EventFlags::EVENT_READ,
                    data: id,
                };
                records.extend_from_slice(&event);
            }
            for _ in 0..per_process / per_queue {
                let queue = syscall::open("event:", O_RDWR)?;
                let mut done = 0;
                while done < records.len() {
                    done += syscall::write(queue, &records[done..])?;
                }
            }
            Ok(())
        };
        match rt::process::fork_with(|| {
            let _ = syscall::close(report_rd);
            let _ = syscall::close(ctl_wr);
            let errno = match flood() {
                Ok(()) => 0u8,
                Err(e) => e.errno as u8,
            };
            let _ = syscall::write(report_wr, &[errno]);
            let mut b = [0u8; 1];
            let _ = syscall::read(ctl_rd, &mut b);
            0
        }) {
            Ok(pid) => flooders.push(pid),
            Err(e) if e.errno == ENOMEM => {
                heap_refused = true;
                break;
            }
            Err(e) => return Err(format!("fork a flooder: {e:?}")),
        }
        let mut errno = [0u8; 1];
        rt::io::read_full(report_rd, &mut errno).ctx("a flooder's report")?;
        match errno[0] as i32 {
            0 => {}
            ENOMEM => heap_refused = true,
            other => return Err(format!("a flooder stopped with errno {other}")),
        }
    }
    let _ = syscall::close(ctl_wr);
    let _ = syscall::close(ctl_rd);
    let _ = syscall::close(report_rd);
    let _ = syscall::close(report_wr);
    for &pid in &flooders {
        let status = rt::process::wait(pid).ctx("reap a flooder")?;
        expect_exit("a flooder", status, 0)?;
    }
    ensure!(
        heap_refused,
        "{} processes registered {per_process} each, no ENOMEM",
        flooders.len()
    );
    Ok(())
}

/// `clone(CLONE_VM | CLONE_FILES)` of a thread that runs no Rust code and
/// touches no stack: it reads one byte from `rd` into `byte` and exits 0.
fn blocked_thread(rd: usize, byte: *mut u8) -> syscall::Result<usize> {
    let flags = (syscall::flag::CLONE_VM | syscall::flag::CLONE_FILES).bits();
    let ret: usize;
    // SAFETY: the child shares our memory but uses only registers (rd and
    // the buffer in r12/r13, which `syscall` preserves) and never returns
    // into this function; it exits from the asm. The parent path is an
    // ordinary clone call.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov eax, {read}",
            "mov rdi, r12",
            "mov rsi, r13",
            "mov edx, 1",
            "syscall",
            "mov eax, {exit}",
            "xor edi, edi",
            "syscall",
            "ud2",
            "2:",
            read = const syscall::number::SYS_READ,
            exit = const syscall::number::SYS_EXIT,
            inlateout("rax") syscall::number::SYS_CLONE => ret,
            inlateout("rdi") flags => _,
            in("r12") rd,
            in("r13") byte,
            out("rsi") _,
            out("rdx") _,
            out("rcx") _,
            out("r11") _,
        );
    }
    Error::demux(ret)
}

/// As user 1001: threads blocked on a pipe until `clone` says `EAGAIN`;
/// the user then has exactly `contexts_per_user` contexts. All are reaped.
fn clone_flood() -> Result<(), String> {
    let per_user = limit("contexts_per_user")?;
    in_child(|| {
        become_user(1001)?;
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        static BYTE: AtomicUsize = AtomicUsize::new(0);
        let mut threads = Vec::new();
        let refusal = loop {
            match blocked_thread(rd, BYTE.as_ptr() as *mut u8) {
                Ok(pid) => threads.push(pid),
                Err(e) => break e,
            }
            ensure!(threads.len() < per_user, "{} threads", threads.len());
        };
        expect_errno("clone past the user's limit", Err::<(), _>(refusal), EAGAIN)?;
        // This process and its threads.
        expect_eq("contexts of user 1001", threads.len() + 1, per_user)?;
        syscall::close(wr).ctx("close the write end")?;
        for pid in threads {
            let status = rt::process::wait(pid).ctx("reap a thread")?;
            expect_exit("a thread", status, 0)?;
        }
        let _ = syscall::close(rd);
        // A root process can still fork meanwhile (checked by the caller).
        Ok(())
    })
}

/// Twice, so the page tables of the kernel-stack region (kept once made)
/// are in place: the second flood must leave memory exactly as the first.
fn clone_until_eagain() -> Result<(), String> {
    clone_flood()?;
    let before = memory()?;
    clone_flood()?;
    expect_memory("clone flood", before)?;
    kernel_still_works()
}

/// Runs the physical memory out: processes of distinct users (so no
/// per-user limit stops them first) until `clone` says `ENOMEM`, then
/// threads (a kernel stack each) until it says so again. With the frames
/// gone, `fork` and `fexec` fail with `ENOMEM` and the program goes on.
fn frames_flood() -> Result<(), String> {
    in_child(|| {
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        let mut holders = Vec::new();
        let refusal = loop {
            let uid = 3000 + holders.len();
            match rt::process::fork_with(|| {
                let _ = syscall::close(wr);
                if become_user(uid).is_err() {
                    return 2;
                }
                let mut b = [0u8; 1];
                let _ = syscall::read(rd, &mut b);
                0
            }) {
                Ok(pid) => holders.push(pid),
                Err(e) => break e,
            }
            ensure!(holders.len() < 4096, "4096 processes and frames left");
        };
        expect_errno("fork with the frames gone", Err::<(), _>(refusal), ENOMEM)?;
        static BYTE: AtomicUsize = AtomicUsize::new(0);
        let mut threads = Vec::new();
        let refusal = loop {
            match blocked_thread(rd, BYTE.as_ptr() as *mut u8) {
                Ok(pid) => threads.push(pid),
                Err(e) => break e,
            }
            ensure!(threads.len() < 4096, "4096 threads and frames left");
        };
        expect_errno(
            "a thread with the frames gone",
            Err::<(), _>(refusal),
            ENOMEM,
        )?;
        let fd = syscall::open("/bin/hello", O_RDONLY | O_CLOEXEC).ctx("open /bin/hello")?;
        let arg = [[b"hello".as_ptr() as usize, 5]];
        let exec = syscall::fexec(fd, &arg, &[]);
        let fork = rt::process::fork_with(|| 0);
        // Give the memory back before judging, so a failure still cleans up.
        syscall::close(wr).ctx("close the write end")?;
        for pid in threads.into_iter().chain(holders) {
            let status = rt::process::wait(pid).ctx("reap")?;
            expect_exit("a holder or thread", status, 0)?;
        }
        let _ = syscall::close(rd);
        let _ = syscall::close(fd);
        expect_errno("fexec with the frames gone", exec, ENOMEM)?;
        expect_errno("fork with the frames gone", fork, ENOMEM)?;
        Ok(())
    })
}

/// Twice, for the kernel-stack page tables (kept once made): the second
/// flood must leave memory exactly as the first did.
fn frames_run_out_fork_and_fexec_fail_cleanly() -> Result<(), String> {
    frames_flood().map_err(|e| format!("first flood: {e}"))?;
    let before = memory()?;
    frames_flood().map_err(|e| format!("second flood: {e}"))?;
    expect_memory("frames flood", before)?;
    kernel_still_works()
}

static NEST_FD: AtomicUsize = AtomicUsize::new(0);

extern "C" fn nest(_sig: usize) {
    let _ = syscall::write(NEST_FD.load(Ordering::Relaxed), b"n");
    let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGUSR1);
}

/// A handler that raises its own signal (`SA_NODEFER`) for ever: after
/// `nested_signals` nested handlers the process dies of `SIGSEGV`.
fn nested_signals_until_killed() -> Result<(), String> {
    let max = limit("nested_signals")?;
    let before = memory()?;
    let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
    let child = rt::process::fork_with(|| {
        let _ = syscall::close(rd);
        NEST_FD.store(wr, Ordering::Relaxed);
        let action = syscall::SigAction {
            sa_handler: Some(nest),
            sa_mask: [0; 2],
            sa_flags: SigActionFlags::SA_NODEFER,
        };
        if syscall::sigaction(SIGUSR1, Some(&action), None).is_err() {
            return 2;
        }
        let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGUSR1);
        3
    })
    .ctx("fork")?;
    let _ = syscall::close(wr);
    let depth = rt::io::read_to_end(rd)
        .ctx("read the handler's marks")?
        .len();
    let _ = syscall::close(rd);
    let status = rt::process::wait(child).ctx("wait")?;
    expect_killed("a signal storm", status, SIGSEGV)?;
    expect_eq("handlers entered", depth, max)?;
    expect_memory("signal storm", before)?;
    kernel_still_works()
}

/// `fexec` with too many arguments, too many bytes, a huge length or a
/// kernel pointer fails (the program goes on).
fn fexec_with_huge_arguments() -> Result<(), String> {
    let max_args = limit("fexec_args")?;
    let max_bytes = limit("fexec_arg_bytes")?;
    flood_in_child("fexec arguments", || {
        let fd = syscall::open("/bin/hello", O_RDONLY | O_CLOEXEC).ctx("open /bin/hello")?;
        let word = b"x";
        let many = vec![[word.as_ptr() as usize, 1]; max_args + 1];
        expect_errno(
            "fexec with too many arguments",
            syscall::fexec(fd, &many, &[]),
            E2BIG,
        )?;
        let big = vec![0x61u8; max_bytes / 2 + 1];
        let two = [[big.as_ptr() as usize, big.len()]; 2];
        expect_errno(
            "fexec with too many bytes",
            syscall::fexec(fd, &two, &[]),
            E2BIG,
        )?;
        let huge = [[big.as_ptr() as usize, 1 << 40]];
        expect_errno(
            "fexec with a huge length",
            syscall::fexec(fd, &huge, &[]),
            E2BIG,
        )?;
        let env = [[big.as_ptr() as usize, max_bytes]];
        let arg = [[word.as_ptr() as usize, 1]];
        expect_errno(
            "fexec with too many bytes in the environment",
            syscall::fexec(fd, &arg, &env),
            E2BIG,
        )?;
        let kernel = [[0xffff_ffff_8000_0000usize, 8]];
        expect_errno(
            "fexec with a kernel pointer",
            syscall::fexec(fd, &kernel, &[]),
            EFAULT,
        )?;
        let _ = syscall::close(fd);
        Ok(())
    })
}

/// One user after another fills pipes until the kernel heap itself is
/// full (a refusal with `ENOMEM`), while a session holds a stopped tracee.
/// With the heap full: close, detach, SIGKILL, exit and waitpid work; then
/// everything is back and a fresh session works. Twice: the first round
/// lets kernel tables that keep their high-water size (the run queue)
/// grow, the second must leave memory exactly as it found it.
fn heap_full_still_closes_detaches_kills_and_exits() -> Result<(), String> {
    heap_full_round().map_err(|e| format!("first round: {e}"))?;
    let before = memory()?;
    heap_full_round().map_err(|e| format!("second round: {e}"))?;
    expect_memory("after the heap was full", before)
}

fn heap_full_round() -> Result<(), String> {
    let limits = syscall::open("sys:limits", O_RDONLY).ctx("open sys:limits")?;
    let spare = syscall::dup(0, &[]).ctx("dup")?;
    let tracee = rt::process::fork_with(|| {
        let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGSTOP);
        0
    })
    .ctx("fork a tracee")?;
    rt::process::waitpid(tracee, WaitFlags::WUNTRACED).ctx("waitpid WUNTRACED")?;
    let session = Tracer::attach(tracee).ctx("attach")?;
    let (report_rd, report_wr) = rt::io::pipe(0).ctx("pipe")?;
    let (ctl_rd, ctl_wr) = rt::io::pipe(0).ctx("pipe")?;
    let mut flooders = Vec::new();
    let mut heap_refused = false;
    for user in 2000..2032usize {
        let pid = match rt::process::fork_with(|| {
            let _ = syscall::close(report_rd);
            let _ = syscall::close(ctl_wr);
            if become_user(user).is_err() {
                return 2;
            }
            let chunk = [0x33u8; 4096];
            let errno: u8 = 'fill: loop {
                // The read ends stay open: the pipes live until exit.
                let wr = match rt::io::pipe(O_NONBLOCK) {
                    Ok((_rd, wr)) => wr,
                    Err(e) => break e.errno as u8,
                };
                for _ in 0..16 {
                    if let Err(e) = syscall::write(wr, &chunk) {
                        break 'fill e.errno as u8;
                    }
                }
            };
            let _ = syscall::write(report_wr, &[errno]);
            let mut b = [0u8; 1];
            let _ = syscall::read(ctl_rd, &mut b);
            0
        }) {
            Ok(pid) => pid,
            Err(e) if e.errno == ENOMEM => {
                heap_refused = true;
                break;
            }
            Err(e) => return Err(format!("fork a flooder: {e:?}")),
        };
        flooders.push(pid);
        let mut errno = [0u8; 1];
        rt::io::read_full(report_rd, &mut errno).ctx("a flooder's report")?;
        match errno[0] as i32 {
            EAGAIN => {}
            ENOMEM => {
                heap_refused = true;
                break;
            }
            other => return Err(format!("a flooder stopped with errno {other}")),
        }
    }
    let result = (|| {
        ensure!(
            heap_refused,
            "{} users filled pipes, no ENOMEM",
            flooders.len()
        );
        let fields = sys_fields(limits)?;
        let (free, reserve) = (
            field(&fields, "heap_free")?,
            field(&fields, "heap_reserve")?,
        );
        // Full: less than one more pipe buffer above the reserve (and user
        // calls never went far into it: only small unadmitted buffers can).
        ensure!(
            free + 16 * 1024 >= reserve && free < reserve + 256 * 1024,
            "heap not full as expected: {free} bytes free, reserve {reserve}"
        );
        syscall::close(spare).ctx("close with the heap full")?;
        session.detach().ctx("detach with the heap full")?;
        syscall::kill(tracee, SIGKILL).ctx("SIGKILL with the heap full")?;
        let status = rt::process::wait(tracee).ctx("waitpid with the heap full")?;
        expect_killed("the detached tracee", status, SIGKILL)?;
        syscall::kill(flooders[0], SIGKILL).ctx("SIGKILL a flooder")?;
        let status = rt::process::wait(flooders[0]).ctx("waitpid a flooder")?;
        expect_killed("a flooder", status, SIGKILL)?;
        Ok(())
    })();
    let _ = syscall::close(ctl_wr);
    let _ = syscall::close(ctl_rd);
    let _ = syscall::close(report_rd);
    let _ = syscall::close(report_wr);
    let _ = syscall::close(limits);
    for &pid in flooders.iter().skip(1) {
        let status = rt::process::wait(pid).ctx("reap a flooder")?;
        expect_exit("a flooder", status, 0)?;
    }
    result?;
    kernel_still_works()
}

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    // Warm-up: the kernel tables a fork and a trace session grow reach
    // their steady state before any baseline is taken.
    let _ = in_child(|| Ok(()));
    let _ = kernel_still_works();
    t.run(
        "limits_file_lists_every_limit",
        limits_file_lists_every_limit,
    );
    t.run("open_files_until_emfile", open_files_until_emfile);
    t.run("pipes_fill_until_refused", pipes_fill_until_refused);
    t.run(
        "events_register_until_refused",
        events_register_until_refused,
    );
    t.run(
        "events_from_many_processes_until_enomem",
        events_from_many_processes_until_enomem,
    );
    t.run("clone_until_eagain", clone_until_eagain);
    t.run(
        "frames_run_out_fork_and_fexec_fail_cleanly",
        frames_run_out_fork_and_fexec_fail_cleanly,
    );
    t.run("nested_signals_until_killed", nested_signals_until_killed);
    t.run("fexec_with_huge_arguments", fexec_with_huge_arguments);
    t.run(
        "heap_full_still_closes_detaches_kills_and_exits",
        heap_full_still_closes_detaches_kills_and_exits,
    );
    t.finish()
}
