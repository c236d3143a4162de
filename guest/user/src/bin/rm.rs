//! rm [-r] [-f] PATH...: removes files; with -r, directories and everything in them (each
//! directory read with getdents64, its entries removed through the directory's descriptor with
//! unlinkat, so no path is ever built); with -f, a missing file is no error.
#![no_std]
#![no_main]

use lde_user::fs::{
    AT_FDCWD, AT_REMOVEDIR, DirReader, O_CLOEXEC, O_DIRECTORY, O_RDONLY, close, openat, unlinkat,
};
use lde_user::{Args, Errno, eprintln};

lde_user::entry!(main);

const DT_DIR: u8 = 4;

/// Empties directory `name` (in `dirfd`) and removes it.
fn remove_tree(dirfd: i32, name: &[u8], depth: u32) -> Result<(), Errno> {
    if depth > 64 {
        return Err(Errno::ELOOP);
    }
    let fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)?;
    let mut dir = DirReader::new(fd);
    let mut result = Ok(());
    loop {
        let entry = match dir.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        if entry.name == b"." || entry.name == b".." {
            continue;
        }
        // A copy of the name: the reader's buffer is refilled by the recursion.
        let mut child = [0u8; 256];
        let n = entry.name.len().min(255);
        child[..n].copy_from_slice(&entry.name[..n]);
        let is_dir = entry.d_type == DT_DIR;
        let r = if is_dir {
            remove_tree(fd, &child[..n], depth + 1)
        } else {
            unlinkat(fd, &child[..n], 0)
        };
        if r.is_err() {
            result = r;
        }
    }
    let _ = close(fd);
    result?;
    unlinkat(dirfd, name, AT_REMOVEDIR)
}

fn main(args: Args) -> i32 {
    let (mut recursive, mut force, mut first) = (false, false, 1);
    while let Some(opt) = args
        .get_bytes(first)
        .filter(|a| a.starts_with(b"-") && a.len() > 1)
    {
        for &c in &opt[1..] {
            match c {
                b'r' | b'R' => recursive = true,
                b'f' => force = true,
                _ => {
                    eprintln!("usage: rm [-r] [-f] PATH...");
                    return 2;
                }
            }
        }
        first += 1;
    }
    let mut status = 0;
    for path in (first..args.len()).filter_map(|i| args.get_bytes(i)) {
        let r = match unlinkat(AT_FDCWD, path, 0) {
            Err(Errno::EISDIR) if recursive => remove_tree(AT_FDCWD, path, 0),
            Err(Errno::ENOENT) if force => Ok(()),
            r => r,
        };
        if let Err(e) = r {
            let shown = core::str::from_utf8(path).unwrap_or("?");
            eprintln!("rm: cannot remove '{shown}': {e}");
            status = 1;
        }
    }
    status
}
