//! Tests for the writable `/tmp` file system (tmpfs), the working directory
//! and the umask: every file-system call with its success and error cases,
//! permission checks for a uid-1000 process, the size limits (ENOSPC with
//! nothing changed), unlink while open, and the kernel's memory back at
//! its baseline once everything is deleted.
#![no_std]
#![no_main]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use rt::fs::{getcwd, link, mkdir, read_dir};
use rt::io::{read_to_end, write_all};
use rt::test::{expect_eq, expect_errno, in_child, Ctx};
use rt::{ensure, Tests};
use syscall::data::{Stat, StatVfs, TimeSpec};
use syscall::error::*;
use syscall::flag::*;

rt::entry!(main);

const KERNEL_ADDR: usize = 0xffff_8000_0000_0000;

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    // A first round, so that whatever is allocated once (the mount's root)
    // exists before the baseline is taken.
    // A first round, so that whatever is allocated once (the mount's root)
    // exists before any baseline is taken.
    t.run("warm_up", || {
        scratch("warm", |d| write_file(&p(d, "f"), b"x"))
    });
    t.run("create_write_read_seek_fstat_fpath", create_write_read);
    t.run("o_excl", o_excl);
    t.run("o_trunc", o_trunc);
    t.run("o_append", o_append);
    t.run("write_past_end_leaves_zeros", write_hole);
    t.run("open_errors", open_errors);
    t.run("mkdir_and_listing", mkdir_listing);
    t.run("rmdir", rmdir);
    t.run("unlink", unlink);
    t.run("unlink_while_open", unlink_while_open);
    t.run("link", link_test);
    t.run("frename", frename);
    t.run("ftruncate", ftruncate);
    t.run("fsync", fsync);
    t.run("fstatvfs", fstatvfs);
    t.run("fchmod", fchmod);
    t.run("fchown", fchown);
    t.run("futimens", futimens);
    t.run("permissions_uid_1000", permissions);
    t.run("sticky_tmp", sticky);
    t.run("umask", umask);
    t.run("umask_inherited_by_fork", umask_fork);
    t.run("chdir_relative_paths", chdir_relative);
    t.run("chdir_errors_and_fork", chdir_errors);
    t.run("clone_fs_threads_share_cwd_and_umask", clone_fs);
    t.run("chmod_by_path", chmod_path);
    t.run("getcwd_small_buffer", getcwd_small);
    t.run("read_only_and_other_schemes", other_schemes);
    t.run("bad_pointers_efault", bad_pointers);
    t.run("enospc_bytes", enospc_bytes);
    t.run("enospc_nodes", enospc_nodes);
    t.run("memory_back_after_deleting_everything", || {
        // The baseline after the other tests: the descriptor table of this
        // process has grown to what they needed, which the round below
        // does not pass.
        let baseline = memory();
        many_files_round()?;
        let usage = (limit("tmpfs_bytes_used")?, limit("tmpfs_nodes_used")?);
        expect_eq("tmpfs use after deleting everything", usage, (0, 0))?;
        let after = memory()?;
        let before = baseline.clone()?;
        ensure!(
            before == after,
            "memory not back: frames_free {} -> {}, heap_used {} -> {}",
            before.0,
            after.0,
            before.1,
            after.1
        );
        Ok(())
    });
    t.finish()
}

// ---- helpers ----

fn p(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

/// Runs `f` with a fresh directory `/tmp/<name>`, then removes it and all
/// it holds (whatever `f` returned).
fn scratch(name: &str, f: impl FnOnce(&str) -> Result<(), String>) -> Result<(), String> {
    let dir = format!("/tmp/{name}");
    mkdir(&dir, 0o777).ctx(&format!("mkdir {dir}"))?;
    // Writable by everyone (uid 1000 creates files in some tests),
    // whatever the umask.
    let result = chmod(&dir, 0o777).and_then(|()| f(&dir));
    let cleanup = remove_tree(&dir);
    result?;
    cleanup
}

fn remove_tree(path: &str) -> Result<(), String> {
    for name in read_dir(path).ctx(&format!("list {path}"))? {
        let child = p(path, &name);
        match syscall::unlink(&child) {
            Err(Error { errno: EISDIR }) => remove_tree(&child)?,
            other => {
                other.ctx(&format!("unlink {child}"))?;
            }
        }
    }
    syscall::rmdir(path).ctx(&format!("rmdir {path}"))?;
    Ok(())
}

fn chmod(path: &str, mode: u16) -> Result<(), String> {
    let fd = open(path, O_STAT)?;
    let r = syscall::fchmod(fd, mode).ctx(&format!("fchmod {path}"));
    close(fd);
    r.map(|_| ())
}

fn open(path: &str, flags: usize) -> Result<usize, String> {
    syscall::open(path, flags).ctx(&format!("open {path}"))
}

fn close(fd: usize) {
    let _ = syscall::close(fd);
}

fn write_file(path: &str, data: &[u8]) -> Result<(), String> {
    let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | 0o666)?;
    let r = write_all(fd, data).ctx(&format!("write {path}"));
    close(fd);
    r
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    let fd = open(path, O_RDONLY)?;
    let r = read_to_end(fd).ctx(&format!("read {path}"));
    close(fd);
    r
}

fn fstat(fd: usize) -> Result<Stat, String> {
    let mut st = Stat::default();
    syscall::fstat(fd, &mut st).ctx("fstat")?;
    Ok(st)
}

fn stat(path: &str) -> Result<Stat, String> {
    let fd = open(path, O_STAT)?;
    let r = fstat(fd);
    close(fd);
    r
}

fn mode(path: &str) -> Result<u16, String> {
    Ok(stat(path)?.st_mode)
}

fn exists(path: &str) -> bool {
    match syscall::open(path, O_STAT) {
        Ok(fd) => {
            close(fd);
            true
        }
        Err(_) => false,
    }
}

fn fpath(fd: usize) -> Result<String, String> {
    let mut buf = [0u8; 256];
    let n = syscall::fpath(fd, &mut buf).ctx("fpath")?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Runs `f` in a child whose ids are all `uid`.
fn as_user(uid: usize, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    in_child(|| {
        syscall::setregid(uid, uid).ctx("setregid")?;
        syscall::setreuid(uid, uid).ctx("setreuid")?;
        f()
    })
}

fn sys_fields(path: &str) -> Result<Vec<(String, usize)>, String> {
    let text = String::from_utf8(read_file(path)?).map_err(|_| String::from("not UTF-8"))?;
    Ok(text
        .split([' ', '\n'])
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| v.parse().ok().map(|v| (String::from(k), v)))
        .collect())
}

fn field(fields: &[(String, usize)], key: &str) -> Result<usize, String> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("no {key}"))
}

fn limit(key: &str) -> Result<usize, String> {
    field(&sys_fields("sys:limits")?, key)
}

/// (free frames, kernel heap bytes in use).
fn memory() -> Result<(usize, usize), String> {
    let fields = sys_fields("sys:memory")?;
    Ok((field(&fields, "frames_free")?, field(&fields, "heap_used")?))
}

// ---- tests ----

