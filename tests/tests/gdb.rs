//! gdbserver end to end: the guest runs `gdbserver /bin/gdb-target` as pid
//! 1, COM2 is a TCP server on the host, and the host's GNU gdb (or a raw
//! client speaking the remote protocol) debugs the program through it.
//!
//! Each test boots its own QEMU on a free port and is bounded: QEMU by the
//! boot's timeout (and killed when the test ends), gdb by `timeout`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qemu_tests::{status, workspace_root, Boot, Outcome, Running};

/// What gdbserver prints once the program is held and it serves gdb.
const READY: &str = "gdbserver: waiting for gdb on serial2:";

/// Seconds one gdb run may take (QEMU under TCG on a shared machine is
/// slow, and the kernel drains COM2's input only on its 100 Hz tick).
const GDB_TIMEOUT: u64 = 300;

fn elf() -> PathBuf {
    let path = workspace_root().join("target/x86_64-unknown-none/release/gdb-target");
    assert!(
        path.exists(),
        "{} is missing: build with `make build`",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free TCP port")
        .port()
}

/// A guest whose pid 1 is `gdbserver /bin/gdb-target ARGS`, with COM2 on
/// the host's TCP `port`.
struct Guest {
    qemu: Running,
    port: u16,
}

impl Guest {
    /// Boots the guest on a free port and waits until gdbserver serves.
    fn start(name: &str, target_args: &str) -> Guest {
        assert!(
            Command::new("gdb").arg("--version").output().is_ok(),
            "gdb is not installed (`make deps` installs it)"
        );
        let port = free_port();
        let append = format!("init=/bin/gdbserver /bin/gdb-target {target_args}");
        let mut qemu = Boot::new(name, append.trim_end())
            .machine("q35")
            .timeout(600)
            .extra_qemu_args(&format!("-serial tcp:127.0.0.1:{port},server=on,wait=off"))
            .spawn();
        qemu.wait_for(READY, Duration::from_secs(180));
        Guest { qemu, port }
    }

    /// What the kernel has printed so far.
    fn serial(&self) -> String {
        self.qemu.serial()
    }

    /// Runs gdb with `commands` (see [`gdb_args`]) to the end.
    fn gdb(&self, commands: &[&str]) -> Transcript<'_> {
        self.transcript(gdb(self.port, commands))
    }

    /// Runs gdb with `commands` and types Ctrl-C once `ready` holds (see
    /// [`gdb_with_ctrl_c`]).
    fn gdb_with_ctrl_c(
        &self,
        commands: &[&str],
        delay: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> Transcript<'_> {
        self.transcript(gdb_with_ctrl_c(self.port, commands, delay, ready))
    }

    fn transcript(&self, text: String) -> Transcript<'_> {
        Transcript {
            text,
            qemu: &self.qemu,
        }
    }

    /// A raw client of the remote protocol, connected to COM2.
    fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    /// Waits up to two minutes for the guest to end, which must be as a
    /// failing pid 1: gdbserver ends with the program's status, and the
    /// program never ends with 0 here.
    fn ended(self) -> Outcome {
        let outcome = self.qemu.wait_timeout(Duration::from_secs(120));
        outcome.expect_status(status::FAILURE);
        outcome
    }
}

/// The gdb command line: batch mode, no init files, the program's ELF for
/// symbols, connected to the guest, then `commands` one `-ex` each (an
/// error in one does not stop the others). A command `@name` is a marker:
/// gdb runs `echo @name\n`, which starts [`Transcript::section`] `name`.
fn gdb_args(port: u16, commands: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "-nx",
        "-batch",
        "-ex",
        "set remotetimeout 60",
        "-ex",
        "set pagination off",
    ]
    .map(String::from)
    .into();
    args.push(elf().display().to_string());
    args.push("-ex".into());
    args.push(format!("target remote 127.0.0.1:{port}"));
    for command in commands {
        args.push("-ex".into());
        if command.starts_with('@') {
            args.push(format!("echo {command}\\n"));
        } else {
            args.push(command.to_string());
        }
    }
    args
}

