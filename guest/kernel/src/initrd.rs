//! The program archive: a cpio "newc" archive (as Linux's initramfs) passed as a PVH boot module.
//! Every regular file is a program, found by name; an optional `START` file lists the programs to
//! start at boot, one per line with their arguments (docs/conventions.md).

const MAX_FILES: usize = 64;
const HEADER_LEN: usize = 110;

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
    BadMagic(usize),
    BadHeader(usize),
    Truncated(usize),
    TooManyFiles,
}

static mut ARCHIVE: Archive = Archive::empty();

/// The program archive of this boot (empty until `install`).
pub fn archive() -> &'static Archive {
    // SAFETY: written once by `install` at boot, before any program runs.
    unsafe { &*core::ptr::addr_of!(ARCHIVE) }
}

pub fn install(a: Archive) {
    // SAFETY: called once at boot, before any reader.
    unsafe { ARCHIVE = a };
}

impl core::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            ArchiveError::BadMagic(at) => write!(f, "no cpio newc header (070701) at byte {at}"),
            ArchiveError::BadHeader(at) => write!(f, "malformed cpio header at byte {at}"),
            ArchiveError::Truncated(at) => write!(f, "archive truncated in the entry at byte {at}"),
            ArchiveError::TooManyFiles => write!(f, "more than {MAX_FILES} files"),
        }
    }
}

fn hex(field: &[u8]) -> Option<usize> {
    let s = core::str::from_utf8(field).ok()?;
    usize::from_str_radix(s, 16).ok()
}

fn align4(x: usize) -> usize {
    (x + 3) & !3
}

impl Archive {
    pub const fn empty() -> Self {
        Archive {
            files: [None; MAX_FILES],
            count: 0,
            start: None,
        }
    }

    pub fn parse(bytes: &'static [u8]) -> Result<Self, ArchiveError> {
        let mut a = Self::empty();
        let mut off = 0;
        loop {
            let h = bytes
                .get(off..off + HEADER_LEN)
                .ok_or(ArchiveError::Truncated(off))?;
            if &h[..6] != b"070701" && &h[..6] != b"070702" {
                return Err(ArchiveError::BadMagic(off));
            }
            let field =
                |i: usize| hex(&h[6 + i * 8..6 + (i + 1) * 8]).ok_or(ArchiveError::BadHeader(off));
            let mode = field(1)?;
            let size = field(6)?;
            let namesize = field(11)?;
            let name_start = off + HEADER_LEN;
            let name = bytes
                .get(name_start..name_start + namesize.saturating_sub(1))
                .ok_or(ArchiveError::Truncated(off))?;
            let name = core::str::from_utf8(name).map_err(|_| ArchiveError::BadHeader(off))?;
            let data_start = align4(name_start + namesize);
            let data = bytes
                .get(data_start..data_start + size)
                .ok_or(ArchiveError::Truncated(off))?;
            off = align4(data_start + size);
            if name == "TRAILER!!!" {
                return Ok(a);
            }
            let name = name.trim_start_matches("./").trim_start_matches('/');
            const S_IFMT: usize = 0o170000;
            const S_IFREG: usize = 0o100000;
            if mode & S_IFMT != S_IFREG {
                continue;
            }
            // SAFETY: the module stays mapped (direct map) and reserved for the kernel's life.
            let data: &'static [u8] = data;
            if name == "START" {
                a.start = core::str::from_utf8(data).ok();
                continue;
            }
            if a.count == MAX_FILES {
                return Err(ArchiveError::TooManyFiles);
            }
            a.files[a.count] = Some(File { name, data });
            a.count += 1;
        }
    }

    pub fn find(&self, name: &str) -> Option<File> {
        self.files().find(|f| f.name == name)
    }

    pub fn files(&self) -> impl Iterator<Item = File> + '_ {
        self.files[..self.count].iter().flatten().copied()
    }

    /// What to start at boot: the START lines, or every file without arguments.
    pub fn start_lines(&self) -> StartLines<'_> {
        StartLines {
            archive: self,
            next_file: 0,
            lines: self.start.map(|s| s.lines()),
        }
    }
}

pub struct StartLines<'a> {
    archive: &'a Archive,
    next_file: usize,
    lines: Option<core::str::Lines<'static>>,
}

impl Iterator for StartLines<'_> {
    /// One program and its arguments, argv[0] first.
    type Item = &'static str;
    fn next(&mut self) -> Option<&'static str> {
        match &mut self.lines {
            Some(lines) => lines
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#')),
            None => {
                let f = self.archive.files[..self.archive.count]
                    .get(self.next_file)?
                    .as_ref()?;
                self.next_file += 1;
                Some(f.name)
            }
        }
    }
}
