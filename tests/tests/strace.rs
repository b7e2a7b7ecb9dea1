//! strace's output, line by line: `init=/bin/strace ...` boots with known
//! programs (`demo`, `strace-target-segv`) and compares what strace prints
//! with the expected text. Only the values that legitimately vary are
//! wildcards: `$HEX` is any `0x...` address, and `$NAME` (capitals) is a
//! decimal number that must be the same everywhere the name is used (the
//! pids). Everything else is exact.
//!
//! The console carries both the tracee's stdout and strace's stderr. Without
//! `-f` only one process is traced, so strace's lines and the traced
//! process's own output come in a fixed order; the untraced child's one
//! line may land anywhere between `clone` and `waitpid`, and is checked
//! there. With `-f`, processes run concurrently: the lines are grouped by
//! pid, and a call cut by another process's lines (`X <unfinished ...>`,
//! later `<... X resumed>`, with no line of its own process in between) is
//! joined back into one line before comparing. A call cut by its own
//! process's lines (a signal handler inside `kill`) stays cut, and is
//! compared as such.

use std::collections::HashMap;
use std::sync::OnceLock;

use qemu_tests::{status, Boot, Outcome};

/// Boots `init=/bin/strace ARGS`.
fn strace(name: &str, args: &str) -> Outcome {
    Boot::new(name, &format!("init=/bin/strace {args}")).run()
}

/// The lines the programs printed (strace and the traced program), without
/// the kernel's own log lines and line ends.
fn program_lines(out: &Outcome) -> Vec<String> {
    out.serial
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| {
            let kernel_log = l.starts_with("[ ") && l.contains("] ");
            !kernel_log
                && !l.starts_with("ptrace-kernel:")
                && !l.starts_with("init exited with status")
                && !l.is_empty()
        })
        .collect()
}

/// Whether `line` looks like one of strace's trace lines:
/// `[pid N] ` optionally, then `name(`, `<... `, `--- ` or `+++ `.
fn is_trace_line(line: &str) -> bool {
    let rest = strip_pid(line).1;
    if rest.starts_with("<... ") || rest.starts_with("--- ") || rest.starts_with("+++ ") {
        return true;
    }
    let name_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        .count();
    name_len > 0 && rest[name_len..].starts_with('(')
}

/// Splits `[pid N] rest` into `(Some(N), rest)`.
fn strip_pid(line: &str) -> (Option<u64>, &str) {
    if let Some(rest) = line.strip_prefix("[pid ") {
        if let Some((pid, rest)) = rest.split_once("] ") {
            if let Ok(pid) = pid.parse() {
                return (Some(pid), rest);
            }
        }
    }
    (None, line)
}

/// Matches `line` against `pattern` (see the module comment for `$HEX`
/// and `$NAME`), binding names in `vars`.
fn matches(pattern: &str, line: &str, vars: &mut HashMap<String, String>) -> bool {
    let mut pat = pattern;
    let mut text = line;
    loop {
        let Some(at) = pat.find('$') else {
            return pat == text;
        };
        let (literal, rest) = pat.split_at(at);
        let Some(after) = text.strip_prefix(literal) else {
            return false;
        };
        text = after;
        let name_len = rest[1..]
            .bytes()
            .take_while(|b| b.is_ascii_uppercase())
            .count();
        let name = &rest[1..1 + name_len];
        pat = &rest[1 + name_len..];
        let value_len = if name == "HEX" {
            if !text.starts_with("0x") {
                return false;
            }
            2 + text[2..]
                .bytes()
                .take_while(|b| b.is_ascii_hexdigit())
                .count()
        } else {
            text.bytes().take_while(|b| b.is_ascii_digit()).count()
        };
        if value_len == 0 || (name == "HEX" && value_len == 2) {
            return false;
        }
        let value = &text[..value_len];
        text = &text[value_len..];
        if name != "HEX" {
            match vars.get(name) {
                Some(bound) if bound != value => return false,
                Some(_) => {}
                None => {
                    vars.insert(name.to_string(), value.to_string());
                }
            }
        }
    }
}

