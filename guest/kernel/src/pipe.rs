//! Pipes (OSTEP 5's `pipe()`, xv6's pipe.c): a ring buffer in the kernel between a writing end
//! and a reading end. Readers wait while it is empty and writers while it is full, each in a
//! wait queue of the scheduler's; end-of-file once the last writer is gone, EPIPE and SIGPIPE
//! once the last reader is. A write of at most `PIPE_BUF` bytes is atomic.
//!
//! A reader that blocks on an empty pipe leaves where its bytes should go (`read_buf`,
//! `read_len` of its process), and the next writer copies them straight into its memory and
//! completes its read: the reader wakes up with its `read` already returned, instead of running
//! the call again. That is what makes a context switch through a pipe little more than one
//! through `sched_yield`.
//!
//! The pipe object itself (`file::Pipe`, what a pipe end's open file points at) is defined with
//! the other kinds of open file in file.rs, below the scheduler; what it does is all here.

use core::sync::atomic::Ordering::Relaxed;

use crate::file::{Pipe, PipeState};
use crate::karc::Karc;
use crate::memory::{phys_to_virt, PAGE_SIZE};
use crate::percpu::current;
use crate::process::{Process, TASKS};
use crate::scheduler;
use crate::signal::send;
use crate::signal::state::{SigInfo, RESTART_NONE, RESTART_SYSCALL};
use crate::sync::IrqLock;
use crate::sys_result::SysResult;
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, copy_to_user, copy_to_user_in};
use crate::wakeup;
use abi::signal::SIGPIPE;
use abi::Errno;
use kcore::ring::Ring;

/// The buffer: 16 KiB (Linux has 64 KiB; POSIX asks for at least PIPE_BUF).
pub const PIPE_SIZE: usize = 16 * 1024;
/// Writes of up to this many bytes are atomic (never interleaved with another writer's).
pub const PIPE_BUF: usize = 4096;
/// Bytes copied per step between user memory and the kernel.
const CHUNK: usize = 512;

impl Pipe {
    /// A pipe with one reader and one writer.
    pub fn new() -> Result<Karc<Pipe>, Errno> {
        let ring = Ring::try_new(PIPE_SIZE).ok_or(Errno::ENOMEM)?;
        let (read_q, write_q) = {
            let mut t = TASKS.lock();
            let r = t.alloc_queue().map_err(|_| Errno::ENOMEM)?;
            match t.alloc_queue() {
                Ok(w) => (r, w),
                Err(_) => {
                    t.free_queue(r);
                    return Err(Errno::ENOMEM);
                }
            }
        };
        Karc::try_new(Pipe {
            state: IrqLock::new(
                "pipe",
                PipeState {
                    ring,
                    readers: 1,
                    writers: 1,
                    read_q,
                    write_q,
                },
            ),
        })
        .map_err(|_| {
            let mut t = TASKS.lock();
            t.free_queue(read_q);
            t.free_queue(write_q);
            Errno::ENOMEM
        })
    }

    /// An end's last open file is gone (fork and dup share open files, so this is when the
    /// last descriptor of that end closed).
    pub fn close_end(&self, writer: bool) {
        let mut s = self.state.lock();
        let mut t = TASKS.lock();
        if writer {
            s.writers -= 1;
            if s.writers == 0 {
                wakeup::wake_all(&mut t, s.read_q); // they see end-of-file
            }
        } else {
            s.readers -= 1;
            if s.readers == 0 {
                wakeup::wake_all(&mut t, s.write_q); // they see EPIPE
            }
        }
        crate::wakeup::wake_pollers(&mut t);
    }

