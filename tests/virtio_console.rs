//! The virtio console (issue 13): program output through it arrives whole and in order, the
//! UART carries it when the device is absent (our VMM with --no-virtio-console, QEMU without
//! virtio-serial), QEMU's microvm device works with the same kernel, input comes through it,
//! and a guest that hands the device broken queues gets a device that stops, one warning,
//! and no VMM panic.
//!
//! The output is blast's stream (guest/user/src/bin/blast.rs, abi::bench::stream_byte):
//! numbered lines, checked byte for byte.

mod common;

use common::lde::{repo_root, run_user, user, Run};
use common::{make_elf, run_vmm_with_input, scratch_dir, stderr, stdout, vmm, write_file};
use common::{ElfSpec, LOAD_PADDR};

/// Checks blast's `total` bytes between its two marker lines (vmm bench checks every run the
/// same way).
fn assert_stream(out: &str, total: u64) {
    if let Err(e) = vmm::bench::console::check(out.as_bytes(), total) {
        panic!("{e}");
    }
}

const VIRTIO_BANNER: &str = "console   virtio at 0xd0000000, irq 5";

#[test]
fn four_mib_arrive_whole_and_in_order_in_64k_and_4k_writes() {
    for block in [65536, 4096] {
        let run = run_user(&[user("blast", &format!("4194304 {block}"))]);
        run.assert_status(0);
        run.assert_line(VIRTIO_BANNER);
        assert_stream(&run.stdout, 4 << 20);
    }
}

#[test]
fn odd_sizes_and_page_crossings_arrive_whole() {
    // 4097-byte writes cross a page boundary at every offset class; 1-byte writes are the
    // smallest chain; 200 KiB in one write is more pages than one chain has descriptors.
    for (total, block) in [(300_000, 4097), (5000, 1), (600_000, 65536)] {
        let run = run_user(&[user("blast", &format!("{total} {block}"))]);
        run.assert_status(0);
        assert_stream(&run.stdout, total);
    }
}

#[test]
fn without_the_device_the_uart_carries_the_output() {
    let run = common::lde::run_vmm_lde([
        "--no-virtio-console",
        "--user",
        &user("blast", "65536 4096"),
    ]);
    run.assert_status(0);
    run.assert_no_line("console   virtio");
    assert_stream(&run.stdout, 65536);
}

#[test]
fn input_comes_through_the_device_and_ends() {
    for extra in [&[][..], &["--no-virtio-console"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        let cat = user("cat", "");
        args.extend(["--timeout", "60", "--user", &cat]);
        let text: String = (0..200)
            .map(|i| format!("line {i} of the input\n"))
            .collect();
        let out = run_vmm_with_input(&args, text.as_bytes());
        let so = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}\n{so}\n{}",
            stderr(&out)
        );
        assert!(
            so.contains(&text),
            "{args:?}: cat's output lacks its input:\n{so}"
        );
    }
}

/// scripts/qemu.sh ARGS with its standard output in a file: QEMU's virtconsole drops what
/// its character device cannot take at once (a full pipe), as QEMU's own source says
/// (hw/char/virtio-console.c, flush_buf), and a file always takes it.
fn qemu(name: &str, args: &[&str]) -> Run {
    common::lde::require_tool(
        "qemu-system-x86_64",
        "qemu-system-x86_64 is required: sudo apt-get install qemu-system-x86",
    );
    let out = scratch_dir(name).join("stdout");
    let mut c = std::process::Command::new(repo_root().join("scripts/qemu.sh"));
    c.args(["--timeout", "120"])
        .args(args)
        .stdout(std::fs::File::create(&out).unwrap());
    let mut run = common::lde::run(c);
    run.stdout = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
    run
}

#[test]
fn qemu_microvm_with_and_without_virtio_serial() {
    let blast = user("blast", "1048576 4096");
    let run = qemu("qemu_virtio", &["--virtio", "--user", &blast]);
    run.assert_status(0);
    run.assert_line("console   virtio at 0xfeb0");
    assert_stream(&run.stdout, 1 << 20);
    let run = qemu("qemu_uart", &["--user", &user("blast", "65536 4096")]);
    run.assert_status(0);
    run.assert_no_line("console   virtio");
    assert_stream(&run.stdout, 65536);
    // QEMU's default, the legacy interface: the kernel says why it will not use it, resets
    // the device and prints through the UART.
    let legacy = ["-global", "virtio-mmio.force-legacy=true"];
    let blast = user("blast", "65536 4096");
    let mut args = vec!["--virtio", "--user", &blast, "--"];
    args.extend(legacy);
    let run = qemu("qemu_legacy", &args);
    run.assert_status(0);
    run.assert_line("the virtio console is unusable: legacy virtio-mmio");
    assert_stream(&run.stdout, 65536);
}

// --- A hostile guest: tiny 32-bit guests that drive the device's registers by hand ---------

const BASE: u32 = abi::virtio::CONSOLE_MMIO_BASE as u32;
const DESC: u32 = 0x20_0000;
const AVAIL: u32 = 0x20_1000;
const USED: u32 = 0x20_2000;

/// `mov dword [addr], v`
fn store32(c: &mut Vec<u8>, addr: u32, v: u32) {
    c.extend_from_slice(&[0xc7, 0x05]);
    c.extend_from_slice(&addr.to_le_bytes());
    c.extend_from_slice(&v.to_le_bytes());
}

/// `mov word [addr], v`
fn store16(c: &mut Vec<u8>, addr: u32, v: u16) {
    c.extend_from_slice(&[0x66, 0xc7, 0x05]);
    c.extend_from_slice(&addr.to_le_bytes());
    c.extend_from_slice(&v.to_le_bytes());
}