/// Compares `got` with `expected` line by line, no names bound yet.
fn compare(what: &str, out: &Outcome, expected: &[&str], got: &[String]) {
    compare_with_vars(what, out, expected, got, &mut HashMap::new());
}

/// Compares `got` with `expected` line by line, with the names in `vars`
/// bound already; on a difference, panics with both listings and the
/// serial log.
fn compare_with_vars(
    what: &str,
    out: &Outcome,
    expected: &[&str],
    got: &[String],
    vars: &mut HashMap<String, String>,
) {
    let first_bad = expected
        .iter()
        .zip(got)
        .position(|(pattern, line)| !matches(pattern, line, vars));
    if first_bad.is_none() && expected.len() == got.len() {
        return;
    }
    let at = first_bad.unwrap_or(expected.len().min(got.len()));
    panic!(
        "{what}: output differs at line {} (expected {} lines, got {})\n\
         ---- expected ----\n{}\n---- got ----\n{}\n---- serial log ({}, status {}) ----\n{}",
        at + 1,
        expected.len(),
        got.len(),
        expected.join("\n"),
        got.join("\n"),
        out.boot.log_path().display(),
        out.status,
        out.serial
    );
}

/// Takes the single line equal to `line` out of `lines`, checking that it
/// lies after the first line starting with `after` and before the first
/// line starting with `before`.
fn take_floating(out: &Outcome, lines: &mut Vec<String>, line: &str, after: &str, before: &str) {
    let find = |prefix: &str, lines: &[String]| lines.iter().position(|l| l.starts_with(prefix));
    let at = lines.iter().position(|l| l == line);
    let (Some(at), Some(lo), Some(hi)) = (at, find(after, lines), find(before, lines)) else {
        panic!(
            "{line:?}, {after:?} or {before:?} missing\n---- serial log ----\n{}",
            out.serial
        );
    };
    assert!(
        lo < at && at < hi,
        "{line:?} is not between {after:?} and {before:?}\n---- serial log ----\n{}",
        out.serial
    );
    lines.remove(at);
}

/// Trace lines grouped by pid (`None`: the unprefixed, initial process),
/// with calls cut only by other processes' lines joined back.
fn per_pid(lines: &[String]) -> HashMap<Option<u64>, Vec<String>> {
    let mut groups: HashMap<Option<u64>, Vec<String>> = HashMap::new();
    for line in lines.iter().filter(|l| is_trace_line(l)) {
        let (pid, rest) = strip_pid(line);
        let group = groups.entry(pid).or_default();
        let prefix = &line[..line.len() - rest.len()];
        if let Some(resumed) = rest.strip_prefix("<... ") {
            // Join with the previous line of this process if that is the
            // matching `<unfinished ...>`.
            if let Some((name, tail)) = resumed.split_once(" resumed>") {
                if let Some(last) = group.last_mut() {
                    let head_rest = strip_pid(last).1.to_string();
                    if head_rest.starts_with(&format!("{name}("))
                        && head_rest.ends_with("<unfinished ...>")
                    {
                        // strace puts one space before `<unfinished ...>`
                        // unless the entry part ends with `, ` or `(`.
                        let before = head_rest.trim_end_matches("<unfinished ...>");
                        let head = if before.ends_with(", ") {
                            before
                        } else {
                            before.strip_suffix(' ').unwrap_or(before)
                        };
                        // `<... X resumed> <unfinished ...>) = ?` (killed):
                        // one space after `, `, not two.
                        let tail = if head.ends_with(' ') {
                            tail.strip_prefix(' ').unwrap_or(tail)
                        } else {
                            tail
                        };
                        *last = format!("{prefix}{head}{tail}");
                        continue;
                    }
                }
            }
        }
        group.push(line.clone());
    }
    groups
}

