//! Signal numbers: the kernel's (Linux numbering, as in `redox_syscall`)
//! against gdb's own numbering used on the wire (`T05`, `C0b`, `X09`).

/// gdb's "unknown signal".
pub const GDB_UNKNOWN: u8 = 143;
/// gdb's SIGTRAP (the same number as the kernel's).
pub const GDB_TRAP: u8 = 5;
/// gdb's SIGINT.
pub const GDB_INT: u8 = 2;

/// `(kernel number, gdb number)`. Signals 1..=6, 8, 9, 11, 13, 14 and 15
/// have the same number in both.
const MAP: [(usize, u8); 31] = [
    (1, 1),            // SIGHUP
    (2, 2),            // SIGINT
    (3, 3),            // SIGQUIT
    (4, 4),            // SIGILL
    (5, 5),            // SIGTRAP
    (6, 6),            // SIGABRT
    (7, 10),           // SIGBUS
    (8, 8),            // SIGFPE
    (9, 9),            // SIGKILL
    (10, 30),          // SIGUSR1
    (11, 11),          // SIGSEGV
    (12, 31),          // SIGUSR2
    (13, 13),          // SIGPIPE
    (14, 14),          // SIGALRM
    (15, 15),          // SIGTERM
    (16, GDB_UNKNOWN), // SIGSTKFLT: gdb has no name for it
    (17, 20),          // SIGCHLD
    (18, 19),          // SIGCONT
    (19, 17),          // SIGSTOP
    (20, 18),          // SIGTSTP
    (21, 21),          // SIGTTIN
    (22, 22),          // SIGTTOU
    (23, 16),          // SIGURG
    (24, 24),          // SIGXCPU
    (25, 25),          // SIGXFSZ
    (26, 26),          // SIGVTALRM
    (27, 27),          // SIGPROF
    (28, 28),          // SIGWINCH
    (29, 23),          // SIGIO
    (30, 32),          // SIGPWR
    (31, 12),          // SIGSYS
];

/// gdb's number for kernel signal `sig` ([`GDB_UNKNOWN`] if it has none).
pub fn to_gdb(sig: usize) -> u8 {
    MAP.iter()
        .find(|(k, _)| *k == sig)
        .map_or(GDB_UNKNOWN, |&(_, g)| g)
}

/// The kernel's number for gdb signal `sig`, if the kernel has it.
pub fn from_gdb(sig: u8) -> Option<usize> {
    MAP.iter()
        .find(|(k, g)| *g == sig && *g != GDB_UNKNOWN && *k != 0)
        .map(|&(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for sig in 1..=31usize {
            if sig == 16 {
                assert_eq!(to_gdb(sig), GDB_UNKNOWN);
                continue;
            }
            assert_eq!(from_gdb(to_gdb(sig)), Some(sig), "signal {sig}");
        }
        assert_eq!(to_gdb(10), 30);
        assert_eq!(to_gdb(17), 20);
        assert_eq!(to_gdb(0), GDB_UNKNOWN);
        assert_eq!(to_gdb(64), GDB_UNKNOWN);
        assert_eq!(from_gdb(GDB_UNKNOWN), None);
        assert_eq!(from_gdb(0), None);
        assert_eq!(from_gdb(7), None); // SIGEMT
    }
}
