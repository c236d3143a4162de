//! A byte ring buffer: a pipe's buffer, the console's input. Fixed capacity, allocated once
//! (fallibly); `write` takes what fits, `read` gives what is there, each as at most two slices
//! so the caller copies with two memcpys, not byte by byte.

use alloc::vec::Vec;

pub struct Ring {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl Ring {
    /// A ring of `cap` bytes, or `None` when memory runs out.
    pub fn try_new(cap: usize) -> Option<Ring> {
        let mut buf = Vec::new();
        buf.try_reserve_exact(cap).ok()?;
        buf.resize(cap, 0);
        Some(Ring {
            buf,
            head: 0,
            len: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
    pub fn space(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Appends as much of `data` as fits; returns how much.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.space());
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap.max(1);
        let first = n.min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    /// The bytes waiting, as up to two slices (the second after the wrap), oldest first.
    pub fn peek(&self) -> (&[u8], &[u8]) {
        let cap = self.buf.len();
        let first = self.len.min(cap - self.head);
        (
            &self.buf[self.head..self.head + first],
            &self.buf[..self.len - first],
        )
    }

    /// Drops the `n` oldest bytes (after the caller copied them out of `peek`).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % self.buf.len().max(1);
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// Copies up to `out.len()` bytes out; returns how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.peek();
        let n1 = a.len().min(out.len());
        out[..n1].copy_from_slice(&a[..n1]);
        let n2 = b.len().min(out.len() - n1);
        out[n1..n1 + n2].copy_from_slice(&b[..n2]);
        self.consume(n1 + n2);
        n1 + n2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec;

    #[test]
    fn wraps_around() {
        let mut r = Ring::try_new(8).unwrap();
        assert_eq!(r.write(b"abcdef"), 6);
        let mut out = [0u8; 4];
        assert_eq!(r.read(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.write(b"ghijklmn"), 6, "only the space left");
        assert_eq!(r.peek(), (&b"efgh"[..], &b"ijkl"[..]));
        let mut all = [0u8; 16];
        assert_eq!(r.read(&mut all), 8);
        assert_eq!(&all[..8], b"efghijkl");
        assert!(r.is_empty());
    }

    proptest! {
        #[test]
        fn behaves_like_a_queue(ops in proptest::collection::vec((any::<bool>(), 0usize..20), 0..60)) {
            let mut r = Ring::try_new(13).unwrap();
            let mut model = VecDeque::new();
            let mut next = 0u8;
            for (write, n) in ops {
                if write {
                    let data: std::vec::Vec<u8> = (0..n).map(|_| { next = next.wrapping_add(1); next }).collect();
                    let took = r.write(&data);
                    prop_assert_eq!(took, n.min(13 - model.len()));
                    model.extend(&data[..took]);
                } else {
                    let mut out = vec![0u8; n];
                    let got = r.read(&mut out);
                    let want: std::vec::Vec<u8> = (0..got).filter_map(|_| model.pop_front()).collect();
                    prop_assert_eq!(&out[..got], &want[..]);
                    prop_assert_eq!(got, n.min(got + model.len()));
                }
                prop_assert_eq!(r.len(), model.len());
            }
        }
    }
}
