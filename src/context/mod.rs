//! Contexts (processes and threads: a thread is a context sharing its
//! creator's address space) and the global table of them. Owns each
//! context's kernel stack, saved CPU state, credentials, signal state and
//! references to its address space, descriptor table and signal actions.
//!
//! Every lock here is ordered (`crate::sync`, checked at run time; the list
//! is in docs/design.md): the `CONTEXTS` table, then one `Context`, then its
//! address space / file table / signal actions. A context's ptrace state is
//! the ptrace module's `PtraceState`; its saved user registers are reached
//! only through `Context::user_frame`, which refuses a running context.
//! `Exit` is how a stop or a signal asks the boundary (`usermode`) to end
//! the running context.

pub mod signal;
pub mod wait;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::{class, Mutex};

use crate::arch::switch::FxArea;
use crate::arch::trap_frame::TrapFrame;
use crate::memory::kstack::KernelStack;
use crate::memory::paging::AddressSpace;
use crate::ptrace::PtraceState;
use crate::scheme::FileTable;
use signal::{SignalActions, SignalState};

pub type Pid = usize;

/// The running context must end with this wait status (`SIGKILL`, a fatal
/// signal, `exit`). Stops and signal delivery return it instead of exiting
/// where they are; it travels up as `Err` to the boundary (`usermode`),
/// the one place a context exits, with nothing of its own on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit(pub usize);

/// User and group ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// Where a context is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// May run (or is running).
    Runnable,
    /// Waiting in the kernel for something (a `WaitCondition`, a sleep, a
    /// job-control stop).
    Blocked,
    /// Gone; the wait status is kept until the parent reaps it.
    Exited(usize),
}

/// CPU state saved at a context switch, boxed so its address is stable while
/// the scheduler switches without holding any lock.
pub struct ArchState {
    /// Kernel rsp saved by `switch_stacks`.
    pub rsp: u64,
    pub fx: FxArea,
    pub fs_base: u64,
    pub gs_base: u64,
    kstack: KernelStack,
}

impl ArchState {
    /// A fresh state with its kernel stack, or None if memory ran out.
    fn new() -> Option<Box<ArchState>> {
        let kstack = KernelStack::new()?;
        Some(Box::new(ArchState {
            rsp: 0,
            fx: FxArea::initial(),
            fs_base: 0,
            gs_base: 0,
            kstack,
        }))
    }

    /// 16-byte aligned top of the kernel stack.
    pub fn kstack_top(&self) -> u64 {
        self.kstack.top()
    }

    /// Where the user registers are saved on entry to the kernel: every
    /// entry from user mode builds its frame at the top of the kernel
    /// stack. Private: `Context::user_frame` is the safe way in.
    fn user_frame_ptr(&self) -> *mut TrapFrame {
        (self.kstack_top() - core::mem::size_of::<TrapFrame>() as u64) as *mut TrapFrame
    }
}

pub struct Context {
    pub pid: Pid,
    pub ppid: Pid,
    /// Program path (argv\[0\] of the last `fexec`).
    pub name: String,
    pub creds: Creds,
    /// The process changed its uids or gids since its last `fexec` (ptrace
    /// contract v1.2: then only root may open its `proc:` files). Cleared
    /// by a successful `fexec`; clone children start without it.
    pub creds_changed: bool,
    /// Bumped at every change of the uids or gids: a `proc:` handle a
    /// non-root caller opened stops working once this moves.
    pub creds_epoch: u64,
    pub state: State,
    /// Set by a job-control stop signal, cleared by `SIGCONT`/`SIGKILL`.
    pub job_stopped: Option<usize>,
    /// A job-control stop (`Some(sig)`) or continue (`Some(0)`) not yet
    /// reported to `waitpid(WUNTRACED)`.
    pub unreported_stop: Option<usize>,
    pub arch: Box<ArchState>,
    /// None only for the idle context.
    pub space: Option<SpaceRef>,
    pub files: FilesRef,
    pub actions: ActionsRef,
    pub signals: SignalState,
    /// For `nanosleep`: when to wake (monotonic ns).
    pub wake_at: Option<u64>,
    /// Bumped whenever the context is woken; a waiter compares it.
    pub wakeups: u64,
    /// Ptrace's state of this context (held, tracer, single-stepping).
    pub ptrace: PtraceState,
    /// Created by `clone(CLONE_VFORK)`: its parent waits until this turns
    /// false (at the child's successful `fexec` or its exit).
    pub vfork_pending: bool,
    /// Working directory and umask: shared by `clone(CLONE_FS)`, copied
    /// by other clones, kept by `fexec`.
    pub fs: FsRef,
}

/// What `CLONE_FS` shares.
pub struct FsState {
    /// Working directory: a canonical `scheme:/path` (relative paths are
    /// resolved against it).
    pub cwd: String,
    /// File mode creation mask (`0o777` bits).
    pub umask: u16,
}

