//! The smallest program: greets with its arguments and exits with the
//! number of arguments it got (so a test can check both).
#![no_std]
#![no_main]

rt::entry!(main);

fn main(args: &[&str]) -> i32 {
    rt::println!(
        "hello from {} (pid {})",
        args[0],
        syscall::getpid().unwrap_or(0)
    );
    for (i, arg) in args.iter().enumerate().skip(1) {
        rt::println!("arg {i}: {arg}");
    }
    (args.len() - 1) as i32
}
