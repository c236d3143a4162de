//! spin LETTER [ROUNDS] [WORK]: a CPU-bound program. It prints its letter ROUNDS times (default 5),
//! computing for a while between prints *without any system call*: only the timer interrupt can
//! take the CPU from it. Run two (`spin A`, `spin B`) and their lines interleave: preemption.
#![no_std]
#![no_main]

use lde_user::{Args, println};

lde_user::entry!(main);

fn main(args: Args) -> i32 {
    let letter = args.get(1).unwrap_or("?");
    let rounds = args.get_number(2, 5);
    // About 30 ms per round natively (hundreds of timer ticks' worth at HZ=1000... or a few at
    // HZ=100): long enough to be preempted several times between prints.
    let work = args.get_number(3, 30_000_000);
    let mut x: u64 = 0;
    for round in 1..=rounds {
        for i in 0..work {
            // black_box: keep the loop (the compiler would fold it away) and its system-call-free body.
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        println!("spin {letter}: round {round}/{rounds}");
    }
    println!("spin {letter}: done ({:#x})", x & 0xffff);
    0
}
