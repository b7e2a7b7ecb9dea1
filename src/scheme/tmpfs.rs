//! `/tmp`: the writable in-memory file system (`file:/tmp/...`). Owns every
//! node (regular files and directories), the byte and node accounting
//! against its limits, path lookup inside the mount, the permission checks
//! against the caller's credentials, and the handles open on its nodes.
//!
//! Nodes live in one table keyed by inode number; a directory maps names
//! to inode numbers. A node is freed when it has no name left and no open
//! handle (an unlinked file stays readable through its handles until the
//! last one closes). File contents are counted by their allocated capacity,
//! so the limit is the memory the files really hold.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::sync::{class, Mutex};
use syscall::data::{Stat, StatVfs};
use syscall::error::*;
use syscall::flag::{
    EventFlags, MODE_DIR, MODE_FILE, O_ACCMODE, O_CREAT, O_DIRECTORY, O_EXCL, O_RDONLY, O_TRUNC,
    O_WRONLY,
};

use super::misc::seek_in;
use super::{Caller, Handle, Scheme};
use crate::context::Creds;

/// Where the file system is mounted inside `file:`.
pub const MOUNT: &str = "/tmp";

/// Most nodes (files and directories, the mount's root not counted, unlinked
/// but still open ones counted) that may exist.
pub const MAX_NODES: usize = 1024;

/// Longest name of one directory entry.
pub const MAX_NAME: usize = 255;

/// Block size reported by `fstat`/`fstatvfs`.
const BLOCK: u64 = 4096;

/// Growth of a file's buffer beyond what a write needs, at most (so that
/// appending is not quadratic, and a file holds little unused memory).
const SLACK: usize = 64 * 1024;

/// `st_dev` of every node.
const DEVICE: u64 = 0x746d_7066;

const ROOT: u64 = 1;

/// Most bytes file contents may hold in all: an eighth of the kernel heap
/// (2 MiB with 128 MiB of RAM, 4 MiB with 512 MiB).
pub fn max_bytes() -> usize {
    crate::memory::heap::size() / 8
}

/// (content bytes held, nodes) now.
pub fn usage() -> (usize, usize) {
    with_fs(|fs| (fs.bytes, fs.nodes.len() - 1))
}

enum Kind {
    File(Vec<u8>),
    Dir(BTreeMap<String, u64>),
}

struct Node {
    kind: Kind,
    /// Permission bits (`0o7777`).
    perm: u16,
    uid: u32,
    gid: u32,
    /// Directory entries naming it.
    links: u32,
    /// Handles open on it.
    opens: u32,
    /// Times in nanoseconds (the kernel's clock).
    atime: u64,
    mtime: u64,
    ctime: u64,
}