fn create_write_read() -> Result<(), String> {
    scratch("cwr", |d| {
        let path = p(d, "f");
        let fd = open(&path, O_CREAT | O_RDWR | 0o644)?;
        let r = (|| -> Result<(), String> {
            write_all(fd, b"hello, world").ctx("write")?;
            expect_eq("lseek end", syscall::lseek(fd, 0, SEEK_CUR), Ok(12))?;
            expect_eq("lseek set", syscall::lseek(fd, 7, SEEK_SET), Ok(7))?;
            let mut buf = [0u8; 16];
            let n = syscall::read(fd, &mut buf).ctx("read")?;
            expect_eq("read after seek", &buf[..n], &b"world"[..])?;
            expect_eq("read at end", syscall::read(fd, &mut buf), Ok(0))?;
            expect_eq("seek from end", syscall::lseek(fd, -5, SEEK_END), Ok(7))?;
            expect_errno(
                "seek before start",
                syscall::lseek(fd, -1, SEEK_SET),
                EINVAL,
            )?;
            syscall::lseek(fd, 0, SEEK_SET).ctx("rewind")?;
            write_all(fd, b"HELLO").ctx("overwrite")?;
            let st = fstat(fd)?;
            expect_eq("st_size", st.st_size, 12)?;
            expect_eq("st_mode", st.st_mode, MODE_FILE | 0o644)?;
            expect_eq("st_nlink", st.st_nlink, 1)?;
            expect_eq("st_uid", st.st_uid, 0)?;
            expect_eq("fpath", fpath(fd)?, format!("file:{path}"))?;
            Ok(())
        })();
        close(fd);
        r?;
        expect_eq("contents", read_file(&path)?, b"HELLO, world".to_vec())?;
        // file: with the scheme, and with . and .. in the path.
        let again = format!("file:{d}/./../cwr/f");
        expect_eq(
            "contents via file:",
            read_file(&again)?,
            b"HELLO, world".to_vec(),
        )
    })
}

fn o_excl() -> Result<(), String> {
    scratch("excl", |d| {
        let path = p(d, "f");
        let fd = open(&path, O_CREAT | O_EXCL | O_WRONLY | 0o600)?;
        close(fd);
        expect_errno(
            "O_CREAT|O_EXCL on an existing file",
            syscall::open(&path, O_CREAT | O_EXCL | O_WRONLY | 0o600),
            EEXIST,
        )?;
        expect_errno(
            "O_CREAT|O_EXCL on a directory",
            syscall::open(d, O_CREAT | O_EXCL | O_DIRECTORY),
            EEXIST,
        )?;
        let fd = open(&path, O_CREAT | O_WRONLY | 0o600)?;
        close(fd);
        Ok(())
    })
}

fn o_trunc() -> Result<(), String> {
    scratch("trunc", |d| {
        let path = p(d, "f");
        write_file(&path, b"0123456789")?;
        let fd = open(&path, O_RDONLY)?;
        expect_eq("size before", fstat(fd)?.st_size, 10)?;
        close(fd);
        let fd = open(&path, O_WRONLY | O_TRUNC)?;
        let size = fstat(fd)?.st_size;
        close(fd);
        expect_eq("size after O_TRUNC", size, 0)
    })
}

fn o_append() -> Result<(), String> {
    scratch("append", |d| {
        let path = p(d, "f");
        write_file(&path, b"abc")?;
        let a = open(&path, O_WRONLY | O_APPEND)?;
        let b = open(&path, O_WRONLY)?;
        let r = (|| -> Result<(), String> {
            write_all(b, b"XY").ctx("plain write")?;
            write_all(a, b"def").ctx("append write")?;
            expect_eq("offset after append", syscall::lseek(a, 0, SEEK_CUR), Ok(6))?;
            syscall::lseek(a, 0, SEEK_SET).ctx("seek")?;
            write_all(a, b"g").ctx("append after seek")?;
            Ok(())
        })();
        close(a);
        close(b);
        r?;
        expect_eq("contents", read_file(&path)?, b"XYcdefg".to_vec())
    })
}

fn write_hole() -> Result<(), String> {
    scratch("hole", |d| {
        let path = p(d, "f");
        let fd = open(&path, O_CREAT | O_RDWR | 0o600)?;
        let r = (|| -> Result<(), String> {
            syscall::lseek(fd, 5, SEEK_SET).ctx("seek")?;
            write_all(fd, b"z").ctx("write")?;
            Ok(())
        })();
        close(fd);
        r?;
        expect_eq("contents", read_file(&path)?, b"\0\0\0\0\0z".to_vec())
    })
}

fn open_errors() -> Result<(), String> {
    scratch("operr", |d| {
        let file = p(d, "f");
        write_file(&file, b"x")?;
        expect_errno("missing", syscall::open(p(d, "nope"), O_RDONLY), ENOENT)?;
        expect_errno(
            "create in a missing directory",
            syscall::open(p(d, "nodir/x"), O_CREAT | O_WRONLY | 0o600),
            ENOENT,
        )?;
        expect_errno(
            "a file as a directory",
            syscall::open(p(&file, "x"), O_RDONLY),
            ENOTDIR,
        )?;
        expect_errno(
            "O_DIRECTORY on a file",
            syscall::open(&file, O_RDONLY | O_DIRECTORY),
            ENOTDIR,
        )?;
        expect_errno(
            "a directory for writing",
            syscall::open(d, O_WRONLY),
            EISDIR,
        )?;
        expect_errno(
            "O_CREAT on a directory without O_DIRECTORY",
            syscall::open(d, O_CREAT | O_RDONLY),
            EISDIR,
        )?;
        expect_errno(
            "O_TRUNC on a directory",
            syscall::open(d, O_RDONLY | O_TRUNC),
            EISDIR,
        )?;
        let long = "n".repeat(256);
        expect_errno(
            "a 256-byte name",
            syscall::open(p(d, &long), O_CREAT | O_WRONLY),
            ENAMETOOLONG,
        )?;
        expect_errno("empty path", syscall::open("", O_RDONLY), ENOENT)?;
        // Reading a write-only descriptor, writing a read-only one.
        let fd = open(&file, O_WRONLY)?;
        let mut b = [0u8; 1];
        let r = expect_errno("read a write-only fd", syscall::read(fd, &mut b), EBADF);
        close(fd);
        r?;
        let fd = open(&file, O_RDONLY)?;
        let r = expect_errno("write a read-only fd", syscall::write(fd, b"y"), EBADF);
        close(fd);
        r
    })
}

