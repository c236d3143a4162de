//! getpids [N]: makes N (default 3000) getpid calls in a row and prints how many it made. The
//! cheapest call there is, many times over: with `--trace` the kernel's buffer (1024 records)
//! fills inside the recording system-call entry itself, which must hand it to the VMM and
//! lose nothing (tests/trace.rs).
#![no_std]
#![no_main]

use lde_user::{Args, println};

lde_user::entry!(main);

fn main(args: Args) -> i32 {
    let n = args.get_number(1, 3000);
    let me = lde_user::getpid();
    for _ in 0..n {
        if lde_user::getpid() != me {
            println!("getpids: getpid changed");
            return 1;
        }
    }
    println!("getpids: {n} calls");
    0
}
