//! Build script of the kernel: links with `linker.ld`, and embeds every user
//! program (each folder under `user/` with a `src/main.rs`, built beforehand
//! by `make build`) in the init filesystem as `/bin/<folder name>`.

use std::fmt::Write as _;
use std::path::PathBuf;

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

    let mut table = String::from("/// Files of the init filesystem: (path, contents).\n");
    table.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for name in &programs {
        let binary = bin_dir.join(name);
        println!("cargo:rerun-if-changed={}", binary.display());
        if binary.exists() {
            writeln!(
                table,
                "    (\"bin/{name}\", include_bytes!({:?})),",
                binary.display().to_string()
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
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("initfs.rs");
    std::fs::write(out, table).expect("OUT_DIR is writable");
}
