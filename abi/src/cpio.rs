//! cpio "newc" archives (magic `070701`, as Linux's initramfs): the format of the program
//! archive that the VMM hands the kernel as its PVH boot module.
//!
//! An entry is a 110-byte header of thirteen 8-digit hex fields, the name (with its NUL,
//! `namesize` bytes), padding to 4 bytes, the data (`filesize` bytes), padding to 4 bytes. The
//! archive ends with an entry named `TRAILER!!!`. A name is read up to its first NUL, so a writer
//! may pad a name with extra NULs (as Linux's initramfs reader and GNU cpio accept): ours does that
//! to start every file's data on a page boundary, where the kernel can map it straight into a
//! program (`CpioWriter::page_aligned`).
//!
//! The reader never panics and never reads out of bounds, whatever the bytes (property-tested).

use core::fmt;

pub const HEADER_LEN: usize = 110;
pub const TRAILER: &str = "TRAILER!!!";
pub use crate::fs::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

/// One entry of an archive, borrowed from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The path as written, without any leading `./` or `/`.
    pub name: &'a str,
    /// The path was written from the root (`/etc/motd`): the kernel puts such a file at that
    /// path, where a bare name (`hello`) is a program in /bin.
    pub rooted: bool,
    pub mode: u32,
    pub data: &'a [u8],
    /// Where `data` starts in the archive (a multiple of 4; of 4096 with a page-aligned writer).
    pub data_offset: usize,
}

impl Entry<'_> {
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
}

/// What is wrong with an archive, and at which byte its bad entry starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioError {
    BadMagic(usize),
    BadHeader(usize),
    Truncated(usize),
    BadName(usize),
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            CpioError::BadMagic(at) => write!(f, "no cpio newc header (070701) at byte {at}"),
            CpioError::BadHeader(at) => write!(f, "malformed cpio header at byte {at}"),
            CpioError::Truncated(at) => write!(f, "archive truncated in the entry at byte {at}"),
            CpioError::BadName(at) => write!(f, "entry name at byte {at} is not UTF-8"),
        }
    }
}

/// The entries of `bytes`, in order, up to the trailer. An error ends the iteration.
pub fn entries(bytes: &[u8]) -> Entries<'_> {
    Entries {
        bytes,
        off: 0,
        done: false,
    }
}

pub struct Entries<'a> {
    bytes: &'a [u8],
    off: usize,
    done: bool,
}

/// Each byte's value as a hex digit, or 0xff.
static HEX_DIGIT: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// An 8-digit hex field. By table, not `char::to_digit`: the kernel reads every header at boot,
/// where each ring-0 instruction is dear on a software KVM (to_digit took ~25 a digit).
fn hex(field: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    let mut bad = 0;
    for &c in field {
        let d = HEX_DIGIT[c as usize];
        bad |= d;
        v = v << 4 | (d & 0xf) as u32;
    }
    (bad & 0xf0 == 0).then_some(v)
}

/// The name without any leading `./` or `/`: `trim_start_matches("./")` builds a substring
/// searcher for each call, several hundred instructions for a short name.
fn trim_name(mut name: &str) -> &str {
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    let slashes = name.bytes().take_while(|&b| b == b'/').count();
    &name[slashes..]
}

fn align4(x: usize) -> Option<usize> {
    Some(x.checked_add(3)? & !3)
}

impl<'a> Entries<'a> {
    fn entry(&mut self) -> Result<Option<Entry<'a>>, CpioError> {
        let off = self.off;
        let h = self
            .bytes
            .get(
                off..off
                    .checked_add(HEADER_LEN)
                    .ok_or(CpioError::Truncated(off))?,
            )
            .ok_or(CpioError::Truncated(off))?;
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return Err(CpioError::BadMagic(off));
        }
        let field = |i: usize| hex(&h[6 + i * 8..6 + (i + 1) * 8]).ok_or(CpioError::BadHeader(off));
        let mode = field(1)?;
        let size = field(6)? as usize;
        let namesize = field(11)? as usize;
        if namesize == 0 {
            return Err(CpioError::BadHeader(off));
        }
        let truncated = CpioError::Truncated(off);
        let name_start = off + HEADER_LEN;
        let name_end = name_start.checked_add(namesize).ok_or(truncated)?;
        let raw = self.bytes.get(name_start..name_end).ok_or(truncated)?;
        let raw = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        let name = core::str::from_utf8(raw).map_err(|_| CpioError::BadName(off))?;
        let data_start = align4(name_end).ok_or(truncated)?;
        let data_end = data_start.checked_add(size).ok_or(truncated)?;
        let data = self.bytes.get(data_start..data_end).ok_or(truncated)?;
        self.off = align4(data_end).ok_or(truncated)?;
        if name == TRAILER {
            return Ok(None);
        }
        let rooted = name.starts_with('/');
        let name = trim_name(name);
        Ok(Some(Entry {
            name,
            rooted,
            mode,
            data,
            data_offset: data_start,
        }))
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Builds an archive in memory: entries in the order added, then the trailer.
#[cfg(any(test, feature = "std"))]
pub struct CpioWriter {
    buf: std::vec::Vec<u8>,
    next_ino: u32,
    align: usize,
}

#[cfg(any(test, feature = "std"))]
impl Default for CpioWriter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(any(test, feature = "std"))]
impl CpioWriter {
    pub fn new() -> CpioWriter {
        CpioWriter {
            buf: std::vec::Vec::new(),
            next_ino: 1,
            align: 4,
        }
    }

