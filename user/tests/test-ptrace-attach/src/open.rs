//! Contract section 1 and the attach stop: who may open which `proc:` file,
//! the errors at open and their order, and what attaching does.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rt::ensure;
use rt::process::{now_ms, sleep_ms, wait_timeout};
use rt::test::{expect_eq, expect_errno, in_child, Ctx};
use syscall::error::{EBUSY, EINVAL, ENOENT, EPERM, ESRCH};
use syscall::flag::{WaitFlags, O_RDONLY, O_RDWR, O_WRONLY, SIGKILL};
use tracer::{Tracer, PTRACE_WAIT};

use testkit::*;

/// A pid no process has.
pub const MISSING_PID: usize = 999_999;

// ----- A thread whose progress we can watch ---------------------------------

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static QUIT: AtomicBool = AtomicBool::new(false);

fn count_forever(_: usize) {
    let mut spins = 0u32;
    while !QUIT.load(Ordering::SeqCst) {
        COUNTER.fetch_add(1, Ordering::SeqCst);
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) {
            let _ = syscall::sched_yield();
        }
    }
}

/// A `CLONE_VM` thread incrementing [`COUNTER`]; stopped and reaped on drop
/// (after any tracer of it has been dropped, so declare it first).
pub struct CounterThread {
    pub pid: usize,
}

impl CounterThread {
    pub fn start() -> Result<CounterThread, String> {
        QUIT.store(false, Ordering::SeqCst);
        let start = COUNTER.load(Ordering::SeqCst);
        // The handle is not kept (its stack leaks on purpose): the thread is
        // reaped by pid in `drop`, with a deadline `join` does not have.
        let pid = rt::thread::spawn(16 * 1024, count_forever, 0)
            .ctx("thread spawn")?
            .pid();
        let thread = CounterThread { pid };
        let deadline = now_ms() + 2000;
        while COUNTER.load(Ordering::SeqCst) == start {
            ensure!(now_ms() < deadline, "the counter thread never ran");
            let _ = sleep_ms(1);
        }
        Ok(thread)
    }

    pub fn count(&self) -> usize {
        COUNTER.load(Ordering::SeqCst)
    }

    /// Whether the counter moves within `ms` milliseconds.
    pub fn moves_within(&self, ms: u64) -> bool {
        let before = self.count();
        let deadline = now_ms() + ms;
        while now_ms() < deadline {
            let _ = sleep_ms(1);
            if self.count() != before {
                return true;
            }
        }
        self.count() != before
    }
}

impl Drop for CounterThread {
    fn drop(&mut self) {
        QUIT.store(true, Ordering::SeqCst);
        if !matches!(
            wait_timeout(self.pid, WaitFlags::empty(), 3000),
            Ok(Some(_))
        ) {
            let _ = syscall::kill(self.pid, SIGKILL);
            let _ = wait_timeout(self.pid, WaitFlags::empty(), 3000);
        }
    }
}

// ----- Attaching -------------------------------------------------------------

/// Attaching stops the tracee: its counter stands still, `status` says
/// `state=held tracer=<me>`; after detaching it runs again.
pub fn attach_stops_tracee() -> Check {
    let thread = CounterThread::start()?;
    ensure!(
        thread.moves_within(500),
        "the untraced counter thread makes no progress"
    );
    let t = Tracer::attach(thread.pid).ctx("attach")?;
    let frozen = thread.count();
    let _ = sleep_ms(60);
    let later = thread.count();
    ensure!(
        frozen == later,
        "counter moved from {} to {} while attached",
        frozen,
        later
    );
    expect_held_by(thread.pid, me())?;
    drop(t);
    ensure!(
        thread.moves_within(1000),
        "counter still frozen after detaching"
    );
    let (state, tracer) = state_of(thread.pid)?;
    ensure!(
        state != "held" && tracer == 0,
        "after detach: state={} tracer={}",
        state,
        tracer
    );
    Ok(())
}

