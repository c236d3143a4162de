//! Futexes: the one kernel object a thread library needs. A futex is any aligned 32-bit word of
//! user memory; the kernel keeps no state for it except the tasks waiting on it. `wait` sleeps
//! only if the word still holds the value the caller saw (checked under the task lock, so a
//! waker that changes the word and then calls `wake` cannot slip in between); `wake` wakes up
//! to n of them. Mutexes, condition variables, `pthread_join` (through CLONE_CHILD_CLEARTID) and
//! robust mutexes are built from these in user space.
//!
//! A waiter is keyed by (address space, virtual address), or, for a word in MAP_SHARED memory
//! that several processes map, by its physical address, so a wake from any of them finds it.
//! Waiters sit in one of `FUTEX_BUCKETS` wait queues chosen by hashing the key; each waiter
//! records its key and bitset in its own task (`Process::futex_*`).

use core::sync::atomic::Ordering::Relaxed;

use crate::memory::paging::translate_user;
use crate::percpu::current;
use crate::process::{Process, Tasks, FUTEX_BUCKETS, TASKS};
use crate::scheduler;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{self, copy_from_user, copy_to_user};
use crate::wakeup;
use abi::Errno;
use kcore::runqueue::NIL;

/// Which futex a waiter waits on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The address space's PML4, or 0 for a physical address.
    space: u64,
    addr: u64,
}

/// The key of the running task's futex word at `uaddr`, made present for reading. `private`
/// (FUTEX_PRIVATE_FLAG) promises the word is not shared with another process.
pub fn key(uaddr: u64, private: bool) -> Result<Key, Errno> {
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let me = current();
    let pml4 = me.pml4();
    uaccess::check(pml4, uaddr, 4, false)?;
    if !private && me.mm().is_some_and(|mm| mm.is_shared_at(uaddr)) {
        let pa = translate_user(pml4, uaddr, false).ok_or(Errno::EFAULT)?;
        return Ok(Key { space: 0, addr: pa });
    }
    Ok(Key {
        space: pml4,
        addr: uaddr,
    })
}

fn bucket(k: Key) -> usize {
    let h = (k.addr >> 2 ^ k.space >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - FUTEX_BUCKETS.trailing_zeros())) as usize
}

/// The wait queue of `k`'s bucket, made on first use.
fn queue_for(t: &mut Tasks, k: Key) -> Result<u32, Errno> {
    let b = bucket(k);
    if t.futex_buckets[b] == NIL {
        t.futex_buckets[b] = t.alloc_queue().map_err(|_| Errno::ENOMEM)?;
    }
    Ok(t.futex_buckets[b])
}

fn waits_on(p: &Process, k: Key, bitset: u32) -> bool {
    p.futex_addr.load(Relaxed) == k.addr
        && p.futex_space.load(Relaxed) == k.space
        && p.futex_bitset.load(Relaxed) & bitset != 0
}

fn read_word(uaddr: u64) -> Result<u32, Errno> {
    let mut b = [0u8; 4];
    copy_from_user(current().pml4(), &mut b, uaddr)?;
    Ok(u32::from_le_bytes(b))
}

/// FUTEX_WAIT(_BITSET): blocks the caller on `uaddr` if it still holds `val`, until a wake whose
/// bitset meets `bitset`, the TSC `deadline`, or a handled signal (EINTR). EAGAIN if the word
/// changed; ETIMEDOUT at the deadline.
pub fn wait(
    f: &mut TrapFrame,
    uaddr: u64,
    val: u32,
    bitset: u32,
    deadline: Option<u64>,
    private: bool,
) -> Result<u64, Errno> {
    let k = key(uaddr, private)?;
    let mut t = TASKS.lock();
    // Under the lock: a waker's store and wake come either wholly before this read (we see the
    // new value) or after we are queued (we are woken).
    if read_word(uaddr)? != val {
        return Err(Errno::EAGAIN);
    }
    if deadline.is_some_and(|d| d <= crate::cpu::rdtsc()) {
        return Err(Errno::ETIMEDOUT);
    }
    let q = queue_for(&mut t, k)?;
    let me = current();
    me.futex_space.store(k.space, Relaxed);
    me.futex_addr.store(k.addr, Relaxed);
    me.futex_bitset.store(bitset, Relaxed);
    let timeout = deadline.map(|d| (d, Errno::ETIMEDOUT.ret() as u64));
    scheduler::wait_in_until(t, f, q, crate::signal::state::RESTART_EINTR, timeout);
    Ok(0) // what the waiter sees when woken
}

/// Wakes up to `n` waiters of `k` whose bitset meets `bitset`; returns how many.
fn wake_key(t: &mut Tasks, k: Key, n: u32, bitset: u32) -> u32 {
    let b = bucket(k);
    let q = t.futex_buckets[b];
    if q == NIL || n == 0 {
        return 0;
    }
    let mut left = n;
    let mut taken = t.take_from_queue(q, |p| {
        let yes = left > 0 && waits_on(p, k, bitset);
        left -= yes as u32;
        yes
    });
    let mut woken = 0;
    while let Some(p) = t.pop_taken(&mut taken) {
        wakeup::wake_taken(t, p);
        woken += 1;
    }
    woken
}

/// FUTEX_WAKE(_BITSET).
pub fn wake(uaddr: u64, n: u32, bitset: u32, private: bool) -> Result<u64, Errno> {
    let k = key(uaddr, private)?;
    let mut t = TASKS.lock();
    Ok(wake_key(&mut t, k, n, bitset) as u64)
}

