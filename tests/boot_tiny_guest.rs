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
