//! The host side of the QEMU tests: boot the kernel (built beforehand by
//! `make`) with a command line, keep the serial log in a file under
//! `target/qemu-logs/`, and check how the run ended and what it printed.
//! Every failed check prints the whole serial log. A boot can also run in
//! the background ([`Boot::spawn`]) while the test talks to the guest.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How `qemu/run.sh` ends a run (see that script).
pub mod status {
    pub const SUCCESS: i32 = 0;
    pub const FAILURE: i32 = 35;
    pub const PANIC: i32 = 37;
    pub const KERNEL_FAULT: i32 = 39;
    pub const TIMEOUT: i32 = 124;
    pub const QEMU_EXITED_ZERO: i32 = 2;
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// One QEMU boot.
#[derive(Clone, Debug)]
pub struct Boot {
    name: String,
    append: String,
    machine: String,
    memory: String,
    timeout_secs: u64,
    extra: String,
}

impl Boot {
    /// A boot named `name` (the log file's name) with command line `append`.
    /// Timeouts are generous: they catch hangs, not slowness.
    pub fn new(name: &str, append: &str) -> Boot {
        Boot {
            name: name.to_string(),
            append: append.to_string(),
            machine: "microvm".into(),
            memory: "256M".into(),
            timeout_secs: 180,
            extra: String::new(),
        }
    }

    pub fn machine(mut self, machine: &str) -> Boot {
        self.machine = machine.into();
        self
    }

    pub fn memory(mut self, memory: &str) -> Boot {
        self.memory = memory.into();
        self
    }

    pub fn timeout(mut self, secs: u64) -> Boot {
        self.timeout_secs = secs;
        self
    }

    pub fn extra_qemu_args(mut self, args: &str) -> Boot {
        self.extra = args.into();
        self
    }

    pub fn log_path(&self) -> PathBuf {
        workspace_root()
            .join("target/qemu-logs")
            .join(format!("{}.log", self.name))
    }

    /// The `qemu/run.sh` command for this boot.
    fn command(&self) -> Command {
        let root = workspace_root();
        let kernel = root.join("target/x86_64-unknown-none/release/kernel");
        assert!(
            kernel.exists(),
            "{} is missing: build with `make build` (or run `make test`)",
            kernel.display()
        );
        let mut command = Command::new(root.join("qemu/run.sh"));
        command
            .env("KERNEL", &kernel)
            .env("APPEND", &self.append)
            .env("MACHINE", &self.machine)
            .env("MEMORY", &self.memory)
            .env("TIMEOUT", self.timeout_secs.to_string())
            .env("LOG", self.log_path())
            .env("MODE", "quiet")
            .env("EXTRA", &self.extra);
        command
    }

    fn outcome(&self, status: i32, runner_stderr: String) -> Outcome {
        Outcome {
            boot: self.clone(),
            status,
            serial: std::fs::read_to_string(self.log_path()).unwrap_or_default(),
            runner_stderr,
        }
    }

    /// Runs QEMU to the end.
    pub fn run(&self) -> Outcome {
        let output = self.command().output().expect("cannot run qemu/run.sh");
        let status = output.status.code().unwrap_or(-1);
        self.outcome(status, String::from_utf8_lossy(&output.stderr).into_owned())
    }

    /// Starts QEMU in the background. The boot's timeout still bounds it;
    /// [`Running::kill`] (or dropping the [`Running`]) kills it and every
    /// process run.sh started.
    pub fn spawn(&self) -> Running {
        let stderr_path = self.log_path().with_extension("runner.txt");
        if let Some(dir) = stderr_path.parent() {
            std::fs::create_dir_all(dir).expect("cannot create target/qemu-logs");
        }
        // run.sh truncates the log itself, but only once it runs: clear it
        // now so that a stale log is never read as this boot's.
        let _ = std::fs::write(self.log_path(), "");
        let stderr = std::fs::File::create(&stderr_path).expect("cannot create the runner log");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("cannot run qemu/run.sh");
        Running {
            boot: self.clone(),
            child: Some(child),
            stderr_path,
        }
    }
}

/// The processes below `root` (children, grandchildren, ...), from the
/// parent pids in `/proc/<pid>/stat`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces and ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// A boot running in the background, from [`Boot::spawn`].
#[derive(Debug)]
pub struct Running {
    boot: Boot,
    child: Option<Child>,
    stderr_path: PathBuf,
}

impl Running {
    /// What the kernel has printed so far.
    pub fn serial(&self) -> String {
        std::fs::read_to_string(self.boot.log_path()).unwrap_or_default()
    }