fn mkdir_listing() -> Result<(), String> {
    scratch("ls", |d| {
        expect_eq(
            "empty listing",
            read_dir(d).ctx("list")?,
            Vec::<String>::new(),
        )?;
        for name in ["b", "a", "c"] {
            write_file(&p(d, name), name.as_bytes())?;
        }
        mkdir(&p(d, "e"), 0o755).ctx("mkdir e")?;
        expect_errno("mkdir existing", mkdir(&p(d, "e"), 0o755), EEXIST)?;
        expect_errno("mkdir over a file", mkdir(&p(d, "a"), 0o755), EEXIST)?;
        // Without O_EXCL an existing directory just opens (Redox).
        let fd = open(&p(d, "e"), O_CREAT | O_DIRECTORY | O_RDONLY | 0o755)?;
        close(fd);
        let fd = open(d, O_RDONLY | O_DIRECTORY)?;
        let r = (|| -> Result<(), String> {
            let raw = read_to_end(fd).ctx("read dir")?;
            expect_eq("raw listing", raw.as_slice(), &b"a\nb\nc\ne"[..])?;
            let st = fstat(fd)?;
            expect_eq("dir type", st.st_mode & MODE_TYPE, MODE_DIR)?;
            expect_eq("dir nlink (2 + one subdirectory)", st.st_nlink, 3)?;
            expect_eq("fpath of a dir", fpath(fd)?, format!("file:{d}"))?;
            expect_errno("write to a dir", syscall::write(fd, b"x"), EBADF)?;
            Ok(())
        })();
        close(fd);
        r?;
        expect_eq("e's mode", mode(&p(d, "e"))?, MODE_DIR | 0o755)?;
        // The mount's root lists it; the root of file: lists tmp and bin.
        let tmp = read_dir("/tmp").ctx("list /tmp")?;
        ensure!(tmp.iter().any(|n| n == "ls"), "/tmp lists {:?}", tmp);
        let root = read_dir("/").ctx("list /")?;
        ensure!(
            root.iter().any(|n| n == "tmp") && root.iter().any(|n| n == "bin"),
            "/ lists {:?}",
            root
        );
        let bin = read_dir("/bin").ctx("list /bin")?;
        ensure!(
            bin.iter().any(|n| n == "test-tmpfs"),
            "/bin lists {:?}",
            bin
        );
        Ok(())
    })
}

fn rmdir() -> Result<(), String> {
    scratch("rmd", |d| {
        let sub = p(d, "sub");
        mkdir(&sub, 0o755).ctx("mkdir")?;
        write_file(&p(&sub, "f"), b"x")?;
        expect_errno("not empty", syscall::rmdir(&sub), ENOTEMPTY)?;
        expect_errno("a file", syscall::rmdir(p(&sub, "f")), ENOTDIR)?;
        expect_errno("missing", syscall::rmdir(p(d, "nope")), ENOENT)?;
        expect_errno("the mount point", syscall::rmdir("/tmp"), EBUSY)?;
        syscall::unlink(p(&sub, "f")).ctx("unlink")?;
        syscall::rmdir(&sub).ctx("rmdir")?;
        ensure!(!exists(&sub), "{sub} still exists");
        expect_errno("twice", syscall::rmdir(&sub), ENOENT)
    })
}

fn unlink() -> Result<(), String> {
    scratch("unl", |d| {
        let f = p(d, "f");
        write_file(&f, b"x")?;
        expect_errno("a directory", syscall::unlink(d), EISDIR)?;
        expect_errno("missing", syscall::unlink(p(d, "nope")), ENOENT)?;
        expect_errno("below a file", syscall::unlink(p(&f, "x")), ENOTDIR)?;
        syscall::unlink(&f).ctx("unlink")?;
        expect_errno("open after unlink", syscall::open(&f, O_RDONLY), ENOENT)?;
        expect_errno("twice", syscall::unlink(&f), ENOENT)
    })
}

fn unlink_while_open() -> Result<(), String> {
    scratch("uwo", |d| {
        let f = p(d, "f");
        write_file(&f, b"still here")?;
        let nodes = limit("tmpfs_nodes_used")?;
        let fd = open(&f, O_RDWR)?;
        let r = (|| -> Result<(), String> {
            syscall::unlink(&f).ctx("unlink")?;
            ensure!(!exists(&f), "the name is still there");
            expect_eq("node kept while open", limit("tmpfs_nodes_used")?, nodes)?;
            let data = read_to_end(fd).ctx("read")?;
            expect_eq("contents", data.as_slice(), &b"still here"[..])?;
            write_all(fd, b"!").ctx("write after unlink")?;
            let st = fstat(fd)?;
            expect_eq("st_nlink", st.st_nlink, 0)?;
            expect_eq("st_size", st.st_size, 11)?;
            // A new file of that name is another file.
            write_file(&f, b"new")?;
            syscall::lseek(fd, 0, SEEK_SET).ctx("seek")?;
            let data = read_to_end(fd).ctx("read again")?;
            expect_eq("old contents", data.as_slice(), &b"still here!"[..])?;
            syscall::unlink(&f).ctx("unlink the new one")?;
            Ok(())
        })();
        close(fd);
        r?;
        expect_eq("node freed at close", limit("tmpfs_nodes_used")?, nodes - 1)
    })
}

fn link_test() -> Result<(), String> {
    scratch("lnk", |d| {
        let a = p(d, "a");
        let b = p(d, "b");
        write_file(&a, b"one")?;
        link(&a, &b).ctx("link")?;
        expect_eq("nlink", stat(&a)?.st_nlink, 2)?;
        expect_eq("same inode", stat(&a)?.st_ino, stat(&b)?.st_ino)?;
        let fd = open(&b, O_WRONLY | O_APPEND)?;
        let r = write_all(fd, b"two").ctx("write b");
        close(fd);
        r?;
        expect_eq("seen through a", read_file(&a)?, b"onetwo".to_vec())?;
        expect_errno("to an existing name", link(&a, &b), EEXIST)?;
        expect_errno("a directory", link(d, &p(d, "dir2")), EPERM)?;
        expect_errno("missing", link(&p(d, "nope"), &p(d, "c")), ENOENT)?;
        expect_errno("into a missing dir", link(&a, &p(d, "nodir/c")), ENOENT)?;
        expect_errno("from file:/bin", link("/bin/sh", &p(d, "sh")), EXDEV)?;
        expect_errno("to file:/bin", link(&a, "/bin/a"), EXDEV)?;
        expect_errno("both in file:/bin", link("/bin/sh", "/bin/sh2"), EROFS)?;
        expect_errno("to another scheme", link(&a, "null:x"), EXDEV)?;
        syscall::unlink(&a).ctx("unlink a")?;
        expect_eq("b keeps the data", read_file(&b)?, b"onetwo".to_vec())?;
        expect_eq("nlink after unlink", stat(&b)?.st_nlink, 1)
    })
}

