//! Section 1 (v1.2): the permission rule. A non-root caller needs its
//! effective ids equal to the target's real and effective ids, a target
//! that has not changed its ids since its last `fexec`, and to be an
//! ancestor; a gid of 0 grants nothing.

use alloc::format;
use alloc::string::{String, ToString};

use rt::ensure;
use rt::process::sleep_ms;
use rt::test::{expect_errno, in_child, Ctx};
use syscall::error::EPERM;
use syscall::flag::{O_NONBLOCK, O_RDWR};
use tracer::{Tracer, PTRACE_WAIT};

use crate::SELF;
use testkit::*;

/// Expects every file to open, and an attach to hold the target.
fn expect_all_open(pid: usize, what: &str) -> Check {
    expect_files_open(pid, what)?;
    let t = Tracer::attach(pid).ctx(&format!("{what}: attach"))?;
    expect_held_by(pid, me()).map_err(|e| format!("{what}: {e}"))?;
    drop(t);
    Ok(())
}

/// `setregid(rgid, egid)` then `setreuid(ruid, euid)`.
pub fn set_ids(ruid: usize, euid: usize, rgid: usize, egid: usize) -> Check {
    syscall::setregid(rgid, egid).ctx(&format!("setregid({rgid}, {egid})"))?;
    syscall::setreuid(ruid, euid).ctx(&format!("setreuid({ruid}, {euid})"))?;
    Ok(())
}

/// A child that runs `setup` (as root), then parks until end of file on
/// `gate`: after an `fexec` of this program in `--park` mode if `exec`
/// (which clears the "changed ids" mark), else in place. Returns once the
/// child is parked.
pub fn parked_child(setup: fn() -> Check, exec: bool, gate: &Gate) -> Result<Kid, String> {
    Kid::parked(gate, move |park| {
        if setup().is_err() {
            return 3;
        }
        if exec {
            let ready = park.ready_wr.to_string();
            let gate = park.gate_rd.to_string();
            let _ = rt::process::exec(SELF, &["--park", &ready, &gate], &[]);
            return 4;
        }
        park.park()
    })
}

/// The `uid= euid= gid= egid=` fields of `pid`'s status line.
fn ids_of(pid: usize) -> Result<String, String> {
    let line = status_line(pid)?;
    let ids: alloc::vec::Vec<&str> = ["uid", "euid", "gid", "egid"]
        .iter()
        .map(|k| field(&line, k).unwrap_or("?"))
        .collect();
    Ok(ids.join(" "))
}

/// A root parent forks a target that runs `setup` and parks (through
/// `fexec` if `exec`); the parent checks the target's ids are `ids`,
/// becomes uid 1000 gid 1000 (`caller_gid` for the gids), and runs
/// `check` on the target.
fn as_user_1000_on(
    setup: fn() -> Check,
    exec: bool,
    ids: &str,
    caller_gid: usize,
    check: fn(usize) -> Check,
) -> Check {
    in_child(|| {
        let gate = Gate::new()?;
        let mut kid = parked_child(setup, exec, &gate)?;
        let result = (|| {
            let got = ids_of(kid.pid)?;
            ensure!(got == ids, "target ids {got:?}, expected {ids:?}");
            set_ids(1000, 1000, caller_gid, caller_gid)?;
            check(kid.pid)
        })();
        drop(gate);
        let status = kid.wait(3000);
        result?;
        rt::test::expect_exit("target", status?, 0)
    })
}

/// A target whose real uid (2000) differs from its effective uid (1000):
/// a uid-1000 ancestor is refused. (The target `fexec`s after changing its
/// ids, so only the real uid stands in the way.)
pub fn perm_real_uid_differs() -> Check {
    as_user_1000_on(
        || set_ids(2000, 1000, 1000, 1000),
        true,
        "2000 1000 1000 1000",
        1000,
        |pid| expect_only_status(pid, "real uid 2000, euid 1000"),
    )
}

/// A target whose real gid (2000) differs from its effective gid (1000).
pub fn perm_real_gid_differs() -> Check {
    as_user_1000_on(
        || set_ids(1000, 1000, 2000, 1000),
        true,
        "1000 1000 2000 1000",
        1000,
        |pid| expect_only_status(pid, "real gid 2000, egid 1000"),
    )
}

/// Security matrix case 3 (S2b): a target that changed its ids (root to
/// uid 1000 gid 1000) without a later `fexec` has the same ids as its
/// uid-1000 ancestor, yet only root may open its files.
pub fn matrix_case_3_s2b_changed_ids_without_fexec() -> Check {
    as_user_1000_on(
        || set_ids(1000, 1000, 1000, 1000),
        false,
        "1000 1000 1000 1000",
        1000,
        |pid| expect_only_status(pid, "changed ids, no fexec since"),
    )?;
    // Root still may.
    let gate = Gate::new()?;
    let kid = parked_child(|| set_ids(1000, 1000, 1000, 1000), false, &gate)?;
    expect_all_open(kid.pid, "root on a target that changed ids")
}

/// The same target after an `fexec`: the mark is gone, the uid-1000
/// ancestor may open everything and attach.
pub fn perm_fexec_clears_mark() -> Check {
    as_user_1000_on(
        || set_ids(1000, 1000, 1000, 1000),
        true,
        "1000 1000 1000 1000",
        1000,
        |pid| expect_all_open(pid, "changed ids, then fexec"),
    )
}

