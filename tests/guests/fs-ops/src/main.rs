//! std::fs work under a preopened directory (argv[1], e.g. "/work"), printing what it
//! sees; the wasi_path tests (tests/integration/wasi_path.rs) compare the output
//! exactly. Error numbers are WASI errnos (wasi-libc's), so the output is the same under
//! every WASI host that agrees.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};

fn errno<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(-1)),
    }
}

fn listing(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            let kind = if t.is_dir() { "dir" } else if t.is_file() { "file" } else if t.is_symlink() { "symlink" } else { "other" };
            format!("{}:{kind}", e.file_name().into_string().unwrap())
        })
        .collect();
    names.sort();
    names
}

fn main() {
    let base = std::env::args().nth(1).expect("base directory");
    let p = |s: &str| format!("{base}/{s}");

    fs::create_dir_all(p("a/b/c")).unwrap();
    println!("create_dir_all: is_dir={}", fs::metadata(p("a/b/c")).unwrap().is_dir());
    println!("create_dir_all again: {}", errno(fs::create_dir_all(p("a/b/c"))));
    println!("create_dir existing: {}", errno(fs::create_dir(p("a/b"))));

    fs::write(p("a/b/c/hello.txt"), "hello, world\n").unwrap();
    print!("read: {}", fs::read_to_string(p("a/b/c/hello.txt")).unwrap());
    let m = fs::metadata(p("a/b/c/hello.txt")).unwrap();
    println!("metadata: len={} is_file={} is_dir={}", m.len(), m.is_file(), m.is_dir());

    {
        let mut f = fs::OpenOptions::new().append(true).open(p("a/b/c/hello.txt")).unwrap();
        f.write_all(b"appended\n").unwrap();
    }
    print!("after append: {}", fs::read_to_string(p("a/b/c/hello.txt")).unwrap());
    {
        let mut f = fs::File::open(p("a/b/c/hello.txt")).unwrap();
        let mut buf = [0u8; 5];
        f.seek(SeekFrom::Start(7)).unwrap();
        f.read_exact(&mut buf).unwrap();
        println!("seek+read: {:?}", String::from_utf8_lossy(&buf));
        println!("write to read-only handle: {}", errno(f.write_all(b"x")));
    }
    fs::File::create(p("a/b/c/hello.txt")).unwrap().write_all(b"new\n").unwrap();
    print!("after truncate: {}", fs::read_to_string(p("a/b/c/hello.txt")).unwrap());
    println!("create_new existing: {}", errno(fs::OpenOptions::new().write(true).create_new(true).open(p("a/b/c/hello.txt"))));

    fs::create_dir(p("a/many")).unwrap();
    for i in 0..300 {
        fs::write(p(&format!("a/many/file-{i:04}")), vec![b'x'; i % 17]).unwrap();
    }
    let mut sizes: Vec<(String, u64)> = fs::read_dir(p("a/many"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.metadata().unwrap().len())
        })
        .collect();
    sizes.sort();
    let total: u64 = sizes.iter().map(|s| s.1).sum();
    println!("read_dir many: {} entries, first {:?}, last {:?}, {total} bytes", sizes.len(), sizes.first().unwrap(), sizes.last().unwrap());
    let expected: Vec<String> = (0..300).map(|i| format!("file-{i:04}")).collect();
    println!("read_dir many: names exact = {}", sizes.iter().map(|s| s.0.clone()).collect::<Vec<_>>() == expected);

    fs::rename(p("a/b/c/hello.txt"), p("a/moved.txt")).unwrap();
    println!("rename: old={} new={}", errno(fs::metadata(p("a/b/c/hello.txt"))), errno(fs::metadata(p("a/moved.txt"))));
    fs::rename(p("a/b"), p("a/b2")).unwrap();
    println!("rename dir: {:?}", listing(&p("a")));
    fs::hard_link(p("a/moved.txt"), p("a/hard.txt")).unwrap();
    print!("hard link: {}", fs::read_to_string(p("a/hard.txt")).unwrap());

    println!("remove_file(dir): {}", errno(fs::remove_file(p("a/b2"))));
    println!("remove_dir(file): {}", errno(fs::remove_dir(p("a/moved.txt"))));
    println!("remove_dir(non-empty): {}", errno(fs::remove_dir(p("a"))));
    println!("open missing: {}", errno(fs::File::open(p("missing"))));
    println!("open dir as file for writing: {}", errno(fs::OpenOptions::new().write(true).open(p("a"))));
    println!("read_dir of a file: {}", errno(fs::read_dir(p("a/moved.txt"))));
    println!("escape: {}", errno(fs::read(format!("{base}/../secret"))));

    // Four threads, each filling and listing a directory of its own.
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let dir = p(&format!("t{t}"));
            std::thread::spawn(move || {
                fs::create_dir(&dir).unwrap();
                for i in 0..100 {
                    fs::write(format!("{dir}/{i}"), format!("{t}:{i}")).unwrap();
                }
                let n = fs::read_dir(&dir).unwrap().count();
                let ok = (0..100).all(|i| fs::read_to_string(format!("{dir}/{i}")).unwrap() == format!("{t}:{i}"));
                fs::remove_dir_all(&dir).unwrap();
                (n, ok)
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        println!("thread {t}: {:?}", h.join().unwrap());
    }

    println!("listing: {:?}", listing(&base));
    println!("listing a: {:?}", listing(&p("a")));
    fs::remove_dir_all(p("a")).unwrap();
    println!("after remove_dir_all: {:?}", listing(&base));
}
