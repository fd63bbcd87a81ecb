//! The threaded browser worker's pool: helpers spin on a job counter (then
//! sleep in `memory.atomic.wait32`), and the calling thread takes items too.
//! Why not rayon's pool there: its threads sleep between parallel regions and
//! a browser takes tens of µs to wake one; a token has 121 regions (4 products a layer, and the head).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Job {
    /// The items' function, borrowed from `run`'s caller: called only for
    /// items below `n`, each claimed once, all finished before `run` returns.
    f: *const (dyn Fn(usize) + Sync),
    n: usize,
    next: AtomicUsize,
    done: AtomicUsize,
}

// SAFETY: `f` is Sync and outlives every call made through it (see `Job::f`).
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

static GENERATION: AtomicU32 = AtomicU32::new(0);
static CURRENT: Mutex<Option<Arc<Job>>> = Mutex::new(None);
static HELPERS: AtomicUsize = AtomicUsize::new(0);

/// Spins before a helper sleeps (a decode step's regions are ~50 µs apart).
const SPINS: u32 = 1 << 16;

fn take_items(job: &Job) {
    loop {
        let i = job.next.fetch_add(1, Ordering::AcqRel);
        if i >= job.n {
            return;
        }
        // SAFETY: i < n, so `run` has not returned (see `Job::f`).
        unsafe { (*job.f)(i) };
        job.done.fetch_add(1, Ordering::Release);
    }
}

/// How many helper threads run `helper_loop` (the calling thread is one more).
pub fn helpers() -> usize {
    HELPERS.load(Ordering::Relaxed)
}

/// Runs `f(0..n)` on the helpers and the calling thread; returns when all are done.
pub fn run(n: usize, f: &(dyn Fn(usize) + Sync)) {
    // SAFETY: the lifetime is erased; `Job::f` says why no call outlives `f`.
    let f: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
    let job = Arc::new(Job { f, n, next: AtomicUsize::new(0), done: AtomicUsize::new(0) });
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = Some(job.clone());
    GENERATION.fetch_add(1, Ordering::Release);
    // SAFETY: GENERATION is a live, aligned 32-bit atomic.
    unsafe { core::arch::wasm32::memory_atomic_notify(GENERATION.as_ptr() as *mut i32, u32::MAX) };
    take_items(&job);
    while job.done.load(Ordering::Acquire) < n {
        std::hint::spin_loop();
    }
}

/// A helper thread's life: wait for a new job, take its items, again.
pub fn helper_loop() -> ! {
    HELPERS.fetch_add(1, Ordering::Relaxed);
    let mut seen = GENERATION.load(Ordering::Acquire);
    loop {
        let mut spins = 0u32;
        while GENERATION.load(Ordering::Acquire) == seen {
            spins += 1;
            if spins < SPINS {
                std::hint::spin_loop();
            } else {
                // SAFETY: as in `run`; returns on a notify, a change or spuriously.
                unsafe { core::arch::wasm32::memory_atomic_wait32(GENERATION.as_ptr() as *mut i32, seen as i32, -1) };
            }
        }
        seen = GENERATION.load(Ordering::Acquire);
        let job = CURRENT.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(job) = job {
            take_items(&job);
        }
    }
}
