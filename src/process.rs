//! Process life: starting pid 1, `clone`, `fexec` (with the initial user
//! stack), `exit`, and `waitpid` with its wait statuses.
//!
//! Wait statuses follow the encoding `redox_syscall`'s helpers decode:
//! exit code `c` is `(c & 0xff) << 8`, death by signal `s` is `s`, a
//! job-control stop by `s` is `(s << 8) | 0x7f`.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::sync::Mutex;
use syscall::error::*;
use syscall::flag::{CloneFlags, WaitFlags, SIGCHLD};

use crate::arch::gdt::{USER_CS, USER_SS};
use crate::arch::switch::{read_user_bases, FxArea};
use crate::arch::trap_frame::TrapFrame;
use crate::context::signal::SignalActions;
use crate::context::wait::CHILD_EVENTS;
use crate::context::{self, Creds, Pid, Spawn, State};
use crate::memory::paging::{AddressSpace, UserAccess};
use crate::memory::PAGE_SIZE;
use crate::sched;
use crate::scheme::{self, FileTable};

/// Top of the initial user stack (one guard page below the end of user
/// space stays unmapped).
pub const STACK_TOP: u64 = 0x0000_7FFF_FFFF_F000;
pub const STACK_SIZE: u64 = 256 * 1024;
/// Limits on `fexec` arguments and environment.
pub const MAX_ARGS: usize = 1024;
pub const MAX_ARG_BYTES: usize = 64 * 1024;
/// Heap `fexec` may allocate after its arguments are copied in: the
/// argument pointer tables, the program name (at most `MAX_ARG_BYTES`),
/// the new descriptor table (at most `MAX_FILES` slots) and signal actions.
const FEXEC_HEAP: usize = 2 * MAX_ARG_BYTES + 64 * 1024;
/// Largest executable `fexec` reads.
pub const MAX_IMAGE: usize = 16 << 20;
/// rflags of a fresh user context: interrupts on, reserved bit 1.
const INITIAL_RFLAGS: u64 = 0x202;

pub fn wait_status_exited(code: usize) -> usize {
    (code & 0xff) << 8
}

/// A loaded program: its address space, entry point and initial stack.
struct Image {
    space: AddressSpace,
    entry: u64,
    sp: u64,
}

