//! readkernel [ADDRESS]: reads kernel memory (default 0xffffffff80100000, where our kernel is
//! mapped, supervisor-only) from ring 3. The CPU raises #PF; the kernel kills only this process
//! (SIGSEGV, shell status 139).
#![no_std]
#![no_main]

use lde_user::{Args, println};

lde_user::entry!(main);

fn main(args: Args) -> i32 {
    let addr = args
        .get(1)
        .and_then(|s| usize::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0xffff_ffff_8010_0000);
    println!("readkernel: reading {addr:#x}");
    // SAFETY: not safe at all, on purpose: this read must fault. A volatile read cannot be
    // optimised away, and faulting is the expected outcome.
    let value = unsafe { core::ptr::read_volatile(addr as *const u64) };
    println!("readkernel: read {value:#x} from kernel memory!");
    1
}
