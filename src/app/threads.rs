//! Which engine build the page starts, and the words that say which runs.
//!
//! The threaded build (wasm threads: a pool of helpers on shared memory,
//! `src/worker/pool.rs`) needs a cross-origin isolated page, since browsers
//! give shared memory to no other. The single-thread build runs everywhere,
//! and takes over when the threaded one cannot start. Both compute the same
//! bits, so the choice changes speed, never an answer. Plain code, unit-tested
//! natively.

/// What decides the build: the browser's facts and the user's wishes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// `crossOriginIsolated`.
    pub isolated: bool,
    /// `SharedArrayBuffer` exists.
    pub shared_memory: bool,
    /// Threads asked for (Settings or `?threads=`): 0 is one per core.
    pub asked: usize,
    /// `?isolation=off`: the service worker leaves this page unisolated.
    pub isolation_off: bool,
    /// Why the threaded build failed to start in this page, if it did.
    pub failed: Option<String>,
}

/// The build to start.
#[derive(Debug, Clone, PartialEq)]
pub enum Build {
    /// The threaded build with this many threads asked (0: one per core).
    Threaded { asked: usize },
    /// The single-thread build, and why.
    Single { why: String },
}

pub fn choose(f: &Facts) -> Build {
    let why = if f.asked == 1 {
        "Settings ask for one thread.".to_string()
    } else if let Some(e) = &f.failed {
        format!("the threaded engine did not start ({e}), so the single-thread one took over.")
    } else if f.isolation_off {
        "the address turns cross-origin isolation off (isolation=off), and threads need it.".to_string()
    } else if !f.shared_memory {
        "this browser shares no memory between threads (no SharedArrayBuffer).".to_string()
    } else if !f.isolated {
        "this page is not cross-origin isolated, which threads need. The page's offline shell (its service worker) isolates it from the next load where the browser allows it.".to_string()
    } else {
        return Build::Threaded { asked: f.asked };
    };
    Build::Single { why }
}

/// The engine as the page knows it: the build started, then what its worker
/// said when ready.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStatus {
    pub build: Option<Build>,
    /// From the worker's `Ready`.
    pub threads: Option<usize>,
    pub note: Option<String>,
}

/// One sentence for the page.
pub fn words(s: &EngineStatus) -> String {
    let note = s.note.as_ref().map(|n| format!(" {n}")).unwrap_or_default();
    match (&s.build, s.threads) {
        (None, _) => "The engine is starting.".into(),
        (Some(Build::Threaded { .. }), Some(1)) => format!("The engine runs on 1 thread (the threaded build, but no helper thread started).{note}"),
        (Some(Build::Threaded { .. }), Some(n)) => format!("The engine runs on {n} threads (WebAssembly threads: this page is cross-origin isolated).{note}"),
        (Some(Build::Threaded { asked: 0 }), None) => "The engine is starting on one thread per core.".into(),
        (Some(Build::Threaded { asked }), None) => format!("The engine is starting on {asked} threads."),
        (Some(Build::Single { why }), _) => format!("The engine runs on 1 thread: {why}"),
    }
}

/// `?threads=` and the Settings choice: "auto" (or empty) is 0, one per core.
pub fn parse_threads(s: &str) -> Option<usize> {
    match s.trim() {
        "" | "auto" => Some(0),
        n => n.parse::<usize>().ok().filter(|n| (1..=MAX_THREADS).contains(n)),
    }
}

/// The most threads the page offers (the worker caps there too).
pub const MAX_THREADS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn isolated() -> Facts {
        Facts { isolated: true, shared_memory: true, ..Default::default() }
    }

    #[test]
    fn threads_only_where_memory_can_be_shared() {
        assert_eq!(choose(&isolated()), Build::Threaded { asked: 0 });
        assert_eq!(choose(&Facts { asked: 2, ..isolated() }), Build::Threaded { asked: 2 });
        for (facts, says) in [
            (Facts { isolated: false, ..isolated() }, "not cross-origin isolated"),
            (Facts { shared_memory: false, ..isolated() }, "SharedArrayBuffer"),
            (Facts { isolation_off: true, isolated: false, ..isolated() }, "isolation=off"),
            (Facts { asked: 1, ..isolated() }, "Settings ask for one"),
            (Facts { failed: Some("no wasm".into()), ..isolated() }, "did not start (no wasm)"),
        ] {
            match choose(&facts) {
                Build::Single { why } => assert!(why.contains(says), "{why}"),
                b => panic!("{facts:?} gave {b:?}"),
            }
        }
    }

    #[test]
    fn the_page_says_which_engine_runs() {
        let threaded = Some(Build::Threaded { asked: 0 });
        assert!(words(&EngineStatus { build: threaded.clone(), threads: Some(2), note: None }).contains("on 2 threads"));
        assert!(words(&EngineStatus { build: threaded.clone(), threads: None, note: None }).contains("starting"));
        let single = EngineStatus { build: Some(Build::Single { why: "Settings ask for one thread.".into() }), threads: Some(1), note: None };
        assert_eq!(words(&single), "The engine runs on 1 thread: Settings ask for one thread.");
        let fewer = EngineStatus { build: threaded, threads: Some(2), note: Some("4 threads were asked for; 2 started within 10 s.".into()) };
        assert!(words(&fewer).ends_with("2 started within 10 s."));
    }

    #[test]
    fn thread_counts_from_the_address() {
        assert_eq!((parse_threads("auto"), parse_threads(""), parse_threads(" 2 ")), (Some(0), Some(0), Some(2)));
        assert_eq!((parse_threads("0"), parse_threads("9"), parse_threads("two")), (None, None, None));
    }
}