impl Node {
    fn new(kind: Kind, perm: u16, creds: &Creds) -> Node {
        let now = crate::time::monotonic_ns();
        Node {
            kind,
            perm,
            uid: creds.euid,
            gid: creds.egid,
            links: 1,
            opens: 0,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    fn entries(&self) -> Result<&BTreeMap<String, u64>> {
        match &self.kind {
            Kind::Dir(e) => Ok(e),
            Kind::File(_) => Err(Error::new(ENOTDIR)),
        }
    }

    fn entries_mut(&mut self) -> Result<&mut BTreeMap<String, u64>> {
        match &mut self.kind {
            Kind::Dir(e) => Ok(e),
            Kind::File(_) => Err(Error::new(ENOTDIR)),
        }
    }

    /// Whether `creds` may do `want` (`R`, `W`, `X` bits) to this node:
    /// the owner's, group's or others' bits; root may do anything.
    fn allows(&self, creds: &Creds, want: u16) -> bool {
        if creds.euid == 0 {
            return true;
        }
        let bits = if creds.euid == self.uid {
            self.perm >> 6
        } else if creds.egid == self.gid {
            self.perm >> 3
        } else {
            self.perm
        };
        bits & want == want
    }

    fn check(&self, creds: &Creds, want: u16) -> Result<()> {
        if self.allows(creds, want) {
            Ok(())
        } else {
            Err(Error::new(EACCES))
        }
    }

    fn touch_change(&mut self) {
        self.ctime = crate::time::monotonic_ns();
    }

    fn touch_modify(&mut self) {
        let now = crate::time::monotonic_ns();
        self.mtime = now;
        self.ctime = now;
    }
}

const R: u16 = 4;
const W: u16 = 2;
const X: u16 = 1;
const STICKY: u16 = 0o1000;

struct Fs {
    nodes: BTreeMap<u64, Node>,
    next_ino: u64,
    /// Capacity of every file's contents.
    bytes: usize,
}

static FS: Mutex<Option<Fs>, { class::TMPFS_NODES }> = Mutex::new(None);

fn with_fs<T>(f: impl FnOnce(&mut Fs) -> T) -> T {
    let mut guard = FS.lock();
    let fs = guard.get_or_insert_with(|| {
        // The mount's root: everyone may create, only owners remove (as
        // Unix's /tmp, mode 1777).
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node::new(Kind::Dir(BTreeMap::new()), 0o1777, &Creds::default()),
        );
        Fs {
            nodes,
            next_ino: ROOT + 1,
            bytes: 0,
        }
    });
    f(fs)
}

/// The components of a path inside the mount (`""` is its root). The path
/// is normalised already (no `.`, `..` or empty components).
fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

/// `path` with `.` and `..` resolved and empty components dropped, as an
/// absolute path (`..` at the root stays at the root).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::from("/");
    out.push_str(&parts.join("/"));
    out
}

/// The part of a normalised `file:` path inside the mount (`""` for its
/// root, `"a/b"` below it), or None when the path is elsewhere.
pub fn inside(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(MOUNT)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(Error::new(ENAMETOOLONG));
    }
    Ok(())
}

fn copy_name(name: &str) -> Result<String> {
    let mut s = String::new();
    s.try_reserve_exact(name.len())
        .map_err(|_| Error::new(ENOMEM))?;
    s.push_str(name);
    Ok(s)
}

impl Fs {
    fn node(&self, ino: u64) -> &Node {
        self.nodes
            .get(&ino)
            .expect("a linked inode is in the table")
    }

    fn node_mut(&mut self, ino: u64) -> &mut Node {
        self.nodes
            .get_mut(&ino)
            .expect("a linked inode is in the table")
    }

    /// The node `comps` names, searching each directory on the way.
    fn lookup(&self, comps: &[&str], creds: &Creds) -> Result<u64> {
        let mut ino = ROOT;
        for c in comps {
            let dir = self.node(ino);
            let entries = dir.entries()?;
            dir.check(creds, X)?;
            ino = *entries.get(*c).ok_or(Error::new(ENOENT))?;
        }
        Ok(ino)
    }