    /// Waits until the serial log contains `text`; fails (with the log) if
    /// QEMU ends first or `timeout` passes.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> &mut Self {
        let deadline = Instant::now() + timeout;
        loop {
            if self.serial().contains(text) {
                return self;
            }
            let ended = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            if ended || Instant::now() >= deadline {
                let why = if ended { "QEMU ended" } else { "timed out" };
                let outcome = self.finish(false);
                outcome.fail(&format!("{why} waiting for {text:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn runner_stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Reaps QEMU (killing it first if `kill`).
    fn finish(&mut self, kill: bool) -> Outcome {
        let Some(mut child) = self.child.take() else {
            return self.boot.outcome(-1, self.runner_stderr());
        };
        if kill && child.try_wait().ok().flatten().is_none() {
            // run.sh runs QEMU under `timeout`, which puts itself in a
            // process group of its own: kill every descendant by pid.
            for pid in descendants(child.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = child.kill();
        }
        let status = child.wait().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1);
        self.boot.outcome(status, self.runner_stderr())
    }

    /// Waits for QEMU to end by itself (the boot's timeout bounds it).
    pub fn wait(mut self) -> Outcome {
        self.finish(false)
    }

    /// Waits up to `timeout` for QEMU to end by itself, then kills it.
    pub fn wait_timeout(mut self, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let ended = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if ended {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.finish(true)
    }

    /// Kills QEMU now.
    pub fn kill(mut self) -> Outcome {
        self.finish(true)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.finish(true);
        }
    }
}

/// How one boot ended.
#[derive(Debug)]
pub struct Outcome {
    pub boot: Boot,
    /// `qemu/run.sh`'s exit status (see `status`).
    pub status: i32,
    /// Everything the kernel printed on the serial port.
    pub serial: String,
    runner_stderr: String,
}

impl Outcome {
    /// Fails the test with `why`, the boot's details and its serial log.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\nboot {:?} (machine {}, append {:?}) ended with status {}\n---- serial log {} ----\n{}\n---- end of serial log ----\n{}",
            self.boot.name,
            self.boot.machine,
            self.boot.append,
            self.status,
            self.boot.log_path().display(),
            self.serial,
            self.runner_stderr
        )
    }

    pub fn expect_status(&self, status: i32) -> &Self {
        if self.status != status {
            self.fail(&format!("expected status {status}, got {}", self.status));
        }
        self
    }

    pub fn expect_success(&self) -> &Self {
        self.expect_status(status::SUCCESS)
    }

    pub fn expect_line(&self, line: &str) -> &Self {
        if !self.serial.lines().any(|l| l.trim_end() == line) {
            self.fail(&format!("no line {line:?} in the serial log"));
        }
        self
    }

    pub fn expect_contains(&self, text: &str) -> &Self {
        if !self.serial.contains(text) {
            self.fail(&format!("{text:?} not found in the serial log"));
        }
        self
    }

    pub fn expect_absent(&self, text: &str) -> &Self {
        if self.serial.contains(text) {
            self.fail(&format!("{text:?} found in the serial log"));
        }
        self
    }

    /// Every `test NAME ... ok` line is there, no `FAILED` line, and the
    /// summary says `N passed, 0 failed` with N the number of names.
    pub fn expect_tests_passed(&self, names: &[&str]) -> &Self {
        for name in names {
            self.expect_line(&format!("test {name} ... ok"));
        }
        if let Some(line) = self.serial.lines().find(|l| l.contains(" ... FAILED")) {
            self.fail(&format!("a test failed: {line}"));
        }
        self.expect_line(&format!("{} passed, 0 failed", names.len()))
    }
}
