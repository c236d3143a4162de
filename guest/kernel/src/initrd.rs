//! The program archive: a cpio "newc" archive (as Linux's initramfs) passed as a PVH boot module,
//! read with `abi::cpio`. Every regular file is a program, found by name; an optional `START`
//! file lists the programs to start at boot, one per line with their arguments
//! (docs/conventions.md).

use crate::sync::BootOnce;
use abi::cpio::{self, CpioError};

const MAX_FILES: usize = 64;

#[derive(Clone, Copy)]
pub struct File {
    pub name: &'static str,
    pub data: &'static [u8],
}

pub struct Archive {
    files: [Option<File>; MAX_FILES],
    count: usize,
    start: Option<&'static str>,
}

#[derive(Debug)]
pub enum ArchiveError {
    Cpio(CpioError),
    TooManyFiles,
}

static ARCHIVE: BootOnce<Archive> = BootOnce::new();

/// The program archive of this boot (set by `install`, before any program runs).
pub fn archive() -> &'static Archive {
    ARCHIVE.get()
}

pub fn install(a: Archive) -> &'static Archive {
    ARCHIVE.init(a)
}

impl core::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            ArchiveError::Cpio(e) => write!(f, "{e}"),
            ArchiveError::TooManyFiles => write!(f, "more than {MAX_FILES} files"),
        }
    }
}

impl Archive {
    pub const fn empty() -> Self {
        Archive {
            files: [None; MAX_FILES],
            count: 0,
            start: None,
        }
    }

    /// The boot module's bytes stay mapped (direct map) and reserved for the kernel's life.
    pub fn parse(bytes: &'static [u8]) -> Result<Self, ArchiveError> {
        let mut a = Self::empty();
        for entry in cpio::entries(bytes) {
            let entry = entry.map_err(ArchiveError::Cpio)?;
            if !entry.is_file() {
                continue;
            }
            if entry.name == "START" {
                a.start = core::str::from_utf8(entry.data).ok();
                continue;
            }
            if a.count == MAX_FILES {
                return Err(ArchiveError::TooManyFiles);
            }
            a.files[a.count] = Some(File {
                name: entry.name,
                data: entry.data,
            });
            a.count += 1;
        }
        Ok(a)
    }

    /// The program at `path` in the name space built from the archive: each file NAME is
    /// `/bin/NAME` (docs/conventions.md). `.` and `..` and repeated slashes are understood, and
    /// a relative path starts at `/` (every process's working directory, for now).
    pub fn lookup(&self, path: &[u8]) -> Option<u32> {
        let mut parts: [&[u8]; 8] = [&[]; 8];
        let mut n: usize = 0;
        for part in path.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => n = n.saturating_sub(1),
                p => {
                    if n == parts.len() {
                        return None;
                    }
                    parts[n] = p;
                    n += 1;
                }
            }
        }
        if n != 2 || parts[0] != b"bin" {
            return None;
        }
        let name = core::str::from_utf8(parts[1]).ok()?;
        self.files[..self.count]
            .iter()
            .position(|f| f.is_some_and(|f| f.name == name))
            .map(|i| i as u32)
    }

    /// How many files (indices 0..len).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn get(&self, index: u32) -> Option<File> {
        self.files.get(index as usize).copied().flatten()
    }

    pub fn files(&self) -> impl Iterator<Item = File> + '_ {
        self.files[..self.count].iter().flatten().copied()
    }

    /// What to start at boot: the START lines, or every file without arguments.
    pub fn start_lines(&self) -> impl Iterator<Item = &'static str> + '_ {
        let from_start = self.start.map(abi::start::lines);
        let all_files = self.start.is_none().then(|| self.files().map(|f| f.name));
        from_start
            .into_iter()
            .flatten()
            .chain(all_files.into_iter().flatten())
    }
}
