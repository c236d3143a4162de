//! The register set we show gdb: gdbstub_arch's x86-64 core + SSE registers, followed by
//! fs_base and gs_base (gdb's `org.gnu.gdb.i386.segments` feature, which gdbstub_arch lacks) and
//! the control registers a kernel debugger wants to see (CR0, CR2, CR3, CR4, EFER).
//!
//! The target description below numbers every register, so gdb's `g`/`G` packets and our
//! (de)serialisation agree on one layout: 0-56 as in gdbstub_arch, then 57.. for ours.

use std::num::NonZeroUsize;

use gdbstub::arch::{Arch, RegId, Registers};
use gdbstub_arch::x86::reg::id::X86_64CoreRegId;
use gdbstub_arch::x86::reg::X86_64CoreRegs;

/// x86-64 as our VMM debugs it.
pub enum LdeX86_64 {}

impl Arch for LdeX86_64 {
    type Usize = u64;
    type Registers = LdeRegs;
    type RegId = LdeRegId;
    /// gdb's breakpoint "kind" is the length of the instruction it would patch (1 on x86).
    type BreakpointKind = usize;

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }
}

/// The registers after gdbstub_arch's core set, in this order (numbers from 57).
pub const EXTRA_NAMES: [&str; 7] = ["fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4", "efer"];
const FIRST_EXTRA: usize = 57;
/// Bytes of gdbstub_arch's core set in a `g` packet.
const CORE_BYTES: usize = 0x218;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LdeRegs {
    pub core: X86_64CoreRegs,
    /// In `EXTRA_NAMES` order.
    pub extra: [u64; 7],
}

impl Registers for LdeRegs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.core.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        self.core.gdb_serialize(&mut write_byte);
        for r in &self.extra {
            for b in r.to_le_bytes() {
                write_byte(Some(b));
            }
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        if bytes.len() != CORE_BYTES + 8 * self.extra.len() {
            return Err(());
        }
        self.core.gdb_deserialize(&bytes[..CORE_BYTES])?;
        for (r, chunk) in self
            .extra
            .iter_mut()
            .zip(bytes[CORE_BYTES..].chunks_exact(8))
        {
            *r = u64::from_le_bytes(chunk.try_into().map_err(|_| ())?);
        }
        Ok(())
    }
}

/// A register by gdb's number (`p`/`P` packets), which is also its place in the `g` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LdeRegId(pub usize);

impl LdeRegId {
    fn size(id: usize) -> Option<usize> {
        if id < FIRST_EXTRA {
            let (_, size) = X86_64CoreRegId::from_raw_id(id)?;
            return size.map(NonZeroUsize::get);
        }
        (id - FIRST_EXTRA < EXTRA_NAMES.len()).then_some(8)
    }

    /// Where this register's bytes are in the serialised register set.
    pub fn range(self) -> Option<std::ops::Range<usize>> {
        let start = (0..self.0).map(Self::size).sum::<Option<usize>>()?;
        Some(start..start + Self::size(self.0)?)
    }
}

impl RegId for LdeRegId {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        Some((LdeRegId(id), NonZeroUsize::new(Self::size(id)?)))
    }
}