/// The mark belongs to the process that changed its ids: a clone child it
/// creates afterwards starts without it, so the marked parent (uid 1000)
/// may trace that child.
pub fn perm_clone_child_of_marked_process() -> Check {
    in_child(|| {
        set_ids(1000, 1000, 1000, 1000)?;
        let gate = Gate::new()?;
        let kid = parked_child(|| Ok(()), false, &gate)?;
        let got = ids_of(kid.pid)?;
        ensure!(got == "1000 1000 1000 1000", "child ids {got:?}");
        expect_all_open(kid.pid, "marked parent on its clone child")
    })
}

/// Security matrix case 26: gid 0 grants nothing. A uid-1000 caller
/// whose gids are 0 is refused on a uid-1000 gid-1000 child (clean: it
/// `fexec`ed), which a uid-1000 gid-1000 caller may open.
pub fn matrix_case_26_gid_zero_grants_nothing() -> Check {
    as_user_1000_on(
        || set_ids(1000, 1000, 1000, 1000),
        true,
        "1000 1000 1000 1000",
        0,
        |pid| expect_only_status(pid, "uid 1000 gid 0 on uid 1000 gid 1000"),
    )
}

/// Security matrix case 15: attach attempts racing with the target's
/// credential drop (root to uid 1000) never succeed: before the drop the
/// target is root, after it the target is marked. The caller, a uid-1000
/// ancestor, tries all along.
pub fn matrix_case_15_cred_drop_race_never_old_creds() -> Check {
    in_child(|| {
        let (done_rd, done_wr) = rt::io::pipe(O_NONBLOCK).ctx("pipe")?;
        let gate = Gate::new()?;
        let (gate_rd, gate_wr) = (gate.rd, gate.wr);
        let mut kid = Kid::spawn(move || {
            let _ = syscall::close(gate_wr);
            for _ in 0..200 {
                let _ = syscall::sched_yield();
            }
            if set_ids(1000, 1000, 1000, 1000).is_err() {
                return 3;
            }
            let _ = rt::io::write_all(done_wr, b"d");
            let mut b = [0u8; 1];
            while let Ok(1) = rt::io::read(gate_rd, &mut b) {}
            0
        })?;
        let _ = syscall::close(done_wr);
        let result = (|| {
            set_ids(1000, 1000, 1000, 1000)?;
            let path = format!("proc:{}/trace", kid.pid);
            let mut attempts = 0usize;
            let mut after_drop = 0usize;
            while after_drop < 200 {
                expect_errno(
                    &format!("attempt {attempts}"),
                    try_open(&path, O_RDWR),
                    EPERM,
                )?;
                attempts += 1;
                let mut b = [0u8; 1];
                if after_drop > 0 || matches!(rt::io::read(done_rd, &mut b), Ok(1)) {
                    after_drop += 1;
                }
                ensure!(attempts < 1_000_000, "the target never dropped its ids");
            }
            let got = ids_of(kid.pid)?;
            ensure!(got == "1000 1000 1000 1000", "target ids {got:?}");
            Ok(())
        })();
        drop(gate);
        let status = kid.wait(3000);
        let _ = syscall::close(done_rd);
        result?;
        rt::test::expect_exit("target", status?, 0)
    })
}

/// Security matrix case 25: a tracer that drops privilege after opening
/// keeps what it opened as root (the check is made at open, against the
/// opener's credentials, like any Unix file), but every new open and every
/// `dup` is checked against its new ids: refused on a root target.
pub fn matrix_case_25_tracer_drop_keeps_only_opened_handles() -> Check {
    in_child(|| {
        let gate = Gate::new()?;
        let mut kid = parked_child(|| Ok(()), false, &gate)?;
        let pid = kid.pid;
        let result = (|| {
            let t = Tracer::attach(pid).ctx("attach as root")?;
            set_ids(1000, 1000, 1000, 1000)?;
            expect_only_status(pid, "uid 1000 on a root target")?;
            expect_errno(
                "dup trace -> regs/int after the drop",
                syscall::dup(t.fd(), b"regs/int"),
                EPERM,
            )?;
            expect_held_by(pid, me())?;
            ensure!(
                regs_of(pid).is_err(),
                "a new regs/int opened after the drop"
            );
            let mut buf = [0u8; 56];
            syscall::read(t.fd(), &mut buf).ctx("read the root-opened trace handle")?;
            // At the attach stop, PTRACE_WAIT answers "reached" at once.
            let reached =
                op_ok(t.fd(), PTRACE_WAIT).map_err(|e| format!("root-opened handle: {e}"))?;
            ensure!(
                reached == 1,
                "PTRACE_WAIT at the attach stop returned {reached}"
            );
            drop(t);
            wait_for_state(pid, "blocked", 3000)
        })();
        // As uid 1000 we cannot kill the root target: it ends at end of
        // file on the gate.
        drop(gate);
        let status = kid.wait(3000);
        result?;
        rt::test::expect_exit("target", status?, 0)
    })
}

/// Security matrix case 13 (CVE-2019-13272): there is no "trace me"; a
/// session is only made by the tracer's own open, with its own ids. A
/// child cannot start one on itself nor on its (root) parent, and a
/// uid-1000 child of root cannot borrow root's rights to open its parent.
pub fn matrix_case_13_tracee_cannot_create_a_session() -> Check {
    let parent = me();
    in_child(|| {
        let me_pid = me();
        expect_open_err(&format!("proc:{me_pid}/trace"), O_RDWR, EPERM)
            .map_err(|e| format!("trace on itself: {e}"))?;
        set_ids(1000, 1000, 1000, 1000)?;
        expect_only_status(parent, "uid-1000 child on its root parent")?;
        expect_open_err(&format!("proc:{me_pid}/trace"), O_RDWR, EPERM)
            .map_err(|e| format!("trace on itself as uid 1000: {e}"))?;
        let _ = sleep_ms(1);
        Ok(())
    })
}
