//! exit0_padded: exit0 with 2 MiB of machine code it never runs (int3s in its text segment).
//! `vmm bench` execs it beside exit0: since exec maps a program's pages instead of copying
//! them, its size must cost nothing (issue 10's target: a ratio of at most 1.1).
#![no_std]
#![no_main]

lde_user::entry!(main);

/// Never executed or read: it is there to make the file 2 MiB larger, in an executable segment.
#[used]
#[unsafe(link_section = ".text.padding")]
static PADDING: [u8; 2 << 20] = [0xcc; 2 << 20];

fn main(_args: lde_user::Args) -> i32 {
    0
}
