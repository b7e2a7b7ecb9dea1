//! The checks made when a `proc:` file is opened (or re-opened by `dup`),
//! in the contract's order. Path errors (`EINVAL`, `ENOENT`) come first, from
//! [`crate::path`]; [`check_open`] makes the rest.

use crate::errno::{Errno, EBUSY, EINVAL, EPERM, ESRCH};
use crate::path::{Pid, ProcFile};

/// A process's credentials.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// Everything the open checks look at, gathered by the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// The file being opened.
    pub file: ProcFile,
    /// The opener.
    pub caller_pid: Pid,
    pub caller: Creds,
    /// The process named by the path.
    pub target_pid: Pid,
    /// The target exists and has not exited.
    pub target_live: bool,
    /// The target's credentials.
    pub target: Creds,
    /// The target changed its uids or gids (`setreuid`, `setregid` with an
    /// effect) since it last started a program with `fexec` (v1.2).
    pub target_creds_changed: bool,
    /// The caller is the target's parent, grandparent or further ancestor.
    /// (A process is not its own ancestor; this is ignored when
    /// `caller_pid == target_pid`.)
    pub caller_is_ancestor: bool,
    /// The open asks for read access.
    pub readable: bool,
    /// The open asks for write access.
    pub writable: bool,
    /// The target already has a tracer (a clone child held for the caller's
    /// session does not count).
    pub target_already_traced: bool,
}

/// Checks an open after its path was parsed. The first failing check wins:
///
/// 1. `ESRCH`: the target does not exist or has exited;
/// 2. `EPERM`: not `status`, and the caller's euid is not 0 and not all of
///    (contract v1.2): the caller's euid equals the target's euid and real
///    uid, its egid equals the target's egid and real gid, the target has
///    not changed its ids since its last `fexec`, and the caller is an
///    ancestor; `trace` on oneself is always `EPERM`, even for root; a gid
///    of 0 grants nothing;
/// 3. `EINVAL`: `trace` without both read and write access, or `stop` /
///    `status` (read-only files) with write access;
/// 4. `EBUSY`: `trace` on a process that already has a tracer.
pub fn check_open(request: &OpenRequest) -> Result<(), Errno> {
    if !request.target_live {
        return Err(ESRCH);
    }
    if request.file != ProcFile::Status && !may_inspect(request) {
        return Err(EPERM);
    }
    if !access_mode_fits(request) {
        return Err(EINVAL);
    }
    if request.file == ProcFile::Trace && request.target_already_traced {
        return Err(EBUSY);
    }
    Ok(())
}

/// The permission rule for every file but `status`.
fn may_inspect(request: &OpenRequest) -> bool {
    let on_self = request.caller_pid == request.target_pid;
    if on_self && request.file == ProcFile::Trace {
        return false;
    }
    let is_root = request.caller.euid == 0;
    let is_ancestor = request.caller_is_ancestor && !on_self;
    is_root
        || (same_ids(request.caller, request.target)
            && !request.target_creds_changed
            && is_ancestor)
}

/// The caller's effective ids equal both the target's effective and real
/// ids (uids and gids alike). Only effective ids of the caller count.
fn same_ids(caller: Creds, target: Creds) -> bool {
    caller.euid == target.euid
        && caller.euid == target.uid
        && caller.egid == target.egid
        && caller.egid == target.gid
}

