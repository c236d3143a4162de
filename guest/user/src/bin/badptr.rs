//! badptr: hands `write` buffers it may not read: a kernel address, a non-canonical one, an
//! unmapped page and a length that wraps around the address space. Each must fail with -EFAULT
//! while the program goes on. Exits 0 iff all four did.
#![no_std]
#![no_main]

use lde_user::syscall::{nr, syscall3};
use lde_user::{Errno, println};

lde_user::entry!(main);

fn main(_args: lde_user::Args) -> i32 {
    let text = b"this line must not be printed\n";
    let cases: [(&str, usize, usize); 4] = [
        ("kernel pointer", 0xffff_ffff_8010_0000, 16),
        ("non-canonical pointer", 0x8000_0000_0000_0000, 16),
        ("unmapped pointer", 0x1000, 16),
        ("wrapping length", text.as_ptr() as usize, usize::MAX - 8),
    ];
    let mut ok = true;
    for (what, ptr, len) in cases {
        // SAFETY: write only reads from (ptr, len); none of our memory is written whatever the
        // kernel does, and checking these pointers is the kernel's job under test.
        let ret = Errno::from_ret(unsafe { syscall3(nr::WRITE, 1, ptr, len) });
        let good = ret == Err(Errno::EFAULT);
        ok &= good;
        match ret {
            Ok(n) => {
                println!("badptr: write({what} {ptr:#x}, {len:#x}) = {n}, expected EFAULT: FAIL")
            }
            Err(e) => println!(
                "badptr: write({what} {ptr:#x}, {len:#x}) = -{e}: {}",
                if good { "ok" } else { "FAIL" }
            ),
        }
    }
    if ok { 0 } else { 1 }
}
