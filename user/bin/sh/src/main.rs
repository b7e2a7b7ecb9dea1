//! A small shell: reads command lines from fd 0, runs `/bin/NAME args...`, reports non-zero statuses.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use rt::{eprintln, print, println};
use syscall::flag::{wifsignaled, wtermsig};

rt::entry!(main);

const HELP: &str = "\
usage: sh [-c \"command args...\"]
builtins:
  help        show this text
  exit [N]    leave the shell with status N (default: the last status)
commands:
  NAME args   runs /bin/NAME; a name containing '/' is used as a path
quoting: 'single' and \"double\" quotes group words";

/// `sh -c CMD [MORE...]` runs one command (the words joined by spaces) and
/// exits with its status; otherwise reads commands from fd 0 until EOF.
fn main(args: &[&str]) -> i32 {
    let mut shell = Shell { last: 0 };
    if args.get(1) == Some(&"-c") {
        let line = args.get(2..).unwrap_or(&[]).join(" ");
        return match shell.run_line(&line) {
            Flow::Exit(code) => code,
            Flow::Continue => shell.last,
        };
    }
    let interactive = stdin_is_console();
    let mut input = LineReader::new(interactive);
    loop {
        if interactive {
            print!("$ ");
        }
        let Some(line) = input.read_line() else {
            if interactive {
                println!();
            }
            return shell.last;
        };
        if let Flow::Exit(code) = shell.run_line(&line) {
            return code;
        }
    }
}

/// True when fd 0 is the console, in which case we echo input and prompt.
fn stdin_is_console() -> bool {
    let mut buf = [0u8; 64];
    match syscall::fpath(0, &mut buf) {
        Ok(n) => buf[..n.min(buf.len())].starts_with(b"debug:"),
        Err(_) => false,
    }
}

enum Flow {
    Continue,
    Exit(i32),
}

struct Shell {
    /// Exit code of the last command (128 + signal if it was killed).
    last: i32,
}

impl Shell {
    fn run_line(&mut self, line: &str) -> Flow {
        let words = match split_words(line) {
            Ok(words) => words,
            Err(e) => {
                eprintln!("sh: {}", e);
                self.last = 2;
                return Flow::Continue;
            }
        };
        let Some(name) = words.first() else {
            return Flow::Continue;
        };
        match name.as_str() {
            "exit" => {
                let code = match words.get(1) {
                    None => self.last,
                    Some(n) => match n.parse::<i32>() {
                        Ok(code) => code,
                        Err(_) => {
                            eprintln!("sh: exit: {}: not a number", n);
                            2
                        }
                    },
                };
                Flow::Exit(code)
            }
            "help" => {
                println!("{}", HELP);
                self.last = 0;
                Flow::Continue
            }
            _ => {
                self.last = run_command(name, &words[1..]);
                Flow::Continue
            }
        }
    }
}

/// Runs one program and waits for it; returns its exit code.
fn run_command(name: &str, rest: &[String]) -> i32 {
    let path = if name.contains('/') {
        String::from(name)
    } else {
        alloc::format!("/bin/{}", name)
    };
    let args: Vec<&str> = rest.iter().map(String::as_str).collect();
    let pid = match rt::process::spawn(&path, &args) {
        Ok(pid) => pid,
        Err(e) if e.errno == syscall::error::ENOENT => {
            eprintln!("sh: {}: command not found", name);
            return 127;
        }
        Err(e) => {
            eprintln!("sh: {}: {}", name, rt::errno::describe(&e));
            return 126;
        }
    };
    let status = match rt::process::wait(pid) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("sh: waitpid: {}", rt::errno::describe(&e));
            return 1;
        }
    };
    if wifsignaled(status) {
        println!("[killed by {}]", rt::process::signal_name(wtermsig(status)));
    } else if rt::process::exit_code(status) != 0 {
        println!("[exit {}]", rt::process::exit_code(status));
    }
    rt::process::exit_code(status)
}

/// Splits a command line into words; quotes group words and are removed.
fn split_words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(core::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote");
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Reads lines from fd 0 a chunk at a time, with minimal line editing
/// (backspace, Ctrl-C, Ctrl-D) and echo when the input is the console.
struct LineReader {
    echo: bool,
    buf: [u8; 128],
    pos: usize,
    len: usize,
    /// The previous byte ended a line with `\r`, so a following `\n` is skipped.
    after_cr: bool,
}

impl LineReader {
    fn new(echo: bool) -> Self {
        LineReader {
            echo,
            buf: [0; 128],
            pos: 0,
            len: 0,
            after_cr: false,
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        if self.pos == self.len {
            match rt::io::read(0, &mut self.buf) {
                Ok(0) => return None,
                Ok(n) => {
                    self.len = n.min(self.buf.len());
                    self.pos = 0;
                }
                Err(e) => {
                    eprintln!("sh: read: {}", rt::errno::describe(&e));
                    return None;
                }
            }
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Some(b)
    }

    fn echo(&self, bytes: &[u8]) {
        if self.echo {
            let _ = rt::io::write_all(1, bytes);
        }
    }

    /// The next line without its terminator, or `None` at end of input.
    fn read_line(&mut self) -> Option<String> {
        let mut line: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.next_byte() else {
                // End of input: hand out a final unterminated line, if any.
                return if line.is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(&line).into_owned())
                };
            };
            let after_cr = core::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    self.echo(b"\n");
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
                0x08 | 0x7f => {
                    if !line.is_empty() {
                        // Drop a whole UTF-8 character: continuation bytes first.
                        while line.last().is_some_and(|&c| c & 0xc0 == 0x80) {
                            line.pop();
                        }
                        line.pop();
                        self.echo(b"\x08 \x08");
                    }
                }
                0x03 => {
                    self.echo(b"^C\n");
                    line.clear();
                    return Some(String::new());
                }
                0x04 if line.is_empty() => return None,
                b if b < 0x20 => {}
                b => {
                    line.push(b);
                    self.echo(&[b]);
                }
            }
        }
    }
}
