//! hello: the smallest ring-3 program. One `write` system call, then exit 0.
#![no_std]
#![no_main]

lde_user::entry!(main);

fn main(_args: lde_user::Args) -> i32 {
    let _ = lde_user::write(1, b"hello from ring 3\n");
    0
}