    /// The directory holding the last component of `comps` (searchable
    /// by `creds`), and that name. `EBUSY` for the mount's root.
    fn parent<'p>(&self, comps: &[&'p str], creds: &Creds) -> Result<(u64, &'p str)> {
        let (&name, dirs) = comps.split_last().ok_or(Error::new(EBUSY))?;
        check_name(name)?;
        let parent = self.lookup(dirs, creds)?;
        let dir = self.node(parent);
        dir.entries()?;
        dir.check(creds, X)?;
        Ok((parent, name))
    }

    /// Whether `creds` may remove or replace the entry for `child` in
    /// `dir`: write and search on the directory, and with the sticky bit
    /// only the owner of either (or root).
    fn may_unlink(&self, dir: u64, child: u64, creds: &Creds) -> Result<()> {
        let d = self.node(dir);
        d.check(creds, W | X)?;
        if d.perm & STICKY != 0
            && creds.euid != 0
            && creds.euid != d.uid
            && creds.euid != self.node(child).uid
        {
            return Err(Error::new(EPERM));
        }
        Ok(())
    }

    /// Drops one name of `ino`; frees it if nothing refers to it any more.
    fn unlinked(&mut self, ino: u64) {
        let node = self.node_mut(ino);
        node.links -= 1;
        node.touch_change();
        self.release_if_unused(ino);
    }

    fn release_if_unused(&mut self, ino: u64) {
        let node = self.node(ino);
        if node.links == 0 && node.opens == 0 && ino != ROOT {
            if let Some(node) = self.nodes.remove(&ino) {
                if let Kind::File(data) = &node.kind {
                    self.bytes -= data.capacity();
                }
            }
        }
    }

    /// Removes `name` from directory `dir`, giving the map's memory back
    /// when it becomes empty.
    fn remove_entry(&mut self, dir: u64, name: &str) {
        let d = self.node_mut(dir);
        if let Ok(entries) = d.entries_mut() {
            entries.remove(name);
            if entries.is_empty() {
                *entries = BTreeMap::new();
            }
        }
        d.touch_modify();
    }

    /// Makes room for `len` bytes in file `ino` (growing its buffer with
    /// some slack when the limit allows), counting the capacity.
    fn reserve(&mut self, ino: u64, len: usize) -> Result<()> {
        let limit = max_bytes();
        let bytes = self.bytes;
        let Kind::File(data) = &mut self.node_mut(ino).kind else {
            return Err(Error::new(EISDIR));
        };
        let cap = data.capacity();
        if len <= cap {
            return Ok(());
        }
        let others = bytes - cap;
        if others.checked_add(len).is_none_or(|t| t > limit) {
            return Err(Error::new(ENOSPC));
        }
        let generous = len.saturating_add(len.min(SLACK)).min(limit - others);
        crate::memory::heap::admit(generous)?;
        let extra = generous - data.len();
        if data.try_reserve_exact(extra).is_err() {
            // Fragmentation: try exactly what is needed.
            data.try_reserve_exact(len - data.len())
                .map_err(|_| Error::new(ENOMEM))?;
        }
        let new_cap = data.capacity();
        self.bytes = others + new_cap;
        Ok(())
    }

    /// Sets the length of file `ino` (zeros past the old end); shrinking
    /// gives the memory back.
    fn set_len(&mut self, ino: u64, len: usize) -> Result<()> {
        let old = match &self.node(ino).kind {
            Kind::File(data) => data.len(),
            Kind::Dir(_) => return Err(Error::new(EISDIR)),
        };
        if len > old {
            self.reserve(ino, len)?;
        }
        let node = self.node_mut(ino);
        let Kind::File(data) = &mut node.kind else {
            return Err(Error::new(EISDIR));
        };
        let cap = data.capacity();
        if len == 0 {
            *data = Vec::new();
        } else if len < old {
            data.truncate(len);
            // A smaller buffer when one can be had (else keep this one:
            // its capacity stays counted).
            let mut smaller = Vec::new();
            if len + SLACK < cap && smaller.try_reserve_exact(len).is_ok() {
                smaller.extend_from_slice(data);
                *data = smaller;
            }
        } else {
            data.resize(len, 0);
        }
        let new_cap = data.capacity();
        node.touch_modify();
        self.bytes = self.bytes - cap + new_cap;
        Ok(())
    }

    fn new_node(&mut self, node: Node) -> Result<u64> {
        if self.nodes.len() > MAX_NODES {
            return Err(Error::new(ENOSPC));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        Ok(ino)
    }

    /// `open` inside the mount; returns the node, opened (its count of
    /// handles raised).
    fn open(&mut self, path: &str, flags: usize, creds: &Creds) -> Result<u64> {
        let comps = components(path);
        let access = flags & O_ACCMODE;
        let reading = access & O_RDONLY != 0;
        let writing = access & O_WRONLY != 0;
        let existing = if comps.is_empty() {
            Some(ROOT)
        } else {
            let (dir, name) = self.parent(&comps, creds)?;
            self.node(dir).entries()?.get(name).copied()
        };
        let ino = match existing {
            Some(ino) => {
                if flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
                    return Err(Error::new(EEXIST));
                }
                let node = self.node(ino);
                if node.is_dir() {
                    if writing
                        || flags & O_TRUNC != 0
                        || (flags & O_CREAT != 0 && flags & O_DIRECTORY == 0)
                    {
                        return Err(Error::new(EISDIR));
                    }
                } else if flags & O_DIRECTORY != 0 {
                    return Err(Error::new(ENOTDIR));
                }
                let mut want = 0;
                if reading {
                    want |= R;
                }
                if writing || flags & O_TRUNC != 0 {
                    want |= W;
                }
                node.check(creds, want)?;
                if flags & O_TRUNC != 0 {
                    self.set_len(ino, 0)?;
                }
                ino
            }
            None => {
                if flags & O_CREAT == 0 {
                    return Err(Error::new(ENOENT));
                }
                let (dir, name) = self.parent(&comps, creds)?;
                self.node(dir).check(creds, W | X)?;
                let name = copy_name(name)?;
                let perm = (flags & 0o7777) as u16;
                let kind = if flags & O_DIRECTORY != 0 {
                    Kind::Dir(BTreeMap::new())
                } else {
                    Kind::File(Vec::new())
                };
                let ino = self.new_node(Node::new(kind, perm, creds))?;
                let d = self.node_mut(dir);
                d.entries_mut()?.insert(name, ino);
                d.touch_modify();
                ino
            }
        };
        self.node_mut(ino).opens += 1;
        Ok(ino)
    }
}

