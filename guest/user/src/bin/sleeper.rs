//! sleeper: nanosleep for 100 ms, then print how long it slept and exit 0 (1 if it woke early).
//! Beside `spinforever`, it only finishes if the timer preempts the spinner.
#![no_std]
#![no_main]

use lde_user::{monotonic_ns, println, sleep_ms};

lde_user::entry!(main);

fn main(_args: lde_user::Args) -> i32 {
    let start = monotonic_ns();
    if let Err(e) = sleep_ms(100) {
        println!("sleeper: nanosleep failed: {e}");
        return 1;
    }
    let slept_ms = monotonic_ns().saturating_sub(start) / 1_000_000;
    println!("sleeper: woke after {slept_ms} ms");
    if slept_ms >= 100 { 0 } else { 1 }
}
