//! cat [FILE...]: copies each file (or standard input, for none or `-`) to standard output.
//! The plainest use of open, read, write and close.
#![no_std]
#![no_main]

use lde_user::fs::{O_RDONLY, close, open};
use lde_user::{Args, eprintln, read, write_all};

lde_user::entry!(main);

/// Copies `fd` to standard output, a buffer at a time.
fn copy(fd: i32) -> Result<(), lde_user::Errno> {
    let mut buf = [0u8; 4096];
    loop {
        let n = read(fd, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        write_all(1, &buf[..n])?;
    }
}

fn main(args: Args) -> i32 {
    let mut status = 0;
    let names: &[&[u8]] = &[b"-"];
    let mut run = |name: &[u8]| {
        let fd = if name == b"-" {
            Ok(0)
        } else {
            open(name, O_RDONLY, 0)
        };
        let result = fd.and_then(|fd| {
            let r = copy(fd);
            if fd != 0 {
                let _ = close(fd);
            }
            r
        });
        if let Err(e) = result {
            let shown = core::str::from_utf8(name).unwrap_or("?");
            eprintln!("cat: {shown}: {e}");
            status = 1;
        }
    };
    if args.len() <= 1 {
        names.iter().for_each(|n| run(n));
    } else {
        (1..args.len())
            .filter_map(|i| args.get_bytes(i))
            .for_each(run);
    }
    status
}