/// The `file:` scheme's part below [`MOUNT`]; `path` is inside the mount.
pub struct TmpFs;

impl Scheme for TmpFs {
    fn open(&self, path: &str, flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        let mut own_path = String::new();
        own_path
            .try_reserve_exact(path.len())
            .map_err(|_| Error::new(ENOMEM))?;
        own_path.push_str(path);
        let ino = with_fs(|fs| fs.open(path, flags, &caller.creds))?;
        Ok(Arc::new(TmpHandle {
            ino,
            path: Mutex::new(own_path),
        }))
    }
}

/// `unlink`: removes a name of a file (`EISDIR` for a directory).
pub fn unlink(path: &str, creds: &Creds) -> Result<()> {
    with_fs(|fs| {
        let comps = components(path);
        let (dir, name) = fs.parent(&comps, creds)?;
        let ino = *fs
            .node(dir)
            .entries()?
            .get(name)
            .ok_or(Error::new(ENOENT))?;
        if fs.node(ino).is_dir() {
            return Err(Error::new(EISDIR));
        }
        fs.may_unlink(dir, ino, creds)?;
        fs.remove_entry(dir, name);
        fs.unlinked(ino);
        Ok(())
    })
}

/// `rmdir`: removes an empty directory.
pub fn rmdir(path: &str, creds: &Creds) -> Result<()> {
    with_fs(|fs| {
        let comps = components(path);
        let (dir, name) = fs.parent(&comps, creds)?;
        let ino = *fs
            .node(dir)
            .entries()?
            .get(name)
            .ok_or(Error::new(ENOENT))?;
        if !fs.node(ino).entries()?.is_empty() {
            return Err(Error::new(ENOTEMPTY));
        }
        fs.may_unlink(dir, ino, creds)?;
        fs.remove_entry(dir, name);
        fs.unlinked(ino);
        Ok(())
    })
}

/// `link`: a new name `new` for the file `old`.
pub fn link(old: &str, new: &str, creds: &Creds) -> Result<()> {
    with_fs(|fs| {
        let ino = fs.lookup(&components(old), creds)?;
        if fs.node(ino).is_dir() {
            return Err(Error::new(EPERM));
        }
        let comps = components(new);
        let (dir, name) = fs.parent(&comps, creds)?;
        if fs.node(dir).entries()?.contains_key(name) {
            return Err(Error::new(EEXIST));
        }
        fs.node(dir).check(creds, W | X)?;
        let name = copy_name(name)?;
        let d = fs.node_mut(dir);
        d.entries_mut()?.insert(name, ino);
        d.touch_modify();
        let node = fs.node_mut(ino);
        node.links += 1;
        node.touch_change();
        Ok(())
    })
}

