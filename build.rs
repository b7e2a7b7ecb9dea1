//! Build script of the kernel: links with `linker.ld`, and embeds every user
//! program (each folder under `user/` with a `src/main.rs`, built beforehand
//! by `make build`) in the init filesystem as `/bin/<folder name>`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        root.join("linker.ld").display()
    );
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=user");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin_dir = target_dir.join("x86_64-unknown-none/release");

    let mut programs: Vec<String> = std::fs::read_dir(root.join("user"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.path().join("src/main.rs").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    programs.sort();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let mut table = String::from("/// Files of the init filesystem: (path, contents).\n");
    table.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for name in &programs {
        let binary = bin_dir.join(name);
        println!("cargo:rerun-if-changed={}", binary.display());
        if binary.exists() {
            let embedded = strip_debug_info(&binary, &out_dir.join(format!("bin-{name}")));
            writeln!(
                table,
                "    (\"bin/{name}\", include_bytes!({:?})),",
                embedded.display().to_string()
            )
            .expect("writing to a String");
        } else {
            println!(
                "cargo:warning=user program {name} is not built ({}); run `make build`",
                binary.display()
            );
        }
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("initfs.rs"), table).expect("OUT_DIR is writable");
}

/// A copy of `binary` without debug sections (the guest never reads them;
/// the host's gdb uses the original), or `binary` itself if `strip` is not
/// installed.
fn strip_debug_info(binary: &Path, stripped: &Path) -> PathBuf {
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(stripped)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        stripped.to_path_buf()
    } else {
        println!(
            "cargo:warning=strip failed or is missing: embedding {} with its debug info",
            binary.display()
        );
        binary.to_path_buf()
    }
}
