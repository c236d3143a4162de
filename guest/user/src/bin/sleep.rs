//! sleep SECONDS: nanosleep for SECONDS (decimals allowed: `sleep 0.25`), then exit 0.
#![no_std]
#![no_main]

use lde_user::{Args, Errno, Timespec, eprintln, monotonic_ns, nanosleep};

lde_user::entry!(main);

/// "1.5" as nanoseconds; None unless digits with at most one point.
fn parse_seconds(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
        || whole.len() > 9
    {
        return None;
    }
    let mut ns = whole
        .bytes()
        .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'))
        * 1_000_000_000;
    let mut scale = 100_000_000;
    for d in frac.bytes().take(9) {
        ns += u64::from(d - b'0') * scale;
        scale /= 10;
    }
    Some(ns)
}

fn main(args: Args) -> i32 {
    let Some(ns) = args.get(1).and_then(parse_seconds) else {
        eprintln!("sleep: usage: sleep SECONDS (for example 2 or 0.5)");
        return 1;
    };
    // An interrupted sleep goes on for what is left, as coreutils' does.
    let end = monotonic_ns() + ns;
    loop {
        let now = monotonic_ns();
        if now >= end {
            return 0;
        }
        match nanosleep(&Timespec::from_nanos(end - now)) {
            Ok(()) | Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("sleep: {e}");
                return 1;
            }
        }
    }
}