/// Runs gdb to the end; returns what it printed (stdout and stderr).
fn gdb(port: u16, commands: &[&str]) -> String {
    let output = Command::new("timeout")
        .args(["--kill-after=5", &GDB_TIMEOUT.to_string(), "gdb"])
        .args(gdb_args(port, commands))
        .stdin(Stdio::null())
        .output()
        .expect("cannot run gdb");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// Runs gdb on a pseudo-terminal (through `script`), so that typing Ctrl-C
/// works as for a user: once `ready(what gdb printed so far)` holds (at
/// most two minutes) and `delay` more has passed, a 0x03 byte is typed.
/// Returns what gdb printed.
fn gdb_with_ctrl_c(
    port: u16,
    commands: &[&str],
    delay: Duration,
    ready: impl Fn(&str) -> bool,
) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = String::from("gdb");
    for arg in gdb_args(port, commands) {
        line.push(' ');
        line.push_str(&quote(&arg));
    }
    let mut child = Command::new("timeout")
        .args(["--kill-after=5", &GDB_TIMEOUT.to_string()])
        .args(["script", "-qfec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run script(1) for gdb");
    let text = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    for mut pipe in [
        Box::new(stdout) as Box<dyn Read + Send>,
        Box::new(stderr) as Box<dyn Read + Send>,
    ] {
        let text = Arc::clone(&text);
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                text.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }));
    }
    let mut stdin = child.stdin.take().expect("piped");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready(&text.lock().unwrap().replace("\r\n", "\n")) && Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(delay);
    let _ = stdin.write_all(b"\x03");
    let _ = stdin.flush();
    let _ = child.wait();
    drop(stdin);
    for reader in readers {
        let _ = reader.join();
    }
    let out = text.lock().unwrap().replace("\r\n", "\n");
    out
}

fn parse_hex(text: &str) -> Option<u64> {
    let digits: String = text
        .trim_start_matches("0x")
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&digits, 16).ok()
}

/// The hex number right after the first `prefix` in `out`.
fn hex_after(out: &str, prefix: &str) -> Option<u64> {
    let at = out.find(prefix)? + prefix.len();
    parse_hex(&out[at..])
}

/// What one gdb run printed, and the guest it debugged: a failed check
/// shows both.
struct Transcript<'a> {
    text: String,
    qemu: &'a Running,
}

impl Transcript<'_> {
    /// Fails the test with `what`, gdb's output and the serial log so far
    /// unless `ok`.
    fn check(&self, ok: bool, what: &str) {
        if !ok {
            panic!(
                "{what}\n---- gdb output ----\n{}\n---- serial log so far ----\n{}",
                self.text,
                self.qemu.serial()
            );
        }
    }

    /// Checks that section `name` contains `text`.
    fn expect_in(&self, name: &str, text: &str, what: &str) {
        self.check(self.section(name).contains(text), what);
    }

    /// Checks that the `print` in section `name` printed `value`.
    fn expect_printed(&self, name: &str, value: &str, what: &str) {
        self.check(self.printed(name) == Some(value), what);
    }

    /// The lines gdb printed after the marker `@name` and before the next
    /// marker.
    fn section(&self, name: &str) -> &str {
        let marker = format!("@{name}\n");
        let Some(at) = self.text.find(&marker) else {
            return "";
        };
        let rest = &self.text[at + marker.len()..];
        let end = rest.find("\n@").map_or(rest.len(), |e| e + 1);
        &rest[..end]
    }

    /// The value of the `print` in section `name` (`$N = VALUE`).
    fn printed(&self, name: &str) -> Option<&str> {
        self.section(name)
            .lines()
            .find(|l| l.starts_with('$'))
            .and_then(|l| l.split_once(" = "))
            .map(|(_, v)| v.trim())
    }

    /// `REGISTER 0x... ` from `info registers REGISTER` in section `name`.
    fn register(&self, name: &str, register: &str) -> Option<u64> {
        let line = self
            .section(name)
            .lines()
            .find(|l| l.starts_with(register))?;
        parse_hex(line.split_whitespace().nth(1)?)
    }
}

