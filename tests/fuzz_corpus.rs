//! Replays the fuzzing corpus (`tests/fuzz_corpus/<target>/`) through the
//! entry points the fuzz targets call (`chestnode::fuzzing`), as ordinary
//! tests that need neither nightly nor `cargo fuzz`.
//!
//! Every input must come back, accepted or refused, without a panic,
//! within a time bound (a hang fails the test instead of stalling it) and
//! without any single allocation above a bound (a runaway allocation fails
//! it even where the machine has the memory).
//! `seed-*` files are the synthetic seeds from `fuzz/make_seeds.py` and
//! must be accepted, so a seed that no longer reaches the deep code is
//! noticed; the others (`crash-*`, `oom-*`, `timeout-*`, as libFuzzer
//! names them) are inputs the fuzzer found crashing, exhausting memory or
//! hanging, kept so the fix stays fixed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chestnode::fuzzing::{EntryPoint, TARGETS};

/// Longest any one input may take (debug build, loaded CI machine).
const PER_INPUT: Duration = Duration::from_secs(20);

/// The largest single allocation any one input may cause. The inputs are
/// at most a few hundred kilobytes; the node's own bounds are 256 MiB for
/// an inflated data set and 2^25 pixels for a frame. An input that claims
/// gigabytes and gets them fails here even where the machine could spare
/// the memory (which libFuzzer's RSS limit would catch, but a test
/// otherwise would not).
const LARGEST_ALLOCATION: usize = 300 << 20;

/// The system allocator, noting the largest request since the last reset.
struct LargestRequest;

static LARGEST_REQUEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl GlobalAlloc for LargestRequest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_REQUEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_REQUEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_REQUEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestRequest = LargestRequest;

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs one input on its own thread: Ok(outcome) if it returned in time,
/// Err with what went wrong if it panicked or hung.
fn replay(entry: EntryPoint, path: &Path) -> Result<Result<(), String>, String> {
    let data = std::fs::read(path).unwrap();
    LARGEST_REQUEST.store(0, Ordering::Relaxed);
    let (sender, receiver) = mpsc::channel();
    let started = Instant::now();
    std::thread::Builder::new()
        .name(path.display().to_string())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(|| entry(&data));
            let _ = sender.send(outcome);
        })
        .unwrap();
    let outcome = receiver.recv_timeout(PER_INPUT);
    let largest = LARGEST_REQUEST.load(Ordering::Relaxed);
    if largest > LARGEST_ALLOCATION {
        return Err(format!("allocated {largest} bytes at once"));
    }
    match outcome {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(_)) => Err("panicked".into()),
        Err(_) => Err(format!("still running after {:?}", started.elapsed())),
    }
}

#[test]
fn every_corpus_input_returns_in_time() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for &(target, entry) in TARGETS {
        let files = corpus_files(target);
        assert!(!files.is_empty(), "no corpus for {target}");
        for path in files {
            replayed += 1;
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            match replay(entry, &path) {
                Ok(Err(reason)) if name.starts_with("seed-") => {
                    failures.push(format!("{target}/{name}: seed refused: {reason}"));
                }
                Ok(_) => {}
                Err(problem) => failures.push(format!("{target}/{name}: {problem}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(replayed > 0);
}
