//! Taking a signal on the way back to ring 3: the default action, or the frame that runs the
//! handler (siginfo, ucontext with the registers and the FPU state, as Linux x86-64 builds
//! it); and `rt_sigreturn`, which trusts nothing in that frame.

use core::sync::atomic::Ordering::Relaxed;

use crate::exit;
use crate::gdt::{USER_CODE, USER_DATA};
use crate::memory::paging::USER_END;
use crate::percpu::current;
use crate::process::{Process, State, TASKS};
use crate::scheduler;
use crate::signal::send::{deliverable, group_is_orphaned, note_unblocked, notify_parent, post};
use crate::signal::state::{
    bit, AltStack, SigAction, SigInfo, CLD_STOPPED, RESTART_EINTR, RESTART_NONE, RESTART_SLEEP,
    RESTART_SYSCALL, SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SA_RESTART, SIG_DFL, SIG_IGN,
    SS_DISABLE, SS_ONSTACK, UNBLOCKABLE,
};
use crate::trap_frame::TrapFrame;
use crate::uaccess::{copy_from_user, copy_to_user};
use abi::signal::*;
use abi::Errno;

/// Takes the current task's deliverable signals on its way back to ring 3 (`f`: its complete
/// trap frame). `restart` says how the system call it was blocked in (if any) ends. Returns
/// whether the task is gone or stopped (a switch is prepared), else its frame now enters the
/// handlers, innermost last.
pub fn deliver(f: &mut TrapFrame, mut restart: u8) -> bool {
    let p = current();
    loop {
        let ready = deliverable(p);
        if ready == 0 {
            return false;
        }
        let sig = if ready & bit(SIGKILL) != 0 {
            SIGKILL
        } else {
            ready.trailing_zeros() + 1
        };
        p.sig_pending.fetch_and(!bit(sig), Relaxed);
        if crate::trace_events::on() {
            crate::trace_events::emit(abi::trace::SIGNAL, p.pid(), [sig as u64]);
        }
        let info = p.sig.lock().info[sig as usize - 1];
        let Some(handlers) = p.handlers() else {
            return false;
        };
        let action = handlers.get(sig);
        if sig == SIGKILL || sig == SIGSTOP || action.handler == SIG_DFL {
            match default_action(sig) {
                DefaultAction::Ignore | DefaultAction::Continue => continue,
                // Nobody would be left to continue an orphaned group: Linux drops the stops
                // that come from the terminal or a user's kill there, all but SIGSTOP.
                DefaultAction::Stop if sig != SIGSTOP && group_is_orphaned(p) => continue,
                DefaultAction::Stop => {
                    stop_current(sig);
                    return true;
                }
                DefaultAction::Terminate | DefaultAction::Core => {
                    exit::exit_current(sig);
                    return true;
                }
            }
        }
        if action.handler == SIG_IGN {
            continue;
        }
        // A handler runs: settle the interrupted system call first (once).
        end_interrupted_syscall(p, f, restart, action.flags & SA_RESTART != 0);
        restart = RESTART_NONE;
        if setup_frame(p, f, sig, &info, &action).is_err() {
            // No room for the frame (a bad stack): Linux's answer is SIGSEGV, uncatchable now.
            crate::println!(
                "kernel: killed pid {} ({}): cannot deliver {} (bad stack at {:#x}) [signal {SIGSEGV}]",
                p.tgid(),
                p.name(),
                name(sig),
                f.rsp
            );
            exit::exit_current(SIGSEGV);
            return true;
        }
        let mut mask = action.mask;
        if action.flags & SA_NODEFER == 0 {
            mask |= bit(sig);
        }
        p.sig_blocked.fetch_or(mask & !UNBLOCKABLE, Relaxed);
        if action.flags & SA_RESETHAND != 0 {
            handlers.0.lock()[sig as usize - 1] = SigAction::default();
        }
    }
}