/// What gdb prints for `command` with only the ELF file `elf` (no process).
fn gdb_on_file(elf: &Path, command: &str) -> String {
    let out = Command::new("gdb")
        .args(["-nx", "-batch", "-ex", command])
        .arg(elf)
        .output()
        .expect("cannot run gdb");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The address gdb gives for a function of the ELF file.
fn symbol(name: &str) -> u64 {
    let text = gdb_on_file(&elf(), &format!("info address {name}"));
    hex_after(&text, " is at 0x").unwrap_or_else(|| panic!("no address for {name}: {text}"))
}

/// The bytes a static ELF file holds at `addr`, as gdb reads them from the
/// file (no process).
fn elf_bytes(elf: &Path, addr: u64, len: usize) -> Vec<u8> {
    let text = gdb_on_file(elf, &format!("x/{len}xb {addr:#x}"));
    let bytes: Vec<u8> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .flat_map(|(_, rest)| rest.split_whitespace())
        .filter_map(|w| u8::from_str_radix(w.trim_start_matches("0x"), 16).ok())
        .collect();
    assert_eq!(
        bytes.len(),
        len,
        "cannot read {len} bytes at {addr:#x} of {}: {text}",
        elf.display()
    );
    bytes
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn gdb_breaks_steps_prints_and_sees_the_exit() {
    let guest = Guest::start("gdb-session", "");
    let out = guest.gdb(&[
        "info files",
        "@entry",
        "info registers rip",
        "stepi",
        "@entry_step",
        "info registers rip",
        "info address add_numbers",
        "break add_numbers",
        "continue",
        "@rip1",
        "info registers rip",
        "@a",
        "print a",
        "@b",
        "print b",
        "@counter0",
        "print COUNTER",
        "@a_in_memory",
        "x/gx &a",
        "stepi",
        "@rip2",
        "info registers rip",
        "@rsp",
        "info registers rsp",
        "@stack",
        "x/4gx $rsp",
        "@finish",
        "finish",
        "break bump_counter",
        "@second_call",
        "continue",
        "delete 1",
        "@bump1",
        "continue",
        "@by1",
        "print by",
        "@counter1",
        "print COUNTER",
        "@bump2",
        "continue",
        "@counter2",
        "print COUNTER",
        "delete",
        "@end",
        "continue",
    ]);

    // Held at the program's entry point; one instruction further after
    // stepi.
    let entry = hex_after(&out.text, "Entry point: 0x");
    let at_entry = out.register("entry", "rip");
    out.check(
        entry.is_some() && at_entry == entry,
        &format!("the program is at {at_entry:x?}, not its entry point {entry:x?}"),
    );
    let stepped = out.register("entry_step", "rip");
    out.check(
        stepped.is_some_and(|r| r > entry.unwrap() && r <= entry.unwrap() + 15),
        &format!("stepi at the entry point went to {stepped:x?}"),
    );
    let sym = hex_after(&out.text, "Symbol \"add_numbers\" is at 0x");
    let bp = hex_after(&out.text, "Breakpoint 1 at 0x");
    out.check(
        sym.is_some() && bp.is_some(),
        "no symbol or breakpoint address",
    );
    let (sym, bp) = (sym.unwrap(), bp.unwrap());
    out.check(
        (sym..sym + 64).contains(&bp),
        &format!("breakpoint {bp:#x} is not just after add_numbers {sym:#x}"),
    );
    out.check(
        out.text
            .contains("Breakpoint 1, gdb_target::add_numbers (a=2, b=40)"),
        "continue did not stop at add_numbers(2, 40)",
    );
    // After a software breakpoint the pc is the breakpoint's address.
    let rip1 = out.register("rip1", "rip");
    out.check(
        rip1 == Some(bp),
        &format!("rip after the breakpoint is {rip1:x?}, expected {bp:#x}"),
    );
    out.expect_printed("a", "2", "print a");
    out.expect_printed("b", "40", "print b");
    out.expect_printed("counter0", "0", "print COUNTER");
    out.expect_in(
        "a_in_memory",
        ":\t0x0000000000000002",
        "x/gx &a does not show 2",
    );
    let rip2 = out.register("rip2", "rip");
    out.check(
        rip2.is_some_and(|r| r > bp && r <= bp + 15),
        &format!("stepi moved rip from {bp:#x} to {rip2:x?}"),
    );
    // x/4gx $rsp: two lines of two quadwords, starting at rsp.
    let rsp = out.register("rsp", "rsp");
    let stack: Vec<&str> = out
        .section("stack")
        .lines()
        .filter(|l| l.starts_with("0x"))
        .collect();
    let well_formed = stack.len() == 2
        && stack.iter().all(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() == 3
                && words[1..]
                    .iter()
                    .all(|w| w.len() == 18 && w.starts_with("0x"))
        });
    out.check(
        well_formed && rsp.is_some() && parse_hex(stack[0]) == rsp,
        &format!("x/4gx $rsp (rsp {rsp:x?}) gave {stack:?}"),
    );
    let finish = out.section("finish");
    out.check(
        finish.contains("Value returned is $") && finish.contains(" = 42"),
        "finish did not return 42",
    );
    out.expect_in(
        "second_call",
        "Breakpoint 1, gdb_target::add_numbers (a=42, b=1)",
        "the second call of add_numbers was not caught",
    );
    out.expect_in(
        "bump1",
        "Breakpoint 2, gdb_target::bump_counter (by=1)",
        "no stop at bump_counter(1)",
    );
    out.expect_printed("by1", "1", "print by");
    out.expect_printed("counter1", "0", "COUNTER before the first bump");
    out.expect_in(
        "bump2",
        "Breakpoint 2, gdb_target::bump_counter (by=2)",
        "no stop at bump_counter(2)",
    );
    out.expect_printed("counter2", "1", "COUNTER after the first bump");
    out.expect_in(
        "end",
        "exited with code 07]",
        "the exit was not reported as code 07",
    );
    // gdbserver ends with the program's status: 7, a failing pid 1.
    guest
        .ended()
        .expect_contains("gdb-target: total=48 counter=6")
        .expect_contains("gdbserver: /bin/gdb-target exited 7");
}

/// A raw client of the remote protocol on the guest's COM2.
struct Raw {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

fn framed(payload: &str) -> Vec<u8> {
    format!("${payload}#{:02x}", checksum(payload.as_bytes())).into_bytes()
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                    return Raw {
                        stream,
                        pending: Vec::new(),
                    };
                }
                Err(e) if Instant::now() > deadline => panic!("cannot connect to COM2: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to COM2");
    }

    /// Reads until `done(received)` or `timeout`; returns what came.
    fn read_until(&mut self, timeout: Duration, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while !done(&self.pending) && Instant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        std::mem::take(&mut self.pending)
    }

    /// Whatever arrives within `time`.
    fn drain(&mut self, time: Duration) -> Vec<u8> {
        self.read_until(time, |_| false)
    }

    /// Reads one `+`/`-` prefix and one whole packet; returns
    /// `(prefix, payload)` and checks the checksum.
    fn reply(&mut self) -> (String, String) {
        let complete = |b: &[u8]| {
            b.iter()
                .position(|&c| c == b'#')
                .is_some_and(|h| b.len() >= h + 3)
        };
        let got = self.read_until(Duration::from_secs(60), complete);
        let text = String::from_utf8_lossy(&got).into_owned();
        let dollar = text
            .find('$')
            .unwrap_or_else(|| panic!("no packet in {text:?}"));
        let hash = text
            .rfind('#')
            .unwrap_or_else(|| panic!("no checksum in {text:?}"));
        let payload = &text[dollar + 1..hash];
        let sum = u8::from_str_radix(&text[hash + 1..hash + 3], 16).expect("hex checksum");
        assert_eq!(
            sum,
            checksum(payload.as_bytes()),
            "bad checksum in {text:?}"
        );
        (text[..dollar].to_string(), payload.to_string())
    }

    /// Sends a packet; expects `+` and a reply, whose payload it returns.
    fn ask(&mut self, payload: &str) -> String {
        self.send(&framed(payload));
        let (prefix, reply) = self.reply();
        assert_eq!(prefix, "+", "ack for {payload:?} (reply {reply:?})");
        reply
    }
}