/// At the attach stop `stop` reads cause 0 and addr = the rip `regs/int`
/// shows.
pub fn attach_stop_info() -> Check {
    let kid = Kid::spawn(|| nap_forever())?;
    let _ = sleep_ms(5);
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    let stop = stop_of(kid.pid)?;
    let regs = regs_of(kid.pid)?;
    expect_eq("stop cause at the attach stop", stop.cause, 0)?;
    ensure!(regs.rip != 0, "regs/int rip is 0 at the attach stop");
    expect_eq("stop addr (regs/int rip)", stop.addr, regs.rip as u64)?;
    let again = stop_of(kid.pid)?;
    expect_eq("stop read twice", again, stop)?;
    drop(t);
    Ok(())
}

/// `PTRACE_WAIT` right after attaching returns 1 at once and does not
/// resume the tracee.
pub fn wait_after_attach() -> Check {
    let thread = CounterThread::start()?;
    let t = Tracer::attach(thread.pid).ctx("attach")?;
    let stop = stop_of(thread.pid)?;
    let frozen = thread.count();
    expect_eq("PTRACE_WAIT after attach", op(t.fd(), PTRACE_WAIT), Ok(1))?;
    expect_eq(
        "second PTRACE_WAIT after attach",
        op(t.fd(), PTRACE_WAIT),
        Ok(1),
    )?;
    let _ = sleep_ms(50);
    expect_eq("counter after PTRACE_WAIT", thread.count(), frozen)?;
    expect_held_by(thread.pid, me())?;
    expect_eq("stop after PTRACE_WAIT", stop_of(thread.pid)?, stop)?;
    drop(t);
    Ok(())
}

// ----- EBUSY -----------------------------------------------------------------

/// A traced process refuses a second tracer (`EBUSY`), from this process
/// and from another one; non-trace files stay open to both.
pub fn second_tracer_ebusy() -> Check {
    let kid = Kid::spawn(|| nap_forever())?;
    let pid = kid.pid;
    let path = format!("proc:{pid}/trace");
    let t = Tracer::attach(pid).ctx("attach")?;
    expect_open_err(&path, O_RDWR, EBUSY)?;
    let fd = t.fd();
    in_child(|| {
        // Not through the inherited handle: this process has none.
        let _ = syscall::close(fd);
        expect_open_err(&path, O_RDWR, EBUSY)?;
        expect_open_ok(&format!("proc:{pid}/regs/int"), O_RDONLY)
    })
    .map_err(|e| format!("from another process: {e}"))?;
    expect_held_by(pid, me())?;
    drop(t);
    // The refusal left nothing behind: a new tracer may attach.
    let t = Tracer::attach(pid).ctx("attach after detaching")?;
    expect_held_by(pid, me())?;
    drop(t);
    Ok(())
}

// ----- EPERM -----------------------------------------------------------------

/// A child that waits for end of file on `gate` and then exits 0, after
/// optionally changing its ids. Returns once the child has changed them.
fn user_child(uid: Option<usize>, gid: Option<usize>, gate: &Gate) -> Result<Kid, String> {
    Kid::parked(gate, move |park| {
        if let Some(gid) = gid {
            if become_group(gid).is_err() {
                return 3;
            }
        }
        if let Some(uid) = uid {
            if become_user(uid).is_err() {
                return 4;
            }
        }
        park.park()
    })
}

/// uid 1000 may not open a root process's files: its parent, a sibling,
/// nor a root child it forked before dropping root (an ancestor, but not
/// the same euid).
pub fn eperm_other_user() -> Check {
    let parent = me();
    let sibling_gate = Gate::new()?;
    let mut root_sibling = user_child(None, None, &sibling_gate)?;
    let sibling = root_sibling.pid;
    in_child(|| {
        // Once we are uid 1000 we cannot kill our root child: it ends at
        // end of file on the gate.
        let gate = Gate::new()?;
        let mut root_kid = user_child(None, None, &gate)?;
        let result = (|| {
            become_user(1000)?;
            expect_only_status(parent, "uid 1000 on its root parent")?;
            expect_only_status(sibling, "uid 1000 on a root sibling")?;
            expect_only_status(root_kid.pid, "uid 1000 on its root child")
        })();
        drop(gate);
        let status = root_kid.wait(3000)?;
        result?;
        rt::test::expect_exit("root child", status, 0)
    })?;
    drop(sibling_gate);
    let status = root_sibling.wait(3000)?;
    rt::test::expect_exit("root sibling", status, 0)
}

