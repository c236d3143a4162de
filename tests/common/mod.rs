//! Helpers shared by the integration tests: tiny PVH guests built as bytes (no assembler, no
//! binary files in the repository) and a way to run the `vmm` binary on them.

#![allow(dead_code)]

pub mod c;
pub mod lde;
pub mod pty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the test guests' single segment is loaded, and so where their code runs.
pub const LOAD_PADDR: u64 = 0x10_0000;
const CODE_OFFSET: usize = 0xd0;

/// 32-bit code: write "hi\n" to COM1 (0x3f8), then `status` to the exit port 0xf4.
pub fn code_hi_then_exit(status: u8) -> Vec<u8> {
    let mut c = vec![0x66, 0xba, 0xf8, 0x03]; // mov dx, 0x3f8
    for b in b"hi\n" {
        c.extend_from_slice(&[0xb0, *b, 0xee]); // mov al, b; out dx, al
    }
    c.extend_from_slice(&[0xb0, status, 0xe6, 0xf4]); // mov al, status; out 0xf4, al
    c.extend_from_slice(&[0xf4, 0xeb, 0xfd]); // hlt; jmp back to hlt
    c
}

/// 32-bit code: `rep outsb` of "hey\n" (stored after the code) to COM1, then exit `status`.
pub fn code_rep_outsb_then_exit(status: u8) -> Vec<u8> {
    let msg_addr = (LOAD_PADDR as u32 + CODE_OFFSET as u32 + 20).to_le_bytes();
    let mut c = vec![0x66, 0xba, 0xf8, 0x03]; // mov dx, 0x3f8
    c.push(0xbe); // mov esi, msg
    c.extend_from_slice(&msg_addr);
    c.extend_from_slice(&[0xb9, 4, 0, 0, 0]); // mov ecx, 4
    c.extend_from_slice(&[0xf3, 0x6e]); // rep outsb
    c.extend_from_slice(&[0xb0, status, 0xe6, 0xf4]); // mov al, status; out 0xf4, al
    assert_eq!(c.len(), 20);
    c.extend_from_slice(b"hey\n");
    c
}

/// 32-bit code: `ud2` with no IDT (limit 0): #UD, then #GP, #DF, triple fault.
pub fn code_triple_fault() -> Vec<u8> {
    vec![0x0f, 0x0b]
}

/// 32-bit code: poll COM1's line status until a byte arrives, exit with that byte.
pub fn code_read_serial_then_exit() -> Vec<u8> {
    vec![
        0x66, 0xba, 0xfd, 0x03, // mov dx, 0x3fd (line status)
        0xec, // in al, dx
        0xa8, 0x01, // test al, 1 (data ready)
        0x74, 0xfb, // jz back to the in
        0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xec, // in al, dx
        0xe6, 0xf4, // out 0xf4, al
        0xf4, // hlt
    ]
}

/// 32-bit code that never finishes: interrupts off, halt forever.
pub fn code_hang() -> Vec<u8> {
    vec![0xfa, 0xf4, 0xeb, 0xfd]
}

/// What kind of (possibly broken) ELF to make.
#[derive(Clone, Copy)]
pub struct ElfSpec {
    pub class: u8,
    pub machine: u16,
    pub pvh_note: bool,
    pub load_paddr: u64,
}

impl Default for ElfSpec {
    fn default() -> Self {
        ElfSpec {
            class: 2,
            machine: 62,
            pvh_note: true,
            load_paddr: LOAD_PADDR,
        }
    }
}

/// An ELF64 with one PT_LOAD (the whole file, at `load_paddr`) and one PT_NOTE holding the
/// Xen PVH entry note (or an unrelated note when `pvh_note` is false).
pub fn make_elf(spec: ElfSpec, code: &[u8]) -> Vec<u8> {
    let entry = spec.load_paddr + CODE_OFFSET as u64;
    let mut f = vec![0u8; CODE_OFFSET];
    f.extend_from_slice(code);
    let len = f.len() as u64;
    let put16 = |f: &mut Vec<u8>, o: usize, v: u16| f[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |f: &mut Vec<u8>, o: usize, v: u64| f[o..o + 8].copy_from_slice(&v.to_le_bytes());
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = spec.class;
    f[5] = 1; // little-endian
    f[6] = 1; // version
    put16(&mut f, 16, 2); // ET_EXEC
    put16(&mut f, 18, spec.machine);
    put32(&mut f, 20, 1);
    put64(&mut f, 24, entry);
    put64(&mut f, 32, 0x40); // e_phoff
    put16(&mut f, 52, 64); // e_ehsize
    put16(&mut f, 54, 56); // e_phentsize
    put16(&mut f, 56, 2); // e_phnum
                          // PT_LOAD, R+X: the whole file.
    let ph = 0x40;
    put32(&mut f, ph, 1);
    put32(&mut f, ph + 4, 5);
    put64(&mut f, ph + 8, 0);
    put64(&mut f, ph + 16, spec.load_paddr);
    put64(&mut f, ph + 24, spec.load_paddr);
    put64(&mut f, ph + 32, len);
    put64(&mut f, ph + 40, len);
    put64(&mut f, ph + 48, 0x1000);
    // PT_NOTE at 0xb0: namesz 4, descsz 4, type, "Xen\0", entry.
    let ph = 0x40 + 56;
    let note = 0xb0;
    put32(&mut f, ph, 4);
    put32(&mut f, ph + 4, 4);
    put64(&mut f, ph + 8, note as u64);
    put64(&mut f, ph + 32, 20);
    put64(&mut f, ph + 40, 20);
    put64(&mut f, ph + 48, 4);
    put32(&mut f, note, 4);
    put32(&mut f, note + 4, 4);
    put32(&mut f, note + 8, if spec.pvh_note { 18 } else { 1 });
    f[note + 12..note + 16].copy_from_slice(if spec.pvh_note { b"Xen\0" } else { b"GNU\0" });
    put32(&mut f, note + 16, entry as u32);
    f
}

/// A scratch directory for one test, under the cargo target directory. Tests in one binary
/// run in parallel, so a name handed out twice would let one test empty or overwrite the
/// other's files mid-run; that is refused here, where it fails every time, rather than left to
/// show up as a rare corrupt file.
pub fn scratch_dir(test: &str) -> PathBuf {
    static TAKEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    {
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            !taken.iter().any(|t| t == test),
            "scratch directory {test:?} asked for twice in one test binary"
        );
        taken.push(test.to_string());
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

pub fn vmm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmm"));
    c.env_remove("RUST_LOG");
    c
}

/// Runs the vmm with `args`, `input` as its standard input (which then ends), to its exit.
pub fn run_vmm_with_input<I, S>(args: I, input: &[u8]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::io::Write;
    use std::process::Stdio;
    let mut child = vmm()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the vmm binary");
    // A guest that exits before reading everything closes the pipe: not an error here.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().expect("cannot wait for the vmm")
}

pub fn run_vmm<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    vmm()
        .args(args)
        .output()
        .expect("cannot run the vmm binary")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the vmm exited with `status`, printed exactly one line on stderr starting with
/// `prefix` and containing `needle`, and did not panic.
pub fn assert_one_line_error(o: &Output, status: i32, prefix: &str, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(status), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "backtrace hint: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with(prefix), "line: {}", lines[0]);
    assert!(lines[0].contains(needle), "{needle:?} not in: {}", lines[0]);
}
