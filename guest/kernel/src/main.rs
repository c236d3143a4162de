//! A tiny kernel that runs OSTEP chapter 6's Limited Direct Execution protocol for real.
//!
//! Boot, in order (each step in the file named for it):
//!   boot.rs         PVH entry, long mode, higher half
//!   main.rs         the UART (uart.rs), boot info (pvh.rs), CPU features (cpu.rs), clock
//!                   (time.rs), the date (rtc.rs)
//!   memory/         physical frames, the kernel's final page tables
//!   gdt.rs          segments and the TSS (kernel stacks for traps)
//!   trap_table.rs   the IDT: the trap table, installed once; the `syscall` instruction's MSRs
//!   lapic.rs        the local APIC; timer.rs: tickless timer
//!   fs/             the file tree, from the program archive; loader.rs: ELF programs
//!   scheduler.rs    run the first process: return-from-trap into ring 3

#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod console;
mod context_switch;
mod cpu;
mod crash;
mod exit;
mod file;
mod fs;
mod futex;
mod gdt;
mod ioapic;
mod karc;
mod klog;
mod lapic;
mod loader;
mod memory;
mod percpu;
mod pipe;
mod pit;
mod power;
mod process;
mod procfs;
mod pvh;
mod random;
mod report;
mod rtc;
mod scheduler;
mod signal;
mod strace;
mod sync;
mod sys;
mod sys_result;
mod syscall;
mod syscall_table;
mod time;
mod timer;
mod trace_events;
mod trap;
mod trap_entry;
mod trap_frame;
mod trap_slow;
mod trap_table;
mod tty;
mod uaccess;
mod uart;
mod vdso;
mod virtio_console;
mod wakeup;

use core::panic::PanicInfo;
use kcore::cmdline::{self, Ignored};
use memory::frame::FRAMES;
use power::{power_off, EXIT_BOOT_FAILURE};
use process::TASKS;

extern "C" {
    static __kernel_end: u8;
}