    /// read(2) on the reading end.
    pub fn read(&self, f: &mut TrapFrame, buf: u64, count: u64, nonblock: bool) -> SysResult {
        let me = current();
        let mut s = self.state.lock();
        if count == 0 {
            return Ok(0);
        }
        if !s.ring.is_empty() {
            let n = copy_out(&mut s.ring, me.pml4(), buf, count)?;
            let mut t = TASKS.lock();
            wakeup::wake_all(&mut t, s.write_q);
            crate::wakeup::wake_pollers(&mut t);
            return Ok(n);
        }
        if s.writers == 0 {
            return Ok(0);
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        me.read_buf.store(buf, Relaxed);
        me.read_len.store(count, Relaxed);
        let q = s.read_q;
        drop(s);
        scheduler::wait_in(TASKS.lock(), f, q, RESTART_SYSCALL);
        Ok(f.rax) // the call's number: it runs again if woken without a writer completing it
    }

    /// write(2) on the writing end.
    pub fn write(&self, f: &mut TrapFrame, buf: u64, count: u64, nonblock: bool) -> SysResult {
        let me = current();
        let mut s = self.state.lock();
        if let Some(n) = direct_write(&s, me, buf, count) {
            return Ok(n);
        }
        let done_before = me.io_progress.swap(0, Relaxed);
        if s.readers == 0 {
            drop(s);
            let mut t = TASKS.lock();
            send::post(&mut t, me, SIGPIPE, SigInfo::user(SIGPIPE, me.pid()));
            return Err(Errno::EPIPE);
        }
        let total = count;
        let mut done = done_before.min(total);
        while done < total {
            let left = total - done;
            // A reader already waits and nothing is buffered: straight into its memory.
            if s.ring.is_empty() {
                let mut t = TASKS.lock();
                if let Some(r) = wakeup::take_waiter(&mut t, s.read_q) {
                    // The common case, done under the one lock: a few bytes, page to page.
                    let want = r.read_len.load(Relaxed).min(left);
                    let dst = r.read_buf.load(Relaxed);
                    if copy_within_pages(me, buf + done, r, dst, want) {
                        complete_read(&mut t, r, want);
                        done += want;
                        continue;
                    }
                    drop(t);
                    done += hand_over(me.pml4(), r, buf + done, left)?;
                    continue;
                }
            }
            let space = s.ring.space() as u64;
            let fits = if left <= PIPE_BUF as u64 {
                space >= left
            } else {
                space > 0
            };
            if !fits {
                if nonblock {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EAGAIN)
                    };
                }
                // Wait for room; the call runs again for the rest.
                me.io_progress.store(done, Relaxed);
                let q = s.write_q;
                drop(s);
                scheduler::wait_in(TASKS.lock(), f, q, RESTART_SYSCALL);
                return Ok(f.rax);
            }
            let n = left.min(space);
            copy_in(&mut s.ring, me.pml4(), buf + done, n)?;
            done += n;
            let mut t = TASKS.lock();
            wakeup::wake_all(&mut t, s.read_q);
            crate::wakeup::wake_pollers(&mut t);
        }
        Ok(done)
    }

    /// Writes kernel bytes (sendfile): what fits now, never blocking; EPIPE (and SIGPIPE)
    /// with no reader, EAGAIN when full. Blocked readers wake and read again.
    pub fn write_kernel(&self, data: &[u8]) -> Result<usize, Errno> {
        let me = current();
        let mut s = self.state.lock();
        if s.readers == 0 {
            drop(s);
            let mut t = TASKS.lock();
            send::post(&mut t, me, SIGPIPE, SigInfo::user(SIGPIPE, me.pid()));
            return Err(Errno::EPIPE);
        }
        let n = data.len().min(s.ring.space());
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        s.ring.write(&data[..n]);
        let mut t = TASKS.lock();
        wakeup::wake_all(&mut t, s.read_q);
        crate::wakeup::wake_pollers(&mut t);
        Ok(n)
    }

    /// poll's view: (bytes buffered, room left, readers, writers).
    pub fn poll_state(&self) -> (usize, usize, u32, u32) {
        let s = self.state.lock();
        (s.ring.len(), s.ring.space(), s.readers, s.writers)
    }

    /// Bytes waiting to be read (FIONREAD).
    pub fn available(&self) -> usize {
        self.state.lock().ring.len()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let s = self.state.lock();
        let mut t = TASKS.lock();
        t.free_queue(s.read_q);
        t.free_queue(s.write_q);
    }
}

/// The case a ping-pong through two pipes lives on, kept short: nothing buffered, a reader
/// waiting for at least `count` bytes, and both buffers within one present page each. The
/// bytes go straight into the reader's memory and its read is complete. None (nothing done)
/// otherwise: `write` takes its general way.
#[inline(always)]
fn direct_write(s: &PipeState, me: &Process, buf: u64, count: u64) -> Option<u64> {
    if !s.ring.is_empty() || s.readers == 0 || me.io_progress.load(Relaxed) != 0 {
        return None;
    }
    let mut t = TASKS.lock();
    let r = wakeup::first_waiter(&mut t, s.read_q)?;
    if count > r.read_len.load(Relaxed)
        || !copy_within_pages(me, buf, r, r.read_buf.load(Relaxed), count)
    {
        return None;
    }
    wakeup::take_waiter(&mut t, s.read_q);
    complete_read(&mut t, r, count);
    Some(count)
}

/// Copies up to `count` buffered bytes to user memory; returns how many.
fn copy_out(ring: &mut Ring, pml4: u64, buf: u64, count: u64) -> SysResult {
    let (a, b) = ring.peek();
    let n1 = a.len().min(count as usize);
    let n2 = b.len().min(count as usize - n1);
    copy_to_user(pml4, buf, &a[..n1])?;
    copy_to_user(pml4, buf + n1 as u64, &b[..n2])?;
    ring.consume(n1 + n2);
    Ok((n1 + n2) as u64)
}

/// Copies `n` bytes (they fit) from user memory into the ring, a chunk at a time.
fn copy_in(ring: &mut Ring, pml4: u64, buf: u64, n: u64) -> Result<(), Errno> {
    let mut chunk = [0u8; CHUNK];
    let mut at = 0;
    while at < n {
        let k = (n - at).min(CHUNK as u64) as usize;
        copy_from_user(pml4, &mut chunk[..k], buf + at)?;
        ring.write(&chunk[..k]);
        at += k as u64;
    }
    Ok(())
}