/// Checks that `path` is a directory `creds` may search (for `chdir`).
pub fn check_dir(path: &str, creds: &Creds) -> Result<()> {
    with_fs(|fs| {
        let ino = fs.lookup(&components(path), creds)?;
        let node = fs.node(ino);
        node.entries()?;
        node.check(creds, X)
    })
}

/// An open node. `path` is its name inside the mount when it was opened
/// (or renamed through this handle): for `fpath` and `frename`.
struct TmpHandle {
    ino: u64,
    path: Mutex<String, { class::OBJECT }>,
}

impl Drop for TmpHandle {
    fn drop(&mut self) {
        with_fs(|fs| {
            fs.node_mut(self.ino).opens -= 1;
            fs.release_if_unused(self.ino);
        });
    }
}

/// Copies the part of a directory listing (names, each but the last
/// followed by `\n`) at `*pos` into `buf`.
fn read_listing(entries: &BTreeMap<String, u64>, buf: &mut [u8], pos: &mut u64) -> usize {
    let mut offset = 0u64;
    let mut done = 0;
    for (i, name) in entries.keys().enumerate() {
        let sep: &[u8] = if i == 0 { b"" } else { b"\n" };
        for part in [sep, name.as_bytes()] {
            let end = offset + part.len() as u64;
            if end > *pos && done < buf.len() {
                let from = (*pos - offset) as usize;
                let src = part.get(from..).unwrap_or_default();
                let dst = buf.get_mut(done..).unwrap_or_default();
                let n = src.len().min(dst.len());
                if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
                    d.copy_from_slice(s);
                }
                done += n;
                *pos += n as u64;
            }
            offset = end;
        }
    }
    done
}

fn listing_len(entries: &BTreeMap<String, u64>) -> u64 {
    let names: usize = entries.keys().map(|n| n.len()).sum();
    (names + entries.len().saturating_sub(1)) as u64
}