fn frename() -> Result<(), String> {
    scratch("ren", |d| {
        let a = p(d, "a");
        write_file(&a, b"A")?;
        mkdir(&p(d, "sub"), 0o755).ctx("mkdir")?;
        let fd = open(&a, O_RDONLY)?;
        let r = (|| -> Result<(), String> {
            let b = p(d, "sub/b");
            syscall::frename(fd, &b).ctx("frename into sub")?;
            ensure!(!exists(&a), "old name still there");
            expect_eq("new name", read_file(&b)?, b"A".to_vec())?;
            expect_eq("fpath follows", fpath(fd)?, format!("file:{b}"))?;
            // Over an existing file: replaced.
            let c = p(d, "c");
            write_file(&c, b"C")?;
            syscall::frename(fd, &c).ctx("frename over a file")?;
            expect_eq("replaced", read_file(&c)?, b"A".to_vec())?;
            expect_errno(
                "over a directory",
                syscall::frename(fd, p(d, "sub")),
                EISDIR,
            )?;
            expect_errno("to file:/bin", syscall::frename(fd, "/bin/x"), EXDEV)?;
            expect_errno("to another scheme", syscall::frename(fd, "null:x"), EXDEV)?;
            expect_errno(
                "into a missing dir",
                syscall::frename(fd, p(d, "nodir/x")),
                ENOENT,
            )?;
            expect_eq("still there", read_file(&c)?, b"A".to_vec())?;
            Ok(())
        })();
        close(fd);
        r?;
        // Directories.
        let sub = p(d, "sub");
        let other = p(d, "other");
        mkdir(&other, 0o755).ctx("mkdir other")?;
        write_file(&p(&other, "x"), b"x")?;
        let dfd = open(&sub, O_RDONLY | O_DIRECTORY)?;
        let r = (|| -> Result<(), String> {
            expect_errno("dir over a file", syscall::frename(dfd, p(d, "c")), ENOTDIR)?;
            expect_errno(
                "over a non-empty dir",
                syscall::frename(dfd, &other),
                ENOTEMPTY,
            )?;
            expect_errno("into itself", syscall::frename(dfd, p(&sub, "in")), EINVAL)?;
            let moved = p(&other, "moved");
            syscall::frename(dfd, &moved).ctx("move a directory")?;
            ensure!(exists(&moved) && !exists(&sub), "directory not moved");
            mkdir(&sub, 0o755).ctx("mkdir sub again")?;
            // Over an empty directory: replaced.
            syscall::frename(dfd, &sub).ctx("over an empty dir")?;
            ensure!(!exists(&moved), "old name of the directory still there");
            Ok(())
        })();
        close(dfd);
        r?;
        let fd = open("/bin/sh", O_RDONLY)?;
        let r = expect_errno("a file of file:/bin", syscall::frename(fd, "/bin/x"), EROFS);
        close(fd);
        r?;
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        let r = expect_errno("a pipe", syscall::frename(rd, p(d, "pipe")), EBADF);
        close(rd);
        close(wr);
        r
    })
}

fn ftruncate() -> Result<(), String> {
    scratch("ftr", |d| {
        let f = p(d, "f");
        write_file(&f, b"abcdef")?;
        let fd = open(&f, O_RDWR)?;
        let r = (|| -> Result<(), String> {
            syscall::ftruncate(fd, 3).ctx("shrink")?;
            expect_eq("size", fstat(fd)?.st_size, 3)?;
            syscall::ftruncate(fd, 8).ctx("grow")?;
            let data = read_to_end(fd).ctx("read")?;
            expect_eq(
                "zeros after growing",
                data.as_slice(),
                &b"abc\0\0\0\0\0"[..],
            )?;
            expect_errno(
                "to a huge length",
                syscall::ftruncate(fd, usize::MAX),
                EINVAL,
            )?;
            expect_errno("past the limit", syscall::ftruncate(fd, 1 << 40), ENOSPC)?;
            expect_eq("size unchanged", fstat(fd)?.st_size, 8)?;
            syscall::ftruncate(fd, 0).ctx("to zero")?;
            expect_eq("size 0", fstat(fd)?.st_size, 0)?;
            Ok(())
        })();
        close(fd);
        r?;
        let fd = open(&f, O_RDONLY)?;
        let r = expect_errno("a read-only fd", syscall::ftruncate(fd, 0), EBADF);
        close(fd);
        r?;
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        let r = expect_errno("a pipe", syscall::ftruncate(wr, 0), EBADF);
        close(rd);
        close(wr);
        r?;
        expect_errno("a bad fd", syscall::ftruncate(9999, 0), EBADF)
    })
}

fn fsync() -> Result<(), String> {
    scratch("sync", |d| {
        let f = p(d, "f");
        let fd = open(&f, O_CREAT | O_WRONLY | 0o600)?;
        let r = syscall::fsync(fd).ctx("fsync a tmpfs file");
        close(fd);
        r?;
        let fd = open(d, O_RDONLY | O_DIRECTORY)?;
        let r = syscall::fsync(fd).ctx("fsync a tmpfs dir");
        close(fd);
        r?;
        let fd = open("/bin/sh", O_RDONLY)?;
        let r = syscall::fsync(fd).ctx("fsync /bin/sh");
        close(fd);
        r?;
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        let r = expect_errno("a pipe", syscall::fsync(wr), EBADF);
        close(rd);
        close(wr);
        r?;
        expect_errno("a bad fd", syscall::fsync(9999), EBADF)
    })
}

fn statvfs(fd: usize) -> Result<StatVfs, String> {
    let mut st = StatVfs::default();
    syscall::fstatvfs(fd, &mut st).ctx("fstatvfs")?;
    Ok(st)
}

fn fstatvfs() -> Result<(), String> {
    scratch("svfs", |d| {
        let total = limit("tmpfs_bytes")? as u64;
        let fd = open(&p(d, "f"), O_CREAT | O_RDWR | 0o600)?;
        let r = (|| -> Result<(), String> {
            let before = statvfs(fd)?;
            expect_eq("f_bsize", before.f_bsize, 4096)?;
            expect_eq("f_blocks", before.f_blocks, total / 4096)?;
            expect_eq("f_bavail", before.f_bavail, before.f_bfree)?;
            write_all(fd, &vec![7u8; 256 * 1024]).ctx("write 256 KiB")?;
            let after = statvfs(fd)?;
            ensure!(
                after.f_bfree + 64 <= before.f_bfree,
                "free blocks {} -> {} after 256 KiB",
                before.f_bfree,
                after.f_bfree
            );
            expect_eq(
                "free = limit - used",
                after.f_bfree,
                (total - limit("tmpfs_bytes_used")? as u64) / 4096,
            )?;
            // SAFETY: the kernel checks the length before writing; the
            // buffer is a live local of the size passed.
            let short = unsafe {
                let mut st = StatVfs::default();
                syscall::syscall3(
                    syscall::number::SYS_FSTATVFS,
                    fd,
                    &mut st as *mut StatVfs as usize,
                    4,
                )
            };
            expect_errno("a short buffer", short, EINVAL)?;
            Ok(())
        })();
        close(fd);
        r?;
        let fd = open("/bin/sh", O_RDONLY)?;
        let r = statvfs(fd).map(|st| st.f_bfree);
        close(fd);
        expect_eq("file:/bin has nothing free", r?, 0)?;
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        let mut st = StatVfs::default();
        let r = expect_errno("a pipe", syscall::fstatvfs(rd, &mut st), EBADF);
        close(rd);
        close(wr);
        r
    })
}

