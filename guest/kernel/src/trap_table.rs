//! The trap table (IDT), installed once at boot: where the CPU goes on each exception, on the
//! timer interrupt, and on `int 0x80`; and the MSRs that send `syscall` to its entry
//! (`init_syscall`). OSTEP 6.2: "the kernel does so by setting up a trap table at boot time".
//!
//! Written by hand rather than with the x86_64 crate's `InterruptDescriptorTable`: that type's
//! safe API wants `extern "x86-interrupt"` handlers, a nightly-only ABI, and our handlers are
//! assembly stubs anyway (trap_entry.rs). A gate is 16 bytes (Intel SDM vol. 3, 6.14.1).

use crate::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI, KERNEL_CODE};
use crate::trap_entry::{syscall_entry, trap_stubs, STUB_VECTORS};
use crate::trap_frame::SYSCALL_VECTOR;
use core::ptr::{addr_of, addr_of_mut};
use x86_64::registers::model_specific::{Efer, EferFlags, Msr};

#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    /// Present, DPL, type 0xE (64-bit interrupt gate: IF is cleared on entry).
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const MISSING: Gate = Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    attributes: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
};

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([MISSING; 256]);

fn gate(handler: u64, dpl: u8, ist: u16) -> Gate {
    Gate {
        offset_low: handler as u16,
        selector: KERNEL_CODE,
        ist: ist as u8,
        attributes: 0x80 | (dpl << 5) | 0xE,
        offset_mid: (handler >> 16) as u16,
        offset_high: (handler >> 32) as u32,
        reserved: 0,
    }
}

pub fn init() {
    // SAFETY: runs once at boot with interrupts off; every handler installed is an entry stub
    // from trap_entry.rs, which saves a TrapFrame and leaves only through `iretq`. The IST
    // indices name stacks set up in gdt.rs. `lidt` gets the table's address and size.
    unsafe {
        let idt = &mut *addr_of_mut!(IDT);
        for (i, &vector) in STUB_VECTORS.iter().enumerate() {
            let ist = match vector {
                2 => IST_NMI,
                8 => IST_DOUBLE_FAULT,
                18 => IST_MACHINE_CHECK,
                _ => 0,
            };
            // Ring 3 may raise these two itself: `int3` (a debugger's breakpoint) and the system
            // call gate. Any other `int N` from ring 3 is a general protection fault.
            let dpl = if vector == 3 || vector as u64 == SYSCALL_VECTOR {
                3
            } else {
                0
            };
            idt.0[vector as usize] = gate(trap_stubs[i], dpl, ist);
        }
        let pointer = x86_64::structures::DescriptorTablePointer {
            limit: (core::mem::size_of::<Idt>() - 1) as u16,
            base: x86_64::VirtAddr::new(addr_of!(IDT) as u64),
        };
        x86_64::instructions::tables::lidt(&pointer);
    }
}

/// `trace=events`: the trap table points at the stubs' recording twins (trap_entry.rs), which
/// write the trace's records: the timer's always, the system call's four entries (LSTAR too)
/// when `syscalls` (not with `strace=1`, whose wrapper takes the calls). Each gate keeps its
/// privilege level and stack. At boot, before the first task runs.
pub fn use_recording_twins(syscalls: bool) {
    for (vector, stub) in crate::trap_entry::recording_gates() {
        if vector == crate::trap_frame::TIMER_VECTOR || syscalls {
            // SAFETY: boot, interrupts off, one CPU: nothing takes this gate while it
            // changes, and the twin builds the same frame as the stub it replaces.
            unsafe {
                let g = &mut (*addr_of_mut!(IDT)).0[vector as usize];
                let (dpl, ist) = ((g.attributes >> 5) & 3, g.ist as u16);
                *g = gate(stub, dpl, ist);
            }
        }
    }
    if syscalls {
        // SAFETY: boot, interrupts off; the twin is an entry stub like `syscall_entry`.
        unsafe { Msr::new(LSTAR).write(crate::trap_entry::recording_syscall_entry()) };
    }
}

const STAR: u32 = 0xc000_0081;
const LSTAR: u32 = 0xc000_0082;
const SFMASK: u32 = 0xc000_0084;
const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_DF: u64 = 1 << 10;
const RFLAGS_AC: u64 = 1 << 18;

/// The address `syscall` jumps to; on kvm_pvm, the address of the page fault it turns into.
fn lstar() -> u64 {
    syscall_entry as *const () as u64
}

pub fn init_syscall() {
    // SAFETY: enables `syscall` and points it at `syscall_entry`, which builds a trap frame on the
    // running task's kernel stack. STAR: kernel CS = 0x08 (SS = 0x10); the sysret base 0x13 would
    // give user SS = 0x1b and CS = 0x23, matching gdt.rs. SFMASK clears IF (no interrupt before
    // the stack switch), TF, DF (the ABI wants it clear) and AC (no user access by accident).
    unsafe {
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
        let user_base = (crate::gdt::USER_DATA as u64 - 8) & !3 | 3;
        Msr::new(STAR).write(user_base << 48 | (KERNEL_CODE as u64) << 32);
        Msr::new(LSTAR).write(lstar());
        Msr::new(SFMASK).write(RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_AC);
    }
}