    /// A writer that starts every file's data on a 4 KiB boundary (padding names with NULs).
    pub fn page_aligned() -> CpioWriter {
        CpioWriter {
            align: 4096,
            ..Self::new()
        }
    }

    fn pad4(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        let ino = if mode == 0 { 0 } else { self.next_ino };
        self.next_ino += 1;
        let header_end = self.buf.len() + HEADER_LEN;
        let mut namesize = name.len() + 1;
        if self.align > 4 && !data.is_empty() {
            let data_start = (header_end + namesize).next_multiple_of(self.align);
            namesize = data_start - header_end;
        }
        // c_ino, c_mode, c_uid, c_gid, c_nlink, c_mtime, c_filesize, c_devmajor, c_devminor,
        // c_rdevmajor, c_rdevminor, c_namesize (with its NULs), c_check.
        let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            namesize as u32,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf
                .extend_from_slice(std::format!("{f:08X}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.resize(header_end + namesize, 0);
        self.pad4();
        self.buf.extend_from_slice(data);
        self.pad4();
    }

    /// Adds a regular file (mode 0755) named `name`.
    pub fn add_file(&mut self, name: &str, data: &[u8]) {
        self.entry(name, S_IFREG | 0o755, data);
    }

    /// Adds a regular file with permission bits `perm` (e.g. 0o644).
    pub fn add_file_mode(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, S_IFREG | (perm & 0o7777), data);
    }

    /// Adds a directory (mode 0755).
    pub fn add_dir(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, &[]);
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> std::vec::Vec<u8> {
        self.align = 4;
        self.entry(TRAILER, 0, &[]);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn layout_is_newc() {
        let mut w = CpioWriter::new();
        w.add_file("START", b"hello\n");
        let a = w.finish();
        assert_eq!(&a[..6], b"070701");
        assert_eq!(a.len() % 4, 0);
        // 110-byte header + "START\0" = 116, already aligned; then 6 bytes of data padded to 8.
        assert_eq!(&a[110..116], b"START\0");
        assert_eq!(&a[116..122], b"hello\n");
        assert_eq!(&a[124..130], b"070701");
    }

    #[test]
    fn written_entries_read_back() {
        let mut w = CpioWriter::new();
        w.add_file("./bin/a", b"one");
        w.add_dir("etc");
        w.add_file_mode("/etc/motd", 0o644, b"");
        let a = w.finish();
        let e: Vec<Entry> = entries(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].name, e[0].data), ("bin/a", &b"one"[..]));
        assert!(e[0].is_file() && e[1].is_dir() && e[2].is_file());
        assert_eq!(e[2].mode & 0o7777, 0o644);
        assert_eq!(&a[e[0].data_offset..e[0].data_offset + 3], b"one");
    }

    #[test]
    fn page_aligned_data() {
        let mut w = CpioWriter::page_aligned();
        w.add_file("START", b"x\n");
        w.add_file("prog", &[7u8; 5000]);
        w.add_file("empty", b"");
        let a = w.finish();
        let e: Vec<Entry> = entries(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(e.len(), 3);
        for x in &e[..2] {
            assert_eq!(x.data_offset % 4096, 0, "{}", x.name);
        }
        assert_eq!(e[1].data, &[7u8; 5000][..]);
        assert_eq!(e[1].name, "prog");
    }

    #[test]
    fn errors_name_the_entry() {
        assert_eq!(entries(b"").next(), Some(Err(CpioError::Truncated(0))));
        let mut bad = CpioWriter::new().finish();
        bad[0] = b'1';
        assert_eq!(entries(&bad).next(), Some(Err(CpioError::BadMagic(0))));
        let mut w = CpioWriter::new();
        w.add_file("a", b"abcd");
        let a = w.finish();
        assert!(matches!(
            entries(&a[..114]).next(),
            Some(Err(CpioError::Truncated(0)))
        ));
        let mut hdr = a.clone();
        hdr[6 + 6 * 8] = b'g'; // filesize is no longer hex
        assert_eq!(entries(&hdr).next(), Some(Err(CpioError::BadHeader(0))));
    }

    proptest! {
        #[test]
        fn any_bytes_give_entries_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut n = 0;
            for e in entries(&bytes) {
                n += 1;
                if let Ok(e) = e {
                    prop_assert!(e.data_offset + e.data.len() <= bytes.len());
                }
            }
            prop_assert!(n <= bytes.len() / HEADER_LEN + 1);
        }

        #[test]
        fn names_are_trimmed_as_by_trim_start_matches(name in "[./a]{0,10}") {
            prop_assert_eq!(
                trim_name(&name),
                name.trim_start_matches("./").trim_start_matches('/')
            );
        }

        #[test]
        fn hex_fields_read_as_from_str_radix(field in "[0-9a-fA-FxX -]{8}") {
            prop_assert_eq!(hex(field.as_bytes()), u32::from_str_radix(&field, 16).ok());
        }

        #[test]
        fn mutated_archives_never_panic(
            files in proptest::collection::vec(("[a-z]{1,8}", proptest::collection::vec(any::<u8>(), 0..64)), 0..5),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        ) {
            let mut w = CpioWriter::new();
            for (name, data) in &files {
                w.add_file(name, data);
            }
            let mut a = w.finish();
            let good: Vec<_> = entries(&a).collect();
            prop_assert_eq!(good.len(), files.len());
            for (at, b) in flips {
                let len = a.len();
                a[at % len] = b;
            }
            for e in entries(&a).flatten() {
                prop_assert!(e.data_offset + e.data.len() <= a.len());
            }
        }
    }
}