fn fchmod() -> Result<(), String> {
    scratch("chm", |d| {
        let f = p(d, "f");
        write_file(&f, b"x")?;
        let fd = open(&f, O_RDONLY)?;
        let r = (|| -> Result<(), String> {
            syscall::fchmod(fd, 0o600).ctx("fchmod")?;
            expect_eq("mode", fstat(fd)?.st_mode, MODE_FILE | 0o600)?;
            syscall::fchmod(fd, 0o4755).ctx("fchmod with setuid")?;
            expect_eq("mode", fstat(fd)?.st_mode, MODE_FILE | 0o4755)?;
            // SAFETY: a call with plain integer arguments.
            let big = unsafe { syscall::syscall2(syscall::number::SYS_FCHMOD, fd, 0o10000) };
            expect_errno("mode bits past 0o7777", big, EINVAL)?;
            Ok(())
        })();
        close(fd);
        r?;
        let ro = open(&f, O_STAT)?;
        let r = as_user(1000, || {
            expect_errno("not the owner", syscall::fchmod(ro, 0o777), EPERM)?;
            let mine = format!("{d}/mine");
            let fd = open(&mine, O_CREAT | O_WRONLY | 0o600)?;
            let r = (|| -> Result<(), String> {
                syscall::fchmod(fd, 0o640).ctx("the owner")?;
                expect_eq("mode", fstat(fd)?.st_mode, MODE_FILE | 0o640)
            })();
            close(fd);
            r
        });
        close(ro);
        r?;
        let fd = open("/bin/sh", O_RDONLY)?;
        let r = expect_errno("file:/bin", syscall::fchmod(fd, 0o777), EROFS);
        close(fd);
        r?;
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        let r = expect_errno("a pipe", syscall::fchmod(rd, 0o777), EBADF);
        close(rd);
        close(wr);
        r
    })
}

fn fchown() -> Result<(), String> {
    scratch("cho", |d| {
        let f = p(d, "f");
        write_file(&f, b"x")?;
        let fd = open(&f, O_RDONLY)?;
        let r = (|| -> Result<(), String> {
            syscall::fchown(fd, 1000, 1000).ctx("root gives it away")?;
            let st = fstat(fd)?;
            expect_eq("owner", (st.st_uid, st.st_gid), (1000, 1000))?;
            syscall::fchown(fd, u32::MAX, 5).ctx("-1 keeps the uid")?;
            let st = fstat(fd)?;
            expect_eq("owner", (st.st_uid, st.st_gid), (1000, 5))?;
            Ok(())
        })();
        let r = r.and_then(|()| {
            as_user(1000, || {
                expect_errno("owner to another user", syscall::fchown(fd, 0, 1000), EPERM)?;
                expect_errno(
                    "owner to another group",
                    syscall::fchown(fd, u32::MAX, 7),
                    EPERM,
                )?;
                syscall::fchown(fd, u32::MAX, 1000).ctx("owner to its own group")?;
                expect_eq("gid", fstat(fd)?.st_gid, 1000)
            })
        });
        let r = r.and_then(|()| {
            as_user(2000, || {
                expect_errno("not the owner", syscall::fchown(fd, 2000, 2000), EPERM)
            })
        });
        close(fd);
        r?;
        let fd = open("/bin/sh", O_RDONLY)?;
        let r = expect_errno("file:/bin", syscall::fchown(fd, 0, 0), EROFS);
        close(fd);
        r
    })
}

fn futimens() -> Result<(), String> {
    scratch("utim", |d| {
        let f = p(d, "f");
        write_file(&f, b"x")?;
        let fd = open(&f, O_RDONLY)?;
        let r = (|| -> Result<(), String> {
            let times = [
                TimeSpec {
                    tv_sec: 100,
                    tv_nsec: 5,
                },
                TimeSpec {
                    tv_sec: 200,
                    tv_nsec: 7,
                },
            ];
            syscall::futimens(fd, &times).ctx("futimens")?;
            let st = fstat(fd)?;
            expect_eq(
                "times",
                (st.st_atime, st.st_atime_nsec, st.st_mtime, st.st_mtime_nsec),
                (100, 5, 200, 7),
            )?;
            syscall::futimens(fd, &times[1..]).ctx("access time only")?;
            let st = fstat(fd)?;
            expect_eq("times", (st.st_atime, st.st_mtime), (200, 200))?;
            syscall::futimens(fd, &[]).ctx("now")?;
            let st = fstat(fd)?;
            ensure!(
                st.st_mtime != 200 || st.st_mtime_nsec != 7,
                "mtime not set to now"
            );
            let bad = [TimeSpec {
                tv_sec: 1,
                tv_nsec: 1_000_000_000,
            }];
            expect_errno("nsec too large", syscall::futimens(fd, &bad), EINVAL)?;
            let neg = [TimeSpec {
                tv_sec: -1,
                tv_nsec: 0,
            }];
            expect_errno("negative seconds", syscall::futimens(fd, &neg), EINVAL)?;
            let three = [TimeSpec::default(); 3];
            expect_errno("three times", syscall::futimens(fd, &three), EINVAL)?;
            // SAFETY: the kernel reads `len` bytes of a live local array.
            let odd = unsafe {
                syscall::syscall3(
                    syscall::number::SYS_FUTIMENS,
                    fd,
                    three.as_ptr() as usize,
                    10,
                )
            };
            expect_errno("a length not a multiple", odd, EINVAL)?;
            syscall::fchmod(fd, 0o644).ctx("fchmod")?;
            Ok(())
        })();
        let r = r.and_then(|()| {
            as_user(1000, || {
                let t = [TimeSpec::default()];
                expect_errno("set times, not the owner", syscall::futimens(fd, &t), EPERM)?;
                expect_errno(
                    "now, not the owner and no write permission",
                    syscall::futimens(fd, &[]),
                    EACCES,
                )
            })
        });
        close(fd);
        r?;
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        let r = expect_errno("a pipe", syscall::futimens(rd, &[]), EBADF);
        close(rd);
        close(wr);
        r
    })
}

