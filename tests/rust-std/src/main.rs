//! What an ordinary Rust program does with std, checked as it goes: collections and
//! formatting, threads with channels and a mutex, time, a child process, and files in /tmp.
//! One line per check; exits 0 iff all passed. `stdcheck child N` is the child it runs.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

fn check(failed: &mut u32, what: &str, ok: bool, detail: impl std::fmt::Debug) {
    println!(
        "stdcheck: {what}: {} ({detail:?})",
        if ok { "ok" } else { "FAIL" }
    );
    *failed += u32::from(!ok);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let n: i32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
        println!("stdcheck child: {n}");
        std::process::exit(n);
    }
    let only: Option<&str> = args.get(1).map(String::as_str);
    let wants = |part: &str| only.is_none() || only == Some(part);
    let mut failed = 0;

    if wants("basics") {
        let mut words: HashMap<&str, usize> = HashMap::new();
        for w in "the quick brown fox jumps over the lazy dog the end".split(' ') {
            *words.entry(w).or_default() += 1;
        }
        check(
            &mut failed,
            "HashMap counts",
            words["the"] == 3,
            words["the"],
        );
        let sorted: BTreeMap<_, _> = words.iter().map(|(k, v)| (*k, *v)).collect();
        let first = sorted.keys().next().copied();
        check(&mut failed, "BTreeMap order", first == Some("brown"), first);
        let big: Vec<u64> = (0..200_000).collect();
        let sum: u64 = big.iter().sum();
        check(&mut failed, "a large Vec", sum == 19_999_900_000, sum);
        let s = format!("{:>8.3}|{:#x}|{:?}", std::f64::consts::PI, 255, Some("x"));
        check(
            &mut failed,
            "formatting",
            s == "   3.142|0xff|Some(\"x\")",
            s,
        );
    }

    if wants("threads") {
        let (tx, rx) = mpsc::channel();
        let total = Arc::new(Mutex::new(0u64));
        let handles: Vec<_> = (0..4u64)
            .map(|i| {
                let tx = tx.clone();
                let total = Arc::clone(&total);
                std::thread::spawn(move || {
                    for j in 0..1000 {
                        *total.lock().unwrap() += 1;
                        if j % 250 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    tx.send(i).unwrap();
                })
            })
            .collect();
        drop(tx);
        let mut got: Vec<u64> = rx.iter().collect();
        for h in handles {
            h.join().unwrap();
        }
        got.sort();
        check(
            &mut failed,
            "channel from 4 threads",
            got == [0, 1, 2, 3],
            &got,
        );
        let t = *total.lock().unwrap();
        check(&mut failed, "mutex total", t == 4000, t);
        let r = std::thread::spawn(|| -> u32 { panic!("a thread panics") }).join();
        check(
            &mut failed,
            "a panicking thread is joined as Err",
            r.is_err(),
            (),
        );
    }

    if wants("time") {
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        let slept = start.elapsed();
        check(
            &mut failed,
            "sleep 30 ms",
            slept >= Duration::from_millis(30),
            slept,
        );
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
        check(&mut failed, "SystemTime after the epoch", now.is_ok(), now);
    }

    if wants("clock") {
        // Through musl's clock_gettime, hence the vDSO where the kernel maps one: the test
        // counts this part's system calls in the kernel's report.
        let mut last = Instant::now();
        let mut backwards = 0;
        for _ in 0..100_000 {
            let t = Instant::now();
            backwards += u32::from(t < last);
            last = t;
        }
        check(
            &mut failed,
            "100000 Instant::now in order",
            backwards == 0,
            backwards,
        );
        let walls = (0..1000).map(|_| SystemTime::now()).collect::<Vec<_>>();
        let ordered = walls.windows(2).all(|w| w[0] <= w[1]);
        check(&mut failed, "1000 SystemTime::now in order", ordered, ());
    }

    if wants("process") {
        let me = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
        let out = std::process::Command::new(&me)
            .args(["child", "5"])
            .output();
        match out {
            Ok(o) => {
                check(
                    &mut failed,
                    "Command exit code",
                    o.status.code() == Some(5),
                    o.status,
                );
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                check(
                    &mut failed,
                    "Command output",
                    text == "stdcheck child: 5\n",
                    text,
                );
            }
            Err(e) => check(&mut failed, "Command runs", false, e),
        }
        let missing = std::process::Command::new("/bin/no-such-program").status();
        let kind = missing.as_ref().err().map(|e| e.kind());
        check(
            &mut failed,
            "Command of a missing program",
            kind == Some(std::io::ErrorKind::NotFound),
            kind,
        );
    }

    if wants("fs") {
        let path = std::env::temp_dir().join(format!("stdcheck-{}", std::process::id()));
        let result = (|| -> std::io::Result<String> {
            std::fs::File::create(&path)?.write_all(b"written by std::fs\n")?;
            let mut s = String::new();
            std::fs::File::open(&path)?.read_to_string(&mut s)?;
            std::fs::remove_file(&path)?;
            Ok(s)
        })();
        let ok = result.as_deref().is_ok_and(|s| s == "written by std::fs\n");
        check(&mut failed, "std::fs in /tmp", ok, result);
    }

    std::process::exit(i32::from(failed != 0));
}