/// Two uid-1000 siblings may not trace each other, and a uid-1000 child
/// may not trace its uid-1000 parent (same user, not an ancestor).
pub fn eperm_same_user_non_ancestor() -> Check {
    let gate = Gate::new()?;
    let mut sibling = user_child(Some(1000), Some(1000), &gate)?;
    let sib = sibling.pid;
    let line = status_line(sib)?;
    ensure!(
        field(&line, "euid") == Some("1000"),
        "sibling did not become uid 1000: {:?}",
        line
    );
    in_child(|| {
        become_group(1000)?;
        become_user(1000)?;
        expect_only_status(sib, "uid 1000 on a uid-1000 sibling")?;
        // Our own uid-1000 child tracing us (its parent) is refused too.
        let me_pid = me();
        in_child(|| expect_only_status(me_pid, "uid-1000 child on its uid-1000 parent"))
    })?;
    drop(gate);
    let status = sibling.wait(3000)?;
    rt::test::expect_exit("sibling", status, 0)
}

/// A gid of 0 grants nothing: uid 1000 with gid 0 may not open a uid-1000
/// (gid 0) non-descendant nor a root process.
pub fn eperm_gid_zero() -> Check {
    let gate = Gate::new()?;
    let mut sibling = user_child(Some(1000), None, &gate)?;
    let sib = sibling.pid;
    let parent = me();
    in_child(|| {
        become_user(1000)?;
        let line = status_line(me())?;
        ensure!(
            field(&line, "gid") == Some("0") && field(&line, "egid") == Some("0"),
            "expected gid=0 egid=0 after setreuid only: {:?}",
            line
        );
        expect_only_status(sib, "uid 1000 gid 0 on a uid-1000 gid-0 sibling")?;
        expect_only_status(parent, "uid 1000 gid 0 on a root parent")
    })?;
    drop(gate);
    let status = sibling.wait(3000)?;
    rt::test::expect_exit("sibling", status, 0)
}

/// Nobody may trace itself, not even root; a non-root process may not open
/// its own other files either (it is not its own ancestor).
pub fn eperm_trace_self() -> Check {
    let path = format!("proc:{}/trace", me());
    expect_open_err(&path, O_RDWR, EPERM).map_err(|e| format!("as root: {e}"))?;
    expect_open_ok(&format!("proc:{}/regs/int", me()), O_RDONLY)
        .map_err(|e| format!("as root: {e}"))?;
    in_child(|| {
        become_user(1000)?;
        let pid = me();
        expect_open_err(&format!("proc:{pid}/trace"), O_RDWR, EPERM)?;
        expect_open_err(&format!("proc:{pid}/regs/int"), O_RDONLY, EPERM)?;
        expect_open_ok(&format!("proc:{pid}/status"), O_RDONLY)
    })
    .map_err(|e| format!("as uid 1000: {e}"))
}

/// A same-euid ancestor (parent and grandparent) may open the non-trace
/// files and attach; `status` is open to anyone, a root process's too.
pub fn ancestor_may_open_files() -> Check {
    let root_parent = me();
    in_child(|| {
        become_user(1000)?;
        let gate = Gate::new()?;
        let report = Gate::new()?;
        let (gate_rd, gate_wr, report_wr) = (gate.rd, gate.wr, report.wr);
        // The child forks a grandchild and tells us its pid; both wait for
        // end of file on the gate.
        let mut kid = Kid::spawn(move || {
            let _ = syscall::close(gate_wr);
            let grandchild = match rt::process::fork() {
                Ok(0) => {
                    let mut b = [0u8; 1];
                    while let Ok(1) = rt::io::read(gate_rd, &mut b) {}
                    rt::process::exit(0);
                }
                Ok(pid) => pid,
                Err(_) => return 2,
            };
            let _ = rt::io::write_all(report_wr, &(grandchild as u64).to_le_bytes());
            let mut b = [0u8; 1];
            while let Ok(1) = rt::io::read(gate_rd, &mut b) {}
            match rt::process::wait(grandchild) {
                Ok(s) if syscall::flag::wifexited(s) => 0,
                _ => 5,
            }
        })?;
        let mut word = [0u8; 8];
        let n = rt::io::read_full(report.rd, &mut word).ctx("read grandchild pid")?;
        ensure!(n == 8, "child did not report its child's pid");
        let grandchild = u64::from_le_bytes(word) as usize;
        let result = (|| {
            expect_files_open(kid.pid, "uid-1000 parent")?;
            let regs = regs_of(kid.pid).map_err(|e| format!("child regs: {e}"))?;
            ensure!(regs.rip != 0, "child's regs/int rip is 0");
            expect_open_ok(&format!("proc:{grandchild}/regs/int"), O_RDONLY)
                .map_err(|e| format!("uid-1000 grandparent: {e}"))?;
            expect_open_ok(&format!("proc:{grandchild}/mem"), O_RDWR)
                .map_err(|e| format!("uid-1000 grandparent: {e}"))?;
            let t = Tracer::attach(grandchild).ctx("uid-1000 grandparent attaches")?;
            expect_held_by(grandchild, me())?;
            drop(t);
            let line = status_line(root_parent).map_err(|e| format!("root's status: {e}"))?;
            ensure!(
                field(&line, "euid") == Some("0"),
                "root parent's status line: {:?}",
                line
            );
            Ok(())
        })();
        drop(gate);
        let status = kid.wait(3000)?;
        result?;
        rt::test::expect_exit("uid-1000 child", status, 0)
    })
}

