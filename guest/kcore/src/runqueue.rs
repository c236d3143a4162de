//! The scheduler's ready queue: a FIFO of task slots, linked through the tasks themselves (each
//! task has one `next` link), so it is O(1) to push and to pop and needs no memory of its own
//! however many tasks there are. The links are wherever the caller keeps them ([`Links`]).

/// "No task": the end of the queue.
pub const NIL: u32 = u32::MAX;

/// Where the queue's `next` links live: one per task slot.
pub trait Links {
    fn next(&self, slot: u32) -> u32;
    fn set_next(&mut self, slot: u32, next: u32);
}

#[derive(Debug)]
pub struct RunQueue {
    head: u32,
    tail: u32,
    len: u32,
}

impl Default for RunQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl RunQueue {
    pub const fn new() -> RunQueue {
        RunQueue {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `slot`, which must not be queued already.
    pub fn push_back(&mut self, links: &mut impl Links, slot: u32) {
        links.set_next(slot, NIL);
        if self.tail == NIL {
            self.head = slot;
        } else {
            links.set_next(self.tail, slot);
        }
        self.tail = slot;
        self.len += 1;
    }

    /// The slot `pop_front` would take, left in the queue.
    pub fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    pub fn pop_front(&mut self, links: &mut impl Links) -> Option<u32> {
        if self.head == NIL {
            return None;
        }
        let slot = self.head;
        self.head = links.next(slot);
        if self.head == NIL {
            self.tail = NIL;
        }
        self.len -= 1;
        Some(slot)
    }

    /// Takes `slot` out of the queue wherever it is (O(n): for a task that dies while ready).
    /// Returns whether it was there.
    pub fn remove(&mut self, links: &mut impl Links, slot: u32) -> bool {
        let mut prev = NIL;
        let mut at = self.head;
        while at != NIL {
            let next = links.next(at);
            if at == slot {
                if prev == NIL {
                    self.head = next;
                } else {
                    links.set_next(prev, next);
                }
                if self.tail == slot {
                    self.tail = prev;
                }
                self.len -= 1;
                return true;
            }
            prev = at;
            at = next;
        }
        false
    }

    /// Moves the slots for which `pick` says yes, in queue order, into a queue of their own (one
    /// pass: a futex wake takes its waiters out of a shared bucket this way). `pick` may stop
    /// saying yes once it has enough.
    pub fn split_off_where(
        &mut self,
        links: &mut impl Links,
        mut pick: impl FnMut(u32) -> bool,
    ) -> RunQueue {
        let mut taken = RunQueue::new();
        let mut prev = NIL;
        let mut at = self.head;
        while at != NIL {
            let next = links.next(at);
            if pick(at) {
                if prev == NIL {
                    self.head = next;
                } else {
                    links.set_next(prev, next);
                }
                if self.tail == at {
                    self.tail = prev;
                }
                self.len -= 1;
                taken.push_back(links, at);
            } else {
                prev = at;
            }
            at = next;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    struct V(Vec<u32>);
    impl Links for V {
        fn next(&self, s: u32) -> u32 {
            self.0[s as usize]
        }
        fn set_next(&mut self, s: u32, n: u32) {
            self.0[s as usize] = n;
        }
    }

    fn drain(q: &mut RunQueue, l: &mut V) -> Vec<u32> {
        core::iter::from_fn(|| q.pop_front(l)).collect()
    }

    #[test]
    fn fifo_order() {
        let mut l = V(vec![NIL; 8]);
        let mut q = RunQueue::new();
        assert_eq!(q.pop_front(&mut l), None);
        for s in [3, 1, 4] {
            q.push_back(&mut l, s);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.front(), Some(3));
        assert_eq!(q.pop_front(&mut l), Some(3));
        assert_eq!(q.front(), Some(1));
        q.push_back(&mut l, 3);
        assert_eq!(drain(&mut q, &mut l), [1, 4, 3]);
        assert!(q.is_empty());
        q.push_back(&mut l, 7);
        assert_eq!(drain(&mut q, &mut l), [7], "usable again once empty");
    }

    #[test]
    fn remove_anywhere() {
        let mut l = V(vec![NIL; 8]);
        let mut q = RunQueue::new();
        for s in 0..5 {
            q.push_back(&mut l, s);
        }
        assert!(q.remove(&mut l, 0), "head");
        assert!(q.remove(&mut l, 4), "tail");
        assert!(q.remove(&mut l, 2), "middle");
        assert!(!q.remove(&mut l, 2), "not there");
        q.push_back(&mut l, 6);
        assert_eq!(drain(&mut q, &mut l), [1, 3, 6]);
    }

    #[test]
    fn split_off_keeps_both_orders() {
        let mut l = V(vec![NIL; 10]);
        let mut q = RunQueue::new();
        for s in 0..10 {
            q.push_back(&mut l, s);
        }
        let mut n = 0;
        let mut odd = q.split_off_where(&mut l, |s| {
            let yes = s % 2 == 1 && n < 3;
            n += yes as u32;
            yes
        });
        assert_eq!(odd.len(), 3);
        assert_eq!(q.len(), 7);
        assert_eq!(drain(&mut odd, &mut l), [1, 3, 5]);
        q.push_back(&mut l, 3);
        assert_eq!(drain(&mut q, &mut l), [0, 2, 4, 6, 7, 8, 9, 3]);
        let mut all = RunQueue::new();
        for s in [4, 2] {
            all.push_back(&mut l, s);
        }
        let mut taken = all.split_off_where(&mut l, |_| true);
        assert!(all.is_empty());
        all.push_back(&mut l, 9);
        assert_eq!(drain(&mut all, &mut l), [9], "tail was reset");
        assert_eq!(drain(&mut taken, &mut l), [4, 2]);
    }

    #[test]
    fn many_tasks() {
        let n = 5000;
        let mut l = V(vec![NIL; n]);
        let mut q = RunQueue::new();
        for s in 0..n as u32 {
            q.push_back(&mut l, s);
        }
        assert_eq!(drain(&mut q, &mut l), (0..n as u32).collect::<Vec<_>>());
    }
}
