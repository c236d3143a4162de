//! spinforever: an infinite loop with no system call at all. Beside `sleeper`, it shows that the
//! timer preempts a program that never gives the CPU back on its own.
#![no_std]
#![no_main]

lde_user::entry!(main);

fn main(_args: lde_user::Args) -> i32 {
    lde_user::println!("spinforever: spinning");
    let mut x: u64 = 0;
    loop {
        x = core::hint::black_box(x.wrapping_add(1));
    }
}