impl Default for FsState {
    fn default() -> FsState {
        FsState {
            cwd: String::from("file:/"),
            umask: 0o022,
        }
    }
}

pub type ContextRef = Arc<Mutex<Context, { class::CONTEXT }>>;
/// An address space, shared by threads (`CLONE_VM`).
pub type SpaceRef = Arc<Mutex<AddressSpace, { class::SPACE }>>;
/// A descriptor table, shared with `CLONE_FILES`.
pub type FilesRef = Arc<Mutex<FileTable, { class::FILES }>>;
/// Signal actions, shared with `CLONE_SIGHAND`.
pub type ActionsRef = Arc<Mutex<SignalActions, { class::ACTIONS }>>;
/// A working directory and umask, shared by `CLONE_FS`.
pub type FsRef = Arc<Mutex<FsState, { class::FS_STATE }>>;

static CONTEXTS: Mutex<BTreeMap<Pid, ContextRef>, { class::CONTEXTS }> =
    Mutex::new(BTreeMap::new());
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static NEXT_PID: AtomicUsize = AtomicUsize::new(1);

pub fn current_pid() -> Pid {
    CURRENT.load(Ordering::Relaxed)
}

/// The running context, kept by the CPU so that `current()` needs neither
/// the table's lock nor a lookup (it is on every way back to user mode).
struct CurrentContext(UnsafeCell<Option<ContextRef>>);

// SAFETY: one CPU; the cell is written only by `set_current` (the
// scheduler, interrupts off) and read by `current`, and neither runs in an
// interrupt handler that could interrupt the other (the kernel runs with
// interrupts off outside the idle loop's `hlt`).
unsafe impl Sync for CurrentContext {}

static CURRENT_CONTEXT: CurrentContext = CurrentContext(UnsafeCell::new(None));

/// Makes `ctx` (pid `pid`) the running context. The one it replaces is
/// still in the table (a context leaves it only when reaped, never while
/// it runs), so dropping this reference to it frees nothing.
pub(crate) fn set_current(pid: Pid, ctx: ContextRef) {
    CURRENT.store(pid, Ordering::Relaxed);
    // SAFETY: see `CurrentContext`: nothing else reads or writes the cell
    // meanwhile, and no reference into it outlives `current`.
    unsafe { *CURRENT_CONTEXT.0.get() = Some(ctx) };
}

pub fn get(pid: Pid) -> Option<ContextRef> {
    // The running context is always in the table (a context leaves it only
    // when reaped, which never happens while it runs): no lookup for it.
    if pid == current_pid() {
        // SAFETY: see `CurrentContext`; the reference ends with the clone.
        if let Some(ctx) = unsafe { (*CURRENT_CONTEXT.0.get()).clone() } {
            return Some(ctx);
        }
    }
    CONTEXTS.lock().get(&pid).cloned()
}

/// The running context.
pub fn current() -> ContextRef {
    // SAFETY: see `CurrentContext`; the reference ends with the clone.
    let cached = unsafe { (*CURRENT_CONTEXT.0.get()).clone() };
    cached.expect("a context is running once the idle context exists")
}

/// Every context (a snapshot of the table).
pub fn all() -> Vec<ContextRef> {
    CONTEXTS.lock().values().cloned().collect()
}

pub fn remove(pid: Pid) -> Option<ContextRef> {
    CONTEXTS.lock().remove(&pid)
}

/// Pids are never reused while the kernel runs (a 64-bit counter).
fn next_pid() -> Pid {
    NEXT_PID.fetch_add(1, Ordering::Relaxed)
}

/// The idle context (pid 0): the boot thread, which runs when nothing else
/// can.
pub fn init_idle() {
    let arch = ArchState::new().expect("the heap has room for the idle context at boot");
    let files = Arc::new(Mutex::new(FileTable::new()));
    let actions = Arc::new(Mutex::new(SignalActions::default()));
    let ctx = Context::new(
        0,
        0,
        String::from("[idle]"),
        Creds::default(),
        arch,
        files,
        actions,
    );
    let ctx = Arc::new(Mutex::new(ctx));
    CONTEXTS.lock().insert(0, ctx.clone());
    set_current(0, ctx);
}

/// The context is running (on this CPU, or later on another one): its
/// saved user registers are not there to read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Running;

impl Context {
    /// The user registers this context saved on its last entry to the
    /// kernel, or `Err(Running)` if it is running: only a context that is
    /// switched out (blocked, held, runnable but not on a CPU) has a frame
    /// nothing else is using.
    pub fn user_frame(&self) -> Result<&TrapFrame, Running> {
        if self.pid == current_pid() {
            return Err(Running);
        }
        // SAFETY: a context that is not running entered the kernel (or was
        // created) with its frame at the top of its own kernel stack, which
        // lives as long as the context; nothing writes the frame while it
        // is switched out except through `user_frame_mut`, which needs the
        // context's lock held mutably, so no `&mut` aliases this `&`.
        Ok(unsafe { &*self.arch.user_frame_ptr() })
    }

