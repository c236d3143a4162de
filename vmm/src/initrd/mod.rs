//! The boot module: the program archive (cpio newc with a START manifest) built from `--user`
//! programs, a file passed unchanged with `--initrd`, or the default set embedded at build time.

pub mod cpio;

use std::path::{Path, PathBuf};

use crate::boot::loader::{parse_elf64, read_user_file};
use crate::error::ImageError;

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
    for p in programs {
        let name = p.name();
        let bytes = read_user_file(&p.path)?;
        parse_elf64(&p.path, &bytes)?;
        if name == "START" || files.iter().any(|(n, _)| *n == name) {
            return Err(ImageError::DuplicateProgram(name));
        }
        start.push_str(&name);
        for a in &p.args {
            start.push(' ');
            start.push_str(a);
        }
        start.push('\n');
        files.push((name, bytes));
    }
    let mut w = cpio::CpioWriter::new();
    w.add_file("START", start.as_bytes());
    for (name, bytes) in &files {
        w.add_file(name, bytes);
    }
    Ok(w.finish())
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
}