/// The trace lines of a `-f` run grouped by process ([`per_pid`]), to
/// compare process by process: the names one comparison binds (the pids)
/// hold in the next.
struct Processes<'a> {
    out: &'a Outcome,
    groups: HashMap<Option<u64>, Vec<String>>,
    vars: HashMap<String, String>,
}

impl<'a> Processes<'a> {
    fn new(out: &'a Outcome, lines: &[String]) -> Self {
        Processes {
            out,
            groups: per_pid(lines),
            vars: HashMap::new(),
        }
    }

    /// The lines of process `pid` (`None`: the initial process).
    fn lines(&self, pid: Option<u64>) -> &[String] {
        self.groups.get(&pid).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The process whose pid an earlier comparison bound to `$name`.
    fn pid(&self, name: &str) -> Option<u64> {
        Some(self.vars[name].parse().unwrap())
    }

    /// Compares the lines of process `pid` with `expected`.
    fn expect(&mut self, what: &str, pid: Option<u64>, expected: &[&str]) {
        let got = self.groups.get(&pid).map(Vec::as_slice).unwrap_or(&[]);
        compare_with_vars(what, self.out, expected, got, &mut self.vars);
    }

    /// How many processes printed trace lines.
    fn count(&self) -> usize {
        self.groups.len()
    }
}

const DEMO_OUTPUT: &[&str] = &[
    "demo: hello",
    "demo: child exits with 3",
    "demo: child exited 3",
    "demo: got SIGUSR1",
    "demo: bye",
];

/// `strace /bin/demo`, booted once for the tests that read it.
fn demo_run() -> &'static Outcome {
    static RUN: OnceLock<Outcome> = OnceLock::new();
    RUN.get_or_init(|| strace("strace-demo", "/bin/demo"))
}

#[test]
fn demo_without_follow_is_exact() {
    let out = demo_run();
    out.expect_success();
    let mut lines = program_lines(out);
    // The untraced child is released by strace's next write, which comes
    // before strace prints the `clone` line (a call is printed at its exit
    // stop): the child's own line may land on either side of it.
    take_floating(
        out,
        &mut lines,
        "demo: child exits with 3",
        "open(",
        "waitpid(",
    );
    let expected = [
        r#"fexec("/bin/demo", ["/bin/demo"], []) = 0"#,
        "demo: hello",
        r#"write(1, "demo: hello\n", 12) = 12"#,
        "sigprocmask(SIG_BLOCK, [SIGCHLD], NULL) = 0",
        r#"open("/bin/nothere", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)"#,
        "clone(0) = $C",
        "waitpid($C, [{WIFEXITED(s) && WEXITSTATUS(s) == 3}], 0) = $C",
        "demo: child exited 3",
        r#"write(1, "demo: child exited 3\n", 21) = 21"#,
        "sigaction(SIGUSR1, {handler=$HEX, mask=[], flags=0}, NULL) = 0",
        "getpid() = $P",
        "kill($P, SIGUSR1 <unfinished ...>",
        "--- SIGUSR1 ---",
        "demo: got SIGUSR1",
        r#"write(1, "demo: got SIGUSR1\n", 18) = 18"#,
        "sigreturn() = ?",
        "<... kill resumed>) = 0",
        "demo: bye",
        r#"write(1, "demo: bye\n", 10) = 10"#,
        "exit(0) = ?",
        "+++ exited with 0 +++",
    ];
    compare("strace /bin/demo", out, &expected, &lines);
}

#[test]
fn signal_handler_inside_a_call_is_unfinished_then_resumed() {
    let out = demo_run();
    let lines = program_lines(out);
    let Some(at) = lines.iter().position(|l| l.starts_with("kill(")) else {
        panic!("no kill line\n{}", out.serial);
    };
    // The handler runs inside `kill`: the call is cut when the signal is
    // reported, the handler's calls follow, then sigreturn (no exit stop)
    // and the end of `kill`.
    let expected = [
        "kill($P, SIGUSR1 <unfinished ...>",
        "--- SIGUSR1 ---",
        "demo: got SIGUSR1",
        r#"write(1, "demo: got SIGUSR1\n", 18) = 18"#,
        "sigreturn() = ?",
        "<... kill resumed>) = 0",
    ];
    let got = &lines[at..(at + expected.len()).min(lines.len())];
    compare("kill with a handler", out, &expected, got);
}

