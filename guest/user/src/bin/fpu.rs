//! fpu LETTER [ROUNDS]: checks that the FPU/SSE state is private to each process. It fills
//! xmm0..xmm15, MXCSR and the x87 control word with a pattern made from LETTER, computes for a
//! while and yields (so the timer and sched_yield both switch to other processes), then checks
//! every register still holds its pattern; ROUNDS times (default 2000). Run `fpu A` beside
//! `fpu B`: exit 0 iff no register was ever changed by the other.
#![no_std]
#![no_main]

use lde_user::syscall::nr;
use lde_user::{Args, println};

lde_user::entry!(main);

/// The state we put in the registers, and read back.
#[repr(C, align(16))]
#[derive(Clone, Copy, PartialEq, Eq)]
struct FpuState {
    xmm: [[u8; 16]; 16],
    mxcsr: u32,
    fcw: u16,
}

impl FpuState {
    fn pattern(letter: u8) -> Self {
        let mut xmm = [[0; 16]; 16];
        for (i, reg) in xmm.iter_mut().enumerate() {
            for (j, byte) in reg.iter_mut().enumerate() {
                *byte = letter ^ (i * 16 + j) as u8;
            }
        }
        let mode = (letter & 3) as u32; // rounding / precision control: differs per letter
        FpuState {
            xmm,
            mxcsr: 0x1f80 | mode << 13, // all exceptions masked, rounding mode `mode`
            fcw: 0x007f | (mode as u16) << 8, // all exceptions masked, precision control `mode`
        }
    }
}

/// Load `want` into the registers, spin `spins` times, sched_yield, and store the registers
/// into `got`, all in one asm block so nothing else can touch the registers in between.
fn load_yield_store(want: &FpuState, got: &mut FpuState, spins: u64) {
    // SAFETY: reads `want` and writes `got` (both 16-byte aligned, sized as addressed below).
    // The system call is sched_yield (rax=24), which clobbers rax, rcx and r11. The xmm
    // registers, MXCSR and the x87 control word are overwritten without being declared: this
    // target is soft-float, so compiled Rust code never keeps values in them (an SSE-enabled
    // build would have to list xmm0-15 as clobbers).
    unsafe {
        core::arch::asm!(
            "movdqa xmm0, [{w}]",        "movdqa xmm1, [{w} + 16]",
            "movdqa xmm2, [{w} + 32]",   "movdqa xmm3, [{w} + 48]",
            "movdqa xmm4, [{w} + 64]",   "movdqa xmm5, [{w} + 80]",
            "movdqa xmm6, [{w} + 96]",   "movdqa xmm7, [{w} + 112]",
            "movdqa xmm8, [{w} + 128]",  "movdqa xmm9, [{w} + 144]",
            "movdqa xmm10, [{w} + 160]", "movdqa xmm11, [{w} + 176]",
            "movdqa xmm12, [{w} + 192]", "movdqa xmm13, [{w} + 208]",
            "movdqa xmm14, [{w} + 224]", "movdqa xmm15, [{w} + 240]",
            "ldmxcsr [{w} + 256]",
            "fldcw [{w} + 260]",
            // Compute without system calls: the timer may switch tasks here.
            "2:",
            "dec {spins}",
            "jnz 2b",
            "mov eax, {yield_nr}",
            "syscall",
            "movdqa [{g}], xmm0",        "movdqa [{g} + 16], xmm1",
            "movdqa [{g} + 32], xmm2",   "movdqa [{g} + 48], xmm3",
            "movdqa [{g} + 64], xmm4",   "movdqa [{g} + 80], xmm5",
            "movdqa [{g} + 96], xmm6",   "movdqa [{g} + 112], xmm7",
            "movdqa [{g} + 128], xmm8",  "movdqa [{g} + 144], xmm9",
            "movdqa [{g} + 160], xmm10", "movdqa [{g} + 176], xmm11",
            "movdqa [{g} + 192], xmm12", "movdqa [{g} + 208], xmm13",
            "movdqa [{g} + 224], xmm14", "movdqa [{g} + 240], xmm15",
            "stmxcsr [{g} + 256]",
            "fnstcw [{g} + 260]",
            w = in(reg) want,
            g = in(reg) got,
            spins = inout(reg) spins.max(1) => _,
            yield_nr = const nr::SCHED_YIELD,
            out("rax") _, out("rcx") _, out("r11") _,
            options(nostack),
        );
    }
}

fn main(args: Args) -> i32 {
    let letter = args
        .get_bytes(1)
        .and_then(|s| s.first().copied())
        .unwrap_or(b'A');
    let name = args.get(1).unwrap_or("A");
    let rounds = args.get_number(2, 2000);
    let want = FpuState::pattern(letter);
    let mut got = FpuState::pattern(0);
    for round in 1..=rounds {
        load_yield_store(&want, &mut got, 20_000);
        if got != want {
            for i in 0..16 {
                if got.xmm[i] != want.xmm[i] {
                    println!(
                        "fpu {name}: round {round}: xmm{i} = {:02x?}, expected {:02x?}",
                        got.xmm[i], want.xmm[i]
                    );
                }
            }
            println!(
                "fpu {name}: round {round}: mxcsr {:#x} (expected {:#x}), fcw {:#x} (expected {:#x}): CORRUPTED",
                got.mxcsr, want.mxcsr, got.fcw, want.fcw
            );
            return 1;
        }
    }
    println!("fpu {name}: {rounds} rounds, xmm0-15, mxcsr and fcw intact");
    0
}