impl Handle for TmpHandle {
    fn read(&self, buf: &mut [u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        with_fs(|fs| {
            let node = fs.node_mut(self.ino);
            node.atime = crate::time::monotonic_ns();
            match &node.kind {
                Kind::File(data) => Ok(super::misc::read_at(data, buf, pos)),
                Kind::Dir(entries) => Ok(read_listing(entries, buf, pos)),
            }
        })
    }

    fn write(&self, buf: &[u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        with_fs(|fs| {
            let len = match &fs.node(self.ino).kind {
                Kind::File(data) => data.len(),
                Kind::Dir(_) => return Err(Error::new(EISDIR)),
            };
            if buf.is_empty() {
                return Ok(0);
            }
            let start = usize::try_from(*pos).map_err(|_| Error::new(EFBIG))?;
            let mut n = buf.len();
            let mut end = start.checked_add(n).ok_or(Error::new(EFBIG))?;
            if end > len {
                if let Err(e) = fs.reserve(self.ino, end) {
                    if e.errno != ENOSPC {
                        return Err(e);
                    }
                    // Write what fits under the limit (a short count);
                    // ENOSPC when nothing does.
                    let room = max_bytes().saturating_sub(fs.bytes - fs_capacity(fs, self.ino));
                    if room <= start {
                        return Err(e);
                    }
                    end = room;
                    n = end - start;
                    fs.reserve(self.ino, end)?;
                }
            }
            let node = fs.node_mut(self.ino);
            let Kind::File(data) = &mut node.kind else {
                return Err(Error::new(EISDIR));
            };
            if end > data.len() {
                data.resize(end, 0);
            }
            match (data.get_mut(start..end), buf.get(..n)) {
                (Some(dst), Some(src)) => dst.copy_from_slice(src),
                // The reservation above made `data` at least `end` long
                // and `n` is at most `buf.len()`.
                _ => return Err(Error::new(EIO)),
            }
            node.touch_modify();
            *pos = end as u64;
            Ok(n)
        })
    }

    fn append(&self, buf: &[u8], pos: &mut u64, nonblock: bool) -> Result<usize> {
        // The kernel runs one call at a time: nothing changes the length
        // between this and the write.
        *pos = with_fs(|fs| match &fs.node(self.ino).kind {
            Kind::File(data) => Ok(data.len() as u64),
            Kind::Dir(_) => Err(Error::new(EISDIR)),
        })?;
        self.write(buf, pos, nonblock)
    }

    fn seek(&self, pos: u64, offset: isize, whence: usize) -> Result<u64> {
        let size = with_fs(|fs| match &fs.node(self.ino).kind {
            Kind::File(data) => data.len() as u64,
            Kind::Dir(entries) => listing_len(entries),
        });
        seek_in(size, pos, offset, whence)
    }

    fn path(&self) -> String {
        let path = self.path.lock();
        if path.is_empty() {
            String::from("file:/tmp")
        } else {
            format!("file:/tmp/{}", *path)
        }
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        with_fs(|fs| {
            let node = fs.node(self.ino);
            let (kind, size, nlink) = match &node.kind {
                Kind::File(data) => (MODE_FILE, data.len() as u64, node.links),
                Kind::Dir(entries) => {
                    let subdirs = entries.values().filter(|i| fs.node(**i).is_dir()).count();
                    (MODE_DIR, listing_len(entries), 2 + subdirs as u32)
                }
            };
            *stat = Stat {
                st_dev: DEVICE,
                st_ino: self.ino,
                st_mode: kind | node.perm,
                st_nlink: if node.links == 0 { 0 } else { nlink },
                st_uid: node.uid,
                st_gid: node.gid,
                st_size: size,
                st_blksize: BLOCK as u32,
                st_blocks: size.div_ceil(512),
                st_mtime: node.mtime / 1_000_000_000,
                st_mtime_nsec: (node.mtime % 1_000_000_000) as u32,
                st_atime: node.atime / 1_000_000_000,
                st_atime_nsec: (node.atime % 1_000_000_000) as u32,
                st_ctime: node.ctime / 1_000_000_000,
                st_ctime_nsec: (node.ctime % 1_000_000_000) as u32,
            };
            Ok(())
        })
    }

    fn readiness(&self) -> EventFlags {
        EventFlags::EVENT_READ | EventFlags::EVENT_WRITE
    }

    fn truncate(&self, len: u64) -> Result<()> {
        let len = usize::try_from(len).map_err(|_| Error::new(EFBIG))?;
        with_fs(|fs| fs.set_len(self.ino, len))
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn statvfs(&self, st: &mut StatVfs) -> Result<()> {
        let used = with_fs(|fs| fs.bytes) as u64;
        let total = max_bytes() as u64;
        *st = StatVfs {
            f_bsize: BLOCK as u32,
            f_blocks: total / BLOCK,
            f_bfree: total.saturating_sub(used) / BLOCK,
            f_bavail: total.saturating_sub(used) / BLOCK,
        };
        Ok(())
    }

    fn chmod(&self, mode: u16, caller: Caller) -> Result<()> {
        with_fs(|fs| {
            let node = fs.node_mut(self.ino);
            let creds = caller.creds;
            if creds.euid != 0 && creds.euid != node.uid {
                return Err(Error::new(EPERM));
            }
            node.perm = mode & 0o7777;
            node.touch_change();
            Ok(())
        })
    }

    fn chown(&self, uid: u32, gid: u32, caller: Caller) -> Result<()> {
        with_fs(|fs| {
            let node = fs.node_mut(self.ino);
            let creds = caller.creds;
            let new_uid = if uid == u32::MAX { node.uid } else { uid };
            let new_gid = if gid == u32::MAX { node.gid } else { gid };
            if creds.euid != 0 {
                // The owner may only give the file to its own group.
                if creds.euid != node.uid
                    || new_uid != node.uid
                    || (new_gid != node.gid && new_gid != creds.egid)
                {
                    return Err(Error::new(EPERM));
                }
            }
            node.uid = new_uid;
            node.gid = new_gid;
            node.touch_change();
            Ok(())
        })
    }

    fn utimens(&self, times: &[(u64, u32)], caller: Caller) -> Result<()> {
        with_fs(|fs| {
            let node = fs.node_mut(self.ino);
            let creds = caller.creds;
            let owner = creds.euid == 0 || creds.euid == node.uid;
            if times.is_empty() {
                // "Now": the owner, or anyone who may write it.
                if !owner && !node.allows(&creds, W) {
                    return Err(Error::new(EACCES));
                }
                node.touch_modify();
                node.atime = node.mtime;
                return Ok(());
            }
            if !owner {
                return Err(Error::new(EPERM));
            }
            let ns = |(s, n): (u64, u32)| -> Result<u64> {
                s.checked_mul(1_000_000_000)
                    .and_then(|t| t.checked_add(n as u64))
                    .ok_or(Error::new(EINVAL))
            };
            let atime = match times.first() {
                Some(&t) => ns(t)?,
                None => return Err(Error::new(EINVAL)),
            };
            let mtime = match times.get(1) {
                Some(&t) => Some(ns(t)?),
                None => None,
            };
            node.atime = atime;
            if let Some(m) = mtime {
                node.mtime = m;
            }
            node.touch_change();
            Ok(())
        })
    }

    fn rename(&self, to: &str, caller: Caller) -> Result<()> {
        let super::Route::Tmp(new_path) = super::route(to)? else {
            return Err(Error::new(EXDEV));
        };
        let mut path = self.path.lock();
        with_fs(|fs| fs.rename(self.ino, &path, &new_path, &caller.creds))?;
        *path = new_path;
        Ok(())
    }
}

/// Capacity of file `ino`'s buffer (0 for a directory).
fn fs_capacity(fs: &Fs, ino: u64) -> usize {
    match &fs.node(ino).kind {
        Kind::File(data) => data.capacity(),
        Kind::Dir(_) => 0,
    }
}

impl Fs {
    /// `frename`: moves the name `from` (which must still name `ino`) to
    /// `to`, replacing a file there or an empty directory.
    fn rename(&mut self, ino: u64, from: &str, to: &str, creds: &Creds) -> Result<()> {
        let src = components(from);
        let dst = components(to);
        let (sdir, sname) = self.parent(&src, creds)?;
        if self.node(sdir).entries()?.get(sname) != Some(&ino) {
            return Err(Error::new(ENOENT));
        }
        let (ddir, dname) = self.parent(&dst, creds)?;
        let is_dir = self.node(ino).is_dir();
        if is_dir && dst.len() > src.len() && dst.starts_with(&src) {
            return Err(Error::new(EINVAL));
        }
        self.may_unlink(sdir, ino, creds)?;
        self.node(ddir).check(creds, W | X)?;
        let replaced = self.node(ddir).entries()?.get(dname).copied();
        if let Some(old) = replaced {
            if old == ino {
                return Ok(());
            }
            match (is_dir, self.node(old).is_dir()) {
                (false, true) => return Err(Error::new(EISDIR)),
                (true, false) => return Err(Error::new(ENOTDIR)),
                (true, true) if !self.node(old).entries()?.is_empty() => {
                    return Err(Error::new(ENOTEMPTY))
                }
                _ => {}
            }
            self.may_unlink(ddir, old, creds)?;
        }
        let name = copy_name(dname)?;
        if let Some(old) = replaced {
            self.remove_entry(ddir, dname);
            self.unlinked(old);
        }
        self.remove_entry(sdir, sname);
        let d = self.node_mut(ddir);
        d.entries_mut()?.insert(name, ino);
        d.touch_modify();
        self.node_mut(ino).touch_change();
        Ok(())
    }
}
