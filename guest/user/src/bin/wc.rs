//! wc [-l] [-w] [-c] [FILE...]: counts the lines, words and bytes of each file (or of standard
//! input, read to its end), and their total when there are several. A word is a run of bytes
//! other than space, tab and newline (and the other ASCII blanks), as in the C locale. The
//! flags choose the columns; as GNU wc, one column for standard input alone is printed
//! unpadded, anything else 7 wide.
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
        let n = match read(fd, &mut buf) {
            Ok(0) => return Ok(c),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
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

/// Which columns to print: lines, words, bytes.
type Columns = [bool; 3];

fn show(c: Counts, cols: Columns, name: &str) {
    let mut v = [0u64; 3];
    let mut k = 0;
    for (want, n) in cols.iter().zip([c.lines, c.words, c.bytes]) {
        if *want {
            v[k] = n;
            k += 1;
        }
    }
    let sep = if name.is_empty() { "" } else { " " };
    match &v[..k] {
        [a] if name.is_empty() => println!("{a}"),
        [a] => println!("{a}{sep}{name}"),
        [a, b] => println!("{a:7} {b:7}{sep}{name}"),
        [a, b, c] => println!("{a:7} {b:7} {c:7}{sep}{name}"),
        _ => {}
    }
}

fn main(args: Args) -> i32 {
    let mut cols: Columns = [false; 3];
    let mut first = 1;
    while let Some(flag) = args
        .get(first)
        .filter(|a| a.len() > 1 && a.starts_with('-'))
    {
        for f in flag.bytes().skip(1) {
            match f {
                b'l' => cols[0] = true,
                b'w' => cols[1] = true,
                b'c' => cols[2] = true,
                _ => {
                    eprintln!("wc: usage: wc [-l] [-w] [-c] [FILE...]");
                    return 2;
                }
            }
        }
        first += 1;
    }
    if cols == [false; 3] {
        cols = [true; 3];
    }
    if args.len() <= first {
        return match count(0) {
            Ok(c) => {
                show(c, cols, "");
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
    for i in first..args.len() {
        let name = args.get(i).unwrap_or("?");
        let r = open(name.as_bytes(), O_RDONLY, 0).and_then(|fd| {
            let r = count(fd);
            let _ = close(fd);
            r
        });
        match r {
            Ok(c) => {
                show(c, cols, name);
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
    if args.len() > first + 1 {
        show(total, cols, "total");
    }
    status
}
