//! The in-memory file system's tree (a tmpfs): inodes, directories, path resolution with `.` and
//! `..`, and file data in pages, with Linux's errors. The kernel (`guest/kernel/src/fs/`) wraps
//! one `Fs` in a lock and gives it its page store (frames of RAM); the host tests give it a
//! `Vec` of pages with a limit, to run out of space on purpose.
//!
//! Files come in two kinds of data. The boot archive's are `Static`: slices of the boot module,
//! never written (EROFS), so that their pages can be mapped straight into programs. New files
//! keep their bytes in pages allocated on demand; a page never written is a hole (reads as
//! zeros, costs nothing), and running out of pages is ENOSPC, never a crash.
//!
//! Every inode has exactly one name (there is no `link`), so each keeps its parent: `..`,
//! getcwd and /proc/self/exe walk up through it.

use abi::Errno;
use alloc::vec::Vec;
use hashbrown::HashTable;

/// An inode number: an index in the inode table.
pub type Ino = u32;
/// The root directory.
pub const ROOT: Ino = 0;
/// The longest name in a directory (Linux's NAME_MAX).
pub const NAME_MAX: usize = 255;
pub const PAGE: usize = 4096;

pub use abi::fs::dtype::*;
pub use abi::fs::mode::*;

/// Where new files' bytes live: whole pages, named by a number the store chooses (never 0).
pub trait PageStore {
    /// A new page, zeroed if `zeroed` (otherwise the caller overwrites all of it).
    fn alloc(&mut self, zeroed: bool) -> Option<u64>;
    fn free(&mut self, page: u64);
    fn bytes(&self, page: u64) -> &[u8; PAGE];
    fn bytes_mut(&mut self, page: u64) -> &mut [u8; PAGE];
}

/// The devices of /dev.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Null,
    Zero,
    Console,
    Tty,
    /// /dev/random and /dev/urandom: the kernel's generator (both, as Linux's since 5.6, never
    /// block once seeded, and ours is seeded before the first program).
    Random,
    Urandom,
}

impl Device {
    /// (major, minor), as Linux numbers them.
    pub fn rdev(self) -> (u32, u32) {
        match self {
            Device::Null => (1, 3),
            Device::Zero => (1, 5),
            Device::Random => (1, 8),
            Device::Urandom => (1, 9),
            Device::Tty => (5, 0),
            Device::Console => (5, 1),
        }
    }
}

pub enum Data {
    /// The boot archive's bytes: read-only.
    Static(&'static [u8]),
    /// Pages (0: a hole) and the file's length.
    Pages { pages: Vec<u64>, len: u64 },
}

pub enum Kind {
    Dir(Dir),
    File(Data),
    Device(Device),
    /// /proc/self/exe: a link whose target is the calling process's program.
    SelfExe,
    /// /proc/PID/fd/N: a link to what process `pid`'s descriptor `fd` is open on, which only
    /// the kernel can tell (it answers readlink, and opening it reaches that open file).
    FdLink {
        pid: u32,
        fd: u32,
    },
    /// A file of /proc whose bytes the kernel writes when it is opened (`/proc/meminfo`...):
    /// which one, by the kernel's own number. Read-only; its size reads as 0, as procfs's.
    Generated(u32),
    /// A symbolic link (symlink(2)): its target, a path taken from the link's directory when
    /// relative. Paths through it are followed (`parent_of`, `follow`), at most `MAX_LINKS`.
    Symlink(Vec<u8>),
}

/// The most symbolic links one path may go through (Linux's MAXSYMLINKS): ELOOP beyond.
pub const MAX_LINKS: u32 = 40;
/// The longest path (Linux's PATH_MAX, its NUL included): a link's target is shorter.
pub const PATH_MAX: usize = 4096;

struct Entry {
    name: Vec<u8>,
    /// A cheap filter before comparing names (a lookup in a big directory compares this only).
    hash: u32,
    ino: Ino,
    /// The readdir position of this entry: increasing in the order entries were added, and never
    /// reused, so removing entries while a directory is being read skips nothing.
    cookie: u64,
}

#[derive(Default)]
pub struct Dir {
    entries: Vec<Entry>,
    next_cookie: u64,
    subdirs: u32,
    /// In a directory of more than `INDEX_FROM` entries, each entry's cookie by its name's
    /// hash, so that a lookup is not a scan (a directory of 1,400 files took 5 s to fill at
    /// boot, every lookup and every creation scanning it on kvm_pvm's emulated ring 0). Only a
    /// speed-up: when the heap cannot grow it, it is dropped and lookups scan again.
    index: Option<HashTable<u64>>,
}

/// Entries from which a directory keeps an index (below, a scan of the names' hashes is
/// shorter than a hash table's probe).
const INDEX_FROM: usize = 32;

impl Dir {
    /// The position of the entry with `cookie` (entries stay in cookie order).
    fn at_cookie(entries: &[Entry], cookie: u64) -> usize {
        entries.partition_point(|e| e.cookie < cookie)
    }

    /// Where the entry named `name` (its hash `h`) is.
    #[inline]
    fn position(&self, name: &[u8], h: u32) -> Option<usize> {
        let entries = &self.entries;
        match &self.index {
            Some(table) => table
                .find(spread(h), |&c| {
                    entries[Self::at_cookie(entries, c)].name == name
                })
                .map(|&c| Self::at_cookie(entries, c)),
            None => entries.iter().position(|e| e.hash == h && e.name == name),
        }
    }

    /// Appends an entry (room for it reserved), indexing it.
    fn push(&mut self, e: Entry) {
        let (h, cookie) = (e.hash, e.cookie);
        self.entries.push(e);
        let entries = &self.entries;
        let rehash = |&c: &u64| spread(entries[Self::at_cookie(entries, c)].hash);
        match &mut self.index {
            Some(table) => {
                if table.try_reserve(1, rehash).is_ok() {
                    table.insert_unique(spread(h), cookie, rehash);
                } else {
                    self.index = None;
                }
            }
            None if entries.len() > INDEX_FROM => {
                let mut table = HashTable::new();
                if table.try_reserve(entries.len() * 2, rehash).is_ok() {
                    for e in entries {
                        table.insert_unique(spread(e.hash), e.cookie, rehash);
                    }
                    self.index = Some(table);
                }
            }
            None => {}
        }
    }

