//! The tree at boot, from the program archive (a cpio "newc" boot module, docs/conventions.md):
//! a file with a bare name (`hello`, `./hello`) is a program, `/bin/NAME`; one whose name has a
//! slash inside (`etc/motd`) or starts with one (`/motd`, which is how the VMM's `--file
//! HOST:GUEST` writes them) goes where its name says, its directories made as needed; directory
//! entries become directories. The
//! archive's files keep their bytes in the boot module (read-only, EROFS on writing), so
//! programs can map their pages straight from it. `START` is not a file: it says what to start.

use alloc::vec::Vec;

use super::fs;
use abi::cpio::{self, CpioError};
use abi::Errno;
use kcore::fs::{Data, Device, Kind, ROOT};

#[derive(Debug)]
pub enum ArchiveError {
    Cpio(CpioError),
    /// A file could not go where its name says (a name in the way, too long, no memory).
    Place(&'static str, Errno),
}

impl core::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            ArchiveError::Cpio(e) => write!(f, "{e}"),
            ArchiveError::Place(name, e) => write!(f, "{name}: {e}"),
        }
    }
}

/// What the archive says to start: its START file, or (without one) its programs in order.
pub struct Start {
    pub manifest: Option<&'static str>,
    pub programs: Vec<&'static str>,
}

impl Start {
    /// The START lines, or every program without arguments.
    pub fn lines(&self) -> impl Iterator<Item = &'static str> + '_ {
        let from_start = self.manifest.map(abi::start::lines);
        let all = self
            .manifest
            .is_none()
            .then(|| self.programs.iter().copied());
        from_start
            .into_iter()
            .flatten()
            .chain(all.into_iter().flatten())
    }
}

/// Builds the tree: the fixed directories and devices, then the archive's files. The boot
/// module's bytes stay mapped (direct map) and reserved for the kernel's life.
pub fn build(archive: &'static [u8]) -> Result<Start, ArchiveError> {
    let fixed = |e| ArchiveError::Place("/", e);
    let bin;
    let mut start = Start {
        manifest: None,
        programs: Vec::new(),
    };
    // One lock for the whole archive: nothing else runs yet, and at ~1,600 ring-0 instructions
    // an entry on a software KVM, a default set of 30 programs is already ~20 ms of boot.
    let mut t = fs();
    {
        t.init().map_err(fixed)?;
        bin = t.mkdir_all(b"/bin", 0o755).map_err(fixed)?;
        let tmp = t.mkdir_all(b"/tmp", 0o755).map_err(fixed)?;
        t.chmod(tmp, 0o1777).map_err(fixed)?;
        let dev = t.mkdir_all(b"/dev", 0o755).map_err(fixed)?;
        for (name, d, perm) in [
            (&b"null"[..], Device::Null, 0o666),
            (b"zero", Device::Zero, 0o666),
            (b"random", Device::Random, 0o666),
            (b"urandom", Device::Urandom, 0o666),
            (b"console", Device::Console, 0o600),
            (b"tty", Device::Tty, 0o666),
        ] {
            t.create(dev, name, Kind::Device(d), perm).map_err(fixed)?;
        }
        // Linux's links into the caller's descriptors.
        for (name, target) in crate::procfs::DEV_FD {
            t.symlink(dev, name, target).map_err(fixed)?;
        }
        let proc_self = t.mkdir_all(b"/proc/self", 0o555).map_err(fixed)?;
        let proc = t.get(proc_self).map_err(fixed)?.parent;
        crate::procfs::set_root(proc);
        for (name, which) in crate::procfs::FILES {
            t.create(proc, name, Kind::Generated(which), 0o444)
                .map_err(fixed)?;
        }
        t.create(proc_self, b"exe", Kind::SelfExe, 0o777)
            .map_err(fixed)?;
    }
    // The directory of the previous file and its path: an archive lists a directory's files
    // together (the VMM writes a `--file DIR` tree so), and walking the same path again for
    // each of them was most of a deep tree's boot (~3 ms a file of Python's library).
    let mut last_dir: Option<(&[u8], kcore::fs::Ino)> = None;
    for entry in cpio::entries(archive) {
        let entry = entry.map_err(ArchiveError::Cpio)?;
        let name = entry.name;
        if entry.is_file() && name == "START" {
            start.manifest = core::str::from_utf8(entry.data).ok();
            continue;
        }
        let place = |e| ArchiveError::Place(name, e);
        if entry.is_dir() {
            t.mkdir_all(name.as_bytes(), entry.mode).map_err(place)?;
            continue;
        }
        if !entry.is_file() {
            continue;
        }
        // By bytes: `str::rfind` and `contains` build a pattern searcher, ~90 instructions a name.
        let slash = name.bytes().rposition(|b| b == b'/');
        let program = !entry.rooted && slash.is_none();
        let (dir, base) = match slash {
            Some(i) => {
                let path = &name.as_bytes()[..i];
                let dir = match last_dir {
                    Some((p, d)) if p == path => Ok(d),
                    _ => t.mkdir_all(path, 0o755),
                };
                (dir, &name[i + 1..])
            }
            None if program => (Ok(bin), name),
            None => (Ok(ROOT), name),
        };
        let dir = dir.map_err(place)?;
        if let Some(i) = slash {
            last_dir = Some((&name.as_bytes()[..i], dir));
        }
        let data = Kind::File(Data::Static(entry.data));
        t.create(dir, base.as_bytes(), data, entry.mode & 0o7777)
            .map_err(place)?;
        if program {
            start
                .programs
                .try_reserve(1)
                .map_err(|_| place(Errno::ENOMEM))?;
            start.programs.push(name);
        }
    }
    // /etc/mtab, as Debian has it (older programs read it for df and mount), unless the
    // archive brought one.
    if let Ok(etc) = t.mkdir_all(b"/etc", 0o755) {
        let _ = t.symlink(etc, b"mtab", b"/proc/mounts");
    }
    Ok(start)
}
