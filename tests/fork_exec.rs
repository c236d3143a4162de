//! fork, vfork, clone and execve from C (tests/c/fork.c, exec.c, execchild.c): each program
//! passes on the host Linux first, then in our guest under KVM and under QEMU TCG. What each
//! checks is in tests/c/README.md.

mod common;
use common::c::*;

#[test]
fn fork_copies_and_copy_on_write_keeps_parent_and_child_apart() {
    let run = host_then_kvm("fork", &["fork", "execchild"]);
    for line in [
        "fork: ok copy and copy-on-write",
        "fork: ok vfork suspends the parent",
        "fork: ok posix_spawn and posix_spawnp",
    ] {
        run.assert_line(line);
    }
    assert!(run.kill_lines().is_empty(), "\n{}", run.dump());
}

#[test]
fn fork_under_qemu_tcg() {
    under_tcg("fork", &["fork", "execchild"]);
}

#[test]
fn exec_passes_argv_envp_closes_cloexec_and_fails_cleanly() {
    let run = host_then_kvm("exec", &["exec", "execchild"]);
    for line in [
        "exec: ok argv and envp",
        "exec: ok close-on-exec",
        "exec: ok ENOENT, ENOEXEC, EFAULT, E2BIG, going on",
        "exec: ok /proc/self/exe",
        "exec: ok close_range",
    ] {
        run.assert_line(line);
    }
    assert!(run.kill_lines().is_empty(), "\n{}", run.dump());
}

#[test]
fn exec_under_qemu_tcg() {
    under_tcg("exec", &["exec", "execchild"]);
}
