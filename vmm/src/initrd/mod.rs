//! The boot module: the program archive (cpio newc with a START manifest) built from `--user`
//! programs, a file passed unchanged with `--initrd`, or the default set embedded at build time.

use std::path::{Path, PathBuf};

use crate::boot::loader::{check_user_program, read_user_file};
use crate::error::ImageError;
use abi::cpio::CpioWriter;

/// One `--user` value: `PATH [ARG...]`, split on spaces and tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProgram {
    pub path: PathBuf,
    pub args: Vec<String>,
}

impl UserProgram {
    pub fn parse(spec: &str) -> Result<UserProgram, ImageError> {
        let mut words = spec.split([' ', '\t']).filter(|w| !w.is_empty());
        let path = words
            .next()
            .ok_or_else(|| ImageError::EmptyUserSpec(spec.to_string()))?;
        Ok(UserProgram {
            path: PathBuf::from(path),
            args: words.map(str::to_string).collect(),
        })
    }

    /// The program's name in the archive: the file's basename.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.to_string_lossy().into_owned())
    }
}

/// Reads each program (it must be an x86-64 ELF64), and packs them with a START manifest
/// that starts them in the order given, with their arguments.
pub fn build_program_archive(programs: &[UserProgram]) -> Result<Vec<u8>, ImageError> {
    let mut start = String::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut paths: Vec<&Path> = Vec::new();
    for p in programs {
        let name = p.name();
        // The same file again (`--user "spin A" --user "spin B"`) is one program started twice:
        // pack it once. A different file with the same name could not be told apart.
        match files.iter().position(|(n, _)| *n == name) {
            Some(i) if same_file(paths[i], &p.path) => {}
            Some(_) => return Err(ImageError::DuplicateProgram(name)),
            None if name == "START" => return Err(ImageError::DuplicateProgram(name)),
            None => {
                let bytes = read_user_file(&p.path)?;
                check_user_program(&p.path, &bytes)?;
                files.push((name.clone(), bytes));
                paths.push(&p.path);
            }
        }
        start.push_str(&name);
        for a in &p.args {
            start.push(' ');
            start.push_str(a);
        }
        start.push('\n');
    }
    let mut w = CpioWriter::new();
    w.add_file("START", start.as_bytes());
    for (name, bytes) in &files {
        w.add_file(name, bytes);
    }
    Ok(w.finish())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Reads an `--initrd` file, passed to the guest unchanged.
pub fn read_initrd(path: &Path) -> Result<Vec<u8>, ImageError> {
    read_user_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_splits_on_blanks() {
        let p = UserProgram::parse("./bin/prog  a\tb").unwrap();
        assert_eq!(p.path, PathBuf::from("./bin/prog"));
        assert_eq!(p.args, vec!["a", "b"]);
        assert_eq!(p.name(), "prog");
        assert!(UserProgram::parse("   ").is_err());
    }

    /// A minimal static x86-64 executable (what `check_user_program` wants), in a temp file:
    /// one PT_LOAD of the whole file at 0x400000, the entry at its start.
    fn fake_program(dir: &Path, name: &str) -> PathBuf {
        let mut elf = vec![0u8; 120];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little-endian
        elf[6] = 1;
        elf[16] = 2; // ET_EXEC
        elf[18] = 62; // x86-64
        elf[20] = 1;
        elf[52] = 64; // e_ehsize
        elf[24..32].copy_from_slice(&0x40_0000u64.to_le_bytes()); // e_entry
        elf[32] = 64; // e_phoff
        elf[54] = 56; // e_phentsize
        elf[56] = 1; // e_phnum
        elf[64] = 1; // PT_LOAD
        elf[64 + 16..64 + 24].copy_from_slice(&0x40_0000u64.to_le_bytes()); // p_vaddr
        elf[64 + 32] = 120; // p_filesz
        elf[64 + 40] = 120; // p_memsz
        let path = dir.join(name);
        std::fs::write(&path, &elf).unwrap();
        path
    }

    #[test]
    fn same_file_twice_is_packed_once_and_started_twice() {
        let dir = std::env::temp_dir().join(format!("vmm-initrd-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("other")).unwrap();
        let spin = fake_program(&dir, "spin");
        let a = UserProgram::parse(&format!("{} A", spin.display())).unwrap();
        let b = UserProgram::parse(&format!("{} B", spin.display())).unwrap();
        let archive = build_program_archive(&[a.clone(), b]).unwrap();
        let text = String::from_utf8_lossy(&archive);
        assert!(
            text.contains("spin A\nspin B\n"),
            "START lists both instances"
        );
        assert_eq!(
            text.matches("070701").count(),
            3,
            "START, spin once, trailer"
        );

        let other = fake_program(&dir.join("other"), "spin");
        let c = UserProgram::parse(other.to_str().unwrap()).unwrap();
        assert!(matches!(
            build_program_archive(&[a, c]),
            Err(ImageError::DuplicateProgram(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
