//! Parsing the part of a path after `proc:` (`"12/regs/int"`) and the sibling
//! names given to `dup` (`"regs/int"`), and formatting `fpath`.

use alloc::format;
use alloc::string::String;

use crate::errno::{Errno, EINVAL, ENOENT};

/// A process id. Valid ids are never 0.
pub type Pid = usize;

/// The files under `proc:<pid>/`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProcFile {
    Trace,
    RegsInt,
    RegsFloat,
    RegsEnv,
    Mem,
    Stop,
    Status,
    /// The address-space layout, one text line per mapping (read-only).
    Maps,
}

impl ProcFile {
    /// Every file, in the contract's order.
    pub const ALL: [ProcFile; 8] = [
        ProcFile::Trace,
        ProcFile::RegsInt,
        ProcFile::RegsFloat,
        ProcFile::RegsEnv,
        ProcFile::Mem,
        ProcFile::Stop,
        ProcFile::Status,
        ProcFile::Maps,
    ];

    /// The file's name under `proc:<pid>/`.
    pub const fn name(self) -> &'static str {
        match self {
            ProcFile::Trace => "trace",
            ProcFile::RegsInt => "regs/int",
            ProcFile::RegsFloat => "regs/float",
            ProcFile::RegsEnv => "regs/env",
            ProcFile::Mem => "mem",
            ProcFile::Stop => "stop",
            ProcFile::Status => "status",
            ProcFile::Maps => "maps",
        }
    }

    /// The file named `name` exactly, if any.
    pub fn from_name(name: &str) -> Option<ProcFile> {
        ProcFile::ALL.into_iter().find(|file| file.name() == name)
    }

    /// Whether the file can only be read (`stop`, `status`, `maps`).
    pub const fn is_read_only(self) -> bool {
        matches!(self, ProcFile::Stop | ProcFile::Status | ProcFile::Maps)
    }
}

/// Parses `"<pid>/<file>"` (one leading `/` is accepted).
///
/// Errors: `EINVAL` when malformed (empty; pid not all decimal digits, zero
/// or too large; no file part; an empty component such as in `"1//trace"` or
/// `"1/trace/"`), else `ENOENT` when the file name is unknown (`"1/regs"`,
/// `"1/foo"`).
pub fn parse_proc_path(path: &str) -> Result<(Pid, ProcFile), Errno> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (pid, file) = path.split_once('/').ok_or(EINVAL)?;
    let pid = parse_pid(pid).ok_or(EINVAL)?;
    let file = parse_sibling(file)?;
    Ok((pid, file))
}

/// Parses a sibling file name, as given to `dup(fd, "regs/int")`.
///
/// Errors: `EINVAL` if empty or a component is empty (including a leading or
/// trailing `/`), else `ENOENT` if unknown. (An empty `dup` buffer means a
/// plain duplicate; the kernel handles that before calling this.)
pub fn parse_sibling(name: &str) -> Result<ProcFile, Errno> {
    if name.split('/').any(str::is_empty) {
        return Err(EINVAL);
    }
    ProcFile::from_name(name).ok_or(ENOENT)
}

/// What `fpath` reports for a handle: `proc:<pid>/<file>`.
pub fn fpath(pid: Pid, file: ProcFile) -> String {
    format!("proc:{}/{}", pid, file.name())
}

/// A non-zero decimal pid that fits a [`Pid`].
fn parse_pid(digits: &str) -> Option<Pid> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // Only digits remain, so parsing fails only on overflow.
    let pid: Pid = digits.parse().ok()?;
    (pid != 0).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_file() {
        for file in ProcFile::ALL {
            let path = format!("12/{}", file.name());
            assert_eq!(parse_proc_path(&path), Ok((12, file)));
            assert_eq!(parse_sibling(file.name()), Ok(file));
        }
    }

    #[test]
    fn accepts_one_leading_slash() {
        assert_eq!(parse_proc_path("/7/trace"), Ok((7, ProcFile::Trace)));
        assert_eq!(parse_proc_path("//7/trace"), Err(EINVAL));
    }

    #[test]
    fn malformed_paths_are_einval() {
        for path in [
            "",
            "/",
            "12",
            "12/",
            "/12",
            "0/trace",
            "00/trace",
            "-1/trace",
            "+1/trace",
            " 1/trace",
            "1a/trace",
            "abc/trace",
            "/trace",
            "12//trace",
            "12/trace/",
            "12/regs//int",
            "12/regs/",
            "99999999999999999999999/trace",
            "abc/unknown",
        ] {
            assert_eq!(parse_proc_path(path), Err(EINVAL), "{path:?}");
        }
    }

    #[test]
    fn unknown_files_are_enoent() {
        for path in [
            "12/foo",
            "12/regs",
            "12/regs/xmm",
            "12/trace/x",
            "12/TRACE",
            "12/./trace",
            "12/status ",
        ] {
            assert_eq!(parse_proc_path(path), Err(ENOENT), "{path:?}");
        }
    }

    #[test]
    fn largest_pid_parses_and_leading_zeros_are_decimal() {
        let path = format!("{}/mem", usize::MAX);
        assert_eq!(parse_proc_path(&path), Ok((usize::MAX, ProcFile::Mem)));
        assert_eq!(parse_proc_path("007/stop"), Ok((7, ProcFile::Stop)));
    }

    #[test]
    fn sibling_errors() {
        assert_eq!(parse_sibling(""), Err(EINVAL));
        assert_eq!(parse_sibling("/regs/int"), Err(EINVAL));
        assert_eq!(parse_sibling("regs/int/"), Err(EINVAL));
        assert_eq!(parse_sibling("regs"), Err(ENOENT));
        assert_eq!(parse_sibling("12/trace"), Err(ENOENT));
    }

    #[test]
    fn fpath_round_trips() {
        for file in ProcFile::ALL {
            let path = fpath(42, file);
            let rest = path.strip_prefix("proc:").unwrap();
            assert_eq!(parse_proc_path(rest), Ok((42, file)));
        }
        assert_eq!(fpath(3, ProcFile::RegsEnv), "proc:3/regs/env");
    }

    #[test]
    fn read_only_files() {
        let read_only: alloc::vec::Vec<_> = ProcFile::ALL
            .into_iter()
            .filter(|f| f.is_read_only())
            .collect();
        assert_eq!(
            read_only,
            [ProcFile::Stop, ProcFile::Status, ProcFile::Maps]
        );
    }

    #[test]
    fn maps_parses_as_a_file_and_a_sibling() {
        assert_eq!(parse_proc_path("5/maps"), Ok((5, ProcFile::Maps)));
        assert_eq!(parse_sibling("maps"), Ok(ProcFile::Maps));
        assert_eq!(fpath(5, ProcFile::Maps), "proc:5/maps");
        for bad in ["5/maps/", "5/Maps", "5/maps/x", "5/map"] {
            assert!(parse_proc_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_proc_path("5/maps/x"), Err(ENOENT));
        assert_eq!(parse_proc_path("5//maps"), Err(EINVAL));
    }
}