/// `T05...;10:<rip>;` → rip.
fn stop_rip(reply: &str) -> Option<u64> {
    let at = reply.find(";10:")? + 4;
    let hex = reply.get(at..at + 16)?;
    let bytes: Vec<u8> = (0..8)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok())
        .collect::<Option<_>>()?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn le_hex(value: u64) -> String {
    value
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn gdbserver_survives_malformed_packets_then_serves_gdb() {
    let add_numbers = symbol("add_numbers");
    let guest = Guest::start("gdb-malformed", "");
    let mut raw = guest.raw();

    // Noise between packets is ignored.
    raw.send(b"hello\r\n\x00\xff junk ### \x7f");
    assert_eq!(raw.drain(Duration::from_secs(2)), b"", "reply to noise");
    // A bad checksum is answered `-`.
    raw.send(b"$qC#00");
    assert_eq!(
        raw.read_until(Duration::from_secs(30), |b| !b.is_empty()),
        b"-",
        "reply to a bad checksum"
    );
    // A packet cut short by the next one is dropped; the next one counts.
    raw.send(b"$m10,");
    raw.send(b"$?#3f");
    let (prefix, stop) = raw.reply();
    assert_eq!(prefix, "+");
    assert!(
        stop.starts_with("T05thread:"),
        "? after a cut packet: {stop:?}"
    );
    // Unknown packets get the empty reply; bad arguments an error.
    assert_eq!(raw.ask("vMustReplyEmpty"), "");
    assert_eq!(raw.ask("qNoSuchThing:1"), "");
    for bad in [
        "mzz,4", "m10", "M10,2:cc", "Z0,xyz,1", "Cxyz", "P10=12", "Hgq",
    ] {
        let reply = raw.ask(bad);
        assert!(reply.starts_with('E'), "{bad:?} got {reply:?}");
    }
    // A G image that does not end on a register boundary.
    assert!(raw.ask("G00").starts_with('E'), "short G");
    // Memory the program does not map.
    assert!(raw.ask("m10,4").starts_with('E'), "unmapped memory");
    // `-` asks for the last reply again.
    let last = raw.ask("p10");
    raw.send(b"-");
    let (_, again) = raw.reply();
    assert_eq!(again, last, "retransmission after -");
    // The whole register file: 552 bytes.
    assert_eq!(raw.ask("g").len(), 552 * 2, "g reply length");
    // An overlong packet (a valid checksum) is refused with an error.
    let long = "a".repeat(0x4000 + 16);
    let reply = raw.ask(&long);
    assert!(reply.starts_with('E'), "overlong packet got {reply:?}");

    // A breakpoint, continued over by the stub itself. This client never
    // said `swbreak+`, so the pc is reported just past the int3, as after a
    // hardware trap, and the client moves it back, like gdb.
    let original = raw.ask(&format!("m{add_numbers:x},1"));
    assert_eq!(raw.ask(&format!("Z0,{add_numbers:x},1")), "OK");
    assert_eq!(
        raw.ask(&format!("m{add_numbers:x},1")),
        original,
        "memory reads show the original byte under a breakpoint"
    );
    let stop = raw.ask("c");
    assert!(stop.starts_with("T05thread:"), "c: {stop:?}");
    assert!(
        !stop.contains("swbreak"),
        "swbreak without swbreak+: {stop:?}"
    );
    assert_eq!(stop_rip(&stop), Some(add_numbers + 1), "rip in {stop:?}");
    assert_eq!(raw.ask("p5"), le_hex(2), "rdi at the first call");
    assert_eq!(raw.ask(&format!("P10={}", le_hex(add_numbers))), "OK");
    // Continuing from the breakpoint steps over it and stops at the next
    // call.
    let stop = raw.ask("c");
    assert_eq!(
        stop_rip(&stop),
        Some(add_numbers + 1),
        "second stop {stop:?}"
    );
    assert_eq!(raw.ask("p5"), le_hex(42), "rdi at the second call");
    assert_eq!(raw.ask(&format!("P10={}", le_hex(add_numbers))), "OK");
    assert_eq!(raw.ask(&format!("z0,{add_numbers:x},1")), "OK");

    // No-ack mode: replies come without `+`. A new `qSupported` (a new
    // gdb) is acknowledged again, whatever the previous session chose.
    assert_eq!(raw.ask("QStartNoAckMode"), "OK");
    raw.send(&framed("qC"));
    let (prefix, reply) = raw.reply();
    assert_eq!(prefix, "", "an ack in no-ack mode (reply {reply:?})");
    assert!(reply.starts_with("QC"), "qC got {reply:?}");
    raw.send(&framed("qSupported:multiprocess+"));
    let (prefix, reply) = raw.reply();
    assert_eq!(
        prefix, "+",
        "qSupported after no-ack mode was not acknowledged"
    );
    assert!(
        reply.contains("QStartNoAckMode+"),
        "qSupported got {reply:?}"
    );
    // Left in no-ack mode: the gdb that connects next must still be acked.
    assert_eq!(raw.ask("QStartNoAckMode"), "OK");
    drop(raw);
    std::thread::sleep(Duration::from_secs(1));

    // A real gdb session after all that.
    let out = guest.gdb(&[
        "@where",
        "info registers rip",
        "break bump_counter",
        "@bump",
        "continue",
        "@counter",
        "print gdb_target::COUNTER",
        "@kill",
        "kill",
    ]);
    out.check(
        out.register("where", "rip") == Some(add_numbers),
        "gdb does not find the program where the raw client left it",
    );
    out.expect_in(
        "bump",
        "gdb_target::bump_counter (by=1)",
        "gdb did not stop at bump_counter(1)",
    );
    out.expect_printed("counter", "0", "print gdb_target::COUNTER");
    out.expect_in("kill", "killed]", "kill was not confirmed");
    guest
        .ended()
        .expect_contains("gdbserver: /bin/gdb-target killed by SIGKILL");
}

#[test]
fn gdb_interrupts_with_ctrl_c_writes_memory_and_detaches() {
    let guest = Guest::start("gdb-ctrl-c", "loop");
    let commands = [
        "@run",
        "continue",
        "@counter",
        "print gdb_target::COUNTER",
        "set var gdb_target::KEEP_GOING = 0",
        "@keep_going",
        "print gdb_target::KEEP_GOING",
        "@detach",
        "detach",
    ];
    // The program prints its first line once gdb has let it run.
    let out = guest.gdb_with_ctrl_c(&commands, Duration::from_secs(1), |_| {
        guest.serial().contains("gdb-target: looping")
    });
    out.expect_in(
        "run",
        "Program received signal SIGINT",
        "Ctrl-C did not stop the program with SIGINT",
    );
    let counter = out.printed("counter").and_then(|v| v.parse::<u64>().ok());
    out.check(
        counter.is_some_and(|c| c > 0),
        &format!("COUNTER after running a while is {counter:?}"),
    );
    out.expect_printed("keep_going", "0", "set var did not stick");
    out.expect_in("detach", "detached]", "detach was not confirmed");
    // Detached, the program sees KEEP_GOING = 0 and ends by itself; the
    // SIGINT it was stopped at was discarded (gdb does not pass SIGINT).
    guest
        .ended()
        .expect_contains("gdb-target: loop ended")
        .expect_contains("gdbserver: /bin/gdb-target exited 7");
}

#[test]
fn gdb_sees_a_fault_as_a_signal_stop_then_the_death() {
    let guest = Guest::start("gdb-segv", "segv");
    let out = guest.gdb(&["@run", "continue", "@where", "bt 1", "@again", "continue"]);
    out.expect_in(
        "run",
        "Program received signal SIGSEGV",
        "the fault was not reported as SIGSEGV",
    );
    out.expect_in(
        "where",
        "gdb_target::segv",
        "the fault is not in gdb_target::segv",
    );
    out.expect_in(
        "again",
        "Program terminated with signal SIGSEGV",
        "continuing did not deliver SIGSEGV",
    );
    guest
        .ended()
        .expect_contains("gdbserver: /bin/gdb-target killed by SIGSEGV");
}

#[test]
fn gdb_signal_command_delivers_a_new_signal() {
    let guest = Guest::start("gdb-signal", "");
    let out = guest.gdb(&[
        "break add_numbers",
        "@run",
        "continue",
        "@signal",
        "signal SIGUSR1",
    ]);
    out.expect_in(
        "run",
        "Breakpoint 1, gdb_target::add_numbers",
        "no stop at add_numbers",
    );
    // SIGUSR1 is 10 for the kernel and 30 on the wire; its default action
    // ends the program.
    out.expect_in(
        "signal",
        "Program terminated with signal SIGUSR1",
        "signal SIGUSR1 did not end the program",
    );
    guest
        .ended()
        .expect_contains("gdbserver: /bin/gdb-target killed by SIGUSR1");
}

#[test]
fn gdb_forked_child_does_not_inherit_breakpoints() {
    let guest = Guest::start("gdb-fork", "fork");
    let out = guest.gdb(&[
        "break in_both",
        "@run",
        "continue",
        "@x",
        "print x",
        "@end",
        "continue",
    ]);
    // Only the parent, which is traced, stops; the child's copy of the text
    // had the int3 taken out before it ran.
    out.expect_in(
        "run",
        "Breakpoint 1, gdb_target::in_both (x=1)",
        "the parent did not stop at in_both(1)",
    );
    out.expect_in(
        "end",
        "exited with code 07]",
        "the program did not exit 7 (its child did not exit 5)",
    );
    guest
        .ended()
        .expect_contains("gdb-target: child got 5")
        .expect_contains("gdb-target: child exited 5")
        .expect_contains("gdbserver: /bin/gdb-target exited 7");
}

#[test]
fn gdb_reports_a_program_killed_while_stopped() {
    let guest = Guest::start("gdb-killed", "killed");
    let out = guest.gdb(&[
        "break add_numbers",
        "@run",
        "continue",
        // Meanwhile the program's child sends it SIGKILL.
        "shell sleep 4",
        "@mem",
        "x/4xb $pc",
        "@end",
        "continue",
    ]);
    out.expect_in(
        "run",
        "Breakpoint 1, gdb_target::add_numbers",
        "no stop at add_numbers",
    );
    // Dead while stopped (gdbserver let the child go at once): memory is
    // gone, and the next resume reports the death.
    out.expect_in(
        "mem",
        "Cannot access memory",
        "the program's memory is still readable after its death",
    );
    out.expect_in(
        "end",
        "Program terminated with signal SIGKILL",
        "the death of the stopped program was not reported as SIGKILL",
    );
    guest
        .ended()
        .expect_absent("gdb-target: still alive")
        .expect_contains("gdbserver: /bin/gdb-target killed by SIGKILL");
}

#[test]
fn gdb_killed_program_answers_x09_to_a_raw_client() {
    let add_numbers = symbol("add_numbers");
    let guest = Guest::start("gdb-killed-raw", "killed");
    let mut raw = guest.raw();
    assert_eq!(raw.ask(&format!("Z0,{add_numbers:x},1")), "OK");
    let stop = raw.ask("c");
    assert!(stop.starts_with("T05"), "c: {stop:?}");
    std::thread::sleep(Duration::from_secs(4));
    // Killed meanwhile: data requests fail, breakpoints have nothing to
    // change, and the stop reason and resuming both report the death.
    let g = raw.ask("g");
    assert!(g.starts_with('E'), "g after the death: {g}");
    for (ask, want) in [
        (format!("z0,{add_numbers:x},1"), "OK"),
        (format!("Z0,{add_numbers:x},1"), "OK"),
        ("?".to_string(), "X09"),
    ] {
        assert_eq!(raw.ask(&ask), want, "{ask} after the death");
    }
    drop(raw);
    guest
        .ended()
        .expect_contains("gdbserver: /bin/gdb-target killed by SIGKILL");
}

#[test]
fn gdb_passes_sigstop_without_hanging() {
    let guest = Guest::start("gdb-sigstop", "stop");
    let out = guest.gdb(&["@run", "continue", "@end", "continue"]);
    out.expect_in(
        "run",
        "Program received signal SIGSTOP",
        "the SIGSTOP was not reported",
    );
    // gdb passes SIGSTOP by default (`C11`): no job-control stop.
    out.expect_in(
        "end",
        "exited with code 07]",
        "passing SIGSTOP did not let the program finish",
    );
    guest
        .ended()
        .expect_contains("gdb-target: continued after SIGSTOP")
        .expect_contains("gdbserver: /bin/gdb-target exited 7");
}

#[test]
fn gdb_interrupts_a_stepi_blocked_in_a_syscall() {
    let syscall_insn = symbol("gdb_target_nap_syscall");
    let guest = Guest::start("gdb-stepi-ctrl-c", "nap");
    let commands = [
        &format!("break *{syscall_insn:#x}"),
        "@run",
        "continue",
        // One instruction: a 60 s nanosleep. Ctrl-C comes while it sleeps.
        "@stepi",
        "stepi",
        "@kill",
        "kill",
    ];
    let out = guest.gdb_with_ctrl_c(&commands, Duration::from_secs(4), |out| {
        out.contains("@stepi")
    });
    out.expect_in("run", "Breakpoint 1,", "no stop at the syscall instruction");
    out.expect_in(
        "stepi",
        "Program received signal SIGINT",
        "Ctrl-C did not end the blocked stepi with SIGINT",
    );
    out.expect_in("kill", "killed]", "kill was not confirmed");
    guest
        .ended()
        .expect_absent("gdb-target: nap returned")
        .expect_contains("gdbserver: /bin/gdb-target killed by SIGKILL");
}

#[test]
fn gdb_sees_a_signal_that_arrives_during_stepi() {
    let syscall_insn = symbol("gdb_target_nap_syscall");
    let handler = symbol("on_usr1");
    let guest = Guest::start("gdb-stepi-signal", "nap-signal");
    let out = guest.gdb(&[
        &format!("break *{syscall_insn:#x}"),
        "@run",
        "continue",
        // A 10 s nanosleep that the program's child interrupts with
        // SIGUSR1 after a second; the handler runs.
        "@stepi",
        "stepi",
        "@where",
        "info registers rip",
        "delete",
        "@end",
        "continue",
    ]);
    out.expect_in("run", "Breakpoint 1,", "no stop at the syscall instruction");
    out.expect_in(
        "stepi",
        "Program received signal SIGUSR1",
        "the signal delivered during stepi was not reported",
    );
    let rip = out.register("where", "rip");
    out.check(
        rip == Some(handler),
        &format!("the step ended at {rip:x?}, not at the handler {handler:#x}"),
    );
    out.expect_in(
        "end",
        "exited with code 07]",
        "the program did not finish with its handler run",
    );
    guest
        .ended()
        .expect_contains("SIGUSR1 seen 1")
        .expect_contains("gdbserver: /bin/gdb-target exited 7");
}

#[test]
fn gdb_breakpoints_do_not_leak_into_an_execed_program() {
    // An address in gdb-target's text that it never runs in `exec` mode and
    // that the next program maps too.
    let addr = symbol("gdb_target_nap");
    let next = workspace_root().join("target/x86_64-unknown-none/release/strace-target-segv");
    let new_bytes = elf_bytes(&next, addr, 8);
    let old_bytes = elf_bytes(&elf(), addr, 8);
    assert_ne!(new_bytes[0], old_bytes[0], "pick another address");
    let guest = Guest::start("gdb-exec", "exec");
    let mut raw = guest.raw();
    assert_eq!(raw.ask(&format!("Z0,{addr:x},1")), "OK");
    // The program becomes strace-target-segv (gdb is not told) and faults.
    let stop = raw.ask("c");
    assert!(stop.starts_with("T0b"), "c: {stop:?}");
    // The new image is shown as it is, and removing the old breakpoint
    // writes nothing into it.
    assert_eq!(raw.ask(&format!("m{addr:x},8")), hex_bytes(&new_bytes));
    assert_eq!(raw.ask(&format!("z0,{addr:x},1")), "OK");
    assert_eq!(raw.ask(&format!("m{addr:x},8")), hex_bytes(&new_bytes));
    // Passing the SIGSEGV ends it.
    let end = raw.ask("C0b");
    assert!(end.starts_with("X0b"), "the fault did not end it: {end:?}");
    drop(raw);
    guest
        .ended()
        .expect_contains("segv: about to fault")
        .expect_contains("gdbserver: /bin/gdb-target killed by SIGSEGV");
}

#[test]
fn gdbserver_sees_a_ctrl_c_sent_with_the_resume_packet() {
    let guest = Guest::start("gdb-ctrl-c-raw", "");
    let mut raw = guest.raw();
    assert!(raw.ask("?").starts_with("T05"), "held at the entry point");
    // `c` and the interrupt byte in one write: they reach gdbserver in the
    // same read of the port, and the interrupt must not be lost (the
    // program would otherwise run to its end, `W07`).
    let mut bytes = framed("c");
    bytes.push(0x03);
    raw.send(&bytes);
    let (prefix, stop) = raw.reply();
    assert_eq!(prefix, "+");
    assert!(stop.starts_with("T02"), "c with Ctrl-C: {stop:?}");
    // gdb does not pass SIGINT: `c` discards it and the program finishes.
    assert_eq!(raw.ask("c"), "W07");
    drop(raw);
    guest
        .ended()
        .expect_contains("gdbserver: /bin/gdb-target exited 7");
}