/// FUTEX_REQUEUE and FUTEX_CMP_REQUEUE: wakes up to `n_wake` waiters of `uaddr` and moves up to
/// `n_move` of the rest to `uaddr2` (a condition variable's waiters handed to its mutex, so a
/// broadcast does not wake a herd). With `cmp`, only if `uaddr` still holds it (else EAGAIN).
pub fn requeue(
    uaddr: u64,
    n_wake: u32,
    uaddr2: u64,
    n_move: u32,
    cmp: Option<u32>,
    private: bool,
) -> Result<u64, Errno> {
    let k = key(uaddr, private)?;
    let k2 = key(uaddr2, private)?;
    let mut t = TASKS.lock();
    if let Some(v) = cmp {
        if read_word(uaddr)? != v {
            return Err(Errno::EAGAIN);
        }
    }
    let woken = wake_key(&mut t, k, n_wake, u32::MAX);
    let q = t.futex_buckets[bucket(k)];
    if q == NIL || n_move == 0 || k == k2 {
        return Ok(woken as u64);
    }
    let q2 = queue_for(&mut t, k2)?;
    let mut left = n_move;
    let mut taken = t.take_from_queue(q, |p| {
        let yes = left > 0 && waits_on(p, k, u32::MAX);
        left -= yes as u32;
        yes
    });
    let mut moved = 0;
    while let Some(p) = t.pop_taken(&mut taken) {
        p.futex_space.store(k2.space, Relaxed);
        p.futex_addr.store(k2.addr, Relaxed);
        wakeup::move_taken(&mut t, p, q2);
        moved += 1;
    }
    Ok((woken + moved) as u64)
}

/// FUTEX_WAKE_OP: changes the word at `uaddr2` as `op` encodes (set, add, or, and-not, xor),
/// wakes up to `n` waiters of `uaddr`, and, if the old value of `uaddr2` passes `op`'s
/// comparison, up to `n2` of `uaddr2`'s.
pub fn wake_op(
    uaddr: u64,
    n: u32,
    uaddr2: u64,
    n2: u32,
    op: u32,
    private: bool,
) -> Result<u64, Errno> {
    let sext12 = |v: u32| ((v << 20) as i32) >> 20;
    let (kind, cmp) = ((op >> 28) & 0xf, (op >> 24) & 0xf);
    let (mut oparg, cmparg) = (sext12(op >> 12), sext12(op));
    if kind & 8 != 0 {
        oparg = 1i32.wrapping_shl(oparg as u32 & 31);
    }
    if kind & 7 > 4 || cmp > 5 {
        return Err(Errno::ENOSYS);
    }
    let k = key(uaddr, private)?;
    if !uaddr2.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    uaccess::check(current().pml4(), uaddr2, 4, true)?;
    let k2 = key(uaddr2, private)?;
    let mut t = TASKS.lock();
    let old = read_word(uaddr2)? as i32;
    let new = match kind & 7 {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        _ => old ^ oparg,
    };
    copy_to_user(current().pml4(), uaddr2, &new.to_le_bytes())?;
    let mut woken = wake_key(&mut t, k, n, u32::MAX);
    let pass = match cmp {
        0 => old == cmparg,
        1 => old != cmparg,
        2 => old < cmparg,
        3 => old <= cmparg,
        4 => old > cmparg,
        _ => old >= cmparg,
    };
    if pass {
        woken += wake_key(&mut t, k2, n2, u32::MAX);
    }
    Ok(woken as u64)
}

// What a thread's exit does to the futexes it holds.

const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Entries of a robust list walked at most (Linux's ROBUST_LIST_LIMIT): a list a program
/// corrupted into a cycle ends here.
const ROBUST_LIST_LIMIT: u32 = 2048;

/// The exiting running thread gives up its futexes: each robust mutex it still holds (its
/// robust list, set_robust_list) is marked OWNER_DIED and one waiter woken, and its
/// clear-child-tid word goes to 0 with a wake (pthread_join waits there). Bad pointers end
/// the walk quietly, as on Linux.
pub fn exit_cleanup(me: &Process) {
    if me.mm().is_none() {
        return;
    }
    let head = me.robust_list.swap(0, Relaxed);
    if head != 0 {
        let _ = walk_robust_list(me, head);
    }
    let ctid = me.clear_tid.swap(0, Relaxed);
    if ctid != 0 && copy_to_user(me.pml4(), ctid, &0u32.to_le_bytes()).is_ok() {
        let _ = wake(ctid, 1, u32::MAX, false);
    }
}

fn walk_robust_list(me: &Process, head: u64) -> Result<(), Errno> {
    let pml4 = me.pml4();
    let mut words = [0u8; 24];
    copy_from_user(pml4, &mut words, head)?;
    let word = |i: usize| u64::from_le_bytes(words[i * 8..i * 8 + 8].try_into().unwrap());
    let (mut entry, offset, pending) = (word(0) & !1, word(1), word(2) & !1);
    let mut n = 0;
    while entry != head && entry != 0 && n < ROBUST_LIST_LIMIT {
        let next = uaccess::read_u64(pml4, entry)? & !1;
        if entry != pending {
            owner_died(me, entry.wrapping_add(offset))?;
        }
        entry = next;
        n += 1;
    }
    if pending != 0 {
        owner_died(me, pending.wrapping_add(offset))?;
    }
    Ok(())
}

/// Linux's handle_futex_death: if the dying thread owns the lock word at `uaddr`, it becomes
/// "owner died", keeping the waiters bit, and one waiter is woken to take it.
fn owner_died(me: &Process, uaddr: u64) -> Result<(), Errno> {
    let val = read_word(uaddr)?;
    if val & FUTEX_TID_MASK != me.pid() {
        return Ok(());
    }
    let new = (val & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
    copy_to_user(me.pml4(), uaddr, &new.to_le_bytes())?;
    if val & FUTEX_WAITERS != 0 {
        wake(uaddr, 1, u32::MAX, false)?;
    }
    Ok(())
}