fn permissions() -> Result<(), String> {
    scratch("perm", |d| {
        let rootdir = p(d, "rootdir");
        mkdir(&rootdir, 0o755).ctx("mkdir")?;
        let f = p(&rootdir, "f");
        write_file(&f, b"root's")?;
        let fd = open(&f, O_RDONLY)?;
        let r = syscall::fchmod(fd, 0o644).ctx("chmod 644");
        close(fd);
        r?;
        mkdir(&p(&rootdir, "sub"), 0o755).ctx("mkdir sub")?;
        let private = p(d, "private");
        mkdir(&private, 0o700).ctx("mkdir private")?;
        write_file(&p(&private, "g"), b"g")?;
        let secret = p(d, "secret");
        write_file(&secret, b"s")?;
        let fd = open(&secret, O_RDONLY)?;
        let r = syscall::fchmod(fd, 0o600).ctx("chmod 600");
        close(fd);
        r?;
        as_user(1000, || {
            expect_eq("read a 0644 file", read_file(&f)?, b"root's".to_vec())?;
            expect_errno("write a 0644 file", syscall::open(&f, O_WRONLY), EACCES)?;
            expect_errno(
                "O_TRUNC a 0644 file",
                syscall::open(&f, O_RDONLY | O_TRUNC),
                EACCES,
            )?;
            expect_errno(
                "create in a 0755 dir",
                syscall::open(p(&rootdir, "new"), O_CREAT | O_WRONLY | 0o600),
                EACCES,
            )?;
            expect_errno(
                "mkdir in a 0755 dir",
                mkdir(&p(&rootdir, "d"), 0o755),
                EACCES,
            )?;
            expect_errno("unlink in a 0755 dir", syscall::unlink(&f), EACCES)?;
            expect_errno(
                "rmdir in a 0755 dir",
                syscall::rmdir(p(&rootdir, "sub")),
                EACCES,
            )?;
            expect_errno("link into a 0755 dir", link(&f, &p(&rootdir, "l")), EACCES)?;
            let fd = open(&f, O_RDONLY)?;
            let r = expect_errno(
                "frename out of a 0755 dir",
                syscall::frename(fd, p(d, "moved")),
                EACCES,
            );
            close(fd);
            r?;
            expect_errno("read a 0600 file", syscall::open(&secret, O_RDONLY), EACCES)?;
            expect_errno(
                "search a 0700 dir",
                syscall::open(p(&private, "g"), O_RDONLY),
                EACCES,
            )?;
            expect_errno("list a 0700 dir", syscall::open(&private, O_RDONLY), EACCES)?;
            expect_errno("chdir into a 0700 dir", syscall::chdir(&private), EACCES)?;
            // Where it may write (the scratch dir is 0777): its own file.
            let mine = p(d, "mine");
            write_file(&mine, b"m")?;
            expect_eq("owner", stat(&mine)?.st_uid, 1000)?;
            syscall::unlink(&mine).ctx("unlink its own file")?;
            Ok(())
        })?;
        ensure!(exists(&f), "the 0644 file is gone");
        // Root bypasses the mode bits.
        let fd = open(&secret, O_RDWR)?;
        close(fd);
        let fd = open(&p(&private, "g"), O_RDWR)?;
        close(fd);
        let fd = open(&secret, O_RDONLY)?;
        let r = syscall::fchmod(fd, 0).ctx("chmod 0");
        close(fd);
        r?;
        expect_eq("root reads a 0000 file", read_file(&secret)?, b"s".to_vec())
    })
}

fn sticky() -> Result<(), String> {
    expect_eq("/tmp's mode", mode("/tmp")?, MODE_DIR | 0o1777)?;
    let name = "/tmp/sticky-root";
    write_file(name, b"r")?;
    let fd = open(name, O_RDONLY)?;
    let r = syscall::fchmod(fd, 0o666).ctx("chmod 666");
    close(fd);
    r?;
    let r = as_user(1000, || {
        expect_errno("unlink root's file in /tmp", syscall::unlink(name), EPERM)?;
        // It may still write it (mode 0666), and make and remove its own.
        let fd = open(name, O_WRONLY)?;
        close(fd);
        let mine = "/tmp/sticky-1000";
        write_file(mine, b"m")?;
        syscall::unlink(mine).ctx("unlink its own file in /tmp")?;
        Ok(())
    });
    let cleanup = syscall::unlink(name).ctx("unlink");
    r?;
    cleanup?;
    Ok(())
}

fn umask() -> Result<(), String> {
    let old = syscall::umask(0o077).ctx("umask")?;
    expect_eq("the default mask", old, 0o022)?;
    let r = scratch("umask", |d| {
        let f = p(d, "f");
        let fd = open(&f, O_CREAT | O_WRONLY | 0o666)?;
        close(fd);
        expect_eq("file mode", mode(&f)?, MODE_FILE | 0o600)?;
        let sub = p(d, "sub");
        mkdir(&sub, 0o777).ctx("mkdir")?;
        expect_eq("dir mode", mode(&sub)?, MODE_DIR | 0o700)?;
        // The mask applies at creation only: fchmod is exact.
        let fd = open(&f, O_RDONLY)?;
        let r = syscall::fchmod(fd, 0o666).ctx("fchmod");
        close(fd);
        r?;
        expect_eq("fchmod mode", mode(&f)?, MODE_FILE | 0o666)?;
        expect_eq("umask keeps 0o777 bits", syscall::umask(0o7777), Ok(0o077))?;
        expect_eq("set", syscall::umask(0o077), Ok(0o777))?;
        Ok(())
    });
    let back = syscall::umask(old).ctx("restore umask")?;
    r?;
    expect_eq("mask before restoring", back, 0o077)
}

fn umask_fork() -> Result<(), String> {
    let old = syscall::umask(0o027).ctx("umask")?;
    let r = in_child(|| {
        expect_eq("inherited", syscall::umask(0o002), Ok(0o027))?;
        Ok(())
    });
    let now = syscall::umask(old).ctx("restore umask")?;
    r?;
    expect_eq("the child's change stays in the child", now, 0o027)
}

fn chdir_relative() -> Result<(), String> {
    let start = getcwd().ctx("getcwd")?;
    expect_eq("initial cwd", start.as_str(), "file:/")?;
    let r = scratch("cwd", |d| {
        syscall::chdir(d).ctx("chdir")?;
        expect_eq("getcwd", getcwd().ctx("getcwd")?, format!("file:{d}"))?;
        write_file("x", b"rel")?;
        expect_eq("absolute", read_file(&p(d, "x"))?, b"rel".to_vec())?;
        expect_eq("./x", read_file("./x")?, b"rel".to_vec())?;
        expect_eq("../cwd/x", read_file("../cwd/x")?, b"rel".to_vec())?;
        mkdir("sub", 0o755).ctx("mkdir sub")?;
        expect_eq("sub/../x", read_file("sub/../x")?, b"rel".to_vec())?;
        expect_eq(
            "sub/./../../cwd/x",
            read_file("sub/./../../cwd/x")?,
            b"rel".to_vec(),
        )?;
        link("x", "sub/y").ctx("link relative")?;
        let fd = open("sub/y", O_RDONLY)?;
        let r = (|| -> Result<(), String> {
            expect_eq("fpath is absolute", fpath(fd)?, format!("file:{d}/sub/y"))?;
            syscall::frename(fd, "z").ctx("frename relative")?;
            expect_eq("fpath after rename", fpath(fd)?, format!("file:{d}/z"))
        })();
        close(fd);
        r?;
        syscall::unlink("z").ctx("unlink relative")?;
        syscall::chdir("sub").ctx("chdir relative")?;
        expect_eq("getcwd", getcwd().ctx("getcwd")?, format!("file:{d}/sub"))?;
        syscall::chdir("..").ctx("chdir ..")?;
        expect_eq(
            "getcwd after ..",
            getcwd().ctx("getcwd")?,
            format!("file:{d}"),
        )?;
        syscall::rmdir("sub").ctx("rmdir relative")?;
        syscall::unlink("x").ctx("unlink relative")?;
        // .. at the root stays at the root; the init filesystem's /bin.
        syscall::chdir("../../../..").ctx("chdir past the root")?;
        expect_eq(
            "getcwd at the root",
            getcwd().ctx("getcwd")?,
            String::from("file:/"),
        )?;
        syscall::chdir("bin").ctx("chdir bin")?;
        let fd = open("test-tmpfs", O_RDONLY)?;
        let path = fpath(fd);
        close(fd);
        expect_eq(
            "a program by relative path",
            path?,
            String::from("file:/bin/test-tmpfs"),
        )?;
        syscall::chdir("/tmp").ctx("chdir /tmp")?;
        expect_eq(
            "getcwd /tmp",
            getcwd().ctx("getcwd")?,
            String::from("file:/tmp"),
        )?;
        Ok(())
    });
    let back = syscall::chdir(&start).ctx("chdir back");
    r?;
    back?;
    Ok(())
}

