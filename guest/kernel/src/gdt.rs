//! Segments and the TSS. In long mode segments only carry the privilege level, but the CPU still
//! needs them: ring 0 and ring 3 code/data descriptors, and a TSS that tells it which stack to
//! switch to on a trap from ring 3 (RSP0, the running task's kernel stack) and which dedicated
//! stacks to use for double fault, NMI and machine check (IST), whatever the state of RSP.

use crate::boot::Stack;
use core::ptr::addr_of;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

// The order is fixed by `syscall`/`sysret` (see syscall.rs): STAR points at kernel code with
// kernel data right after it, and at user data with user code right after it.
pub const KERNEL_CODE: u16 = 0x08;
pub const KERNEL_DATA: u16 = 0x10;
pub const USER_DATA: u16 = 0x18 | 3;
pub const USER_CODE: u16 = 0x20 | 3;
const TSS_SELECTOR: u16 = 0x28;

pub const IST_DOUBLE_FAULT: u16 = 1;
pub const IST_NMI: u16 = 2;
pub const IST_MACHINE_CHECK: u16 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;
static mut IST_STACKS: [Stack<IST_STACK_SIZE>; 3] = [
    Stack([0; IST_STACK_SIZE]),
    Stack([0; IST_STACK_SIZE]),
    Stack([0; IST_STACK_SIZE]),
];

/// The TSS. `context_switch` and `syscall` read and write RSP0 directly (offset 4).
#[no_mangle]
pub static mut TSS: TaskStateSegment = TaskStateSegment::new();
static mut GDT: GlobalDescriptorTable = GlobalDescriptorTable::new();

pub fn init() {
    // SAFETY: runs once at boot with interrupts off, before anything else uses the GDT or TSS;
    // the statics are not touched concurrently (one CPU).
    unsafe {
        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        for (i, stack) in (*core::ptr::addr_of_mut!(IST_STACKS))
            .iter_mut()
            .enumerate()
        {
            let top = stack.0.as_ptr() as u64 + IST_STACK_SIZE as u64;
            tss.interrupt_stack_table[i] = VirtAddr::new(top);
        }
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        let kc = gdt.append(Descriptor::kernel_code_segment());
        let kd = gdt.append(Descriptor::kernel_data_segment());
        let ud = gdt.append(Descriptor::user_data_segment());
        let uc = gdt.append(Descriptor::user_code_segment());
        let ts = gdt.append(Descriptor::tss_segment(&*addr_of!(TSS)));
        debug_assert!(kc.0 == KERNEL_CODE && kd.0 == KERNEL_DATA && ud.0 == USER_DATA);
        debug_assert!(uc.0 == USER_CODE && ts.0 == TSS_SELECTOR);
        (*addr_of!(GDT)).load();
        CS::set_reg(SegmentSelector::new(
            KERNEL_CODE >> 3,
            PrivilegeLevel::Ring0,
        ));
        let data = SegmentSelector::new(KERNEL_DATA >> 3, PrivilegeLevel::Ring0);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(SegmentSelector::new(
            TSS_SELECTOR >> 3,
            PrivilegeLevel::Ring0,
        ));
    }
}
