//! ls [-a] [-l] [PATH...]: lists each directory's entries (in the directory's order: ours keeps
//! the order they were made in), one per line, or names a file. -a shows names starting with
//! a dot; -l shows the type and permissions, the link count and the size before each name.
#![no_std]
#![no_main]

use lde_user::fs::{DirReader, O_CLOEXEC, O_DIRECTORY, O_RDONLY, Stat, close, open, statat};
use lde_user::{Args, Errno, eprintln, println};

lde_user::entry!(main);

struct Options {
    all: bool,
    long: bool,
}

/// `drwxr-xr-x`: the type letter and the nine permission bits.
fn mode_string(mode: u32) -> [u8; 10] {
    let mut s = *b"----------";
    s[0] = match mode & 0o170000 {
        0o040000 => b'd',
        0o020000 => b'c',
        0o120000 => b'l',
        0o010000 => b'p',
        _ => b'-',
    };
    for (i, c) in b"rwxrwxrwx".iter().enumerate() {
        if mode & (0o400 >> i) != 0 {
            s[1 + i] = *c;
        }
    }
    s
}

fn show(name: &[u8], st: Option<Stat>, opts: &Options) {
    let shown = core::str::from_utf8(name).unwrap_or("?");
    match st {
        Some(st) if opts.long => {
            let m = mode_string(st.mode);
            let m = core::str::from_utf8(&m).unwrap_or("?");
            println!("{m} {:3} {:8} {shown}", st.nlink, st.size);
        }
        _ => println!("{shown}"),
    }
}

fn list_dir(path: &[u8], opts: &Options) -> Result<(), Errno> {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)?;
    let mut dir = DirReader::new(fd);
    let result = loop {
        match dir.next_entry() {
            Ok(Some(e)) => {
                if e.name.starts_with(b".") && !opts.all {
                    continue;
                }
                // The entry's details, looked up in the directory itself (no path to build).
                let st = if opts.long {
                    statat(fd, e.name, 0x100).ok()
                } else {
                    None
                };
                show(e.name, st, opts);
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let _ = close(fd);
    result
}

fn main(args: Args) -> i32 {
    let mut opts = Options {
        all: false,
        long: false,
    };
    let mut first = 1;
    while let Some(opt) = args
        .get_bytes(first)
        .filter(|a| a.starts_with(b"-") && a.len() > 1)
    {
        for &c in &opt[1..] {
            match c {
                b'a' => opts.all = true,
                b'l' => opts.long = true,
                _ => {
                    eprintln!("usage: ls [-a] [-l] [PATH...]");
                    return 2;
                }
            }
        }
        first += 1;
    }
    let paths: &[&[u8]] = &[b"."];
    let many = args.len() - first > 1;
    let mut status = 0;
    let mut run = |path: &[u8]| {
        let shown = core::str::from_utf8(path).unwrap_or("?");
        let r = lde_user::fs::stat(path).and_then(|st| {
            if !st.is_dir() {
                show(path, Some(st), &opts);
                return Ok(());
            }
            if many {
                println!("{shown}:");
            }
            list_dir(path, &opts)
        });
        if let Err(e) = r {
            eprintln!("ls: cannot access '{shown}': {e}");
            status = 1;
        }
    };
    if args.len() <= first {
        paths.iter().for_each(|p| run(p));
    } else {
        (first..args.len())
            .filter_map(|i| args.get_bytes(i))
            .for_each(&mut run);
    }
    status
}