    /// Takes out the entry at `i`.
    fn remove_at(&mut self, i: usize) -> Entry {
        let (h, cookie) = (self.entries[i].hash, self.entries[i].cookie);
        if let Some(table) = &mut self.index {
            if let Ok(found) = table.find_entry(spread(h), |&c| c == cookie) {
                found.remove();
            }
        }
        self.entries.remove(i)
    }
}

/// A name's 32-bit hash spread over 64 bits: the hash table takes its control bytes from the
/// top bits.
fn spread(h: u32) -> u64 {
    (h as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

pub struct Inode {
    pub kind: Kind,
    /// Permission bits (07777); the type comes from `kind`.
    pub perm: u32,
    pub parent: Ino,
    /// Its names: directory entries that lead to it (a directory has one; a file one per hard
    /// link). 0 once unlinked or removed.
    pub links: u32,
    /// Open files, working directories and the like that keep it alive after unlinking.
    pub refs: u32,
    /// Times in the caller's clock (`Fs::now`). The access time changes only when it is set
    /// (utimensat): reads leave it, as a `noatime` mount does.
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    pub fn mode(&self) -> u32 {
        let t = match self.kind {
            Kind::Dir(_) => S_IFDIR,
            Kind::File(_) | Kind::Generated(_) => S_IFREG,
            Kind::Device(_) => S_IFCHR,
            Kind::SelfExe | Kind::FdLink { .. } | Kind::Symlink(_) => S_IFLNK,
        };
        t | self.perm
    }

    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::File(Data::Static(d)) => d.len() as u64,
            Kind::File(Data::Pages { len, .. }) => *len,
            Kind::Dir(d) => d.entries.len() as u64 * 32, // as tmpfs: something, not 0
            Kind::Symlink(target) => target.len() as u64,
            _ => 0,
        }
    }

    /// Pages of storage it holds (st_blocks counts 512-byte units of these).
    pub fn pages_held(&self) -> u64 {
        match &self.kind {
            Kind::File(Data::Pages { pages, .. }) => {
                pages.iter().filter(|&&p| p != 0).count() as u64
            }
            Kind::File(Data::Static(d)) => d.len().div_ceil(PAGE) as u64,
            _ => 0,
        }
    }

    pub fn nlink(&self) -> u64 {
        match &self.kind {
            Kind::Dir(d) if self.linked() => 2 + d.subdirs as u64,
            _ => self.links as u64,
        }
    }

    /// Still has a name (false once its last one is unlinked or removed).
    pub fn linked(&self) -> bool {
        self.links > 0
    }

    pub fn d_type(&self) -> u8 {
        match self.kind {
            Kind::Dir(_) => DT_DIR,
            Kind::File(_) | Kind::Generated(_) => DT_REG,
            Kind::Device(_) => DT_CHR,
            Kind::SelfExe | Kind::FdLink { .. } | Kind::Symlink(_) => DT_LNK,
        }
    }
}

/// FNV-1a.
fn hash(name: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in name {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h
}

/// What `Fs::parent_of` gives for a path: the directory and the last component.
#[derive(Debug)]
pub struct Last<'p> {
    pub dir: Ino,
    /// Empty for "/" (or a path of slashes), else the last component (may be `.` or `..`).
    pub name: &'p [u8],
    /// The path ended with a slash ("dir/"): only a directory may be named so.
    pub trailing_slash: bool,
}

impl Last<'_> {
    /// The name is an ordinary one (not "", ".", "..").
    pub fn is_normal(&self) -> bool {
        !matches!(self.name, b"" | b"." | b"..")
    }
}

/// One readdir answer: (the next position, inode, name, d_type).
pub type DirEntry<'a> = (u64, Ino, &'a [u8], u8);

/// renameat2's flags.
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;

pub struct Fs<S: PageStore> {
    nodes: Vec<Option<Inode>>,
    free: Vec<Ino>,
    pub store: S,
    /// The time new changes are stamped with, in the caller's clock (the kernel's: the TSC,
    /// turned into wall-clock time only when stat asks), set by the caller.
    pub now: u64,
}

impl<S: PageStore> Fs<S> {
    /// An empty file system: no root yet (`init` makes it).
    pub const fn new(store: S) -> Fs<S> {
        Fs {
            nodes: Vec::new(),
            free: Vec::new(),
            store,
            now: 0,
        }
    }

    /// Makes the root directory (mode 0755).
    pub fn init(&mut self) -> Result<(), Errno> {
        if !self.nodes.is_empty() {
            return Ok(());
        }
        let root = self.alloc_inode(Kind::Dir(Dir::default()), 0o755, ROOT)?;
        self.get_mut(root)?.links = 1; // the root's name is the tree itself
        debug_assert_eq!(root, ROOT);
        Ok(())
    }

    pub fn get(&self, ino: Ino) -> Result<&Inode, Errno> {
        self.nodes
            .get(ino as usize)
            .and_then(|n| n.as_ref())
            .ok_or(Errno::ENOENT)
    }

