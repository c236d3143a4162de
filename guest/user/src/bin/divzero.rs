//! divzero: divides by zero in ring 3. The CPU raises #DE; the kernel kills only this process
//! (SIGFPE, shell status 136) and the others go on.
#![no_std]
#![no_main]

lde_user::entry!(main);

fn main(_args: lde_user::Args) -> i32 {
    lde_user::println!("divzero: dividing by zero");
    let quotient: u32;
    // SAFETY: `div` with a zero divisor raises #DE; it touches only the named registers. (Rust's
    // own `/` would check for zero and panic instead, so we use the instruction directly.)
    unsafe {
        core::arch::asm!(
            "div ecx",
            inout("eax") 42u32 => quotient,
            inout("edx") 0u32 => _,
            in("ecx") core::hint::black_box(0u32),
            options(nomem, nostack),
        );
    }
    lde_user::println!("divzero: still alive, quotient {quotient}!");
    1
}
