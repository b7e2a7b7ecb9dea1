//! The panic handler: prints `panic: <message> at <file>:<line>` to fd 2 and exits with 101.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::io::FdWriter;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    // The writer buffers on the stack, so a panic inside the allocator still prints.
    let mut w = FdWriter::new(2);
    let _ = write!(w, "panic: {}", info.message());
    if let Some(loc) = info.location() {
        let _ = write!(w, " at {}:{}", loc.file(), loc.line());
    }
    let _ = w.write_str("\n");
    w.flush();
    crate::process::exit(101)
}