    fn get_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        self.nodes
            .get_mut(ino as usize)
            .and_then(|n| n.as_mut())
            .ok_or(Errno::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir, Errno> {
        match &self.get(ino)?.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir, Errno> {
        match &mut self.get_mut(ino)?.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// How many inodes are in use (for tests and reports).
    pub fn inodes_in_use(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    fn alloc_inode(&mut self, kind: Kind, perm: u32, parent: Ino) -> Result<Ino, Errno> {
        let node = Inode {
            kind,
            perm: perm & 0o7777,
            parent,
            links: 0, // add_entry gives it its first
            refs: 0,
            atime: self.now,
            mtime: self.now,
            ctime: self.now,
        };
        if let Some(ino) = self.free.pop() {
            self.nodes[ino as usize] = Some(node);
            return Ok(ino);
        }
        if self.nodes.len() >= u32::MAX as usize {
            return Err(Errno::ENOSPC);
        }
        self.nodes.try_reserve(1).map_err(|_| Errno::ENOSPC)?;
        self.free.try_reserve(1).map_err(|_| Errno::ENOSPC)?;
        self.nodes.push(Some(node));
        Ok((self.nodes.len() - 1) as Ino)
    }

    /// Frees an inode that has neither a name nor references, with its pages.
    fn maybe_free(&mut self, ino: Ino) {
        let Ok(node) = self.get(ino) else { return };
        if node.linked() || node.refs > 0 || ino == ROOT {
            return;
        }
        if let Some(Inode {
            kind: Kind::File(Data::Pages { pages, .. }),
            ..
        }) = self.nodes[ino as usize].take()
        {
            for p in pages.into_iter().filter(|&p| p != 0) {
                self.store.free(p);
            }
        }
        self.nodes[ino as usize] = None;
        // Reserved when the inode was made: cannot fail.
        if self.free.try_reserve(1).is_ok() {
            self.free.push(ino);
        }
    }

    /// One more reference (an open file, a working directory).
    pub fn hold(&mut self, ino: Ino) {
        if let Ok(n) = self.get_mut(ino) {
            n.refs += 1;
        }
    }

    /// One reference fewer; an unlinked inode goes with its last.
    pub fn release(&mut self, ino: Ino) {
        if let Ok(n) = self.get_mut(ino) {
            n.refs = n.refs.saturating_sub(1);
            self.maybe_free(ino);
        }
    }

    /// `name` in directory `dir`.
    pub fn lookup_in(&self, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
        let node = self.get(dir)?;
        let Kind::Dir(d) = &node.kind else {
            return Err(Errno::ENOTDIR);
        };
        match name {
            b"." | b"" => Ok(dir),
            // A removed directory's parent may be gone too (and its number reused): nothing
            // is found from there, `..` included.
            b".." if !node.linked() => Err(Errno::ENOENT),
            b".." => Ok(node.parent),
            _ => {
                let h = hash(name);
                let found = match d.index {
                    None => d.entries.iter().find(|e| e.hash == h && e.name == name),
                    Some(_) => d.position(name, h).and_then(|i| d.entries.get(i)),
                };
                found.map(|e| e.ino).ok_or(Errno::ENOENT)
            }
        }
    }

    /// Resolves `path` from `start` (the working directory, or a dirfd's; an absolute path
    /// starts at the root) to its directory and last component, each earlier component being
    /// a directory.
    pub fn parent_of<'p>(&self, start: Ino, path: &'p [u8]) -> Result<Last<'p>, Errno> {
        self.parent_of_within(start, path, &mut 0)
    }

    /// `parent_of`, with `links` symbolic links gone through so far (ELOOP past MAX_LINKS):
    /// a link among the earlier components is followed to the directory it names.
    fn parent_of_within<'p>(
        &self,
        start: Ino,
        path: &'p [u8],
        links: &mut u32,
    ) -> Result<Last<'p>, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut dir = if path[0] == b'/' { ROOT } else { start };
        self.dir(dir)?;
        let trimmed_end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        let trailing_slash = trimmed_end < path.len() && trimmed_end > 0;
        let body = &path[..trimmed_end];
        let (head, name) = match body.iter().rposition(|&b| b == b'/') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (&body[..0], body),
        };
        for part in head.split(|&b| b == b'/') {
            if part.is_empty() || part == b"." {
                continue;
            }
            if part.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            let next = self.lookup_in(dir, part)?;
            dir = self.follow_within(dir, next, links)?;
            self.dir(dir)?;
        }
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(Last {
            dir,
            name,
            trailing_slash,
        })
    }

    /// What `ino`, found in directory `dir`, is once symbolic links are followed: itself if it
    /// is not one; ENOENT for a link to nothing, ELOOP past MAX_LINKS links.
    pub fn follow(&self, dir: Ino, ino: Ino) -> Result<Ino, Errno> {
        self.follow_within(dir, ino, &mut 0)
    }

    fn follow_within(&self, mut dir: Ino, mut ino: Ino, links: &mut u32) -> Result<Ino, Errno> {
        while let Kind::Symlink(target) = &self.get(ino)?.kind {
            *links += 1;
            if *links > MAX_LINKS {
                return Err(Errno::ELOOP);
            }
            let last = self.parent_of_within(dir, target, links)?;
            ino = self.lookup_in(last.dir, last.name)?;
            if last.trailing_slash {
                ino = self.follow_within(last.dir, ino, links)?;
                self.dir(ino)?;
            }
            dir = last.dir;
        }
        Ok(ino)
    }

    /// Resolves `path` from `start`, following symbolic links all the way, its last component
    /// too (stat, open, chdir, execve).
    pub fn resolve_follow(&self, start: Ino, path: &[u8]) -> Result<Ino, Errno> {
        let mut links = 0;
        let last = self.parent_of_within(start, path, &mut links)?;
        let ino = self.lookup_in(last.dir, last.name)?;
        let ino = self.follow_within(last.dir, ino, &mut links)?;
        if last.trailing_slash && !self.get(ino)?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(ino)
    }

    /// The target of symbolic link `ino` (None: not one).
    pub fn link_target(&self, ino: Ino) -> Option<&[u8]> {
        match &self.get(ino).ok()?.kind {
            Kind::Symlink(t) => Some(t),
            _ => None,
        }
    }

    /// link(2): one more name, `name` in `dir`, for the existing `ino`. EPERM for a directory
    /// (Linux's answer), EEXIST if the name is taken (or is `.` or `..`), ENOENT if `dir` was
    /// removed or `ino` has no name left.
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        if self.get(ino)?.is_dir() {
            return Err(Errno::EPERM);
        }
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if name.is_empty() || name == b"." || name == b".." {
            return Err(Errno::EEXIST);
        }
        match self.lookup_in(dir, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if !self.get(dir)?.linked() || !self.get(ino)?.linked() {
            return Err(Errno::ENOENT);
        }
        self.add_entry(dir, name, ino)?;
        self.get_mut(ino)?.ctime = self.now;
        Ok(())
    }

    /// symlink(2): a link named `name` in `dir` to `target` (ENOENT if empty, ENAMETOOLONG
    /// from PATH_MAX); EEXIST if the name is taken, whatever it names.
    pub fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8]) -> Result<Ino, Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut owned = Vec::new();
        owned
            .try_reserve_exact(target.len())
            .map_err(|_| Errno::ENOSPC)?;
        owned.extend_from_slice(target);
        self.create(dir, name, Kind::Symlink(owned), 0o777)
    }

    /// Resolves `path` from `start` (symbolic links followed on the way, the last one not,
    /// unless the path ends in a slash: then it must name a directory).
    pub fn resolve(&self, start: Ino, path: &[u8]) -> Result<Ino, Errno> {
        let mut links = 0;
        let last = self.parent_of_within(start, path, &mut links)?;
        let mut ino = self.lookup_in(last.dir, last.name)?;
        if last.trailing_slash {
            ino = self.follow_within(last.dir, ino, &mut links)?;
            if !self.get(ino)?.is_dir() {
                return Err(Errno::ENOTDIR);
            }
        }
        Ok(ino)
    }

    fn add_entry(&mut self, dir: Ino, name: &[u8], ino: Ino) -> Result<(), Errno> {
        let mut owned = Vec::new();
        owned
            .try_reserve_exact(name.len())
            .map_err(|_| Errno::ENOSPC)?;
        owned.extend_from_slice(name);
        let is_dir = self.get(ino)?.is_dir();
        let now = self.now;
        let d = self.dir_mut(dir)?;
        d.entries.try_reserve(1).map_err(|_| Errno::ENOSPC)?;
        let cookie = d.next_cookie;
        d.next_cookie += 1;
        d.push(Entry {
            hash: hash(name),
            name: owned,
            ino,
            cookie,
        });
        if is_dir {
            d.subdirs += 1;
        }
        let n = self.get_mut(dir)?;
        n.mtime = now;
        n.ctime = now;
        let child = self.get_mut(ino)?;
        child.parent = dir;
        child.links += 1;
        Ok(())
    }

    /// Takes `name` out of `dir` (it must be there); returns its inode, still allocated.
    fn remove_entry(&mut self, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
        let h = hash(name);
        let now = self.now;
        let d = self.dir_mut(dir)?;
        let i = d.position(name, h).ok_or(Errno::ENOENT)?;
        let e = d.remove_at(i);
        let ino = e.ino;
        if matches!(self.get(ino)?.kind, Kind::Dir(_)) {
            self.dir_mut(dir)?.subdirs -= 1;
        }
        let n = self.get_mut(dir)?;
        n.mtime = now;
        n.ctime = now;
        let n = self.get_mut(ino)?;
        n.links = n.links.saturating_sub(1);
        Ok(ino)
    }

    /// A new inode of `kind` named `name` in `dir`: EEXIST if the name is taken, ENOENT if the
    /// directory was removed.
    pub fn create(&mut self, dir: Ino, name: &[u8], kind: Kind, perm: u32) -> Result<Ino, Errno> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        match self.lookup_in(dir, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if !self.get(dir)?.linked() {
            return Err(Errno::ENOENT);
        }
        let ino = self.alloc_inode(kind, perm, dir)?;
        if let Err(e) = self.add_entry(dir, name, ino) {
            self.get_mut(ino)?.links = 0;
            self.maybe_free(ino);
            return Err(e);
        }
        Ok(ino)
    }

    /// An empty regular file.
    pub fn create_file(&mut self, dir: Ino, name: &[u8], perm: u32) -> Result<Ino, Errno> {
        let data = Data::Pages {
            pages: Vec::new(),
            len: 0,
        };
        self.create(dir, name, Kind::File(data), perm)
    }

    /// mkdir: the last component as `parent_of` gave it.
    pub fn mkdir(&mut self, last: &Last, perm: u32) -> Result<Ino, Errno> {
        if !last.is_normal() {
            return Err(Errno::EEXIST);
        }
        self.create(last.dir, last.name, Kind::Dir(Dir::default()), perm)
    }

    /// `mkdir -p` for the boot archive: every directory along `path` (from the root).
    pub fn mkdir_all(&mut self, path: &[u8], perm: u32) -> Result<Ino, Errno> {
        let mut dir = ROOT;
        for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            dir = match self.lookup_in(dir, part) {
                Ok(d) => {
                    self.dir(d)?;
                    d
                }
                Err(Errno::ENOENT) => self.create(dir, part, Kind::Dir(Dir::default()), perm)?,
                Err(e) => return Err(e),
            };
        }
        Ok(dir)
    }

    /// rmdir.
    pub fn rmdir(&mut self, last: &Last) -> Result<(), Errno> {
        match last.name {
            b"" => return Err(Errno::EBUSY),
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let ino = self.lookup_in(last.dir, last.name)?;
        match &self.get(ino)?.kind {
            Kind::Dir(d) if !d.entries.is_empty() => return Err(Errno::ENOTEMPTY),
            Kind::Dir(_) => {}
            _ => return Err(Errno::ENOTDIR),
        }
        self.remove_entry(last.dir, last.name)?;
        self.maybe_free(ino);
        Ok(())
    }

    /// unlink: anything but a directory (EISDIR).
    pub fn unlink(&mut self, last: &Last) -> Result<(), Errno> {
        if !last.is_normal() {
            return Err(Errno::EISDIR);
        }
        let ino = self.lookup_in(last.dir, last.name)?;
        if self.get(ino)?.is_dir() {
            return Err(Errno::EISDIR);
        }
        if last.trailing_slash {
            return Err(Errno::ENOTDIR);
        }
        self.remove_entry(last.dir, last.name)?;
        self.maybe_free(ino);
        Ok(())
    }

    /// Whether `ino` is `dir` or inside it (a directory may not move into itself).
    fn is_within(&self, mut ino: Ino, dir: Ino) -> bool {
        loop {
            if ino == dir {
                return true;
            }
            if ino == ROOT {
                return false;
            }
            match self.get(ino) {
                Ok(n) => ino = n.parent,
                Err(_) => return false,
            }
        }
    }

    /// rename / renameat2 (flags RENAME_NOREPLACE, RENAME_EXCHANGE), Linux's checks in Linux's
    /// order.
    pub fn rename(&mut self, old: &Last, new: &Last, flags: u32) -> Result<(), Errno> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
            || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
        {
            return Err(Errno::EINVAL);
        }
        if !old.is_normal() || !new.is_normal() {
            return Err(Errno::EBUSY);
        }
        let src = self.lookup_in(old.dir, old.name)?;
        let src_dir = self.get(src)?.is_dir();
        if (old.trailing_slash || new.trailing_slash) && !src_dir {
            return Err(Errno::ENOTDIR);
        }
        let dst = match self.lookup_in(new.dir, new.name) {
            Ok(d) => Some(d),
            Err(Errno::ENOENT) if flags & RENAME_EXCHANGE == 0 => None,
            Err(e) => return Err(e),
        };
        if flags & RENAME_NOREPLACE != 0 && dst.is_some() {
            return Err(Errno::EEXIST);
        }
        if flags & RENAME_EXCHANGE != 0 {
            let dst = dst.ok_or(Errno::ENOENT)?;
            if src == dst {
                return Ok(());
            }
            let dst_dir = self.get(dst)?.is_dir();
            if (src_dir && self.is_within(new.dir, src))
                || (dst_dir && self.is_within(old.dir, dst))
            {
                return Err(Errno::EINVAL);
            }
            self.remove_entry(old.dir, old.name)?;
            self.remove_entry(new.dir, new.name)?;
            self.add_entry(new.dir, new.name, src)?;
            self.add_entry(old.dir, old.name, dst)?;
            return Ok(());
        }
        if dst == Some(src) {
            return Ok(());
        }
        if src_dir && self.is_within(new.dir, src) {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = dst {
            match (&self.get(d)?.kind, src_dir) {
                (Kind::Dir(dd), true) if !dd.entries.is_empty() => return Err(Errno::ENOTEMPTY),
                (Kind::Dir(_), true) => {}
                (_, true) => return Err(Errno::ENOTDIR),
                (Kind::Dir(_), false) => return Err(Errno::EISDIR),
                (_, false) => {}
            }
            if !self.get(new.dir)?.linked() {
                return Err(Errno::ENOENT);
            }
        } else if !self.get(new.dir)?.linked() {
            return Err(Errno::ENOENT);
        }
        // Reserve the new entry's room first, so that nothing fails after the old one is gone.
        self.dir_mut(new.dir)?
            .entries
            .try_reserve(1)
            .map_err(|_| Errno::ENOSPC)?;
        if let Some(d) = dst {
            self.remove_entry(new.dir, new.name)?;
            self.maybe_free(d);
        }
        self.remove_entry(old.dir, old.name)?;
        self.add_entry(new.dir, new.name, src).inspect_err(|_| {
            // Only the name's copy can fail now: put the file back under its old name.
            let _ = self.add_entry(old.dir, old.name, src);
        })?;
        let n = self.get_mut(src)?;
        n.ctime = n.mtime.max(n.ctime);
        Ok(())
    }

    /// The directory entry at readdir position `pos` or after: (next position, inode, name,
    /// d_type). Positions 0 and 1 are `.` and `..`.
    pub fn readdir(&self, dir: Ino, pos: u64) -> Result<Option<DirEntry<'_>>, Errno> {
        let node = self.get(dir)?;
        let Kind::Dir(d) = &node.kind else {
            return Err(Errno::ENOTDIR);
        };
        match pos {
            0 => return Ok(Some((1, dir, b".", DT_DIR))),
            1 => return Ok(Some((2, node.parent, b"..", DT_DIR))),
            _ => {}
        }
        let want = pos - 2;
        let i = d.entries.partition_point(|e| e.cookie < want);
        Ok(d.entries.get(i).map(|e| {
            let t = self.get(e.ino).map_or(DT_REG, |n| n.d_type());
            (e.cookie + 3, e.ino, e.name.as_slice(), t)
        }))
    }

    /// The name `ino` has in its parent directory.
    fn name_of(&self, ino: Ino) -> Option<&[u8]> {
        let parent = self.get(ino).ok()?.parent;
        let Ok(Kind::Dir(d)) = self.get(parent).map(|n| &n.kind) else {
            return None;
        };
        d.entries
            .iter()
            .find(|e| e.ino == ino)
            .map(|e| e.name.as_slice())
    }

    /// The absolute path of `ino` into `buf` (getcwd, /proc/self/exe); its length. ENOENT for
    /// an inode that lost its name, ERANGE when `buf` is too small.
    pub fn path_of(&self, ino: Ino, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.get(ino)?.linked() {
            return Err(Errno::ENOENT);
        }
        // Built from the end of `buf` backwards, then moved to its start.
        let mut at = buf.len();
        let mut cur = ino;
        let mut depth = 0;
        while cur != ROOT {
            let name = self.name_of(cur).ok_or(Errno::ENOENT)?;
            if at < name.len() + 1 {
                return Err(Errno::ERANGE);
            }
            at -= name.len();
            buf[at..at + name.len()].copy_from_slice(name);
            at -= 1;
            buf[at] = b'/';
            cur = self.get(cur)?.parent;
            depth += 1;
            if depth > 4096 {
                return Err(Errno::ELOOP); // a cycle would be a bug; never loop forever
            }
        }
        if at == buf.len() {
            if buf.is_empty() {
                return Err(Errno::ERANGE);
            }
            at -= 1;
            buf[at] = b'/';
        }
        let n = buf.len() - at;
        buf.copy_within(at.., 0);
        Ok(n)
    }

    /// Reads from `ino` at `off` up to `len` bytes, handing them to `out` in pieces (at most a
    /// page each); returns how many. Holes read as zeros.
    pub fn read<E>(
        &self,
        ino: Ino,
        off: u64,
        len: u64,
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, ReadError<E>> {
        static ZEROS: [u8; PAGE] = [0; PAGE];
        let node = self.get(ino).map_err(ReadError::Fs)?;
        let data = match &node.kind {
            Kind::File(d) => d,
            Kind::Dir(_) => return Err(ReadError::Fs(Errno::EISDIR)),
            _ => return Err(ReadError::Fs(Errno::EINVAL)),
        };
        let size = node.size();
        if off >= size {
            return Ok(0);
        }
        let end = off.saturating_add(len).min(size);
        let mut at = off;
        while at < end {
            let in_page = (at % PAGE as u64) as usize;
            let n = ((PAGE - in_page) as u64).min(end - at) as usize;
            let piece: &[u8] = match data {
                Data::Static(d) => &d[at as usize..at as usize + n],
                Data::Pages { pages, .. } => match pages.get((at / PAGE as u64) as usize) {
                    Some(&p) if p != 0 => &self.store.bytes(p)[in_page..in_page + n],
                    _ => &ZEROS[..n],
                },
            };
            if let Err(e) = out(piece) {
                return if at > off {
                    Ok(at - off)
                } else {
                    Err(ReadError::Out(e))
                };
            }
            at += n as u64;
        }
        Ok(end - off)
    }

    /// Writes `len` bytes at `off`, taking them from `fill` a piece at a time (each within one
    /// page); returns how many were written. ENOSPC when no page can be had (after a partial
    /// write: the part written), EROFS for the archive's files, EFBIG past what an offset holds.
    pub fn write<E>(
        &mut self,
        ino: Ino,
        off: u64,
        len: u64,
        mut fill: impl FnMut(&mut [u8]) -> Result<(), E>,
    ) -> Result<u64, ReadError<E>> {
        const MAX_SIZE: u64 = i64::MAX as u64;
        let now = self.now;
        let Fs { nodes, store, .. } = self;
        let node = nodes
            .get_mut(ino as usize)
            .and_then(|n| n.as_mut())
            .ok_or(ReadError::Fs(Errno::ENOENT))?;
        let (pages, size) = match &mut node.kind {
            Kind::File(Data::Pages { pages, len }) => (pages, len),
            Kind::File(Data::Static(_)) => return Err(ReadError::Fs(Errno::EROFS)),
            Kind::Dir(_) => return Err(ReadError::Fs(Errno::EISDIR)),
            _ => return Err(ReadError::Fs(Errno::EINVAL)),
        };
        if len == 0 {
            return Ok(0);
        }
        if off >= MAX_SIZE {
            return Err(ReadError::Fs(Errno::EFBIG));
        }
        let end = off.saturating_add(len).min(MAX_SIZE);
        let mut at = off;
        let mut result = Ok(());
        while at < end {
            let index = (at / PAGE as u64) as usize;
            let in_page = (at % PAGE as u64) as usize;
            let n = ((PAGE - in_page) as u64).min(end - at) as usize;
            if index >= pages.len() && pages.try_reserve(index + 1 - pages.len()).is_err() {
                result = Err(ReadError::Fs(Errno::ENOSPC));
                break;
            }
            if index >= pages.len() {
                pages.resize(index + 1, 0);
            }
            let fresh = pages[index] == 0;
            if fresh {
                // A page the write covers whole needs no zeroing (4 KiB of stores is not free
                // in an emulated ring 0); any other must read as zeros around what is written.
                let whole = in_page == 0 && n == PAGE;
                match store.alloc(!whole) {
                    Some(p) => pages[index] = p,
                    None => {
                        result = Err(ReadError::Fs(Errno::ENOSPC));
                        break;
                    }
                }
            }
            let page = store.bytes_mut(pages[index]);
            if let Err(e) = fill(&mut page[in_page..in_page + n]) {
                if fresh {
                    // Never keep a page with bytes nobody wrote.
                    store.free(pages[index]);
                    pages[index] = 0;
                }
                result = Err(ReadError::Out(e));
                break;
            }
            at += n as u64;
        }
        if at > *size {
            *size = at;
        }
        if at > off {
            node.mtime = now;
            node.ctime = now;
        }
        match result {
            Err(e) if at == off => Err(e),
            _ => Ok(at - off),
        }
    }

    /// Sets the file's length: pages past it go back to the store, the rest of the last page is
    /// zeroed (so that growing the file again reads zeros there).
    pub fn truncate(&mut self, ino: Ino, new_len: u64) -> Result<(), Errno> {
        if new_len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        let now = self.now;
        let Fs { nodes, store, .. } = self;
        let node = nodes
            .get_mut(ino as usize)
            .and_then(|n| n.as_mut())
            .ok_or(Errno::ENOENT)?;
        let (pages, len) = match &mut node.kind {
            Kind::File(Data::Pages { pages, len }) => (pages, len),
            Kind::File(Data::Static(_)) => return Err(Errno::EROFS),
            Kind::Dir(_) => return Err(Errno::EISDIR),
            Kind::Generated(_) => return Err(Errno::EACCES), // 0444, as /proc's files
            _ => return Err(Errno::EINVAL),
        };
        if new_len < *len {
            let keep = new_len.div_ceil(PAGE as u64) as usize;
            if keep < pages.len() {
                for &p in &pages[keep..] {
                    if p != 0 {
                        store.free(p);
                    }
                }
                pages.truncate(keep);
                pages.shrink_to_fit();
            }
            let tail = (new_len % PAGE as u64) as usize;
            if tail != 0 {
                if let Some(&p) = pages.get(keep - 1).filter(|&&p| p != 0) {
                    store.bytes_mut(p)[tail..].fill(0);
                }
            }
        }
        *len = new_len;
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    /// chmod: the permission bits (EROFS for the archive's files).
    pub fn chmod(&mut self, ino: Ino, perm: u32) -> Result<(), Errno> {
        let now = self.now;
        let n = self.get_mut(ino)?;
        if matches!(n.kind, Kind::File(Data::Static(_))) {
            return Err(Errno::EROFS);
        }
        n.perm = perm & 0o7777;
        n.ctime = now;
        Ok(())
    }

    /// utimensat: sets the access and modification times that are given (in the caller's
    /// clock); the change time becomes now. EROFS for the archive's files.
    pub fn set_times(
        &mut self,
        ino: Ino,
        atime: Option<u64>,
        mtime: Option<u64>,
    ) -> Result<(), Errno> {
        let now = self.now;
        let n = self.get_mut(ino)?;
        if matches!(n.kind, Kind::File(Data::Static(_))) {
            return Err(Errno::EROFS);
        }
        if let Some(a) = atime {
            n.atime = a;
        }
        if let Some(m) = mtime {
            n.mtime = m;
        }
        n.ctime = now;
        Ok(())
    }

    /// The archive file whose data holds the byte at address `addr`, and that byte's offset
    /// in it (/proc/PID/maps names a mapping of an archive file's own pages by this).
    pub fn static_file_at(&self, addr: u64) -> Option<(Ino, u64)> {
        self.nodes.iter().enumerate().find_map(|(i, n)| match n {
            Some(Inode {
                kind: Kind::File(Data::Static(d)),
                ..
            }) => {
                let start = d.as_ptr() as u64;
                (start..start + d.len() as u64)
                    .contains(&addr)
                    .then(|| (i as Ino, addr - start))
            }
            _ => None,
        })
    }

    /// The archive's file data, for mapping its pages straight into a program.
    pub fn static_data(&self, ino: Ino) -> Option<&'static [u8]> {
        match self.get(ino).ok()?.kind {
            Kind::File(Data::Static(d)) => Some(d),
            _ => None,
        }
    }
}

