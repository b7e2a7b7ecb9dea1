//! Build script of the kernel: links with `linker.ld`, and embeds every user
//! program (each folder with a `src/main.rs` under `user/` or one of its
//! groups, `user/bin/`, `user/tests/`, ...; built beforehand by `make build`)
//! in the init filesystem as `/bin/<folder name>`.

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

    let mut programs = Vec::new();
    for folder in subfolders(&root.join("user")) {
        if folder.join("src/main.rs").exists() {
            programs.push(folder);
        } else {
            programs.extend(
                subfolders(&folder)
                    .into_iter()
                    .filter(|f| f.join("src/main.rs").exists()),
            );
        }
    }
    let mut programs: Vec<String> = programs
        .iter()
        .filter_map(|f| f.file_name()?.to_str().map(String::from))
        .collect();
    programs.sort();
    if let Some(twice) = programs.windows(2).find(|w| w[0] == w[1]) {
        panic!("two user programs are named {}", twice[0]);
    }

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

/// The folders directly inside `dir` (none if it cannot be read).
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
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