fn chdir_errors() -> Result<(), String> {
    scratch("cwde", |d| {
        let f = p(d, "f");
        write_file(&f, b"x")?;
        expect_errno("a file", syscall::chdir(&f), ENOTDIR)?;
        expect_errno("/bin/sh", syscall::chdir("/bin/sh"), ENOTDIR)?;
        expect_errno("missing", syscall::chdir(p(d, "nope")), ENOENT)?;
        expect_errno("missing in /bin", syscall::chdir("/bin/nope"), ENOENT)?;
        expect_errno("another scheme", syscall::chdir("null:"), ENOTDIR)?;
        expect_errno("empty", syscall::chdir(""), ENOENT)?;
        expect_eq("unchanged", getcwd().ctx("getcwd")?, String::from("file:/"))?;
        // Inherited by fork; the child's chdir stays in the child; a
        // removed working directory makes relative paths fail.
        let sub = p(d, "sub");
        mkdir(&sub, 0o755).ctx("mkdir")?;
        in_child(|| {
            expect_eq("inherited", getcwd().ctx("getcwd")?, String::from("file:/"))?;
            syscall::chdir(&sub).ctx("chdir in the child")?;
            syscall::rmdir(&sub).ctx("rmdir the cwd")?;
            expect_errno(
                "create in a removed cwd",
                syscall::open("x", O_CREAT | O_WRONLY),
                ENOENT,
            )?;
            expect_eq(
                "getcwd still names it",
                getcwd().ctx("getcwd")?,
                format!("file:{sub}"),
            )?;
            Ok(())
        })?;
        expect_eq(
            "the parent's cwd",
            getcwd().ctx("getcwd")?,
            String::from("file:/"),
        )
    })
}

static THREAD_RESULT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Thread body: chdir to /tmp and set the umask to 0o066; records 1 on
/// success, 2 on failure.
fn thread_chdir(_arg: usize) {
    let ok = syscall::chdir("/tmp").is_ok() && syscall::umask(0o066) == Ok(0o022);
    THREAD_RESULT.store(if ok { 1 } else { 2 }, core::sync::atomic::Ordering::SeqCst);
}

fn clone_fs() -> Result<(), String> {
    let start = getcwd().ctx("getcwd")?;
    expect_eq("starting umask", syscall::umask(0o022), Ok(0o022))?;
    THREAD_RESULT.store(0, core::sync::atomic::Ordering::SeqCst);
    let thread = rt::thread::spawn(16 * 1024, thread_chdir, 0).ctx("spawn a thread")?;
    let status = thread.join().ctx("join")?;
    let seen = (getcwd().ctx("getcwd")?, syscall::umask(0o022).ctx("umask")?);
    let back = syscall::chdir(&start).ctx("chdir back");
    rt::test::expect_exit("the thread", status, 0)?;
    expect_eq(
        "the thread's calls",
        THREAD_RESULT.load(core::sync::atomic::Ordering::SeqCst),
        1,
    )?;
    expect_eq(
        "the thread's cwd and umask, seen by its creator",
        seen,
        (String::from("file:/tmp"), 0o066),
    )?;
    back.map(|_| ())
}

#[allow(deprecated)]
fn chmod_path() -> Result<(), String> {
    scratch("chmp", |d| {
        let f = p(d, "f");
        write_file(&f, b"x")?;
        syscall::chmod(&f, 0o604).ctx("chmod")?;
        expect_eq("mode", mode(&f)?, MODE_FILE | 0o604)?;
        syscall::chdir(d).ctx("chdir")?;
        let r = syscall::chmod("f", 0o640).ctx("chmod relative");
        syscall::chdir("/").ctx("chdir back")?;
        r?;
        expect_eq("mode", mode(&f)?, MODE_FILE | 0o640)?;
        expect_errno("missing", syscall::chmod(p(d, "nope"), 0o600), ENOENT)?;
        expect_errno("bits past 0o7777", syscall::chmod(&f, 0o10000), EINVAL)?;
        expect_errno("/bin/sh", syscall::chmod("/bin/sh", 0o777), EROFS)?;
        expect_errno("null:", syscall::chmod("null:", 0o777), ENOENT)?;
        as_user(1000, || {
            expect_errno("not the owner", syscall::chmod(&f, 0o777), EPERM)
        })?;
        expect_eq("unchanged", mode(&f)?, MODE_FILE | 0o640)
    })
}

fn getcwd_small() -> Result<(), String> {
    let start = getcwd().ctx("getcwd")?;
    let r = (|| -> Result<(), String> {
        syscall::chdir("/tmp").ctx("chdir")?;
        let mut buf = [0u8; 4];
        expect_eq("count", syscall::getcwd(&mut buf), Ok(4))?;
        expect_eq("a prefix", &buf, b"file")?;
        let mut exact = [0u8; 9];
        expect_eq("exact fit", syscall::getcwd(&mut exact), Ok(9))?;
        expect_eq("all of it", &exact, b"file:/tmp")?;
        let mut big = [0xAAu8; 16];
        expect_eq("room to spare", syscall::getcwd(&mut big), Ok(9))?;
        expect_eq("untouched after", big[9], 0xAA)?;
        expect_eq("empty buffer", syscall::getcwd(&mut []), Ok(0))?;
        Ok(())
    })();
    let back = syscall::chdir(&start).ctx("chdir back");
    r?;
    back?;
    Ok(())
}

fn other_schemes() -> Result<(), String> {
    expect_errno("unlink /bin/sh", syscall::unlink("/bin/sh"), EROFS)?;
    expect_errno("rmdir /bin", syscall::rmdir("/bin"), EROFS)?;
    expect_errno(
        "create in /bin",
        syscall::open("/bin/new", O_CREAT | O_WRONLY),
        EROFS,
    )?;
    expect_errno("mkdir /x", mkdir("/x", 0o755), EROFS)?;
    expect_errno("write /bin/sh", syscall::open("/bin/sh", O_WRONLY), EROFS)?;
    expect_errno("unlink null:", syscall::unlink("null:"), ENOENT)?;
    expect_errno("rmdir sys:", syscall::rmdir("sys:memory"), ENOENT)?;
    expect_errno("unknown scheme", syscall::unlink("nosuch:x"), ENOENT)?;
    expect_eq("/bin is a dir", mode("/bin")? & MODE_TYPE, MODE_DIR)?;
    let fd = open("/bin/sh", O_RDONLY)?;
    let r = (|| -> Result<(), String> {
        expect_errno("fchown /bin/sh", syscall::fchown(fd, 1, 1), EROFS)?;
        expect_errno("futimens /bin/sh", syscall::futimens(fd, &[]), EROFS)?;
        Ok(())
    })();
    close(fd);
    r
}