/// A read or write failed: in the file system, or in the callback (a bad user buffer).
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError<E> {
    Fs(Errno),
    Out(E),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::boxed::Box;
    use std::format;
    use std::string::ToString;
    use std::vec;

    /// Pages in a Vec, at most `limit` of them at a time.
    struct VecStore {
        pages: Vec<Option<Box<[u8; PAGE]>>>,
        limit: usize,
        used: usize,
    }

    impl VecStore {
        fn new(limit: usize) -> Self {
            VecStore {
                pages: vec![None], // page 0 is never handed out
                limit,
                used: 0,
            }
        }
    }

    impl PageStore for VecStore {
        fn alloc(&mut self, _zeroed: bool) -> Option<u64> {
            if self.used == self.limit {
                return None;
            }
            self.used += 1;
            // Dirty pages are full of junk, to catch a read of bytes never written.
            let fill = if _zeroed { 0 } else { 0xaa };
            self.pages.push(Some(Box::new([fill; PAGE])));
            Some(self.pages.len() as u64 - 1)
        }
        fn free(&mut self, page: u64) {
            assert!(self.pages[page as usize].take().is_some(), "double free");
            self.used -= 1;
        }
        fn bytes(&self, page: u64) -> &[u8; PAGE] {
            self.pages[page as usize].as_ref().unwrap()
        }
        fn bytes_mut(&mut self, page: u64) -> &mut [u8; PAGE] {
            self.pages[page as usize].as_mut().unwrap()
        }
    }

    fn fs(limit: usize) -> Fs<VecStore> {
        let mut f = Fs::new(VecStore::new(limit));
        f.init().unwrap();
        f
    }

    fn mkdir(f: &mut Fs<VecStore>, path: &str) -> Result<Ino, Errno> {
        let last = f.parent_of(ROOT, path.as_bytes())?;
        f.mkdir(&last, 0o755)
    }

    fn create(f: &mut Fs<VecStore>, path: &str) -> Result<Ino, Errno> {
        let last = f.parent_of(ROOT, path.as_bytes())?;
        f.create_file(last.dir, last.name, 0o644)
    }

    fn write(f: &mut Fs<VecStore>, ino: Ino, off: u64, data: &[u8]) -> Result<u64, Errno> {
        let mut at = 0;
        f.write(ino, off, data.len() as u64, |dst: &mut [u8]| {
            dst.copy_from_slice(&data[at..at + dst.len()]);
            at += dst.len();
            Ok::<(), ()>(())
        })
        .map_err(|e| match e {
            ReadError::Fs(e) => e,
            ReadError::Out(()) => Errno::EFAULT,
        })
    }

    fn read_all(f: &Fs<VecStore>, ino: Ino) -> Vec<u8> {
        let mut v = Vec::new();
        f.read(ino, 0, u64::MAX, |p| {
            v.extend_from_slice(p);
            Ok::<(), ()>(())
        })
        .unwrap();
        v
    }

    #[test]
    fn paths_with_dots_and_slashes() {
        let mut f = fs(10);
        let a = mkdir(&mut f, "/a").unwrap();
        let b = mkdir(&mut f, "/a/b").unwrap();
        assert_eq!(f.resolve(ROOT, b"/a//b/"), Ok(b));
        assert_eq!(f.resolve(ROOT, b"a/./b/.."), Ok(a));
        assert_eq!(f.resolve(b, b".."), Ok(a));
        assert_eq!(
            f.resolve(b, b"../../../.."),
            Ok(ROOT),
            "`..` at the root stays there"
        );
        assert_eq!(f.resolve(b, b"/"), Ok(ROOT));
        assert_eq!(f.resolve(ROOT, b""), Err(Errno::ENOENT));
        assert_eq!(f.resolve(ROOT, b"/nope/b"), Err(Errno::ENOENT));
        let file = create(&mut f, "/a/f").unwrap();
        assert_eq!(f.resolve(ROOT, b"/a/f"), Ok(file));
        assert_eq!(f.resolve(ROOT, b"/a/f/"), Err(Errno::ENOTDIR));
        assert_eq!(f.resolve(ROOT, b"/a/f/x"), Err(Errno::ENOTDIR));
        assert_eq!(
            f.resolve(file, b"x"),
            Err(Errno::ENOTDIR),
            "a file as the start"
        );
    }

    #[test]
    fn names_of_255_bytes_and_256() {
        let mut f = fs(10);
        let long = "n".repeat(255);
        let ino = create(&mut f, &format!("/{long}")).unwrap();
        assert_eq!(f.resolve(ROOT, long.as_bytes()), Ok(ino));
        let longer = "n".repeat(256);
        assert_eq!(create(&mut f, &longer), Err(Errno::ENAMETOOLONG));
        assert_eq!(f.resolve(ROOT, longer.as_bytes()), Err(Errno::ENAMETOOLONG));
        assert_eq!(
            f.resolve(ROOT, format!("/{longer}/x").as_bytes()),
            Err(Errno::ENAMETOOLONG)
        );
    }

    #[test]
    fn directories_are_removed_only_when_empty() {
        let mut f = fs(10);
        mkdir(&mut f, "/d").unwrap();
        create(&mut f, "/d/f").unwrap();
        assert_eq!(mkdir(&mut f, "/d"), Err(Errno::EEXIST));
        let last = f.parent_of(ROOT, b"/d").unwrap();
        assert_eq!(f.rmdir(&last), Err(Errno::ENOTEMPTY));
        assert_eq!(f.unlink(&last), Err(Errno::EISDIR));
        let lf = f.parent_of(ROOT, b"/d/f").unwrap();
        assert_eq!(f.rmdir(&lf), Err(Errno::ENOTDIR));
        f.unlink(&lf).unwrap();
        assert_eq!(f.unlink(&lf), Err(Errno::ENOENT));
        let dot = f.parent_of(ROOT, b"/d/.").unwrap();
        assert_eq!(f.rmdir(&dot), Err(Errno::EINVAL));
        assert_eq!(
            f.rmdir(&f.parent_of(ROOT, b"/").unwrap()),
            Err(Errno::EBUSY)
        );
        f.rmdir(&last).unwrap();
        assert_eq!(f.resolve(ROOT, b"/d"), Err(Errno::ENOENT));
        assert_eq!(f.inodes_in_use(), 1, "only the root left");
    }

    #[test]
    fn a_removed_working_directory_takes_no_new_files() {
        let mut f = fs(10);
        let d = mkdir(&mut f, "/d").unwrap();
        f.hold(d);
        f.rmdir(&f.parent_of(ROOT, b"/d").unwrap()).unwrap();
        assert_eq!(f.create_file(d, b"x", 0o644), Err(Errno::ENOENT));
        assert_eq!(f.resolve(d, b".."), Err(Errno::ENOENT));
        assert_eq!(f.resolve(d, b"."), Ok(d));
        let mut buf = [0u8; 64];
        assert_eq!(f.path_of(d, &mut buf), Err(Errno::ENOENT));
        f.release(d);
        assert_eq!(f.inodes_in_use(), 1);
    }

    #[test]
    fn growing_past_a_page_and_truncating_back() {
        let mut f = fs(10);
        let ino = create(&mut f, "/f").unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        assert_eq!(write(&mut f, ino, 0, &data), Ok(5000));
        assert_eq!(f.store.used, 2);
        assert_eq!(read_all(&f, ino), data);
        f.truncate(ino, 100).unwrap();
        assert_eq!(f.store.used, 1, "the second page went back");
        assert_eq!(read_all(&f, ino), &data[..100]);
        f.truncate(ino, 6000).unwrap();
        let back = read_all(&f, ino);
        assert_eq!(back.len(), 6000);
        assert_eq!(&back[..100], &data[..100]);
        assert!(back[100..].iter().all(|&b| b == 0), "grown back as zeros");
    }

    #[test]
    fn holes_read_as_zeros_and_cost_nothing() {
        let mut f = fs(10);
        let ino = create(&mut f, "/f").unwrap();
        assert_eq!(write(&mut f, ino, 3 * PAGE as u64 + 10, b"xy"), Ok(2));
        assert_eq!(f.store.used, 1);
        let all = read_all(&f, ino);
        assert_eq!(all.len(), 3 * PAGE + 12);
        assert!(all[..3 * PAGE + 10].iter().all(|&b| b == 0));
        // A page written whole from a dirty allocation holds exactly what was written.
        assert_eq!(write(&mut f, ino, 0, &[7u8; PAGE]), Ok(PAGE as u64));
        assert!(read_all(&f, ino)[..PAGE].iter().all(|&b| b == 7));
    }

    #[test]
    fn out_of_pages_is_enospc_after_a_partial_write() {
        let mut f = fs(2);
        let ino = create(&mut f, "/f").unwrap();
        let data = vec![1u8; 3 * PAGE];
        assert_eq!(write(&mut f, ino, 0, &data), Ok(2 * PAGE as u64));
        assert_eq!(
            write(&mut f, ino, 2 * PAGE as u64, &data),
            Err(Errno::ENOSPC)
        );
        assert_eq!(f.get(ino).unwrap().size(), 2 * PAGE as u64);
        f.unlink(&f.parent_of(ROOT, b"/f").unwrap()).unwrap();
        assert_eq!(f.store.used, 0, "unlinking gave the pages back");
    }

    #[test]
    fn an_open_unlinked_file_lives_until_released() {
        let mut f = fs(2);
        let ino = create(&mut f, "/f").unwrap();
        write(&mut f, ino, 0, b"still here").unwrap();
        f.hold(ino);
        f.unlink(&f.parent_of(ROOT, b"/f").unwrap()).unwrap();
        assert_eq!(read_all(&f, ino), b"still here");
        assert_eq!(f.get(ino).unwrap().nlink(), 0);
        f.release(ino);
        assert_eq!(f.store.used, 0);
        assert!(f.get(ino).is_err());
    }

    #[test]
    fn archive_files_are_read_only() {
        let mut f = fs(2);
        let bin = f.mkdir_all(b"/bin", 0o755).unwrap();
        let ino = f
            .create(bin, b"prog", Kind::File(Data::Static(b"\x7fELF...")), 0o755)
            .unwrap();
        assert_eq!(read_all(&f, ino), b"\x7fELF...");
        assert_eq!(write(&mut f, ino, 0, b"x"), Err(Errno::EROFS));
        assert_eq!(f.truncate(ino, 0), Err(Errno::EROFS));
        assert_eq!(f.chmod(ino, 0o644), Err(Errno::EROFS));
        assert!(f.static_data(ino).is_some());
    }

    #[test]
    fn an_address_in_an_archive_file_names_it() {
        static A: [u8; 64] = [1; 64];
        static B: [u8; 16] = [2; 16];
        let mut f = fs(2);
        let lib = f.mkdir_all(b"/lib", 0o755).unwrap();
        let a = f
            .create(lib, b"a.so", Kind::File(Data::Static(&A)), 0o755)
            .unwrap();
        let b = f
            .create(lib, b"b.so", Kind::File(Data::Static(&B)), 0o755)
            .unwrap();
        let at = |p: &[u8], off: u64| p.as_ptr() as u64 + off;
        assert_eq!(f.static_file_at(at(&A, 0)), Some((a, 0)));
        assert_eq!(f.static_file_at(at(&A, 63)), Some((a, 63)));
        assert_eq!(f.static_file_at(at(&B, 5)), Some((b, 5)));
        // One past B's end is not B's (it may be another file's first byte).
        assert_ne!(f.static_file_at(at(&B, 16)), Some((b, 16)));
        assert_eq!(f.static_file_at(0), None);
    }

    #[test]
    fn rename_as_linux_does() {
        let mut f = fs(4);
        let a = mkdir(&mut f, "/a").unwrap();
        mkdir(&mut f, "/a/sub").unwrap();
        let b = mkdir(&mut f, "/b").unwrap();
        let x = create(&mut f, "/x").unwrap();
        let y = create(&mut f, "/y").unwrap();
        let p = |f: &Fs<VecStore>, s: &'static str| f.parent_of(ROOT, s.as_bytes()).unwrap();
        assert_eq!(
            f.rename(&p(&f, "/a"), &p(&f, "/a/sub/in"), 0),
            Err(Errno::EINVAL)
        );
        assert_eq!(f.rename(&p(&f, "/x"), &p(&f, "/a"), 0), Err(Errno::EISDIR));
        assert_eq!(f.rename(&p(&f, "/b"), &p(&f, "/x"), 0), Err(Errno::ENOTDIR));
        assert_eq!(
            f.rename(&p(&f, "/b"), &p(&f, "/a"), 0),
            Err(Errno::ENOTEMPTY)
        );
        assert_eq!(
            f.rename(&p(&f, "/x"), &p(&f, "/y"), RENAME_NOREPLACE),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            f.rename(&p(&f, "/nope"), &p(&f, "/z"), 0),
            Err(Errno::ENOENT)
        );
        assert_eq!(f.rename(&p(&f, "/."), &p(&f, "/z"), 0), Err(Errno::EBUSY));
        f.rename(&p(&f, "/x"), &p(&f, "/x"), 0).unwrap();
        f.rename(&p(&f, "/x"), &p(&f, "/y"), 0).unwrap();
        assert_eq!(f.resolve(ROOT, b"/y"), Ok(x));
        assert!(f.get(y).is_err(), "the replaced file is gone");
        f.rename(&p(&f, "/y"), &p(&f, "/b/x"), 0).unwrap();
        assert_eq!(f.resolve(ROOT, b"/b/x"), Ok(x));
        f.rename(&p(&f, "/b"), &p(&f, "/a"), RENAME_EXCHANGE)
            .unwrap();
        assert_eq!(f.resolve(ROOT, b"/a/x"), Ok(x));
        assert_eq!(f.resolve(ROOT, b"/b/sub/.."), Ok(a));
        assert_eq!(f.resolve(ROOT, b"/a"), Ok(b));
        let mut buf = [0u8; 16];
        let n = f.path_of(x, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"/a/x");
        assert_eq!(f.path_of(x, &mut [0u8; 3]), Err(Errno::ERANGE));
        assert_eq!(f.get(ROOT).unwrap().nlink(), 4);
    }

    #[test]
    fn symbolic_links_are_followed_where_linux_follows_them() {
        let mut f = fs(0);
        let d = f.mkdir_all(b"/d", 0o755).unwrap();
        let x = create(&mut f, "/d/x").unwrap();
        let rel = f.symlink(ROOT, b"rel", b"d/x").unwrap();
        f.symlink(d, b"up", b"../d").unwrap();
        f.symlink(ROOT, b"abs", b"/d").unwrap();
        f.symlink(ROOT, b"dangling", b"/nothing").unwrap();
        f.symlink(ROOT, b"a", b"b").unwrap();
        f.symlink(ROOT, b"b", b"a").unwrap();
        // The last component: resolve leaves it, resolve_follow follows it.
        assert_eq!(f.resolve(ROOT, b"/rel"), Ok(rel));
        assert_eq!(f.resolve_follow(ROOT, b"/rel"), Ok(x));
        assert_eq!(f.link_target(rel), Some(&b"d/x"[..]));
        assert_eq!(f.get(rel).unwrap().size(), 3);
        // Earlier components are always followed, relative targets from the link's directory.
        assert_eq!(f.resolve(ROOT, b"/abs/x"), Ok(x));
        assert_eq!(f.resolve(ROOT, b"/d/up/up/x"), Ok(x));
        assert_eq!(f.resolve(ROOT, b"/abs/"), Ok(d), "a trailing slash follows");
        assert_eq!(f.resolve(ROOT, b"/rel/"), Err(Errno::ENOTDIR));
        assert_eq!(f.resolve_follow(ROOT, b"/dangling"), Err(Errno::ENOENT));
        assert_eq!(f.resolve_follow(ROOT, b"/a"), Err(Errno::ELOOP));
        assert_eq!(f.resolve(ROOT, b"/a/x"), Err(Errno::ELOOP));
        assert_eq!(f.symlink(ROOT, b"abs", b"/x"), Err(Errno::EEXIST));
        assert_eq!(f.symlink(ROOT, b"e", b""), Err(Errno::ENOENT));
        // A chain of MAX_LINKS links resolves; one more is ELOOP.
        let mut prev = b"/d/x".to_vec();
        for i in 0..MAX_LINKS {
            let name = format!("l{i}");
            f.symlink(ROOT, name.as_bytes(), &prev).unwrap();
            prev = format!("/{name}").into_bytes();
        }
        assert_eq!(f.resolve_follow(ROOT, &prev), Ok(x));
        f.symlink(ROOT, b"one_more", &prev).unwrap();
        assert_eq!(f.resolve_follow(ROOT, b"/one_more"), Err(Errno::ELOOP));
        // Removing a link leaves what it names.
        f.unlink(&f.parent_of(ROOT, b"/rel").unwrap()).unwrap();
        assert_eq!(f.resolve(ROOT, b"/d/x"), Ok(x));
        assert_eq!(
            f.rmdir(&f.parent_of(ROOT, b"/abs").unwrap()),
            Err(Errno::ENOTDIR)
        );
    }

    #[test]
    fn a_hard_linked_file_goes_with_its_last_name() {
        let mut f = fs(0);
        let before = f.inodes_in_use();
        let x = create(&mut f, "/x").unwrap();
        f.link(x, ROOT, b"y").unwrap();
        assert_eq!(f.get(x).unwrap().nlink(), 2);
        assert_eq!(f.resolve(ROOT, b"/y"), Ok(x));
        assert_eq!(f.link(x, ROOT, b"y"), Err(Errno::EEXIST));
        assert_eq!(f.link(ROOT, ROOT, b"r"), Err(Errno::EPERM));
        f.unlink(&f.parent_of(ROOT, b"/x").unwrap()).unwrap();
        assert_eq!(f.get(x).unwrap().nlink(), 1, "still named y");
        f.unlink(&f.parent_of(ROOT, b"/y").unwrap()).unwrap();
        assert!(f.get(x).is_err(), "gone with its last name");
        assert_eq!(f.inodes_in_use(), before);
        assert_eq!(
            f.get(ROOT).unwrap().nlink(),
            2,
            "the root keeps its own links"
        );
    }

    #[test]
    fn set_times_sets_what_is_given_and_the_change_time() {
        let mut f = fs(0);
        f.now = 10;
        let x = create(&mut f, "/x").unwrap();
        f.now = 20;
        f.set_times(x, Some(5), None).unwrap();
        let n = f.get(x).unwrap();
        assert_eq!((n.atime, n.mtime, n.ctime), (5, 10, 20));
        f.now = 30;
        f.set_times(x, None, Some(7)).unwrap();
        let n = f.get(x).unwrap();
        assert_eq!((n.atime, n.mtime, n.ctime), (5, 7, 30));
        let bin = f.mkdir_all(b"/bin", 0o755).unwrap();
        let prog = f
            .create(bin, b"p", Kind::File(Data::Static(b"\x7fELF")), 0o755)
            .unwrap();
        assert_eq!(f.set_times(prog, Some(1), Some(1)), Err(Errno::EROFS));
    }

    #[test]
    fn readdir_skips_nothing_while_entries_go() {
        let mut f = fs(0);
        for i in 0..50 {
            create(&mut f, &format!("/f{i}")).unwrap();
        }
        let mut seen = Vec::new();
        let mut pos = 0;
        while let Some((next, _, name, _)) = f.readdir(ROOT, pos).unwrap() {
            let name = std::str::from_utf8(name).unwrap().to_string();
            if name.starts_with('f') {
                f.unlink(&f.parent_of(ROOT, name.as_bytes()).unwrap())
                    .unwrap();
            }
            seen.push(name);
            pos = next;
        }
        assert_eq!(seen.len(), 52);
        assert_eq!(&seen[..2], &[".", ".."]);
        assert_eq!(f.inodes_in_use(), 1);
    }

    /// The names `readdir` lists in directory `dir`, in order, without `.` and `..`.
    fn listing(f: &Fs<VecStore>, dir: Ino) -> Vec<std::string::String> {
        let mut names = Vec::new();
        let mut pos = 0;
        while let Some((next, _, name, _)) = f.readdir(dir, pos).unwrap() {
            if name != b"." && name != b".." {
                names.push(std::str::from_utf8(name).unwrap().to_string());
            }
            pos = next;
        }
        names
    }

    #[test]
    fn a_big_directory_is_indexed_and_agrees_with_a_scan() {
        let mut f = fs(0);
        let n = 1000;
        for i in 0..n {
            create(&mut f, &format!("/f{i}")).unwrap();
        }
        let Kind::Dir(d) = &f.get(ROOT).unwrap().kind else {
            panic!()
        };
        assert!(d.index.is_some(), "over INDEX_FROM entries");
        for i in 0..n {
            assert!(
                f.lookup_in(ROOT, format!("f{i}").as_bytes()).is_ok(),
                "f{i}"
            );
        }
        assert_eq!(create(&mut f, "/f7"), Err(Errno::EEXIST));
        // Every third one goes; the rest are found, the gone ones not, and readdir keeps order.
        for i in (0..n).step_by(3) {
            f.unlink(&f.parent_of(ROOT, format!("f{i}").as_bytes()).unwrap())
                .unwrap();
        }
        for i in 0..n {
            let found = f.lookup_in(ROOT, format!("f{i}").as_bytes());
            assert_eq!(found.is_ok(), i % 3 != 0, "f{i}");
        }
        let want: Vec<std::string::String> = (0..n)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("f{i}"))
            .collect();
        assert_eq!(listing(&f, ROOT), want);
        // A rename within and a new name after the removals.
        let (a, b) = (
            f.parent_of(ROOT, b"f1").unwrap(),
            f.parent_of(ROOT, b"g1").unwrap(),
        );
        f.rename(&a, &b, 0).unwrap();
        assert_eq!(f.lookup_in(ROOT, b"f1"), Err(Errno::ENOENT));
        assert!(f.lookup_in(ROOT, b"g1").is_ok());
        create(&mut f, "/f0").unwrap();
        assert!(f.lookup_in(ROOT, b"f0").is_ok());
    }

    proptest! {
        #[test]
        fn lookups_agree_with_a_model_through_creates_and_unlinks(
            ops in proptest::collection::vec((any::<bool>(), 0u8..80), 1..400)
        ) {
            let mut f = fs(0);
            let mut model = std::collections::BTreeSet::new();
            for (add, k) in ops {
                let name = format!("n{k}");
                if add {
                    let r = create(&mut f, &format!("/{name}"));
                    prop_assert_eq!(r.is_ok(), model.insert(k));
                } else {
                    let last = f.parent_of(ROOT, name.as_bytes()).unwrap();
                    prop_assert_eq!(f.unlink(&last).is_ok(), model.remove(&k));
                }
                for j in 0u8..80 {
                    let found = f.lookup_in(ROOT, format!("n{j}").as_bytes()).is_ok();
                    prop_assert_eq!(found, model.contains(&j));
                }
            }
            prop_assert_eq!(listing(&f, ROOT).len(), model.len());
        }
    }

    proptest! {
        /// Writes and truncates at random agree with a Vec<u8> model, and every page goes back
        /// at the end.
        #[test]
        fn data_matches_a_model(ops in proptest::collection::vec(
            (0u64..3 * PAGE as u64, 0usize..2 * PAGE, any::<u8>(), any::<bool>()), 1..20))
        {
            let mut f = fs(64);
            let ino = create(&mut f, "/m").unwrap();
            let mut model: Vec<u8> = Vec::new();
            for (off, len, byte, trunc) in ops {
                if trunc {
                    f.truncate(ino, off).unwrap();
                    model.resize(off as usize, 0);
                } else {
                    let data = vec![byte; len];
                    prop_assert_eq!(write(&mut f, ino, off, &data), Ok(len as u64));
                    if len > 0 {
                        let end = off as usize + len;
                        if model.len() < end { model.resize(end, 0); }
                        model[off as usize..end].fill(byte);
                    }
                }
                prop_assert_eq!(read_all(&f, ino), model.clone());
            }
            f.unlink(&f.parent_of(ROOT, b"/m").unwrap()).unwrap();
            prop_assert_eq!(f.store.used, 0);
        }

        /// Any path resolves without panicking, and `..` never climbs above the root.
        #[test]
        fn resolving_never_panics(path in "[a./]{0,40}") {
            let mut f = fs(0);
            mkdir(&mut f, "/a").unwrap();
            mkdir(&mut f, "/a/a").unwrap();
            let _ = f.resolve(ROOT, path.as_bytes());
            let _ = f.parent_of(ROOT, path.as_bytes());
            let ups = "../".repeat(path.len() + 1);
            prop_assert_eq!(f.resolve(ROOT, ups.as_bytes()), Ok(ROOT));
        }
    }
}
