//! mkdir [-p] DIR...: makes each directory; with -p, its missing parents too, and an existing
//! directory is no error.
#![no_std]
#![no_main]

use lde_user::fs::{mkdir, stat};
use lde_user::{Args, Errno, eprintln};

lde_user::entry!(main);

/// `mkdir -p`: every prefix of `path` that ends before a slash, then `path` itself.
fn mkdir_parents(path: &[u8]) -> Result<(), Errno> {
    for (i, &b) in path.iter().enumerate() {
        if b == b'/' && i > 0 && path[i - 1] != b'/' {
            make_if_missing(&path[..i])?;
        }
    }
    make_if_missing(path)
}

fn make_if_missing(path: &[u8]) -> Result<(), Errno> {
    match mkdir(path, 0o777) {
        Err(Errno::EEXIST) if stat(path).is_ok_and(|s| s.is_dir()) => Ok(()),
        r => r,
    }
}

fn main(args: Args) -> i32 {
    let parents = args.get_bytes(1) == Some(b"-p");
    let first = if parents { 2 } else { 1 };
    if args.len() <= first {
        eprintln!("usage: mkdir [-p] DIR...");
        return 2;
    }
    let mut status = 0;
    for path in (first..args.len()).filter_map(|i| args.get_bytes(i)) {
        let r = if parents {
            mkdir_parents(path)
        } else {
            mkdir(path, 0o777)
        };
        if let Err(e) = r {
            let shown = core::str::from_utf8(path).unwrap_or("?");
            eprintln!("mkdir: cannot create directory '{shown}': {e}");
            status = 1;
        }
    }
    status
}