// ----- ESRCH, ENOENT, EINVAL --------------------------------------------------

/// A pid nobody has: `ESRCH` for every file.
pub fn esrch_missing_pid() -> Check {
    for (file, flags) in [
        ("trace", O_RDWR),
        ("regs/int", O_RDONLY),
        ("mem", O_RDWR),
        ("stop", O_RDONLY),
        ("status", O_RDONLY),
    ] {
        expect_open_err(&format!("proc:{MISSING_PID}/{file}"), flags, ESRCH)?;
    }
    Ok(())
}

/// A child that has exited but is not reaped yet counts as gone.
pub fn esrch_exited_unreaped() -> Check {
    let gate = Gate::new()?;
    let mut kid = Kid::at_gate(&gate, 5)?;
    let pid = kid.pid;
    // Opened while it lives: this descriptor shows when it has exited.
    let status_fd = syscall::open(format!("proc:{pid}/status"), O_RDONLY).ctx("open status")?;
    let watched = (|| {
        gate.open()?;
        let deadline = now_ms() + 3000;
        loop {
            let mut buf = [0u8; 256];
            tracer::seek_to(status_fd, 0).ctx("lseek status")?;
            let n = rt::io::read(status_fd, &mut buf).ctx("read status after exit")?;
            let line = String::from_utf8_lossy(&buf[..n]);
            if field(&line, "state") == Some("exited") {
                return Ok(());
            }
            ensure!(
                now_ms() < deadline,
                "child never showed state=exited: {:?}",
                line
            );
            let _ = sleep_ms(1);
        }
    })();
    let _ = syscall::close(status_fd);
    watched?;
    for (file, flags) in [
        ("trace", O_RDWR),
        ("regs/int", O_RDONLY),
        ("mem", O_RDWR),
        ("stop", O_RDONLY),
    ] {
        expect_open_err(&format!("proc:{pid}/{file}"), flags, ESRCH)?;
    }
    // It was still there to reap: the ESRCH was not about a reaped pid.
    let status = kid.wait(3000)?;
    rt::test::expect_exit("the exited child, reaped after the opens", status, 5)
}

/// Unknown file names are `ENOENT`.
pub fn enoent_unknown_file() -> Check {
    let kid = Kid::spawn(|| nap_forever())?;
    for file in ["bogus", "regs", "regs/xmm", "TRACE", "statusx", "trace/x"] {
        expect_open_err(&format!("proc:{}/{file}", kid.pid), O_RDONLY, ENOENT)?;
    }
    Ok(())
}

/// Malformed paths are `EINVAL`.
pub fn einval_malformed_path() -> Check {
    let kid = Kid::spawn(|| nap_forever())?;
    let live = kid.pid;
    for path in [
        String::from("proc:abc/trace"),
        String::from("proc:/trace"),
        String::from("proc:12"),
        format!("proc:{live}"),
        String::from("proc:"),
        String::from("proc:-1/trace"),
        format!("proc:{live}x/trace"),
        format!("proc: {live}/trace"),
    ] {
        expect_open_err(&path, O_RDWR, EINVAL)?;
        expect_open_err(&path, O_RDONLY, EINVAL)?;
    }
    let (_, tracer) = state_of(live)?;
    expect_eq("tracer of the live child after the refusals", tracer, 0)
}

