//! The bench port at 0xf5: a null device. A write is answered in VMM userspace and does nothing,
//! so a guest's `out` to it measures one VM-exit round trip through our exit dispatch
//! (`vmm bench`, the kernel's bench call op 1). Reads return 0. Checked first in the bus so that
//! the measured path is as short as our dispatch can make it.

pub const BENCH_PORT: u16 = abi::machine::port::BENCH;