#[test]
fn demo_with_follow_prefixes_the_child() {
    let out = &strace("strace-demo-f", "-f /bin/demo");
    out.expect_success();
    let lines = program_lines(out);
    // The program's own output, in its (fixed) order.
    let output: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("demo: "))
        .cloned()
        .collect();
    compare("demo's output", out, DEMO_OUTPUT, &output);
    let mut procs = Processes::new(out, &lines);
    let parent = [
        r#"fexec("/bin/demo", ["/bin/demo"], []) = 0"#,
        r#"write(1, "demo: hello\n", 12) = 12"#,
        "sigprocmask(SIG_BLOCK, [SIGCHLD], NULL) = 0",
        r#"open("/bin/nothere", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)"#,
        "clone(0) = $C",
        "waitpid($C, [{WIFEXITED(s) && WEXITSTATUS(s) == 3}], 0) = $C",
        r#"write(1, "demo: child exited 3\n", 21) = 21"#,
        "sigaction(SIGUSR1, {handler=$HEX, mask=[], flags=0}, NULL) = 0",
        "getpid() = $P",
        "kill($P, SIGUSR1 <unfinished ...>",
        "--- SIGUSR1 ---",
        r#"write(1, "demo: got SIGUSR1\n", 18) = 18"#,
        "sigreturn() = ?",
        "<... kill resumed>) = 0",
        r#"write(1, "demo: bye\n", 10) = 10"#,
        "exit(0) = ?",
        "+++ exited with 0 +++",
    ];
    procs.expect("strace -f /bin/demo, initial process", None, &parent);
    let child = [
        r#"[pid $C] write(1, "demo: child exits with 3\n", 25) = 25"#,
        "[pid $C] exit(3) = ?",
        "[pid $C] +++ exited with 3 +++",
    ];
    procs.expect("strace -f /bin/demo, child", procs.pid("C"), &child);
    assert_eq!(
        procs.count(),
        2,
        "lines of processes other than demo and its child\n{}",
        out.serial
    );
}

#[test]
fn trace_filter_prints_only_the_named_calls() {
    let out = &strace("strace-demo-filter", "-e trace=open,write,kill /bin/demo");
    out.expect_success();
    let mut lines = program_lines(out);
    take_floating(
        out,
        &mut lines,
        "demo: child exits with 3",
        "open(",
        "demo: child exited 3",
    );
    // Signal and exit lines still print; the cut `kill` is one of the
    // named calls, so it is shown cut around its handler.
    let expected = [
        "demo: hello",
        r#"write(1, "demo: hello\n", 12) = 12"#,
        r#"open("/bin/nothere", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)"#,
        "demo: child exited 3",
        r#"write(1, "demo: child exited 3\n", 21) = 21"#,
        "kill($P, SIGUSR1 <unfinished ...>",
        "--- SIGUSR1 ---",
        "demo: got SIGUSR1",
        r#"write(1, "demo: got SIGUSR1\n", 18) = 18"#,
        "<... kill resumed>) = 0",
        "demo: bye",
        r#"write(1, "demo: bye\n", 10) = 10"#,
        "+++ exited with 0 +++",
    ];
    compare(
        "strace -e trace=open,write,kill /bin/demo",
        out,
        &expected,
        &lines,
    );
}

