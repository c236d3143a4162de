//! Booting a PVH kernel: load the ELF (`loader`), write the boot information (`pvh`), set the
//! vCPU's entry state (`regs`).

pub mod loader;
pub mod pvh;
pub mod regs;
