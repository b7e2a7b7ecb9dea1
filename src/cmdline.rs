//! The kernel command line (`-append`): `log=LEVEL`, `test=NAME[,NAME...]`
//! and `init=/bin/PROGRAM ARGS...` (which takes the rest of the line).
//! Unknown options are reported and ignored.

use alloc::string::String;
use alloc::vec::Vec;

use crate::console::Level;

#[derive(Default, Debug)]
pub struct Options {
    pub log: Option<Level>,
    pub tests: Vec<String>,
    /// Program and arguments for pid 1.
    pub init: Vec<String>,
}

pub fn parse(line: &str) -> Options {
    let mut opts = Options::default();
    let mut words = line.split_ascii_whitespace();
    while let Some(word) = words.next() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            "log" => match Level::parse(value) {
                Some(level) => opts.log = Some(level),
                None => crate::warn!(
                    "cmdline: unknown log level {:?} (error, warn, info, debug)",
                    value
                ),
            },
            "test" => opts
                .tests
                .extend(value.split(',').filter(|s| !s.is_empty()).map(String::from)),
            "init" => {
                opts.init.push(String::from(value));
                opts.init.extend(words.by_ref().map(String::from));
            }
            _ => crate::warn!("cmdline: ignoring unknown option {:?}", word),
        }
    }
    opts
}
