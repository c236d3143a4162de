//! An ordinary glibc program (tests/glibc/work.c), built with `gcc -static -pthread` as a user
//! would and run unmodified: glibc's start-up (rseq, clone3 and their fallbacks, mprotect of
//! RELRO, set_robust_list), stdio, malloc through brk and mmap, and pthreads on futexes. It
//! checks itself and must pass on the host first. gcc and glibc's static libraries come from
//! Debian's gcc and libc6-dev, which the test command installs.

mod common;
use common::lde::*;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn build() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("glibc");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("work");
        let out = Command::new("gcc")
            .args(["-static", "-O2", "-pthread", "-o"])
            .arg(&exe)
            .arg(repo_root().join("tests/glibc/work.c"))
            .output()
            .map_err(|e| format!("gcc is required (sudo apt-get install gcc libc6-dev): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "gcc -static failed (is libc6-dev installed?):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(exe)
    });
    match built {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_gcc_static_glibc_program_runs_unmodified() {
    let exe = build();
    let run = passes_on_host_then_guest(&exe, &[]);
    for line in [
        "glibc: snprintf: ok",
        "glibc: an 8 MiB block: ok",
        "glibc: every item handed over: ok",
    ] {
        run.assert_line(line);
    }
}
