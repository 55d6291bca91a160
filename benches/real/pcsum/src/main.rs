//! Parallel checksum of a directory tree, with std::thread: the main thread lists the
//! files, N worker threads take them from a shared counter, read each one, hash it
//! (FNV-1a, 64-bit) and write a small `<index>.sum` file for it into OUT. Prints one
//! sorted `hash size path` line per file (path relative to SRC) and a total.
//!
//!   pcsum [-j N] SRC OUT
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type().expect("file_type");
        if ft.is_dir() {
            walk(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut jobs = 1usize;
    if args.len() >= 2 && args[0] == "-j" {
        jobs = args[1].parse().expect("-j N");
        args.drain(..2);
    }
    if args.len() != 2 {
        eprintln!("usage: pcsum [-j N] SRC OUT");
        std::process::exit(2);
    }
    let src = PathBuf::from(&args[0]);
    let out = PathBuf::from(&args[1]);
    std::fs::create_dir_all(&out).expect("create OUT");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let files = Arc::new(files);
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::with_capacity(files.len())));
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (files, next, results, out) =
                (files.clone(), next.clone(), results.clone(), out.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let data = std::fs::read(path)
                        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                    let h = fnv1a(&data);
                    let mut f = std::fs::File::create(out.join(format!("{i}.sum")))
                        .expect("create .sum");
                    writeln!(f, "{h:016x} {}", data.len()).expect("write .sum");
                    mine.push((i, h, data.len()));
                }
                results.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked");
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    results.sort();
    let stdout = std::io::stdout();
    let mut o = std::io::BufWriter::new(stdout.lock());
    let (mut total, mut bytes) = (0u64, 0usize);
    for (i, h, n) in &results {
        let rel = files[*i].strip_prefix(&src).unwrap_or(&files[*i]);
        writeln!(o, "{h:016x} {n} {}", rel.display()).unwrap();
        total = total.rotate_left(5) ^ h;
        bytes += n;
    }
    writeln!(o, "files {} bytes {bytes} total {total:016x}", results.len()).unwrap();
}