/// gdb's i386 features (the register names and order gdb's amd64 code requires), with the
/// types it uses for them, plus a small feature of our own for the control registers.
const TARGET_XML: &str = r#"<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>i386:x86-64</architecture>
<feature name="org.gnu.gdb.i386.core">
<flags id="lde_eflags" size="4">
<field name="CF" start="0" end="0"/><field name="" start="1" end="1"/>
<field name="PF" start="2" end="2"/><field name="AF" start="4" end="4"/>
<field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/>
<field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/>
<field name="DF" start="10" end="10"/><field name="OF" start="11" end="11"/>
<field name="NT" start="14" end="14"/><field name="RF" start="16" end="16"/>
<field name="VM" start="17" end="17"/><field name="AC" start="18" end="18"/>
<field name="VIF" start="19" end="19"/><field name="VIP" start="20" end="20"/>
<field name="ID" start="21" end="21"/>
</flags>
<reg name="rax" bitsize="64" type="int64" regnum="0"/>
<reg name="rbx" bitsize="64" type="int64"/>
<reg name="rcx" bitsize="64" type="int64"/>
<reg name="rdx" bitsize="64" type="int64"/>
<reg name="rsi" bitsize="64" type="int64"/>
<reg name="rdi" bitsize="64" type="int64"/>
<reg name="rbp" bitsize="64" type="data_ptr"/>
<reg name="rsp" bitsize="64" type="data_ptr"/>
<reg name="r8" bitsize="64" type="int64"/>
<reg name="r9" bitsize="64" type="int64"/>
<reg name="r10" bitsize="64" type="int64"/>
<reg name="r11" bitsize="64" type="int64"/>
<reg name="r12" bitsize="64" type="int64"/>
<reg name="r13" bitsize="64" type="int64"/>
<reg name="r14" bitsize="64" type="int64"/>
<reg name="r15" bitsize="64" type="int64"/>
<reg name="rip" bitsize="64" type="code_ptr"/>
<reg name="eflags" bitsize="32" type="lde_eflags"/>
<reg name="cs" bitsize="32" type="int32"/>
<reg name="ss" bitsize="32" type="int32"/>
<reg name="ds" bitsize="32" type="int32"/>
<reg name="es" bitsize="32" type="int32"/>
<reg name="fs" bitsize="32" type="int32"/>
<reg name="gs" bitsize="32" type="int32"/>
<reg name="st0" bitsize="80" type="i387_ext"/>
<reg name="st1" bitsize="80" type="i387_ext"/>
<reg name="st2" bitsize="80" type="i387_ext"/>
<reg name="st3" bitsize="80" type="i387_ext"/>
<reg name="st4" bitsize="80" type="i387_ext"/>
<reg name="st5" bitsize="80" type="i387_ext"/>
<reg name="st6" bitsize="80" type="i387_ext"/>
<reg name="st7" bitsize="80" type="i387_ext"/>
<reg name="fctrl" bitsize="32" type="int" group="float"/>
<reg name="fstat" bitsize="32" type="int" group="float"/>
<reg name="ftag" bitsize="32" type="int" group="float"/>
<reg name="fiseg" bitsize="32" type="int" group="float"/>
<reg name="fioff" bitsize="32" type="int" group="float"/>
<reg name="foseg" bitsize="32" type="int" group="float"/>
<reg name="fooff" bitsize="32" type="int" group="float"/>
<reg name="fop" bitsize="32" type="int" group="float"/>
</feature>
<feature name="org.gnu.gdb.i386.sse">
<vector id="v4f" type="ieee_single" count="4"/>
<vector id="v2d" type="ieee_double" count="2"/>
<vector id="v16i8" type="int8" count="16"/>
<vector id="v8i16" type="int16" count="8"/>
<vector id="v4i32" type="int32" count="4"/>
<vector id="v2i64" type="int64" count="2"/>
<union id="vec128">
<field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>
<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>
<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>
<field name="uint128" type="uint128"/>
</union>
<reg name="xmm0" bitsize="128" type="vec128" regnum="40"/>
<reg name="xmm1" bitsize="128" type="vec128"/>
<reg name="xmm2" bitsize="128" type="vec128"/>
<reg name="xmm3" bitsize="128" type="vec128"/>
<reg name="xmm4" bitsize="128" type="vec128"/>
<reg name="xmm5" bitsize="128" type="vec128"/>
<reg name="xmm6" bitsize="128" type="vec128"/>
<reg name="xmm7" bitsize="128" type="vec128"/>
<reg name="xmm8" bitsize="128" type="vec128"/>
<reg name="xmm9" bitsize="128" type="vec128"/>
<reg name="xmm10" bitsize="128" type="vec128"/>
<reg name="xmm11" bitsize="128" type="vec128"/>
<reg name="xmm12" bitsize="128" type="vec128"/>
<reg name="xmm13" bitsize="128" type="vec128"/>
<reg name="xmm14" bitsize="128" type="vec128"/>
<reg name="xmm15" bitsize="128" type="vec128"/>
<reg name="mxcsr" bitsize="32" type="int" group="vector"/>
</feature>
<feature name="org.gnu.gdb.i386.segments">
<reg name="fs_base" bitsize="64" type="int" regnum="57"/>
<reg name="gs_base" bitsize="64" type="int"/>
</feature>
<feature name="org.lde.x86.control">
<reg name="cr0" bitsize="64" type="int" group="system" regnum="59"/>
<reg name="cr2" bitsize="64" type="int" group="system"/>
<reg name="cr3" bitsize="64" type="int" group="system"/>
<reg name="cr4" bitsize="64" type="int" group="system"/>
<reg name="efer" bitsize="64" type="int" group="system"/>
</feature>
</target>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn serialized(r: &LdeRegs) -> Vec<u8> {
        let mut out = Vec::new();
        r.gdb_serialize(|b| out.push(b.unwrap_or(0)));
        out
    }

    #[test]
    fn registers_round_trip_with_the_extras_last() {
        let mut r = LdeRegs::default();
        r.core.regs[0] = 0x1234;
        r.core.rip = 0xffff_ffff_8010_0000;
        r.extra = [1, 2, 3, 4, 5, 6, 7];
        let bytes = serialized(&r);
        assert_eq!(bytes.len(), CORE_BYTES + 56);
        // fs_base is register 57: right after mxcsr.
        assert_eq!(&bytes[CORE_BYTES..CORE_BYTES + 8], &1u64.to_le_bytes());
        assert_eq!(LdeRegId(57).range(), Some(CORE_BYTES..CORE_BYTES + 8));
        assert_eq!(LdeRegId(16).range(), Some(0x80..0x88), "rip");
        assert_eq!(LdeRegId(40).range(), Some(0x114..0x124), "xmm0");
        let mut back = LdeRegs::default();
        back.gdb_deserialize(&bytes).unwrap();
        assert_eq!(back, r);
        assert!(back.gdb_deserialize(&bytes[..CORE_BYTES]).is_err());
    }

    #[test]
    fn register_numbers_match_the_description() {
        // Every register the XML declares has a number our RegId knows, and no more.
        let declared = TARGET_XML.matches("<reg ").count();
        assert_eq!(declared, FIRST_EXTRA + EXTRA_NAMES.len());
        assert!(LdeRegId::from_raw_id(declared - 1).is_some());
        assert!(LdeRegId::from_raw_id(declared).is_none());
        for (i, name) in EXTRA_NAMES.iter().enumerate() {
            assert!(TARGET_XML.contains(&format!("name=\"{name}\"")), "{name}");
            assert!(LdeRegId::from_raw_id(FIRST_EXTRA + i).is_some());
        }
    }
}