/// `trace` needs read and write: other access modes are `EINVAL` and do
/// not attach.
pub fn einval_trace_access_mode() -> Check {
    let kid = Kid::spawn(|| nap_forever())?;
    let path = format!("proc:{}/trace", kid.pid);
    for flags in [O_RDONLY, O_WRONLY, 0] {
        expect_open_err(&path, flags, EINVAL)?;
        let (state, tracer) = state_of(kid.pid)?;
        ensure!(
            state != "held" && tracer == 0,
            "after the refused open with flags {:#x}: state={} tracer={}",
            flags,
            state,
            tracer
        );
    }
    let t = Tracer::attach(kid.pid).ctx("attach read+write")?;
    expect_held_by(kid.pid, me())?;
    drop(t);
    Ok(())
}

/// When several errors apply, the first in the contract's order wins:
/// malformed path, unknown file, no such process, permission, access mode,
/// already traced.
pub fn open_error_precedence() -> Check {
    let missing = MISSING_PID;
    // Malformed beats unknown file and missing pid.
    expect_open_err("proc:abc/bogus", O_RDWR, EINVAL)?;
    expect_open_err(&format!("proc:{missing}"), O_RDWR, EINVAL)?;
    expect_open_err(&format!("proc:{missing}x/trace"), O_RDWR, EINVAL)?;
    // Unknown file beats missing pid.
    expect_open_err(&format!("proc:{missing}/bogus"), O_RDWR, ENOENT)?;
    // Missing pid beats access mode.
    expect_open_err(&format!("proc:{missing}/trace"), O_RDONLY, ESRCH)?;

    let kid = Kid::spawn(|| nap_forever())?;
    let pid = kid.pid;
    let parent = me();
    in_child(|| {
        become_user(1000)?;
        // Missing pid beats permission.
        expect_open_err(&format!("proc:{missing}/trace"), O_RDWR, ESRCH)?;
        // Unknown file beats permission.
        expect_open_err(&format!("proc:{parent}/bogus"), O_RDWR, ENOENT)?;
        // Permission beats access mode.
        expect_open_err(&format!("proc:{parent}/trace"), O_RDONLY, EPERM)?;
        expect_open_err(&format!("proc:{parent}/stop"), O_RDWR, EPERM)
    })
    .map_err(|e| format!("as uid 1000: {e}"))?;

    let t = Tracer::attach(pid).ctx("attach")?;
    // Access mode beats already traced.
    expect_open_err(&format!("proc:{pid}/trace"), O_RDONLY, EINVAL)?;
    expect_open_err(&format!("proc:{pid}/trace"), O_WRONLY, EINVAL)?;
    in_child(|| {
        expect_open_err(&format!("proc:{pid}/trace"), O_WRONLY, EINVAL)?;
        become_user(1000)?;
        // Permission beats already traced.
        expect_open_err(&format!("proc:{pid}/trace"), O_RDWR, EPERM)
    })
    .map_err(|e| format!("from another process: {e}"))?;
    // Unknown file and malformed path beat already traced.
    expect_open_err(&format!("proc:{pid}/bogus"), O_RDWR, ENOENT)?;
    expect_open_err(&format!("proc:{pid}x/trace"), O_RDWR, EINVAL)?;
    expect_open_err(&format!("proc:{pid}/trace"), O_RDWR, EBUSY)?;
    drop(t);
    Ok(())
}