#[test]
fn trace_filter_with_follow() {
    let out = &strace(
        "strace-demo-f-filter",
        "-f -e trace=clone,waitpid,exit demo",
    );
    out.expect_success();
    let lines = program_lines(out);
    let mut procs = Processes::new(out, &lines);
    let parent = [
        "clone(0) = $C",
        "waitpid($C, [{WIFEXITED(s) && WEXITSTATUS(s) == 3}], 0) = $C",
        "--- SIGUSR1 ---",
        "exit(0) = ?",
        "+++ exited with 0 +++",
    ];
    procs.expect(
        "strace -f -e trace=clone,waitpid,exit demo, initial process",
        None,
        &parent,
    );
    let child = ["[pid $C] exit(3) = ?", "[pid $C] +++ exited with 3 +++"];
    procs.expect(
        "strace -f -e trace=clone,waitpid,exit demo, child",
        procs.pid("C"),
        &child,
    );
}

#[test]
fn killed_by_sigsegv() {
    let out = &strace("strace-segv", "strace-target-segv");
    // strace exits with 128 + SIGSEGV, as the shell would report it.
    out.expect_status(status::FAILURE)
        .expect_line("init exited with status 139");
    let lines = program_lines(out);
    let expected = [
        r#"fexec("/bin/strace-target-segv", ["/bin/strace-target-segv"], []) = 0"#,
        "segv: about to fault",
        r#"write(1, "segv: about to fault\n", 21) = 21"#,
        "--- SIGSEGV ---",
        "+++ killed by SIGSEGV +++",
    ];
    compare("strace strace-target-segv", out, &expected, &lines);
}

#[test]
fn exits_with_the_programs_status_and_shows_its_arguments() {
    // A bare name is a program of /bin; `sh -c exit 3` makes one call.
    let out = &strace("strace-exit-status", "sh -c exit 3");
    out.expect_status(status::FAILURE)
        .expect_line("init exited with status 3");
    let expected = [
        r#"fexec("/bin/sh", ["/bin/sh", "-c", "exit", "3"], []) = 0"#,
        "exit(3) = ?",
        "+++ exited with 3 +++",
    ];
    compare("strace sh -c exit 3", out, &expected, &program_lines(out));
}

#[test]
fn unknown_option_prints_usage_and_exits_2() {
    let out = &strace("strace-usage", "-x /bin/demo");
    out.expect_status(status::FAILURE)
        .expect_line("init exited with status 2");
    let expected = [
        "strace: invalid option '-x'",
        "usage: strace [-f] [-e trace=NAME[,NAME...]] PROGRAM [ARGS...]",
    ];
    compare("strace -x", out, &expected, &program_lines(out));
}

#[test]
fn killed_inside_a_call_with_follow() {
    let out = &strace(
        "strace-kill-f",
        "-f -e trace=nanosleep,kill,waitpid strace-target-kill",
    );
    out.expect_success()
        .expect_line("kill: child killed by SIGKILL");
    let lines = program_lines(out);
    let mut procs = Processes::new(out, &lines);
    let parent = [
        "kill($C, SIGKILL) = 0",
        "waitpid($C, [{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}], 0) = $C",
        "+++ exited with 0 +++",
    ];
    procs.expect(
        "strace -f strace-target-kill, initial process",
        None,
        &parent,
    );
    // The child never returns from nanosleep: its call ends with `= ?`.
    let child = [
        "[pid $C] nanosleep({tv_sec=100, tv_nsec=0}, <unfinished ...>) = ?",
        "[pid $C] +++ killed by SIGKILL +++",
    ];
    procs.expect(
        "strace -f strace-target-kill, child",
        procs.pid("C"),
        &child,
    );
    // The parent waited for the child to block before killing it, so the
    // sleep is printed (cut) before the kill.
    let sleep = lines.iter().position(|l| l.contains("nanosleep("));
    let kill = lines.iter().position(|l| l.starts_with("kill("));
    assert!(
        sleep < kill,
        "nanosleep is not printed before kill\n{}",
        out.serial
    );
}

