//! pong [TURNS]: with `ping`, passes the CPU back and forth with sched_yield. Each turn prints one
//! line and yields; when the two are alone, their lines alternate: ping 1, pong 1, ping 2...
#![no_std]
#![no_main]

use lde_user::{Args, println, sched_yield};

lde_user::entry!(main);

fn main(args: Args) -> i32 {
    let turns = args.get_number(1, 5);
    for turn in 1..=turns {
        println!("    pong {turn}");
        sched_yield();
    }
    0
}