/// A uid-1000 tracer keeps a tracee that stops being its descendant: its
/// grandchild, orphaned onto pid 1 when the child in between exits. New
/// opens of the grandchild's files are `EPERM` from then on (the check is
/// made at open), but a `Tracer` opened `stop`, `regs/int` and `mem` when
/// it attached: it still reads every stop, the registers and memory, and
/// follows the tracee to its exit.
pub fn orphaned_tracee_stays_traceable() -> Check {
    in_child(|| {
        become_user(1000)?;
        // The grandchild reads one byte from `go`, calls getpid, exits 7;
        // the child reports its pid and exits once `leave` opens.
        let go = Gate::new()?;
        let report = Gate::new()?;
        let leave = Gate::new()?;
        let (go_rd, go_wr, report_wr, leave_rd) = (go.rd, go.wr, report.wr, leave.rd);
        let mut kid = Kid::spawn(move || {
            let _ = syscall::close(go_wr);
            let grandchild = match rt::process::fork() {
                Ok(0) => {
                    let mut b = [0u8; 1];
                    let _ = rt::io::read(go_rd, &mut b);
                    let _ = syscall::getpid();
                    rt::process::exit(7);
                }
                Ok(pid) => pid,
                Err(_) => return 2,
            };
            let _ = rt::io::write_all(report_wr, &(grandchild as u64).to_le_bytes());
            let mut b = [0u8; 1];
            let _ = rt::io::read(leave_rd, &mut b);
            0
        })?;
        let mut word = [0u8; 8];
        let n = rt::io::read_full(report.rd, &mut word).ctx("read grandchild pid")?;
        ensure!(n == 8, "child did not report its child's pid");
        let grandchild = u64::from_le_bytes(word) as usize;
        let mut t = Tracer::attach(grandchild).ctx("attach to the grandchild")?;
        leave.open()?;
        let status = kid.wait(3000)?;
        rt::test::expect_exit("child", status, 0)?;
        let line = status_line(grandchild)?;
        ensure!(
            field(&line, "ppid") == Some("1"),
            "the grandchild is not orphaned onto pid 1: {:?}",
            line.trim_end()
        );
        for (file, flags) in [("stop", O_RDONLY), ("regs/int", O_RDONLY), ("mem", O_RDWR)] {
            expect_open_err(&format!("proc:{grandchild}/{file}"), flags, EPERM)
                .map_err(|e| format!("no longer an ancestor: {e}"))?;
        }
        let stop = t.stop().ctx("Tracer::stop at the attach stop")?;
        expect_eq("attach stop cause", stop.cause, 0)?;
        let regs = t.regs().ctx("Tracer::regs")?;
        expect_eq("rip", regs.rip as u64, stop.addr)?;
        t.set_regs(&regs).ctx("Tracer::set_regs")?;
        let mut bytes = [0u8; 8];
        let n = t
            .read_mem(regs.rsp as u64, &mut bytes)
            .ctx("Tracer::read_mem at rsp")?;
        expect_eq("bytes read at rsp", n, 8)?;
        go.open()?;
        // The grandchild may or may not be inside `read` yet.
        let mut seen = String::new();
        let mut status = None;
        for _ in 0..8 {
            match t.resume(tracer::PTRACE_SYSCALL, |_| {}) {
                Ok(tracer::Stopped::Reached(s)) => {
                    t.regs().ctx("Tracer::regs at a syscall stop")?;
                    seen.push_str(&format!("[cause {:#x} nr {}] ", s.cause, s.nr));
                }
                Ok(tracer::Stopped::Exited(st)) => {
                    status = Some(st);
                    break;
                }
                Ok(other) => return Err(format!("resume: {other:?} after {seen}")),
                Err(e) => return Err(format!("resume after {seen}: {}", rt::errno::describe(&e))),
            }
        }
        let Some(status) = status else {
            return Err(format!("the grandchild did not exit; stops {seen}"));
        };
        ensure!(
            seen.contains(&format!("nr {}]", syscall::number::SYS_GETPID)),
            "no getpid stop among {seen}"
        );
        rt::test::expect_exit("the grandchild's exit event", status, 7)
    })
}

/// `dup` re-checks the caller's credentials: a `status` handle a root
/// process opened on root's process gives no `regs/int` once uid 1000.
pub fn dup_rechecks_credentials() -> Check {
    let parent = me();
    in_child(|| {
        let fd = syscall::open(format!("proc:{parent}/status"), O_RDONLY).ctx("open status")?;
        // As root the sibling opens.
        let regs = syscall::dup(fd, b"regs/int").ctx("dup status -> regs/int as root")?;
        let _ = syscall::close(regs);
        become_user(1000)?;
        let r = expect_errno(
            "dup status -> regs/int as uid 1000",
            syscall::dup(fd, b"regs/int"),
            EPERM,
        );
        let _ = syscall::close(fd);
        r
    })
}
