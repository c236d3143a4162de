//! echo [-n] [ARG...]: writes its arguments, separated by spaces, and a newline (none with -n).
#![no_std]
#![no_main]

use lde_user::{Args, write_all};

lde_user::entry!(main);

fn main(args: Args) -> i32 {
    let mut first = 1;
    let newline = args.get_bytes(1) != Some(b"-n");
    if !newline {
        first = 2;
    }
    for i in first..args.len() {
        if i > first && write_all(1, b" ").is_err() {
            return 1;
        }
        if write_all(1, args.get_bytes(i).unwrap_or(b"")).is_err() {
            return 1;
        }
    }
    if newline && write_all(1, b"\n").is_err() {
        return 1;
    }
    0
}