fn bad_pointers() -> Result<(), String> {
    // SAFETY: the kernel must refuse these addresses without touching them.
    unsafe {
        use syscall::number::*;
        use syscall::{syscall1, syscall2, syscall3, syscall4};
        expect_errno("unlink", syscall2(SYS_UNLINK, KERNEL_ADDR, 4), EFAULT)?;
        expect_errno("rmdir", syscall2(SYS_RMDIR, KERNEL_ADDR, 4), EFAULT)?;
        expect_errno("chdir", syscall2(SYS_CHDIR, KERNEL_ADDR, 4), EFAULT)?;
        expect_errno("getcwd", syscall2(SYS_GETCWD, KERNEL_ADDR, 4), EFAULT)?;
        let path = "/tmp/x";
        expect_errno(
            "link old",
            syscall4(SYS_LINK, KERNEL_ADDR, 4, path.as_ptr() as usize, path.len()),
            EFAULT,
        )?;
        expect_errno(
            "link new",
            syscall4(SYS_LINK, path.as_ptr() as usize, path.len(), KERNEL_ADDR, 4),
            EFAULT,
        )?;
        expect_errno(
            "unlink, long path",
            syscall2(SYS_UNLINK, path.as_ptr() as usize, 5000),
            ENAMETOOLONG,
        )?;
        let fd = open("/tmp", O_RDONLY)?;
        let r = (|| -> Result<(), String> {
            expect_errno(
                "fstatvfs",
                syscall3(SYS_FSTATVFS, fd, KERNEL_ADDR, 64),
                EFAULT,
            )?;
            expect_errno(
                "futimens",
                syscall3(SYS_FUTIMENS, fd, KERNEL_ADDR, 16),
                EFAULT,
            )?;
            expect_errno("frename", syscall3(SYS_FRENAME, fd, KERNEL_ADDR, 4), EFAULT)?;
            expect_errno("fsync of a bad fd", syscall1(SYS_FSYNC, 12345), EBADF)?;
            Ok(())
        })();
        close(fd);
        r
    }
}

fn enospc_bytes() -> Result<(), String> {
    let total = limit("tmpfs_bytes")?;
    scratch("nospc", |d| {
        let f = p(d, "big");
        let fd = open(&f, O_CREAT | O_RDWR | 0o600)?;
        let r = (|| -> Result<(), String> {
            let chunk = vec![0x5Au8; 64 * 1024];
            let mut written = 0usize;
            let last = loop {
                match syscall::write(fd, &chunk) {
                    Ok(n) if n > 0 => written += n,
                    other => break other,
                }
                ensure!(written <= total, "wrote {written} of a {total}-byte limit");
            };
            expect_errno("the write at the limit", last, ENOSPC)?;
            let used = limit("tmpfs_bytes_used")?;
            expect_eq("the limit is full", used, total)?;
            ensure!(
                written + 64 * 1024 >= total,
                "only {written} bytes written of {total}"
            );
            let size = fstat(fd)?.st_size;
            expect_eq("size = written", size, written as u64)?;
            // Nothing changes at the limit.
            expect_errno("one more byte", syscall::write(fd, b"x"), ENOSPC)?;
            expect_errno(
                "ftruncate larger",
                syscall::ftruncate(fd, written + 4096),
                ENOSPC,
            )?;
            let other = open(&p(d, "other"), O_CREAT | O_WRONLY | 0o600)?;
            let r = expect_errno(
                "another file's first byte",
                syscall::write(other, b"y"),
                ENOSPC,
            );
            close(other);
            r?;
            expect_eq("size unchanged", fstat(fd)?.st_size, size)?;
            expect_eq("use unchanged", limit("tmpfs_bytes_used")?, used)?;
            expect_eq("fstatvfs: nothing free", statvfs(fd)?.f_bfree, 0)?;
            // A write inside the file still works (no growth).
            syscall::lseek(fd, 0, SEEK_SET).ctx("rewind")?;
            expect_eq("overwrite", syscall::write(fd, b"abc"), Ok(3))?;
            // Room again after shrinking.
            syscall::ftruncate(fd, 1024).ctx("shrink")?;
            ensure!(
                limit("tmpfs_bytes_used")? < used,
                "shrinking gave nothing back"
            );
            let fd2 = open(&p(d, "other"), O_CREAT | O_WRONLY | 0o600)?;
            let r = expect_eq("write after shrinking", syscall::write(fd2, b"y"), Ok(1));
            close(fd2);
            r
        })();
        close(fd);
        r
    })?;
    expect_eq("all bytes back", limit("tmpfs_bytes_used")?, 0)
}

fn enospc_nodes() -> Result<(), String> {
    let max = limit("tmpfs_nodes")?;
    scratch("nodes", |d| {
        let base = limit("tmpfs_nodes_used")?;
        let mut made = base;
        let last = loop {
            let name = p(d, &format!("n{made}"));
            match syscall::open(&name, O_CREAT | O_WRONLY | 0o600) {
                Ok(fd) => {
                    close(fd);
                    made += 1;
                }
                Err(e) => break e,
            }
            ensure!(made <= max, "made {made} nodes of {max}");
        };
        expect_eq("the error at the limit", last.errno, ENOSPC)?;
        expect_eq("nodes at the limit", made, max)?;
        expect_eq("nodes in sys:limits", limit("tmpfs_nodes_used")?, max)?;
        let entries = read_dir(d).ctx("list")?.len();
        expect_errno("mkdir at the limit", mkdir(&p(d, "dir"), 0o755), ENOSPC)?;
        expect_eq("nothing added", read_dir(d).ctx("list")?.len(), entries)?;
        // A link is a name, not a node.
        link(&p(d, &format!("n{base}")), &p(d, "alias")).ctx("link at the node limit")?;
        Ok(())
    })?;
    expect_eq("all nodes back", limit("tmpfs_nodes_used")?, 0)
}

/// Files, directories, links, renames and data, then everything deleted
/// (one file unlinked while still open, closed last).
fn many_files_round() -> Result<(), String> {
    let d = "/tmp/many";
    mkdir(d, 0o755).ctx("mkdir")?;
    let kept = (|| -> Result<usize, String> {
        for i in 0..8 {
            let sub = p(d, &format!("d{i}"));
            mkdir(&sub, 0o755).ctx("mkdir")?;
            for j in 0..8 {
                write_file(&p(&sub, &format!("f{j}")), &vec![i as u8; 1000 * (j + 1)])?;
            }
            link(&p(&sub, "f0"), &p(d, &format!("l{i}"))).ctx("link")?;
        }
        let fd = open(&p(d, "d0/f7"), O_RDWR)?;
        let r = (|| -> Result<(), String> {
            syscall::frename(fd, p(d, "renamed")).ctx("frename")?;
            syscall::ftruncate(fd, 100_000).ctx("ftruncate")?;
            syscall::unlink(p(d, "renamed")).ctx("unlink")?;
            Ok(())
        })();
        if let Err(e) = r {
            close(fd);
            return Err(e);
        }
        Ok(fd)
    })();
    // Everything goes while one file is still open.
    let cleanup = remove_tree(d);
    let fd = kept?;
    let size = fstat(fd).map(|st| st.st_size);
    close(fd);
    cleanup?;
    expect_eq("unlinked file still open", size?, 100_000)
}