/// Builds a new address space for `image` (loaded from `path`) with
/// `argv`/`envp` on its stack.
fn build_image(path: &str, image: &[u8], argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<Image> {
    let mut space = AddressSpace::new().map_err(|_| Error::new(ENOMEM))?;
    let entry = crate::elf::load(image, &mut space).map_err(|e| match e {
        crate::elf::LoadError::Malformed | crate::elf::LoadError::WritableAndExecutable => {
            Error::new(ENOEXEC)
        }
        crate::elf::LoadError::OutOfMemory => Error::new(ENOMEM),
    })?;
    let mut page = STACK_TOP - STACK_SIZE;
    while page < STACK_TOP {
        space
            .map_zeroed(page, UserAccess::WRITE)
            .map_err(|_| Error::new(ENOMEM))?;
        page += PAGE_SIZE;
    }
    let path = path.strip_prefix("file:").unwrap_or(path);
    crate::memory::mapping::record_image(
        &mut space,
        path,
        image,
        STACK_TOP - STACK_SIZE,
        STACK_TOP,
    )?;
    let sp = push_arguments(&space, argv, envp)?;
    Ok(Image { space, entry, sp })
}

/// Lays out the strings, then `argc`, `argv[]`, 0, `envp[]`, 0 below
/// them, with the final rsp 16-byte aligned.
fn push_arguments(space: &AddressSpace, argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<u64> {
    let mut top = STACK_TOP;
    let mut put_string = |s: &[u8]| -> Result<u64> {
        top -= s.len() as u64 + 1;
        if space.write(top, s, false) != s.len()
            || space.write(top + s.len() as u64, &[0], false) != 1
        {
            return Err(Error::new(E2BIG));
        }
        Ok(top)
    };
    let arg_ptrs = argv
        .iter()
        .map(|a| put_string(a))
        .collect::<Result<Vec<u64>>>()?;
    let env_ptrs = envp
        .iter()
        .map(|e| put_string(e))
        .collect::<Result<Vec<u64>>>()?;
    let mut words: Vec<u64> = Vec::with_capacity(arg_ptrs.len() + env_ptrs.len() + 3);
    words.push(arg_ptrs.len() as u64);
    words.extend(&arg_ptrs);
    words.push(0);
    words.extend(&env_ptrs);
    words.push(0);
    let mut sp = (top & !15) - (words.len() as u64 * 8);
    sp &= !15;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    if sp < STACK_TOP - STACK_SIZE || space.write(sp, &bytes, false) != bytes.len() {
        return Err(Error::new(E2BIG));
    }
    Ok(sp)
}

fn initial_frame(entry: u64, sp: u64) -> TrapFrame {
    TrapFrame {
        rip: entry,
        cs: USER_CS as u64,
        rflags: INITIAL_RFLAGS,
        rsp: sp,
        ss: USER_SS as u64,
        ..TrapFrame::default()
    }
}

/// pid 1 when the command line names none.
pub const DEFAULT_INIT: &str = "/bin/init";

/// Makes the boot thread the idle context (pid 0) and starts pid 1 from
/// `init` (program and arguments); the caller then runs the idle loop.
pub fn start_user_space(init: &[String]) {
    crate::arch::syscall_init();
    context::init_idle();
    let default = [String::from(DEFAULT_INIT)];
    let argv = if init.is_empty() { &default[..] } else { init };
    match spawn_init(argv) {
        Ok(pid) => crate::info!("started pid {} ({})", pid, argv[0]),
        Err(e) => {
            crate::error!("cannot start init {:?}: {}", argv[0], e);
            crate::exit::exit_qemu(crate::exit::ExitCode::Failure)
        }
    }
}

/// Starts pid 1 from `argv[0]` with fds 0, 1, 2 on the console.
fn spawn_init(argv: &[String]) -> Result<Pid> {
    let path = argv.first().ok_or(Error::new(EINVAL))?;
    let creds = Creds::default();
    let handle = scheme::open(path, syscall::flag::O_RDONLY, creds, 0)?;
    let data = handle.handle.image()?;
    let args: Vec<Vec<u8>> = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    let image = build_image(&handle.handle.path(), &data, &args, &[])?;
    let mut files = FileTable::new();
    for _ in 0..3 {
        let console = scheme::open("debug:", syscall::flag::O_RDWR, creds, 0)?;
        files
            .insert(console, false)
            .map_err(|_| Error::new(EMFILE))?;
    }
    let ctx = context::create(Spawn {
        ppid: 0,
        name: path.clone(),
        creds,
        space: Arc::new(Mutex::new(image.space)),
        files: Arc::new(Mutex::new(files)),
        actions: Arc::new(Mutex::new(SignalActions::default())),
        signal_mask: 0,
        fx: FxArea::initial(),
        fs_base: 0,
        gs_base: 0,
        frame: initial_frame(image.entry, image.sp),
    })
    .map_err(create_error)?;
    let pid = ctx.lock().pid;
    sched::start_context(pid);
    Ok(pid)
}

fn create_error(e: context::CreateError) -> Error {
    Error::new(match e {
        context::CreateError::TooMany => EAGAIN,
        context::CreateError::OutOfMemory => ENOMEM,
    })
}

/// `clone(flags)`: the child starts from the parent's registers at the
/// `syscall`, with `rax` = 0.
pub fn clone(flags: usize, frame: &TrapFrame) -> Result<Pid> {
    let flags = CloneFlags::from_bits_truncate(flags);
    // The new context's kernel allocations (its state, a copy of the
    // descriptor table and of the signal actions) come out of this.
    crate::memory::heap::admit(context::HEAP_PER_CONTEXT)?;
    let parent = context::current();
    let (ppid, name, creds, space, files, actions, mask) = {
        let p = parent.lock();
        (
            p.pid,
            p.name.clone(),
            p.creds,
            p.space.clone().ok_or(Error::new(EINVAL))?,
            p.files.clone(),
            p.actions.clone(),
            p.signals.mask,
        )
    };
    let space = if flags.contains(CloneFlags::CLONE_VM) {
        space
    } else {
        let copy = space.lock().duplicate().map_err(|e| {
            crate::debug!("clone: cannot copy the address space: {:?}", e);
            Error::new(ENOMEM)
        })?;
        Arc::new(Mutex::new(copy))
    };
    let files = if flags.contains(CloneFlags::CLONE_FILES) {
        files
    } else {
        let copy = files.lock().try_clone()?;
        Arc::new(Mutex::new(copy))
    };
    let actions = if flags.contains(CloneFlags::CLONE_SIGHAND) {
        actions
    } else {
        let copy = actions.lock().clone();
        Arc::new(Mutex::new(copy))
    };
    let mut fx = FxArea::initial();
    fx.save();
    let (fs_base, gs_base) = read_user_bases();
    let mut child_frame = *frame;
    child_frame.rax = 0;
    let child = context::create(Spawn {
        ppid,
        name,
        creds,
        space,
        files,
        actions,
        signal_mask: mask,
        fx,
        fs_base,
        gs_base,
        frame: child_frame,
    })
    .map_err(create_error)?;
    let fs = parent.lock().fs.clone();
    let fs = if flags.contains(CloneFlags::CLONE_FS) {
        fs
    } else {
        let copy = {
            let f = fs.lock();
            context::FsState {
                cwd: f.cwd.clone(),
                umask: f.umask,
            }
        };
        Arc::new(Mutex::new(copy))
    };
    let pid = {
        let mut c = child.lock();
        c.vfork_pending = flags.contains(CloneFlags::CLONE_VFORK);
        c.fs = fs;
        c.pid
    };
    drop(child);
    if !crate::ptrace::on_clone(ppid, pid, flags.bits()) {
        sched::start_context(pid);
    }
    if flags.contains(CloneFlags::CLONE_VFORK) {
        wait_for_vfork_child(pid);
    }
    Ok(pid)
}

/// `CLONE_VFORK`: the parent sleeps until the child has replaced its
/// program or exited (the child may be using the parent's memory and
/// stack until then). Only `SIGKILL` ends the wait early.
fn wait_for_vfork_child(child: Pid) {
    loop {
        let pending = context::get(child).is_some_and(|c| {
            let c = c.lock();
            c.vfork_pending && !matches!(c.state, State::Exited(_))
        });
        let killed = {
            let ctx = context::current();
            let c = ctx.lock();
            c.signals.pending & crate::context::signal::bit(syscall::flag::SIGKILL) != 0
        };
        if !pending || killed {
            return;
        }
        CHILD_EVENTS.wait_unlocked();
    }
}

/// A `CLONE_VFORK` child is done with its parent's memory.
fn release_vfork_parent(ctx: &context::ContextRef) {
    let mut c = ctx.lock();
    if core::mem::take(&mut c.vfork_pending) {
        drop(c);
        CHILD_EVENTS.notify_all();
    }
}

/// `fexec(fd, args, vars)`: replaces the program. On failure the old
/// program is untouched.
pub fn fexec(
    fd: usize,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    frame: &mut TrapFrame,
) -> Result<usize> {
    // The arguments are already copied in (each copy was admitted); what
    // is left is bounded by the argument limits: the pointer tables, the
    // new program's name, descriptor table and signal actions.
    crate::memory::heap::admit(FEXEC_HEAP)?;
    let ctx = context::current();
    let description = ctx.lock().files.lock().get(fd)?;
    let data = description.handle.image()?;
    if data.len() > MAX_IMAGE {
        return Err(Error::new(ENOEXEC));
    }
    let image = build_image(&description.handle.path(), &data, &argv, &envp)?;
    let name = argv
        .first()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_else(|| description.handle.path());
    // Everything that can fail is done before the old program is touched.
    let new_files = ctx.lock().files.lock().without_cloexec()?;
    let (old_space, old_files, old_actions) = {
        let mut c = ctx.lock();
        let mut actions = c.actions.lock().clone();
        for action in actions.0.iter_mut() {
            if action.handler > 1 {
                action.handler = syscall::flag::SIG_DFL;
            }
        }
        c.name = name;
        c.signals.saved.clear();
        // A new program: the process may be traced by its same-id
        // ancestors again (ptrace contract v1.2).
        c.creds_changed = false;
        let old_space = c.space.replace(Arc::new(Mutex::new(image.space)));
        if let Some(space) = &c.space {
            space.lock().activate();
        }
        let old_files = core::mem::replace(&mut c.files, Arc::new(Mutex::new(new_files)));
        let old_actions = core::mem::replace(&mut c.actions, Arc::new(Mutex::new(actions)));
        (old_space, old_files, old_actions)
    };
    // Dropped outside the context lock: closing files may wake others.
    drop((old_space, old_files, old_actions));
    crate::arch::switch::write_user_bases(0, 0);
    FxArea::initial().restore();
    release_vfork_parent(&ctx);
    // A tracer's single-step survives: the return path sets TF again.
    *frame = initial_frame(image.entry, image.sp);
    Ok(0)
}

/// Ends the current context with `status` (a wait status). Never returns.
/// Called only by the boundary (`usermode`), at the top of the context's
/// kernel stack: nothing of the context's own is left below to be dropped.
pub(crate) fn exit_current(status: usize) -> ! {
    let ctx = context::current();
    let pid = ctx.lock().pid;
    crate::syscall::futex::on_exit(pid);
    crate::ptrace::on_exit(pid, status);
    let (space, files, actions, ppid) = {
        let mut c = ctx.lock();
        c.signals.saved.clear();
        (
            c.space.take(),
            core::mem::replace(&mut c.files, Arc::new(Mutex::new(FileTable::new()))),
            core::mem::take(&mut c.actions),
            c.ppid,
        )
    };
    // Sessions this process opened end now, even if copies of their
    // handles live on in other tables.
    crate::ptrace::on_tracer_exit(pid);
    drop(files);
    drop(space);
    drop(actions);
    for child in context::all() {
        let mut c = child.lock();
        if c.ppid == pid && c.pid != pid {
            c.ppid = 1;
        }
    }
    ctx.lock().state = State::Exited(status);
    release_vfork_parent(&ctx);
    drop(ctx);
    if pid == 1 {
        crate::power_off_after_init(status);
    }
    if ppid != 0 {
        crate::context::signal::send(ppid, SIGCHLD);
    }
    CHILD_EVENTS.notify_all();
    crate::ptrace::after_exit(pid);
    loop {
        sched::switch_away();
    }
}

/// `waitpid(pid, &status, flags)`: `pid` 0 (or -1) waits for any child.
pub fn waitpid(pid: usize, flags: usize) -> Result<(Pid, usize)> {
    let flags = WaitFlags::from_bits_truncate(flags);
    let me = context::current_pid();
    let any = pid == 0 || pid == usize::MAX;
    loop {
        let mut found_child = false;
        let mut reap: Option<(Pid, usize)> = None;
        let mut stopped: Option<(Pid, usize)> = None;
        for child in context::all() {
            let mut c = child.lock();
            if c.ppid != me || c.pid == me || !(any || c.pid == pid) {
                continue;
            }
            found_child = true;
            if let State::Exited(status) = c.state {
                reap = Some((c.pid, status));
                break;
            }
            if flags.contains(WaitFlags::WUNTRACED) {
                if let Some(sig) = c.unreported_stop.take() {
                    stopped = Some((c.pid, (sig << 8) | 0x7f));
                    break;
                }
            }
        }
        if let Some((child, status)) = reap {
            context::remove(child);
            return Ok((child, status));
        }
        if let Some(result) = stopped {
            return Ok(result);
        }
        if !found_child {
            return Err(Error::new(ECHILD));
        }
        if flags.contains(WaitFlags::WNOHANG) {
            return Ok((0, 0));
        }
        if crate::context::signal::current_has_pending() {
            return Err(Error::new(EINTR));
        }
        CHILD_EVENTS.wait_unlocked();
    }
}
