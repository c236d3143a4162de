//! What the VMM hands the guest through hvm_start_info (EBX at the PVH entry), read back by
//! tiny guests that write one field to the exit port. The same guests run under QEMU, the
//! reference for PVH, when it is installed.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

// Offsets in hvm_start_info (the contracts crate's layout).
use abi::machine::pvh::StartInfo;
use std::mem::offset_of;
const MAGIC: u8 = offset_of!(StartInfo, magic) as u8;
const NR_MODULES: u8 = offset_of!(StartInfo, nr_modules) as u8;
const MODLIST_PADDR: u8 = offset_of!(StartInfo, modlist_paddr) as u8;
const CMDLINE_PADDR: u8 = offset_of!(StartInfo, cmdline_paddr) as u8;
const MEMMAP_ENTRIES: u8 = offset_of!(StartInfo, memmap_entries) as u8;

/// 32-bit code: exit with the low byte of the dword at start_info + `off`.
fn exit_with_field(off: u8) -> Vec<u8> {
    vec![0x8b, 0x43, off, 0xe6, 0xf4, 0xf4] // mov eax, [ebx+off]; out 0xf4, al; hlt
}

/// 32-bit code: exit with the first byte at the address stored at start_info + `off`.
fn exit_with_byte_at(off: u8) -> Vec<u8> {
    // mov esi, [ebx+off]; mov al, [esi]; out 0xf4, al; hlt
    vec![0x8b, 0x73, off, 0x8a, 0x06, 0xe6, 0xf4, 0xf4]
}

/// 32-bit code: exit with the first byte of the first boot module.
fn exit_with_first_module_byte() -> Vec<u8> {
    // mov esi, [ebx+16]; mov esi, [esi]; mov al, [esi]; out 0xf4, al; hlt
    vec![
        0x8b,
        0x73,
        MODLIST_PADDR,
        0x8b,
        0x36,
        0x8a,
        0x06,
        0xe6,
        0xf4,
        0xf4,
    ]
}

fn guest(dir: &Path, name: &str, code: &[u8]) -> std::path::PathBuf {
    write_file(dir, name, &make_elf(ElfSpec::default(), code))
}

fn status(args: &[&std::ffi::OsStr]) -> i32 {
    let out = run_vmm(args);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    out.status.code().unwrap_or(-1)
}

#[test]
fn magic_cmdline_and_memory_map() {
    let dir = scratch_dir("start_info_fields");
    let magic = guest(&dir, "magic", &exit_with_field(MAGIC));
    assert_eq!(status(&[magic.as_os_str()]), 0x78); // 0x336ec578
    let cmd = guest(&dir, "cmd", &exit_with_byte_at(CMDLINE_PADDR));
    assert_eq!(
        status(&[cmd.as_os_str(), "--cmdline".as_ref(), "Zed".as_ref()]),
        b'Z' as i32
    );
    let bare = [cmd.as_os_str(), "--no-virtio-console".as_ref()];
    assert_eq!(status(&bare), 0, "empty command line: NUL");
    // The virtio console's `virtio_mmio.device=` word, after the user's words or alone.
    assert_eq!(status(&[cmd.as_os_str()]), b'v' as i32);
    let map = guest(&dir, "map", &exit_with_field(MEMMAP_ENTRIES));
    assert_eq!(
        status(&[map.as_os_str()]),
        3,
        "low RAM, PC hole, RAM from 1 MiB"
    );
    let big = [map.as_os_str(), "--memory".as_ref(), "4096".as_ref()];
    assert_eq!(status(&big), 4, "plus RAM above 4 GiB");
}

#[test]
fn one_boot_module_from_user_initrd_or_default() {
    let dir = scratch_dir("start_info_modules");
    let nr = guest(&dir, "nr", &exit_with_field(NR_MODULES));
    let first = guest(&dir, "first", &exit_with_first_module_byte());
    // The default (embedded) archive, even an empty one, is a cpio newc: "070701...".
    assert_eq!(status(&[nr.as_os_str()]), 1);
    assert_eq!(status(&[first.as_os_str()]), b'0' as i32);
    // --initrd passes the file unchanged.
    let initrd = write_file(&dir, "initrd.bin", b"*rest of the module");
    let args = [first.as_os_str(), "--initrd".as_ref(), initrd.as_os_str()];
    assert_eq!(status(&args), b'*' as i32);
    // --user packs the programs (here the test guest itself, an x86-64 ELF) into an archive.
    let spec = format!("{} arg1 arg2", nr.display());
    let args = [first.as_os_str(), "--user".as_ref(), spec.as_ref()];
    assert_eq!(status(&args), b'0' as i32);
}

#[test]
fn qemu_agrees_on_start_info() {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("qemu-system-x86_64 not installed: skipping the cross-check");
        return;
    }
    let dir = scratch_dir("start_info_qemu");
    let initrd = write_file(&dir, "initrd.bin", b"*");
    let cases = [
        (guest(&dir, "hi", &code_hi_then_exit(42)), 42),
        (guest(&dir, "magic", &exit_with_field(MAGIC)), 0x78),
        (guest(&dir, "nr", &exit_with_field(NR_MODULES)), 1),
        (
            guest(&dir, "first", &exit_with_first_module_byte()),
            b'*' as i32,
        ),
    ];
    for (kernel, expected) in cases {
        let vmm_status = status(&[kernel.as_os_str(), "--initrd".as_ref(), initrd.as_os_str()]);
        assert_eq!(vmm_status, expected, "vmm on {}", kernel.display());
        for accel in ["kvm", "tcg"] {
            let out = Command::new("timeout")
                .args(["20", "qemu-system-x86_64", "-M", "microvm", "-accel", accel])
                .args([
                    "-m",
                    "256",
                    "-display",
                    "none",
                    "-nodefaults",
                    "-serial",
                    "null",
                ])
                .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
                .arg("-kernel")
                .arg(&kernel)
                .arg("-initrd")
                .arg(&initrd)
                .output()
                .unwrap();
            // isa-debug-exit reports (v << 1) | 1.
            assert_eq!(
                out.status.code(),
                Some(((expected << 1) | 1) & 0xff),
                "qemu -accel {accel} on {}: {}",
                kernel.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