/// `trace` needs read and write; read-only files refuse write access.
fn access_mode_fits(request: &OpenRequest) -> bool {
    match request.file {
        ProcFile::Trace => request.readable && request.writable,
        file if file.is_read_only() => !request.writable,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: u32 = 1000;
    const OTHER_USER: u32 = 1001;

    fn creds(euid: u32, egid: u32) -> Creds {
        Creds {
            uid: euid,
            euid,
            gid: egid,
            egid,
        }
    }

    /// A parent (pid 10, uid 1000) opening `file` read-write on its child
    /// (pid 11, uid 1000): allowed for every file but the read-only ones.
    fn parent_opens(file: ProcFile) -> OpenRequest {
        OpenRequest {
            file,
            caller_pid: 10,
            caller: creds(USER, USER),
            target_pid: 11,
            target_live: true,
            target: creds(USER, USER),
            target_creds_changed: false,
            caller_is_ancestor: true,
            readable: true,
            writable: !file.is_read_only(),
            target_already_traced: false,
        }
    }

    #[test]
    fn ancestor_with_same_euid_may_open_everything() {
        for file in ProcFile::ALL {
            assert_eq!(check_open(&parent_opens(file)), Ok(()), "{file:?}");
        }
    }

    #[test]
    fn dead_target_is_esrch_before_anything_else() {
        let request = OpenRequest {
            target_live: false,
            caller: creds(OTHER_USER, OTHER_USER),
            caller_is_ancestor: false,
            readable: false,
            writable: false,
            target_already_traced: true,
            ..parent_opens(ProcFile::Trace)
        };
        assert_eq!(check_open(&request), Err(ESRCH));
        let status = OpenRequest {
            target_live: false,
            ..parent_opens(ProcFile::Status)
        };
        assert_eq!(check_open(&status), Err(ESRCH));
    }

    #[test]
    fn non_ancestor_is_eperm() {
        for file in ProcFile::ALL.into_iter().filter(|f| *f != ProcFile::Status) {
            let request = OpenRequest {
                caller_is_ancestor: false,
                ..parent_opens(file)
            };
            assert_eq!(check_open(&request), Err(EPERM), "{file:?}");
        }
    }

    /// Every file but `status`, opened by the parent with `change` applied.
    fn expect_eperm_everywhere(change: impl Fn(OpenRequest) -> OpenRequest) {
        for file in ProcFile::ALL.into_iter().filter(|f| *f != ProcFile::Status) {
            assert_eq!(
                check_open(&change(parent_opens(file))),
                Err(EPERM),
                "{file:?}"
            );
            let status = change(parent_opens(ProcFile::Status));
            assert_eq!(check_open(&status), Ok(()), "status stays open");
        }
    }

    #[test]
    fn different_euid_is_eperm_even_for_an_ancestor() {
        expect_eperm_everywhere(|r| OpenRequest {
            target: creds(OTHER_USER, USER),
            ..r
        });
    }

    #[test]
    fn target_real_uid_must_equal_callers_euid() {
        expect_eperm_everywhere(|r| OpenRequest {
            target: Creds {
                uid: OTHER_USER,
                ..creds(USER, USER)
            },
            ..r
        });
    }

    #[test]
    fn target_egid_must_equal_callers_egid() {
        expect_eperm_everywhere(|r| OpenRequest {
            target: Creds {
                egid: OTHER_USER,
                ..creds(USER, USER)
            },
            ..r
        });
    }

    #[test]
    fn target_real_gid_must_equal_callers_egid() {
        expect_eperm_everywhere(|r| OpenRequest {
            target: Creds {
                gid: OTHER_USER,
                ..creds(USER, USER)
            },
            ..r
        });
    }

    #[test]
    fn callers_real_ids_do_not_count_only_effective_ones() {
        // A caller whose effective ids differ from the target's is refused
        // even if its real ids match.
        expect_eperm_everywhere(|r| OpenRequest {
            caller: Creds {
                uid: USER,
                euid: OTHER_USER,
                gid: USER,
                egid: USER,
            },
            ..r
        });
        // A caller whose effective ids match is allowed whatever its real
        // ids are.
        let request = OpenRequest {
            caller: Creds {
                uid: OTHER_USER,
                euid: USER,
                gid: OTHER_USER,
                egid: USER,
            },
            ..parent_opens(ProcFile::Trace)
        };
        assert_eq!(check_open(&request), Ok(()));
    }

    #[test]
    fn target_that_changed_ids_since_fexec_is_eperm() {
        expect_eperm_everywhere(|r| OpenRequest {
            target_creds_changed: true,
            ..r
        });
    }

    #[test]
    fn root_may_open_a_target_that_changed_ids() {
        let request = OpenRequest {
            caller: creds(0, 0),
            target_creds_changed: true,
            ..parent_opens(ProcFile::Trace)
        };
        assert_eq!(check_open(&request), Ok(()));
    }

    #[test]
    fn gid_zero_grants_nothing() {
        expect_eperm_everywhere(|r| OpenRequest {
            caller: creds(USER, 0),
            target: creds(OTHER_USER, OTHER_USER),
            ..r
        });
        // gid 0 against a same-uid target of another gid.
        expect_eperm_everywhere(|r| OpenRequest {
            caller: creds(USER, 0),
            target: creds(USER, USER),
            ..r
        });
        // Nor against a root target, even as an ancestor.
        expect_eperm_everywhere(|r| OpenRequest {
            caller: creds(USER, 0),
            target: creds(0, 0),
            ..r
        });
    }

    #[test]
    fn equal_gid_zero_is_no_obstacle() {
        // gid 0 on both sides compares equal like any other gid.
        let request = OpenRequest {
            caller: creds(USER, 0),
            target: creds(USER, 0),
            ..parent_opens(ProcFile::Trace)
        };
        assert_eq!(check_open(&request), Ok(()));
    }

    #[test]
    fn root_may_open_any_other_process() {
        let request = OpenRequest {
            caller: creds(0, 0),
            target: creds(OTHER_USER, OTHER_USER),
            caller_is_ancestor: false,
            ..parent_opens(ProcFile::Trace)
        };
        assert_eq!(check_open(&request), Ok(()));
    }

    #[test]
    fn trace_on_self_is_eperm_even_for_root() {
        for caller in [creds(0, 0), creds(USER, USER)] {
            let request = OpenRequest {
                caller,
                target_pid: 10,
                ..parent_opens(ProcFile::Trace)
            };
            assert_eq!(check_open(&request), Err(EPERM));
        }
    }

    #[test]
    fn other_files_on_self_need_root() {
        let own_regs = OpenRequest {
            target_pid: 10,
            ..parent_opens(ProcFile::RegsInt)
        };
        assert_eq!(check_open(&own_regs), Err(EPERM));
        let root_own_regs = OpenRequest {
            caller: creds(0, 0),
            target: creds(0, 0),
            ..own_regs
        };
        assert_eq!(check_open(&root_own_regs), Ok(()));
    }

    #[test]
    fn status_is_open_to_everyone() {
        let request = OpenRequest {
            caller: creds(OTHER_USER, OTHER_USER),
            caller_is_ancestor: false,
            target_pid: 10,
            ..parent_opens(ProcFile::Status)
        };
        assert_eq!(check_open(&request), Ok(()));
    }

    #[test]
    fn trace_needs_read_and_write() {
        for (readable, writable) in [(true, false), (false, true), (false, false)] {
            let request = OpenRequest {
                readable,
                writable,
                ..parent_opens(ProcFile::Trace)
            };
            assert_eq!(check_open(&request), Err(EINVAL));
        }
    }

    #[test]
    fn read_only_files_refuse_write_access() {
        for file in [ProcFile::Stop, ProcFile::Status, ProcFile::Maps] {
            let request = OpenRequest {
                writable: true,
                ..parent_opens(file)
            };
            assert_eq!(check_open(&request), Err(EINVAL), "{file:?}");
        }
    }

    #[test]
    fn other_files_accept_any_access_mode() {
        for file in [
            ProcFile::RegsInt,
            ProcFile::RegsFloat,
            ProcFile::RegsEnv,
            ProcFile::Mem,
        ] {
            for (readable, writable) in [(true, false), (false, true), (false, false)] {
                let request = OpenRequest {
                    readable,
                    writable,
                    ..parent_opens(file)
                };
                assert_eq!(check_open(&request), Ok(()), "{file:?}");
            }
        }
    }

    #[test]
    fn already_traced_is_ebusy_for_trace_only() {
        let traced = |file| OpenRequest {
            target_already_traced: true,
            ..parent_opens(file)
        };
        assert_eq!(check_open(&traced(ProcFile::Trace)), Err(EBUSY));
        for file in ProcFile::ALL.into_iter().filter(|f| *f != ProcFile::Trace) {
            assert_eq!(check_open(&traced(file)), Ok(()), "{file:?}");
        }
    }

    #[test]
    fn order_is_eperm_then_einval_then_ebusy() {
        let everything_wrong = OpenRequest {
            caller_is_ancestor: false,
            writable: false,
            target_already_traced: true,
            ..parent_opens(ProcFile::Trace)
        };
        assert_eq!(check_open(&everything_wrong), Err(EPERM));
        let permitted = OpenRequest {
            caller_is_ancestor: true,
            ..everything_wrong
        };
        assert_eq!(check_open(&permitted), Err(EINVAL));
        let read_write = OpenRequest {
            writable: true,
            ..permitted
        };
        assert_eq!(check_open(&read_write), Err(EBUSY));
    }
}