/// Entered from `boot.rs` on the boot stack, in the higher half, interrupts off.
#[no_mangle]
pub extern "C" fn kmain(start_info_paddr: u64) -> ! {
    uart::UART.lock().init();
    let info = match pvh::read(start_info_paddr) {
        Ok(info) => info,
        Err(e) => {
            println!("kernel: unusable PVH start info at {start_info_paddr:#x}: {e}");
            power_off(EXIT_BOOT_FAILURE);
        }
    };
    let features = cpu::Features::detect();
    let clock = time::init(&features);
    let config = cmdline::parse(info.cmdline, |ignored| match ignored {
        Ignored::UnknownValue(w) => println!("kernel: ignoring {w}: unknown value"),
        Ignored::NotANumber(w) => println!("kernel: ignoring {w}: not a number"),
        Ignored::OutOfRange(w) => println!("kernel: ignoring {w}: out of range"),
    });
    // The wall clock: the command line's, else the CMOS clock's, else 1970.
    let (epoch, epoch_from) = match config.epoch {
        Some(e) => (Some(e), "epoch="),
        None => (rtc::read_unix(), "the CMOS clock"),
    };
    time::set_epoch(epoch.unwrap_or(0));

    // Physical memory: all RAM but the first MiB, the kernel image and the boot modules.
    // SAFETY: a linker-script symbol; only its address is used.
    let kernel_end = memory::kernel_virt_to_phys(unsafe { &__kernel_end as *const u8 as u64 });
    let mut reserved = [(0u64, 0u64); pvh::MAX_MODULES + 1];
    // (the frame allocator cuts these out of each RAM range: kcore::ranges)
    reserved[0] = (0, kernel_end);
    for (i, m) in info.modules().iter().enumerate() {
        reserved[i + 1] = (m.paddr, m.paddr + m.size);
    }
    let mut ram_end = 0;
    for r in info.ram() {
        FRAMES.lock().add_ram(r.addr, r.addr + r.size, &reserved);
        ram_end = ram_end.max(r.addr + r.size);
    }
    if !FRAMES.lock().init_refcounts(ram_end) {
        println!("kernel: no room for the frames' reference counts");
        power_off(EXIT_BOOT_FAILURE);
    }
    if memory::paging::init_kernel_space(ram_end, features.nx, features.pdpe1gb).is_err() {
        println!("kernel: out of memory while building the kernel page tables");
        power_off(EXIT_BOOT_FAILURE);
    }
    vdso::init();
    enable_cpu_features(&features);
    gdt::init();
    trap_table::init();
    trap_table::init_syscall();
    if lapic::init(features.x2apic).is_err() {
        println!("kernel: out of memory mapping the local APIC");
        power_off(EXIT_BOOT_FAILURE);
    }
    crash::at_boot(config.crash);
    let timer_mode = timer::init(&features, &clock, config.hz);
    TASKS.lock().max = config
        .nproc
        .unwrap_or_else(|| cmdline::default_nproc(info.ram_bytes()));
    let cpu = percpu::this();
    cpu.slice_ticks.set(config.slice);
    // The switch path's one flag covers both traces (scheduler.rs tells them apart).
    cpu.trace_sched
        .set(config.trace_sched || config.trace_events);
    if config.trace_events {
        trace_events::enable(config.trace_sched);
    }
    // One wrapper of the system calls at a time: strace's wins.
    if config.strace {
        syscall::enable_strace();
    } else if config.trace_events {
        syscall::enable_trace_events();
    }
    if config.trace_events {
        trap_table::use_recording_twins(!config.strace);
    }

    println!("lde kernel: booted by PVH");
    println!(
        "  memory    {} MiB in {} RAM range(s), {} KiB free",
        info.ram_bytes() >> 20,
        info.ram().count(),
        FRAMES.lock().free_frames * 4
    );
    println!("  cmdline   \"{}\"", info.cmdline);
    println!(
        "  cpu       {} (hypervisor: {})",
        features.vendor_str(),
        features.hypervisor_str()
    );
    println!(
        "  tsc       {}.{:03} MHz (from {})",
        clock.tsc_hz / 1_000_000,
        clock.tsc_hz / 1000 % 1000,
        clock.source.name()
    );
    match epoch {
        Some(e) => {
            let t = abi::rtc::DateTime::from_unix(e);
            println!(
                "  date      {}-{:02}-{:02} {:02}:{:02}:{:02} UTC (from {epoch_from})",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            );
        }
        None => println!("  date      unknown (no CMOS clock): the clock starts at 1970"),
    }
    println!(
        "  protect   NX {}, SMEP {}, SMAP {}; {}",
        on_off(features.nx),
        on_off(features.smep),
        on_off(features.smap),
        if features.x2apic { "x2APIC" } else { "xAPIC" }
    );
    // Before the timer line, which tests take as the banner's last.
    match virtio_console::init(info.cmdline) {
        virtio_console::Found::None => {}
        virtio_console::Found::Ready { base, irq, size } => {
            print!("  console   virtio at {base:#x}, ");
            match irq {
                Some(irq) => print!("irq {irq}"),
                None => print!("no interrupt (input polled)"),
            }
            let size = if size { ", window size" } else { "" };
            println!("{size} (the UART keeps kernel messages)");
        }
        virtio_console::Found::Unusable(why) => {
            println!("  console   the UART: the virtio console is unusable: {why}")
        }
    }
    println!(
        "  timer     {} Hz, slice {} tick(s), {}",
        config.hz, config.slice, timer_mode
    );
    if !random::init() {
        println!("  random    no entropy from the host: seeded from the TSC (not secret)");
    }

    tty::enable_input();
    start_programs(&info);
    scheduler::start()
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// CR0/CR4: SSE for user programs (their FPU state is saved per task), global pages for the
/// kernel's mappings, and SMEP/SMAP so the kernel can neither run nor (outside uaccess.rs)
/// touch user memory.
fn enable_cpu_features(f: &cpu::Features) {
    use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
    let mut cr4 = Cr4::read();
    cr4 |= Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE | Cr4Flags::PAGE_GLOBAL;
    if f.smep {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if f.smap {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    let mut cr0 = Cr0::read();
    cr0.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
    cr0.insert(Cr0Flags::MONITOR_COPROCESSOR);
    // SAFETY: turns on features the CPU reported (CPUID); the kernel itself uses no SSE (the
    // target is soft-float) and touches user memory only in uaccess.rs, with RFLAGS.AC set.
    unsafe {
        Cr0::write(cr0);
        Cr4::write(cr4);
    }
    uaccess::set_smap(f.smap);
}

/// Starts the programs the archive lists, as pids 1..n; 2..n are children of pid 1.
fn start_programs(info: &pvh::BootInfo) {
    let Some(module) = info.modules().first() else {
        println!("kernel: no program archive (boot module): nothing to run");
        power_off(0);
    };
    // SAFETY: the loader placed the module there; its frames are reserved (never allocated), and
    // the direct map covers all RAM.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            memory::phys_to_virt(module.paddr) as *const u8,
            module.size as usize,
        )
    };
    if wakeup::init_poll_queue().is_err() {
        println!("kernel: out of memory for the pollers' queue");
        power_off(EXIT_BOOT_FAILURE);
    }
    let start = match fs::boot::build(bytes) {
        Ok(s) => s,
        Err(e) => {
            println!("kernel: the program archive cannot become the file tree: {e}");
            power_off(EXIT_BOOT_FAILURE);
        }
    };
    let mut started = 0;
    let Ok(envp) = sys::exec::default_env() else {
        println!("kernel: out of memory for the environment");
        power_off(EXIT_BOOT_FAILURE);
    };
    for line in start.lines() {
        let mut argv = loader::Strings::default();
        for w in abi::start::words(line) {
            let Ok(w) = w else {
                println!("kernel: START line {line:?}: a quote is not closed");
                power_off(EXIT_BOOT_FAILURE);
            };
            if push_word(&mut argv, w).is_err() {
                println!("kernel: START line {line:?}: too many or too long arguments");
                power_off(EXIT_BOOT_FAILURE);
            }
        }
        // argv[0], without its NUL (quote removal leaves UTF-8 intact); a copy, as argv goes to
        // the loader.
        let name: alloc::string::String = argv
            .iter()
            .next()
            .and_then(|n| core::str::from_utf8(&n[..n.len() - 1]).ok())
            .unwrap_or("")
            .into();
        let name = name.as_str();
        // A name is an archive program (/bin/NAME); a path is found in the tree.
        let path = if name.contains('/') {
            Ok(alloc::vec::Vec::from(name.as_bytes()))
        } else {
            sys::process::program_path(name)
        };
        let started_ok = path
            .map_err(sys::exec::ExecError::from)
            .and_then(|path| {
                let loaded = sys::exec::load_program(kcore::fs::ROOT, &path, argv, &envp)?;
                let files = match file::console_table().and_then(file::Files::new) {
                    Ok(f) => f,
                    Err(e) => {
                        fs::release(loaded.ino);
                        return Err(e.into());
                    }
                };
                let parent = if started == 0 { 0 } else { 1 };
                let comm = sys::exec::basename(&path);
                sys::process::start_image(loaded.ino, comm, loaded.image, parent, files)
                    .map_err(Into::into)
            })
            .map_err(|e| println!("kernel: cannot start {name}: {e}"));
        if started_ok.is_err() {
            power_off(EXIT_BOOT_FAILURE);
        }
        started += 1;
    }
    if started == 0 {
        println!("kernel: the program archive is empty: nothing to run");
        power_off(0);
    }
}

/// Appends one START word to `argv`, decoded a chunk at a time.
fn push_word(argv: &mut loader::Strings, w: abi::start::Word) -> Result<(), loader::LoadError> {
    argv.begin()?;
    let mut chunk = [0u8; 64];
    let mut n = 0;
    for b in w.bytes() {
        chunk[n] = b;
        n += 1;
        if n == chunk.len() {
            argv.extend(&chunk)?;
            n = 0;
        }
    }
    argv.extend(&chunk[..n])?;
    argv.end()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    use core::fmt::Write;
    // SAFETY: we never return from here, interrupts are off and there is one CPU: whoever held
    // the console lock (perhaps the code that panicked) never runs again.
    let uart = unsafe { uart::UART.steal() };
    let _ = writeln!(uart, "kernel panic: {}", info);
    power_off(power::EXIT_KERNEL_PANIC);
}
