//! privileged [cli|hlt|lidt|wrmsr|in|out]: executes a ring-0-only instruction (default `cli`) in
//! ring 3. The CPU raises #GP; the kernel kills only this process (SIGSEGV, as Linux reports a
//! #GP; shell status 139).
#![no_std]
#![no_main]

use core::arch::asm;
use lde_user::{Args, println};

lde_user::entry!(main);

fn main(args: Args) -> i32 {
    let which = args.get(1).unwrap_or("cli");
    println!("privileged: executing {which} in ring 3");
    // SAFETY: each of these raises #GP at CPL 3 (IOPL is 0, no I/O bitmap), so none of them has
    // any effect; if one ran anyway, it only touches the named registers (lidt reads 10 zero
    // bytes on our stack, and would load an empty IDT, which is why it must not run).
    unsafe {
        match which {
            "cli" => asm!("cli", options(nomem, nostack)),
            "hlt" => asm!("hlt", options(nomem, nostack)),
            "lidt" => {
                let idtr = [0u8; 10];
                asm!("lidt [{}]", in(reg) &idtr, options(readonly, nostack));
            }
            "wrmsr" => {
                asm!("wrmsr", in("ecx") 0xc000_0080u32, in("eax") 0, in("edx") 0, options(nomem, nostack))
            }
            "in" => asm!("in al, dx", in("dx") 0x3f8u16, out("al") _, options(nomem, nostack)),
            "out" => asm!("out dx, al", in("dx") 0xf4u16, in("al") 0u8, options(nomem, nostack)),
            _ => {
                println!("privileged: unknown instruction {which}");
                return 2;
            }
        }
    }
    println!("privileged: {which} did not fault!");
    1
}
