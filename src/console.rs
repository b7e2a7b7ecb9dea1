//! The kernel console on COM1 and the leveled log macros (`error!`,
//! `warn!`, `info!`, `debug!`). The level comes from `log=` on the command
//! line.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

use crate::arch::serial::Uart;

static CONSOLE_LOCK: spin::Mutex<()> = spin::Mutex::new(());
static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[repr(u8)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn parse(name: &str) -> Option<Level> {
        match name {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
        }
    }
}

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

pub fn init() {
    Uart::com1().init();
}

struct RawConsole;

impl Write for RawConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Uart::com1().write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Writes raw bytes (user output through `debug:`).
pub fn write_bytes(bytes: &[u8]) {
    let _guard = CONSOLE_LOCK.lock();
    Uart::com1().write_bytes(bytes);
}

pub fn print_fmt(args: fmt::Arguments) {
    let _guard = CONSOLE_LOCK.lock();
    let _ = RawConsole.write_fmt(args);
}

/// Printing for the panic and fatal-exception paths: it never waits for the
/// lock, which the failing code may hold.
pub fn emergency_print(args: fmt::Arguments) {
    let _ = RawConsole.write_fmt(args);
}

pub fn log(level: Level, args: fmt::Arguments) {
    if !enabled(level) {
        return;
    }
    let ns = crate::time::monotonic_ns();
    print_fmt(format_args!(
        "[{:5}.{:06}] {} {}\n",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1000,
        level.tag(),
        args
    ));
}

#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::console::log($crate::console::Level::Error, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::console::log($crate::console::Level::Warn, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::console::log($crate::console::Level::Info, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::console::log($crate::console::Level::Debug, format_args!($($arg)*)) };
}
