//! The host side of the QEMU tests: boot the kernel (built beforehand by
//! `make`) with a command line, keep the serial log in a file under
//! `target/qemu-logs/`, and check how the run ended and what it printed.
//! Every failed check prints the whole serial log.

use std::path::PathBuf;
use std::process::Command;

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

    /// Runs QEMU to the end.
    pub fn run(&self) -> Outcome {
        let root = workspace_root();
        let kernel = root.join("target/x86_64-unknown-none/release/kernel");
        assert!(
            kernel.exists(),
            "{} is missing: build with `make build` (or run `make test`)",
            kernel.display()
        );
        let log = self.log_path();
        let output = Command::new(root.join("qemu/run.sh"))
            .env("KERNEL", &kernel)
            .env("APPEND", &self.append)
            .env("MACHINE", &self.machine)
            .env("MEMORY", &self.memory)
            .env("TIMEOUT", self.timeout_secs.to_string())
            .env("LOG", &log)
            .env("MODE", "quiet")
            .env("EXTRA", &self.extra)
            .output()
            .expect("cannot run qemu/run.sh");
        let status = output.status.code().unwrap_or(-1);
        let serial = std::fs::read_to_string(&log).unwrap_or_default();
        Outcome {
            boot: self.clone(),
            status,
            serial,
            runner_stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
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
    fn fail(&self, why: &str) -> ! {
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