/// The descriptor table behind `fexec`'s FILE follows `fcntl(F_DUPFD)`
/// (same file) and `fexec` (close-on-exec descriptors are gone, so their
/// numbers are shown as numbers), and `F_SETFD`.
#[test]
fn fexec_file_follows_dupfd_and_close_on_exec() {
    let out = &strace("strace-fds", "strace-target-fds");
    out.expect_success();
    let expected = [
        r#"fexec("/bin/strace-target-fds", ["/bin/strace-target-fds"], []) = 0"#,
        r#"open("/bin/strace-target-fds", O_RDONLY|O_CLOEXEC) = $A"#,
        "fcntl($A, F_DUPFD, 10) = 10",
        r#"fexec("/bin/strace-target-fds", ["/bin/strace-target-fds", "again", "$A"], []) = 0"#,
        r#"fexec($A, ["/bin/strace-target-fds", "never"], []) = -1 EBADF (Bad file number)"#,
        "fcntl(10, F_SETFD, FD_CLOEXEC) = 0",
        r#"fexec("/bin/strace-target-fds", ["/bin/strace-target-fds", "last"], []) = 0"#,
        r#"fexec(10, ["/bin/strace-target-fds", "never"], []) = -1 EBADF (Bad file number)"#,
        "exit(0) = ?",
        "+++ exited with 0 +++",
    ];
    compare(
        "strace strace-target-fds",
        out,
        &expected,
        &program_lines(out),
    );
}

/// strace as uid 1000 (not root, not pid 1) keeps following a grandchild
/// orphaned onto pid 1: it may no longer open that process's `proc:`
/// files, so it must not need to after attaching.
#[test]
fn non_root_follows_an_orphaned_tracee() {
    let out = &Boot::new("strace-orphan", "init=/bin/strace-target-orphan").run();
    out.expect_success();
    let lines = program_lines(out);
    if let Some(own) = lines.iter().find(|l| l.starts_with("strace:")) {
        panic!("strace reported {own:?}\n{}", out.serial);
    }
    let mut procs = Processes::new(out, &lines);
    let parent = [
        r#"fexec("/bin/strace-target-orphan", ["/bin/strace-target-orphan", "--tree"], []) = 0"#,
        "sigprocmask(SIG_BLOCK, [SIGCHLD], NULL) = 0",
        "pipe2([$R, $W], 0) = 0",
        "clone(0) = $A",
        "close($W) = 0",
        "waitpid($A, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0) = $A",
        r#"read($R, "", 1) = 0"#,
        "exit(0) = ?",
        "+++ exited with 0 +++",
    ];
    procs.expect(
        "strace -f strace-target-orphan --tree, initial process",
        None,
        &parent,
    );
    let child = [
        "[pid $A] pipe2([$GR, $GW], 0) = 0",
        "[pid $A] clone(0) = $B",
        "[pid $A] exit(0) = ?",
        "[pid $A] +++ exited with 0 +++",
    ];
    procs.expect("strace-target-orphan, child", procs.pid("A"), &child);
    // Everything after `close` happens once the grandchild is orphaned.
    let grandchild = [
        "[pid $B] close($GW) = 0",
        r#"[pid $B] read($GR, "", 1) = 0"#,
        "[pid $B] getppid() = 1",
        "[pid $B] exit(0) = ?",
        "[pid $B] +++ exited with 0 +++",
    ];
    procs.expect(
        "strace-target-orphan, orphaned grandchild",
        procs.pid("B"),
        &grandchild,
    );
    assert_eq!(procs.count(), 3, "lines of other processes\n{}", out.serial);
}

