//! wc [FILE...]: counts the lines, words and bytes of each file (or of standard input), and
//! their total when there are several. A word is a run of bytes other than space, tab and
//! newline (and the other ASCII blanks), as in the C locale.
#![no_std]
#![no_main]

use lde_user::fs::{O_RDONLY, close, open};
use lde_user::{Args, Errno, eprintln, println, read};

lde_user::entry!(main);

#[derive(Default, Clone, Copy)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
}

fn count(fd: i32) -> Result<Counts, Errno> {
    let mut c = Counts::default();
    let mut in_word = false;
    let mut buf = [0u8; 4096];
    loop {
        let n = read(fd, &mut buf)?;
        if n == 0 {
            return Ok(c);
        }
        c.bytes += n as u64;
        for &b in &buf[..n] {
            if b == b'\n' {
                c.lines += 1;
            }
            let blank = matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
            if !blank && !in_word {
                c.words += 1;
            }
            in_word = !blank;
        }
    }
}

fn show(c: Counts, name: &str) {
    if name.is_empty() {
        println!("{:7} {:7} {:7}", c.lines, c.words, c.bytes);
    } else {
        println!("{:7} {:7} {:7} {}", c.lines, c.words, c.bytes, name);
    }
}

fn main(args: Args) -> i32 {
    if args.len() <= 1 {
        return match count(0) {
            Ok(c) => {
                show(c, "");
                0
            }
            Err(e) => {
                eprintln!("wc: {e}");
                1
            }
        };
    }
    let mut total = Counts::default();
    let mut status = 0;
    for i in 1..args.len() {
        let name = args.get(i).unwrap_or("?");
        let r = open(name.as_bytes(), O_RDONLY, 0).and_then(|fd| {
            let r = count(fd);
            let _ = close(fd);
            r
        });
        match r {
            Ok(c) => {
                show(c, name);
                total.lines += c.lines;
                total.words += c.words;
                total.bytes += c.bytes;
            }
            Err(e) => {
                eprintln!("wc: {name}: {e}");
                status = 1;
            }
        }
    }
    if args.len() > 2 {
        show(total, "total");
    }
    status
}