    /// As `user_frame`, to change the registers the context resumes with.
    pub fn user_frame_mut(&mut self) -> Result<&mut TrapFrame, Running> {
        if self.pid == current_pid() {
            return Err(Running);
        }
        // SAFETY: as in `user_frame`; `&mut self` makes this the only
        // reference to the frame for as long as it lives.
        Ok(unsafe { &mut *self.arch.user_frame_ptr() })
    }

    /// A runnable, untraced context with no pending signals.
    fn new(
        pid: Pid,
        ppid: Pid,
        name: String,
        creds: Creds,
        arch: Box<ArchState>,
        files: FilesRef,
        actions: ActionsRef,
    ) -> Context {
        Context {
            pid,
            ppid,
            name,
            creds,
            creds_changed: false,
            creds_epoch: 0,
            state: State::Runnable,
            job_stopped: None,
            unreported_stop: None,
            arch,
            space: None,
            files,
            actions,
            signals: SignalState::default(),
            wake_at: None,
            wakeups: 0,
            ptrace: PtraceState::default(),
            vfork_pending: false,
            fs: Arc::new(Mutex::new(FsState::default())),
        }
    }
}

/// What a new context shares with or copies from its creator.
pub struct Spawn {
    pub ppid: Pid,
    pub name: String,
    pub creds: Creds,
    pub space: SpaceRef,
    pub files: FilesRef,
    pub actions: ActionsRef,
    pub signal_mask: u64,
    pub fx: FxArea,
    pub fs_base: u64,
    pub gs_base: u64,
    /// The user registers it starts with.
    pub frame: TrapFrame,
}

/// Heap bytes reserved per context when deciding how many may exist (its
/// kernel stack is made of frames; this is headroom for what it allocates).
/// `clone` also asks the heap reserve for this much before it starts.
pub const HEAP_PER_CONTEXT: usize = 64 * 1024;

/// Most contexts (processes and threads, zombies included) that may exist:
/// one per `HEAP_PER_CONTEXT` of heap (256 with a 16 MiB heap).
pub fn max_contexts() -> usize {
    (crate::memory::heap::size() / HEAP_PER_CONTEXT).max(16)
}

/// Most contexts whose real uid is one user's (root included): three
/// quarters of all, so one user cannot take every context.
pub fn max_contexts_per_user() -> usize {
    max_contexts() * 3 / 4
}

/// Why a context could not be created.
#[derive(Debug)]
pub enum CreateError {
    /// As many contexts exist as the heap is sized for, or as many of the
    /// new context's user as one user may have (`EAGAIN`).
    TooMany,
    /// No memory for the kernel stack (`ENOMEM`).
    OutOfMemory,
}

/// Creates a runnable context that starts by returning to user mode with
/// `spawn.frame`. It is not yet on the run queue.
pub fn create(spawn: Spawn) -> Result<ContextRef, CreateError> {
    {
        let table = CONTEXTS.lock();
        let same_user = table
            .values()
            .filter(|c| c.lock().creds.uid == spawn.creds.uid)
            .count();
        if table.len() >= max_contexts() || same_user >= max_contexts_per_user() {
            return Err(CreateError::TooMany);
        }
    }
    let mut arch = ArchState::new().ok_or(CreateError::OutOfMemory)?;
    let pid = next_pid();
    arch.fx = spawn.fx;
    arch.fs_base = spawn.fs_base;
    arch.gs_base = spawn.gs_base;
    // SAFETY: the stack was just allocated for this context alone and is
    // far larger than a frame.
    arch.rsp = unsafe { crate::arch::switch::initial_stack(arch.kstack_top(), &spawn.frame) };
    let mut ctx = Context::new(
        pid,
        spawn.ppid,
        spawn.name,
        spawn.creds,
        arch,
        spawn.files,
        spawn.actions,
    );
    ctx.space = Some(spawn.space);
    ctx.signals.mask = spawn.signal_mask;
    let ctx = Arc::new(Mutex::new(ctx));
    CONTEXTS.lock().insert(pid, ctx.clone());
    Ok(ctx)
}

/// Whether `ancestor` is the parent, grandparent, ... of `pid`.
pub fn is_ancestor(ancestor: Pid, pid: Pid) -> bool {
    let table = CONTEXTS.lock();
    let mut p = pid;
    for _ in 0..table.len() + 1 {
        let Some(ctx) = table.get(&p) else {
            return false;
        };
        let parent = ctx.lock().ppid;
        if parent == ancestor && parent != p {
            return true;
        }
        if parent == p || parent == 0 {
            return false;
        }
        p = parent;
    }
    false
}
