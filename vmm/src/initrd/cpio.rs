//! A writer for cpio "newc" archives (magic 070701, as Linux's initramfs), the format of the
//! program archive handed to the guest as its PVH boot module. Plain std only: build.rs
//! includes this file too (`#[path]`) to pack the default program set.

/// Builds an archive in memory: regular files in the order added, then the TRAILER!!! entry.
pub struct CpioWriter {
    buf: Vec<u8>,
    next_ino: u32,
}

impl Default for CpioWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpioWriter {
    pub fn new() -> CpioWriter {
        CpioWriter {
            buf: Vec::new(),
            next_ino: 1,
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
        // c_ino, c_mode, c_uid, c_gid, c_nlink, c_mtime, c_filesize, c_devmajor, c_devminor,
        // c_rdevmajor, c_rdevminor, c_namesize (with its NUL), c_check: 8 hex digits each.
        let fields = [
            ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad4();
        self.buf.extend_from_slice(data);
        self.pad4();
    }

    /// Adds a regular file (mode 0755) named `name`.
    pub fn add_file(&mut self, name: &str, data: &[u8]) {
        self.entry(name, 0o100_755, data);
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
