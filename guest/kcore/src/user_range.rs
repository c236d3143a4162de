//! The first check every user pointer passes: the byte range `[addr, addr + len)` must lie in
//! user space and not wrap. Only then does the kernel walk the caller's page table for each of
//! its pages (`pages`), and only then touch it.

use crate::pagetable::{PAGE, USER_END};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

/// The pages of a user range: `first` up to (not including) `end`, page by page. Empty for a
/// zero-length range, which touches nothing (Linux accepts any pointer with a zero length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pages {
    pub first: u64,
    pub end: u64,
}

impl Iterator for Pages {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        if self.first >= self.end {
            return None;
        }
        let p = self.first;
        self.first += PAGE;
        Some(p)
    }
}

/// The pages `[addr, addr + len)` covers, or `Fault` if the range leaves user space or wraps.
pub fn pages(addr: u64, len: u64) -> Result<Pages, Fault> {
    if len == 0 {
        return Ok(Pages { first: 0, end: 0 });
    }
    let end = addr.checked_add(len).ok_or(Fault)?;
    if end > USER_END {
        return Err(Fault);
    }
    Ok(Pages {
        first: addr & !(PAGE - 1),
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn ranges() {
        assert_eq!(pages(0x1234, 0).unwrap().count(), 0);
        assert_eq!(
            pages(u64::MAX, 0).unwrap().count(),
            0,
            "zero length: any pointer"
        );
        let p: Vec<u64> = pages(0x1ffe, 4).unwrap().collect();
        assert_eq!(p, [0x1000, 0x2000], "straddles a page boundary");
        assert_eq!(pages(0x1000, 0x1000).unwrap().count(), 1);
        assert_eq!(
            pages(USER_END - 8, 8).unwrap().count(),
            1,
            "the last bytes of user space"
        );
        assert_eq!(
            pages(USER_END - 8, 9),
            Err(Fault),
            "one byte into the kernel half"
        );
        assert_eq!(
            pages(0xffff_8000_0000_0000, 1),
            Err(Fault),
            "a kernel address"
        );
        assert_eq!(pages(u64::MAX - 1, 4), Err(Fault), "wraps around");
        assert_eq!(pages(0x1000_0000_0000_0000, 1), Err(Fault), "non-canonical");
    }
}