/// A handler is about to run over a blocked system call: restart it (SA_RESTART), or make it
/// return EINTR, or the bytes a write had already moved.
fn end_interrupted_syscall(p: &Process, f: &mut TrapFrame, restart: u8, sa_restart: bool) {
    match restart {
        RESTART_SYSCALL if sa_restart => {}
        RESTART_SYSCALL => {
            f.rip += 2;
            let done = p.io_progress.swap(0, Relaxed);
            f.rax = if done > 0 {
                done
            } else {
                Errno::EINTR.ret() as u64
            };
        }
        RESTART_EINTR => f.rax = Errno::EINTR.ret() as u64,
        RESTART_SLEEP => {
            f.rax = Errno::EINTR.ret() as u64;
            let rem = p.sleep_rem.swap(0, Relaxed);
            if rem != 0 {
                let left = p
                    .sleep_deadline
                    .load(Relaxed)
                    .saturating_sub(crate::cpu::rdtsc());
                let ns = crate::time::cycles_to_ns(left);
                let mut ts = [0u8; 16];
                ts[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
                ts[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
                let _ = copy_to_user(p.pml4(), rem, &ts);
            }
        }
        _ => {}
    }
}

/// Stops the current task's whole process (SIGSTOP, SIGTSTP...) until SIGCONT, telling its
/// parent once. The thread that takes the signal stops the others: each is sent SIGSTOP
/// marked as the group's (`group_stop`), and stops quietly when it takes it.
pub fn stop_current(sig: u32) {
    let mut t = TASKS.lock();
    let p = current();
    let follower = p.group_stop.swap(false, Relaxed);
    p.set_state(&mut t, State::Stopped);
    if !follower {
        let tgid = p.tgid();
        let leader = t.find_pid(tgid).unwrap_or(p);
        if leader.threads.load(Relaxed) > 1 {
            for slot in 0..t.slot_count() {
                let q = t.get(slot);
                let live = !matches!(
                    q.state(),
                    State::Zombie | State::Unused | State::Embryo | State::Stopped
                );
                if q.tgid() == tgid && live {
                    q.group_stop.store(true, Relaxed);
                    post(&mut t, q, SIGSTOP, SigInfo::kernel(SIGSTOP));
                }
            }
        }
        leader.stop_report.store((sig << 8) | 0x7f, Relaxed);
        notify_parent(&mut t, leader, CLD_STOPPED, sig as i32);
    }
    scheduler::run_next(t)
}

// The signal frame, as Linux x86-64 lays it out (arch/x86/include/uapi/asm/sigcontext.h,
// ucontext.h, siginfo.h). The handler starts with RSP at `RtSigFrame`, whose first word is the
// return address: the restorer, which calls rt_sigreturn with RSP at `uc`.

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SigContext {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
    eflags: u64,
    cs: u16,
    gs: u16,
    fs: u16,
    ss: u16,
    err: u64,
    trapno: u64,
    oldmask: u64,
    cr2: u64,
    fpstate: u64,
    reserved: [u64; 8],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UContext {
    flags: u64,
    link: u64,
    ss_sp: u64,
    ss_flags: u32,
    _pad: u32,
    ss_size: u64,
    mcontext: SigContext,
    sigmask: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SigInfoRaw {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    fields: [u64; 14],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RtSigFrame {
    pretcode: u64,
    uc: UContext,
    info: SigInfoRaw,
}

const _: () = {
    assert!(core::mem::size_of::<SigContext>() == 256);
    assert!(core::mem::size_of::<UContext>() == 304);
    assert!(core::mem::size_of::<SigInfoRaw>() == 128);
    assert!(core::mem::size_of::<RtSigFrame>() == 440);
};

/// uc_flags: the sigcontext's SS is meaningful (what Linux sets for 64-bit frames).
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;
const FPSTATE_SIZE: u64 = 512;

fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: `T` is one of the `repr(C)` frame structures above, made only of integers with
    // every byte initialised (their padding fields are explicit), so viewing it as bytes is fine.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
}

fn siginfo_raw(info: &SigInfo) -> SigInfoRaw {
    let mut r = SigInfoRaw {
        signo: info.signo as i32,
        errno: 0,
        code: info.code,
        _pad: 0,
        fields: [0; 14],
    };
    if info.addr != 0 {
        r.fields[0] = info.addr; // si_addr
    } else {
        // si_pid, si_uid (0: root); for SIGCHLD si_status after them.
        r.fields[0] = info.pid as u64;
        r.fields[1] = info.status as u32 as u64;
    }
    r
}

fn on_altstack(a: &AltStack, sp: u64) -> bool {
    a.flags & SS_DISABLE == 0 && sp > a.sp && sp <= a.sp + a.size
}

/// Builds the signal frame on the user stack (or the alternate stack) and points `f` at the
/// handler. Fails if the stack cannot hold it.
fn setup_frame(
    p: &Process,
    f: &mut TrapFrame,
    sig: u32,
    info: &SigInfo,
    action: &SigAction,
) -> Result<(), crate::uaccess::Fault> {
    let (altstack, saved_mask) = {
        let mut s = p.sig.lock();
        (s.altstack, s.saved_mask.take())
    };
    let mut sp = f.rsp;
    if action.flags & SA_ONSTACK != 0
        && altstack.flags & SS_DISABLE == 0
        && !on_altstack(&altstack, sp)
    {
        sp = altstack.sp + altstack.size;
    }
    sp = sp.wrapping_sub(128); // the red zone below the interrupted code's stack pointer
    let fpstate = sp.wrapping_sub(FPSTATE_SIZE) & !63;
    let frame_at = (fpstate.wrapping_sub(core::mem::size_of::<RtSigFrame>() as u64) & !15) - 8;

    // The task's FPU registers are live in the CPU (the kernel uses none): save them.
    // SAFETY: the FXSAVE area is the task's own, 16-byte aligned, and unused while it runs.
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) p.fpu_ptr(), options(nostack)) };
    // SAFETY: 512 bytes at `fpu_ptr`, just written.
    let fpu = unsafe { core::slice::from_raw_parts(p.fpu_ptr(), FPSTATE_SIZE as usize) };

    let old_mask = saved_mask.unwrap_or_else(|| p.sig_blocked.load(Relaxed));
    let frame = RtSigFrame {
        pretcode: action.restorer,
        uc: UContext {
            flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
            link: 0,
            ss_sp: altstack.sp,
            ss_flags: altstack.flags
                | if on_altstack(&altstack, f.rsp) {
                    SS_ONSTACK
                } else {
                    0
                },
            _pad: 0,
            ss_size: altstack.size,
            mcontext: SigContext {
                r8: f.r8,
                r9: f.r9,
                r10: f.r10,
                r11: f.r11,
                r12: f.r12,
                r13: f.r13,
                r14: f.r14,
                r15: f.r15,
                rdi: f.rdi,
                rsi: f.rsi,
                rbp: f.rbp,
                rbx: f.rbx,
                rdx: f.rdx,
                rax: f.rax,
                rcx: f.rcx,
                rsp: f.rsp,
                rip: f.rip,
                eflags: f.rflags,
                cs: USER_CODE,
                gs: 0,
                fs: 0,
                ss: USER_DATA,
                err: info.err,
                trapno: info.trapno,
                oldmask: old_mask,
                cr2: info.addr,
                fpstate,
                reserved: [0; 8],
            },
            sigmask: old_mask,
        },
        info: siginfo_raw(info),
    };
    let pml4 = p.pml4();
    copy_to_user(pml4, fpstate, fpu)?;
    copy_to_user(pml4, frame_at, bytes_of(&frame))?;

    let uc = frame_at + 8;
    let info_at = uc + core::mem::size_of::<UContext>() as u64;
    f.rip = action.handler;
    f.rsp = frame_at;
    f.rdi = sig as u64;
    f.rsi = info_at;
    f.rdx = uc;
    f.rax = 0;
    // The handler starts with the direction and trap flags clear, as the ABI wants.
    f.rflags &= !(RFLAGS_DF | RFLAGS_TF);
    Ok(())
}

const RFLAGS_CF: u64 = 1 << 0;
const RFLAGS_PF: u64 = 1 << 2;
const RFLAGS_AF: u64 = 1 << 4;
const RFLAGS_ZF: u64 = 1 << 6;
const RFLAGS_SF: u64 = 1 << 7;
const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_DF: u64 = 1 << 10;
const RFLAGS_OF: u64 = 1 << 11;
const RFLAGS_RF: u64 = 1 << 16;
const RFLAGS_AC: u64 = 1 << 18;
/// The flags a program may set for itself (Linux's FIX_EFLAGS); IOPL, IF, VM, NT... never.
const USER_FLAGS: u64 = RFLAGS_CF
    | RFLAGS_PF
    | RFLAGS_AF
    | RFLAGS_ZF
    | RFLAGS_SF
    | RFLAGS_TF
    | RFLAGS_DF
    | RFLAGS_OF
    | RFLAGS_RF
    | RFLAGS_AC;

/// rt_sigreturn: back from a handler, the registers, mask and FPU state the frame at `f.rsp`
/// holds. Everything in it is the program's to forge, so only user-mode state is taken: the
/// selectors are ours, RFLAGS keeps only the flags a program may set (IF on, IOPL 0), and a
/// RIP outside user space (non-canonical or in the kernel half, which `iretq` would fault on in
/// ring 0) is refused. Returns the restored rax, or Err: the process is then killed (SIGSEGV).
pub fn sigreturn(f: &mut TrapFrame) -> Result<u64, ()> {
    let p = current();
    let uc_at = f.rsp;
    let mut raw = [0u8; core::mem::size_of::<UContext>()];
    copy_from_user(p.pml4(), &mut raw, uc_at).map_err(|_| ())?;
    let mut uc = UContext::default();
    // SAFETY: `UContext` is plain integers (no invalid bit patterns), and `raw` is its size.
    unsafe {
        core::ptr::copy_nonoverlapping(raw.as_ptr(), &mut uc as *mut UContext as *mut u8, raw.len())
    };
    let m = &uc.mcontext;
    if m.rip >= USER_END || m.rsp >= USER_END {
        return Err(());
    }
    if m.fpstate != 0 {
        let fpu = p.fpu_ptr();
        // SAFETY: the task's own 512-byte FXSAVE area, unused while it runs.
        let area = unsafe { core::slice::from_raw_parts_mut(fpu, FPSTATE_SIZE as usize) };
        copy_from_user(p.pml4(), area, m.fpstate).map_err(|_| ())?;
        // MXCSR's reserved bits would make fxrstor fault in ring 0: keep only the defined ones.
        let mxcsr = u32::from_le_bytes([area[24], area[25], area[26], area[27]]) & 0xffff;
        area[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        // SAFETY: a 16-byte aligned FXSAVE image whose MXCSR is valid; the rest of the image
        // cannot make fxrstor fault.
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) fpu, options(nostack)) };
    }
    f.r8 = m.r8;
    f.r9 = m.r9;
    f.r10 = m.r10;
    f.r11 = m.r11;
    f.r12 = m.r12;
    f.r13 = m.r13;
    f.r14 = m.r14;
    f.r15 = m.r15;
    f.rdi = m.rdi;
    f.rsi = m.rsi;
    f.rbp = m.rbp;
    f.rbx = m.rbx;
    f.rdx = m.rdx;
    f.rcx = m.rcx;
    f.rsp = m.rsp;
    f.rip = m.rip;
    f.rflags = (m.eflags & USER_FLAGS) | RFLAGS_IF | 0x2;
    f.cs = USER_CODE as u64;
    f.ss = USER_DATA as u64;
    p.sig_blocked.store(uc.sigmask & !UNBLOCKABLE, Relaxed);
    note_unblocked(p);
    Ok(m.rax)
}

/// rt_sigsuspend's caller's mask comes back when a handler returns (it is in the handler's
/// frame); if no handler ran, it comes back now.
pub fn restore_suspend_mask() {
    let p = current();
    if let Some(m) = p.sig.lock().saved_mask.take() {
        p.sig_blocked.store(m, Relaxed);
    }
}
