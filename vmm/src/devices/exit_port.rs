//! The exit port at 0xf4 (where QEMU has isa-debug-exit): a byte written there powers the VM
//! off and becomes the VMM's exit status. QEMU's device reports `(v << 1) | 1` instead.

pub const EXIT_PORT: u16 = abi::machine::port::EXIT;

/// The status a write of `data` to the exit port asks for: its first byte.
pub fn exit_status(data: &[u8]) -> u8 {
    data.first().copied().unwrap_or(0)
}