/// The common hand-over, a few bytes that cross no page on either side, both pages present
/// with the access allowed: copied from our page to the reader's through the direct map, with
/// no bounce buffer and no page-by-page loop. False (nothing copied) otherwise: the caller then
/// takes the general way, which also makes missing pages appear.
#[inline(always)]
fn copy_within_pages(me: &Process, src: u64, reader: &Process, dst: u64, n: u64) -> bool {
    // Within one page (n <= PAGE_SIZE, so no overflow); the translation refuses a page past
    // the user half.
    let fits = |a: u64| (a & (PAGE_SIZE - 1)) + n <= PAGE_SIZE;
    if n == 0 || n > PAGE_SIZE || !fits(src) || !fits(dst) {
        return false;
    }
    let (Some(from), Some(to)) = (
        me.write_src_tlb.translate_user(me.pml4(), src, false),
        reader.read_dst_tlb.translate_user(reader.pml4(), dst, true),
    ) else {
        return false;
    };
    // SAFETY: both ranges lie within one user page each, present and user-accessible (and the
    // reader's writable), checked just now in their own page tables; the direct map covers all
    // RAM; one CPU with interrupts off, so neither page goes away meanwhile. Two distinct
    // processes' private pages, or one shared page: `copy` allows overlap.
    unsafe {
        copy_bytes(
            phys_to_virt(from) as *const u8,
            phys_to_virt(to) as *mut u8,
            n as usize,
        )
    };
    true
}

/// `core::ptr::copy`, without a call into `memmove` for the few bytes a ping-pong passes (its
/// set-up alone is 20 instructions, each ~2,000 cycles on a software KVM): up to 16 bytes as
/// two loads and two stores that may overlap, all loads before any store, so `src` and `dst`
/// may overlap too.
///
/// # Safety
/// As for `core::ptr::copy`: both ranges valid for `n` bytes.
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY (every case): each access lies within `[src, src + n)` or `[dst, dst + n)`, which
    // the caller promises are valid; x86-64 allows unaligned accesses.
    unsafe {
        match n {
            8..=16 => {
                let a = src.cast::<u64>().read_unaligned();
                let b = src.add(n - 8).cast::<u64>().read_unaligned();
                dst.cast::<u64>().write_unaligned(a);
                dst.add(n - 8).cast::<u64>().write_unaligned(b);
            }
            4..=7 => {
                let a = src.cast::<u32>().read_unaligned();
                let b = src.add(n - 4).cast::<u32>().read_unaligned();
                dst.cast::<u32>().write_unaligned(a);
                dst.add(n - 4).cast::<u32>().write_unaligned(b);
            }
            1..=3 => {
                let (a, m, b) = (src.read(), src.add(n / 2).read(), src.add(n - 1).read());
                dst.write(a);
                dst.add(n / 2).write(m);
                dst.add(n - 1).write(b);
            }
            _ => core::ptr::copy(src, dst, n),
        }
    }
}

/// Completes reader `r`'s blocked read with up to `left` bytes from our buffer at `buf`:
/// copies them into its memory, sets its read's result and lets it run. Returns how many of our
/// bytes it took (0 if its buffer was bad: it gets EFAULT, and our bytes stay ours).
fn hand_over(pml4: u64, r: &'static Process, buf: u64, left: u64) -> Result<u64, Errno> {
    let want = r.read_len.load(Relaxed).min(left);
    let dst = r.read_buf.load(Relaxed);
    let mut at = 0;
    let mut theirs_bad = false;
    let mut ours = Ok(());
    if let Some(mm) = r.mm() {
        let mut chunk = [0u8; CHUNK];
        while at < want {
            let k = (want - at).min(CHUNK as u64) as usize;
            if let Err(e) = copy_from_user(pml4, &mut chunk[..k], buf + at) {
                ours = Err(Errno::from(e));
                break;
            }
            if copy_to_user_in(&mm, dst + at, &chunk[..k]).is_err() {
                theirs_bad = true;
                break;
            }
            at += k as u64;
        }
    }
    let mut t = TASKS.lock();
    if at == 0 && !theirs_bad {
        // Nothing handed over (our buffer was bad): it runs its read again, and waits anew.
        wakeup::make_ready(&mut t, r);
        return ours.map(|()| 0);
    }
    complete_read(
        &mut t,
        r,
        if at > 0 {
            at
        } else {
            Errno::EFAULT.ret() as u64
        },
    );
    ours.map(|()| at)
}

/// Reader `r`, taken off the pipe's queue, returns `result` from its read and may run.
fn complete_read(t: &mut crate::process::Tasks, r: &'static Process, result: u64) {
    // SAFETY: `r` is blocked in its read (we took it off the pipe's queue; it is in no other
    // queue and not running), so nothing else touches its trap frame.
    let frame = unsafe { r.frame_mut() };
    frame.rip += 2; // its read is done: no restart
    frame.rax = result;
    r.restart.store(RESTART_NONE, Relaxed);
    wakeup::make_ready(t, r);
}
