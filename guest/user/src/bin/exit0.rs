//! exit0: exits at once with status 0, doing nothing else. The smallest program there is to
//! exec: `vmm bench` times and counts fork + exec + exit + wait of it, in our guest and (the
//! same file) on the host Linux.
#![no_std]
#![no_main]

lde_user::entry!(main);

fn main(_args: lde_user::Args) -> i32 {
    0
}