fn reg(c: &mut Vec<u8>, off: u64, v: u32) {
    store32(c, BASE + off as u32, v);
}

/// Descriptor `i`: addr, len, flags, next.
fn desc(c: &mut Vec<u8>, i: u32, addr: u64, len: u32, flags: u16, next: u16) {
    let d = DESC + 16 * i;
    store32(c, d, addr as u32);
    store32(c, d + 4, (addr >> 32) as u32);
    store32(c, d + 8, len);
    store16(c, d + 12, flags);
    store16(c, d + 14, next);
}

/// Makes the device ready with the transmit queue at DESC/AVAIL/USED (16 entries).
fn set_up(c: &mut Vec<u8>) {
    use abi::virtio::{mmio, status};
    reg(c, mmio::STATUS, 0);
    reg(c, mmio::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    reg(c, mmio::DRIVER_FEATURES_SEL, 1);
    reg(c, mmio::DRIVER_FEATURES, 1); // VIRTIO_F_VERSION_1
    reg(c, mmio::DRIVER_FEATURES_SEL, 0);
    reg(c, mmio::DRIVER_FEATURES, 0);
    let agreed = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    reg(c, mmio::STATUS, agreed);
    reg(c, mmio::QUEUE_SEL, abi::virtio::console::TRANSMIT_QUEUE);
    reg(c, mmio::QUEUE_NUM, 16);
    for (r, a) in [
        (mmio::QUEUE_DESC_LOW, DESC),
        (mmio::QUEUE_DRIVER_LOW, AVAIL),
        (mmio::QUEUE_DEVICE_LOW, USED),
    ] {
        reg(c, r, a);
        reg(c, r + 4, 0);
    }
    reg(c, mmio::QUEUE_READY, 1);
    reg(c, mmio::STATUS, agreed | status::DRIVER_OK);
}

/// Offers chain `head` as available entry `n` (0-based) and rings the doorbell.
fn offer(c: &mut Vec<u8>, n: u16, head: u16) {
    store16(c, AVAIL + 4 + 2 * n as u32, head);
    store16(c, AVAIL + 2, n + 1);
    reg(
        c,
        abi::virtio::mmio::QUEUE_NOTIFY,
        abi::virtio::console::TRANSMIT_QUEUE,
    );
}

/// Exits with 7 if the device set DEVICE_NEEDS_RESET, else 8.
fn exit_by_status(c: &mut Vec<u8>) {
    c.push(0xa1); // mov eax, [STATUS]
    c.extend_from_slice(&(BASE + abi::virtio::mmio::STATUS as u32).to_le_bytes());
    c.extend_from_slice(&[0xa8, 0x40]); // test al, 0x40
    c.extend_from_slice(&[0xb0, 7]); // mov al, 7
    c.extend_from_slice(&[0x75, 0x02]); // jnz over the next mov
    c.extend_from_slice(&[0xb0, 8]); // mov al, 8
    c.extend_from_slice(&[0xe6, 0xf4, 0xf4]); // out 0xf4, al; hlt
}

/// Boots a guest whose transmit queue holds `bad` (written by `chain`), offered twice.
fn hostile(name: &str, chain: impl Fn(&mut Vec<u8>)) -> std::process::Output {
    let mut c = Vec::new();
    set_up(&mut c);
    chain(&mut c);
    offer(&mut c, 0, 0);
    offer(&mut c, 1, 0);
    exit_by_status(&mut c);
    let dir = scratch_dir(name);
    let elf = write_file(&dir, "guest.elf", &make_elf(ElfSpec::default(), &c));
    assert!(
        LOAD_PADDR + 0x1000 < DESC as u64,
        "the rings would overlap the code"
    );
    vmm()
        .args(["--timeout", "30"])
        .arg(&elf)
        .output()
        .expect("cannot run the vmm")
}

fn assert_refused(name: &str, chain: impl Fn(&mut Vec<u8>)) {
    let out = hostile(name, chain);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{name}: the guest did not see DEVICE_NEEDS_RESET (or the VMM failed):\n{err}"
    );
    assert!(
        !err.contains("panicked"),
        "{name}: the VMM panicked:\n{err}"
    );
    let warnings = err.matches("virtio-console").count();
    assert_eq!(
        warnings, 1,
        "{name}: want one warning about the device:\n{err}"
    );
}

#[test]
fn descriptors_outside_ram_are_refused() {
    assert_refused("virtio_outside_ram", |c| {
        desc(c, 0, 0xf000_0000_0000, 64, 0, 0)
    });
}

#[test]
fn a_loop_in_a_chain_is_refused() {
    assert_refused("virtio_loop", |c| {
        desc(c, 0, 0x30_0000, 64, abi::virtio::ring::DESC_F_NEXT, 1);
        desc(c, 1, 0x30_0000, 64, abi::virtio::ring::DESC_F_NEXT, 0);
    });
}

#[test]
fn a_length_past_the_end_of_ram_is_refused() {
    // The default guest has 512 MiB: this buffer starts 16 bytes before its end.
    assert_refused("virtio_past_the_end", |c| {
        desc(c, 0, (512 << 20) - 16, 4096, 0, 0)
    });
}

#[test]
fn a_good_chain_from_the_same_guest_is_printed() {
    // The control for the three above: the same code with a valid chain prints and the
    // device stays well (exit 8).
    let out = hostile("virtio_good", |c| {
        store32(c, 0x30_0000, u32::from_le_bytes(*b"ok!\n"));
        desc(c, 0, 0x30_0000, 4, 0, 0);
    });
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert_eq!(stdout(&out).matches("ok!\n").count(), 2, "{}", stdout(&out));
}
