//! Debian's busybox-static, unmodified: its `sh` runs a script of pipelines of its applets
//! (which it runs by re-executing /proc/self/exe), redirections into /tmp, a background job
//! killed and waited for, and `ls`, `cat`, `wc`, `sort`, `seq`, `test`, `kill`. Each script's
//! output is checked against the host's busybox running the same script. busybox-static is
//! installed by the test command.

mod common;
use common::lde::*;
use common::scratch_dir;

use std::path::PathBuf;
use std::process::Command;

fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.is_file(),
        "busybox-static is required: sudo apt-get install busybox-static"
    );
    p
}

/// Runs `script` with busybox sh on the host (in a scratch directory standing in for /tmp) and
/// in the guest (the script at /tmp/script.sh); returns both outputs.
fn both(test: &str, script: &str) -> (String, Run) {
    let dir = scratch_dir(test);
    // The guest's console carries stderr too: so does the host's stdout here.
    let host_script = format!(
        "exec 2>&1\n{}",
        script.replace("/tmp/", &format!("{}/", dir.display()))
    );
    let host = Command::new(busybox())
        .args(["sh", "-c", &host_script])
        .output()
        .unwrap();
    let path = common::write_file(&dir, "script.sh", script.as_bytes());
    let run = run_vmm_lde([
        "--file".to_string(),
        format!("{}:/tmp/script.sh", path.display()),
        "--user".to_string(),
        format!("{} sh /tmp/script.sh", busybox().display()),
    ]);
    (String::from_utf8_lossy(&host.stdout).into_owned(), run)
}

/// The lines the script printed in the guest: between the boot banner and the report.
fn script_output(run: &Run) -> String {
    let mut out = String::new();
    let mut on = false;
    for line in run.lines() {
        if line.starts_with("--- process report") {
            break;
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("  timer ") {
            on = true;
        }
    }
    out
}

#[test]
fn busybox_sh_runs_pipelines_of_its_applets() {
    let script = "seq 10 | sort -rn | head -n 3\n\
                  echo hello world | wc -w\n\
                  test 3 -gt 2 && echo three is more\n\
                  echo \"status $?\"\n";
    let (host, run) = both("busybox_pipes", script);
    run.assert_status(0);
    assert_eq!(script_output(&run), host, "\n{}", run.dump());
    assert_eq!(host, "10\n9\n8\n2\nthree is more\nstatus 0\n");
}

#[test]
fn busybox_redirects_into_tmp_and_kills_a_background_job() {
    let script = "echo one > /tmp/o; echo two >> /tmp/o\n\
                  wc -l < /tmp/o\n\
                  cat /tmp/o\n\
                  ls /tmp/ | grep -c '^o$'\n\
                  sleep 5 &\n\
                  kill $!\n\
                  wait $!\n\
                  echo \"killed: $?\"\n\
                  sleep 0.1 & wait\n\
                  echo waited\n";
    let (host, run) = both("busybox_redirect", script);
    run.assert_status(0);
    assert_eq!(script_output(&run), host, "\n{}", run.dump());
    assert!(host.contains("killed: 143"), "{host}");
}
