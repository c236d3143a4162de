//! Boots the smallest PVH guest (built as bytes in tests/common) under KVM: it prints "hi" on
//! COM1 and writes a status to the exit port, which becomes the vmm's exit status.

mod common;
use common::*;

#[test]
fn tiny_guest_prints_and_exits_with_its_status() {
    let dir = scratch_dir("tiny_guest");
    let kernel = write_file(
        &dir,
        "hi.elf",
        &make_elf(ElfSpec::default(), &code_hi_then_exit(42)),
    );
    let out = run_vmm([kernel.as_os_str()]);
    assert_eq!(out.status.code(), Some(42), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    assert_eq!(stderr(&out), "");
}

#[test]
fn exit_status_zero_and_255() {
    let dir = scratch_dir("exit_statuses");
    for status in [0u8, 255] {
        let elf = make_elf(ElfSpec::default(), &code_hi_then_exit(status));
        let kernel = write_file(&dir, &format!("exit{status}.elf"), &elf);
        let out = run_vmm([kernel.as_os_str()]);
        assert_eq!(
            out.status.code(),
            Some(status as i32),
            "stderr: {}",
            stderr(&out)
        );
    }
}

#[test]
fn guest_in_high_memory_above_the_mmio_gap_boots_with_more_than_3_gib() {
    // 4 GiB of RAM: two regions around the 32-bit MMIO gap; the guest itself lives at 1 MiB.
    let dir = scratch_dir("big_memory");
    let kernel = write_file(
        &dir,
        "hi.elf",
        &make_elf(ElfSpec::default(), &code_hi_then_exit(7)),
    );
    let out = run_vmm([kernel.as_os_str(), "--memory".as_ref(), "4096".as_ref()]);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
}

#[test]
fn stdin_reaches_the_guest_through_com1() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = scratch_dir("console_input");
    let kernel = write_file(
        &dir,
        "read.elf",
        &make_elf(ElfSpec::default(), &code_read_serial_then_exit()),
    );
    let mut child = vmm()
        .arg(&kernel)
        .args(["--timeout", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Q").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(b'Q' as i32),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn no_stdin_means_no_input_and_no_busy_loop() {
    // stdin is /dev/null (output() default): nothing arrives, the guest waits for the timeout.
    let dir = scratch_dir("console_no_input");
    let kernel = write_file(
        &dir,
        "read.elf",
        &make_elf(ElfSpec::default(), &code_read_serial_then_exit()),
    );
    let out = run_vmm([kernel.as_os_str(), "--timeout".as_ref(), "0.5".as_ref()]);
    assert_eq!(out.status.code(), Some(124), "stderr: {}", stderr(&out));
}

#[test]
fn rep_outsb_sends_every_byte() {
    let dir = scratch_dir("rep_outsb");
    let kernel = write_file(
        &dir,
        "rep.elf",
        &make_elf(ElfSpec::default(), &code_rep_outsb_then_exit(3)),
    );
    let out = run_vmm([kernel.as_os_str()]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hey\n");
}