/// More busy tracees (24 children let go at once) than one 16-record read
/// of strace's event queue used to report: every call of every child is
/// shown, and the run ends.
#[test]
fn many_busy_tracees_are_all_followed() {
    const CHILDREN: usize = 24;
    const CALLS: usize = 10;
    let out = &strace("strace-many-f", "-f strace-target-many");
    out.expect_success();
    let lines = program_lines(out);
    let mut procs = Processes::new(out, &lines);
    let pids: Vec<u64> = procs
        .lines(None)
        .iter()
        .filter_map(|l| l.strip_prefix("clone(0) = "))
        .filter_map(|pid| pid.parse().ok())
        .collect();
    assert_eq!(
        pids.len(),
        CHILDREN,
        "clone lines of the parent\n{}",
        out.serial
    );
    let mut parent = vec![
        r#"fexec("/bin/strace-target-many", ["/bin/strace-target-many"], []) = 0"#.to_string(),
        "sigprocmask(SIG_BLOCK, [SIGCHLD], NULL) = 0".to_string(),
        "pipe2([$R, $W], 0) = 0".to_string(),
    ];
    parent.extend(pids.iter().map(|pid| format!("clone(0) = {pid}")));
    parent.push("close($W) = 0".to_string());
    for (i, pid) in pids.iter().enumerate() {
        parent.push(format!(
            "waitpid({pid}, [{{WIFEXITED(s) && WEXITSTATUS(s) == {}}}], 0) = {pid}",
            i + 1
        ));
    }
    parent.push("exit(0) = ?".to_string());
    parent.push("+++ exited with 0 +++".to_string());
    let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
    procs.expect("strace -f strace-target-many, parent", None, &parent);
    for (i, &pid) in pids.iter().enumerate() {
        let mut child = vec![
            format!("[pid {pid}] close($W) = 0"),
            format!(r#"[pid {pid}] read($R, "", 1) = 0"#),
        ];
        child.extend((0..CALLS).map(|_| format!("[pid {pid}] getpid() = {pid}")));
        child.push(format!("[pid {pid}] exit({}) = ?", i + 1));
        child.push(format!("[pid {pid}] +++ exited with {} +++", i + 1));
        let child: Vec<&str> = child.iter().map(String::as_str).collect();
        procs.expect(
            &format!("strace -f strace-target-many, child {}", i + 1),
            Some(pid),
            &child,
        );
    }
    assert_eq!(
        procs.count(),
        CHILDREN + 1,
        "lines of other processes\n{}",
        out.serial
    );
}

#[test]
fn matcher_binds_names_and_checks_hex() {
    let mut vars = HashMap::new();
    assert!(matches("kill($P, SIGUSR1)", "kill(12, SIGUSR1)", &mut vars));
    assert!(matches("getpid() = $P", "getpid() = 12", &mut vars));
    assert!(!matches("getpid() = $P", "getpid() = 13", &mut vars));
    assert!(matches("{h=$HEX}", "{h=0x2030}", &mut vars));
    assert!(!matches("{h=$HEX}", "{h=0x}", &mut vars));
    assert!(!matches("a $C", "a ", &mut vars));
    assert!(!matches("exact", "exact!", &mut vars));
}

#[test]
fn per_pid_joins_only_cuts_by_other_processes() {
    let lines: Vec<String> = [
        "waitpid(3, <unfinished ...>",
        "[pid 3] exit(3) = ?",
        "<... waitpid resumed>[{WIFEXITED(s)}], 0) = 3",
        "kill(2, SIGUSR1 <unfinished ...>",
        "--- SIGUSR1 ---",
        "<... kill resumed>) = 0",
        "demo: not a trace line",
        "[pid 3] nanosleep({tv_sec=1, tv_nsec=0}, <unfinished ...>",
        "read(0, <unfinished ...>",
        "[pid 3] <... nanosleep resumed> <unfinished ...>) = ?",
        "<... read resumed>\"x\", 1) = 1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let groups = per_pid(&lines);
    assert_eq!(
        groups[&None],
        [
            "waitpid(3, [{WIFEXITED(s)}], 0) = 3",
            "kill(2, SIGUSR1 <unfinished ...>",
            "--- SIGUSR1 ---",
            "<... kill resumed>) = 0",
            "read(0, \"x\", 1) = 1",
        ]
    );
    assert_eq!(
        groups[&Some(3)],
        [
            "[pid 3] exit(3) = ?",
            "[pid 3] nanosleep({tv_sec=1, tv_nsec=0}, <unfinished ...>) = ?",
        ]
    );
}
