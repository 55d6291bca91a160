//! Four `std::thread`s each add one to a shared counter; the exit code is 40 + the
//! count. Linked (by `link.sh`) so that the module *defines* its shared memory instead of
//! importing it: 44 when every thread of the run shares that memory, less when a
//! runtime gives each thread its own copy (Wasmtime 46 traps: the threads' stacks, which
//! main allocated, are not in their private copies).
use std::sync::atomic::{AtomicU32, Ordering};

static COUNT: AtomicU32 = AtomicU32::new(0);

fn main() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                COUNT.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    std::process::exit(40 + COUNT.load(Ordering::SeqCst) as i32);
}
