//! What a dynamically linked program needs beside it in the guest: its program interpreter (the
//! dynamic linker its PT_INTERP names, `/lib64/ld-linux-x86-64.so.2` for glibc) and the shared
//! libraries it and they name (DT_NEEDED), found on the host as the host's dynamic linker would
//! find them, and packed at the same paths; plus the host's `/etc/ld.so.cache`, so that the
//! guest's dynamic linker (the host's own, packed) resolves every name as it does on the host.
//!
//! The kernel only maps the program and its interpreter (loader.rs); the interpreter then opens
//! and maps the libraries in ring 3, through openat, read, mmap and mprotect, as on Linux.
//!
//! The search, for each DT_NEEDED name of an object: a name with a slash is a path; otherwise
//! the object's DT_RPATH (when it has no DT_RUNPATH) and the program's, its DT_RUNPATH (`$ORIGIN`
//! is the object's own directory), the directories of `/etc/ld.so.conf` (with its `include`s),
//! then the system's (`SYSTEM_DIRS`). `LD_LIBRARY_PATH` is not looked at: the guest's
//! environment does not have the host's.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use goblin::elf::Elf;

use super::host_mode;
use crate::boot::loader::read_user_file;
use crate::error::ImageError;

/// Where glibc's dynamic linker looks last on x86-64 distributions (Debian's multiarch
/// directories, then the classic ones).
const SYSTEM_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// The host's dynamic-linker cache, packed at the same path whenever a program needs libraries.
const LD_SO_CACHE: &str = "/etc/ld.so.cache";

/// One file to pack: where it goes in the guest, and its bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub guest: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// The shared objects of every dynamically linked program added, each once.
#[derive(Debug, Default)]
pub struct Libraries {
    files: Vec<Packed>,
    /// Sonames and names already provided (the interpreter's soname among them: glibc's libc
    /// names ld-linux-x86-64.so.2, which is the interpreter itself).
    provided: Vec<String>,
    /// Where /etc/ld.so.conf says to look (read once, on the first dynamic program).
    conf_dirs: Option<Vec<PathBuf>>,
}

/// An object waiting for its DT_NEEDED names to be found.
struct Pending {
    host: PathBuf,
    guest: String,
    bytes: Vec<u8>,
}

impl Libraries {
    /// Adds what the program at `host` (its bytes), which goes at `guest` in the guest, needs:
    /// nothing for a static program.
    pub fn add_program(
        &mut self,
        host: &Path,
        guest: &str,
        bytes: &[u8],
    ) -> Result<(), ImageError> {
        let malformed =
            |e: goblin::error::Error| ImageError::Malformed(host.to_path_buf(), e.to_string());
        let elf = Elf::parse(bytes).map_err(malformed)?;
        let Some(interp) = elf.interpreter else {
            return Ok(());
        };
        if !interp.starts_with('/') {
            return Err(ImageError::Interpreter(
                host.to_path_buf(),
                interp.to_string(),
                "is not an absolute path".to_string(),
            ));
        }
        let ld = read_user_file(Path::new(interp)).map_err(|e| {
            ImageError::Interpreter(host.to_path_buf(), interp.to_string(), reason(&e))
        })?;
        self.provide_soname(&ld);
        // musl's interpreter is its libc.so (by a symlink), the name its programs need.
        self.provide(file_name(interp));
        if let Ok(real) = std::fs::canonicalize(interp) {
            self.provide(&real.file_name().unwrap_or_default().to_string_lossy());
        }
        self.pack(interp, &ld, host_mode(Path::new(interp), 0o755));
        if let Ok(cache) = std::fs::read(LD_SO_CACHE) {
            self.pack(LD_SO_CACHE, &cache, 0o644);
        }

        self.needed(host, guest, bytes, &elf)
    }

    /// Adds what an ELF file given as a file (a program, or a shared object such as a Python
    /// extension module) needs: a program's interpreter and libraries, a shared object's
    /// libraries; nothing for anything else.
    pub fn add_object(&mut self, host: &Path, guest: &str, bytes: &[u8]) -> Result<(), ImageError> {
        let Ok(elf) = Elf::parse(bytes) else {
            return Ok(()); // not ELF: data
        };
        if elf.interpreter.is_some() {
            return self.add_program(host, guest, bytes);
        }
        if elf.libraries.is_empty() {
            return Ok(());
        }
        self.needed(host, guest, bytes, &elf)
    }

    /// The DT_NEEDED closure of the object at `host` (going to `guest`), packed.
    fn needed(
        &mut self,
        host: &Path,
        guest: &str,
        bytes: &[u8],
        elf: &Elf,
    ) -> Result<(), ImageError> {
        // The object's own DT_RPATH applies to every object below it (when it has no RUNPATH).
        let program_rpath = if elf.runpaths.is_empty() {
            dirs(&elf.rpaths)
        } else {
            Vec::new()
        };
        let mut queue = VecDeque::from([Pending {
            host: host.to_path_buf(),
            guest: guest.to_string(),
            bytes: bytes.to_vec(),
        }]);
        while let Some(obj) = queue.pop_front() {
            let elf = Elf::parse(&obj.bytes)
                .map_err(|e| ImageError::Malformed(obj.host.clone(), e.to_string()))?;
            let mut search: Vec<String> = Vec::new();
            if elf.runpaths.is_empty() {
                search.extend(dirs(&elf.rpaths));
                search.extend(program_rpath.iter().cloned());
            }
            search.extend(dirs(&elf.runpaths));
            for name in &elf.libraries {
                if self.provided.iter().any(|p| p == name) {
                    continue;
                }
                let (lib_host, lib_guest) = self.find(name, &search, &obj).ok_or_else(|| {
                    ImageError::MissingLibrary(
                        host.to_path_buf(),
                        name.to_string(),
                        obj.host.display().to_string(),
                    )
                })?;
                let lib = read_user_file(&lib_host)?;
                self.provide(name);
                self.provide_soname(&lib);
                self.pack(&lib_guest, &lib, host_mode(&lib_host, 0o755));
                queue.push_back(Pending {
                    host: lib_host,
                    guest: lib_guest,
                    bytes: lib,
                });
            }
        }
        Ok(())
    }

    /// Every file to pack, in the order found.
    pub fn into_files(self) -> Vec<Packed> {
        self.files
    }

    fn provide(&mut self, name: &str) {
        if !self.provided.iter().any(|p| p == name) {
            self.provided.push(name.to_string());
        }
    }

    /// The object's DT_SONAME, if it has one, is provided from now on.
    fn provide_soname(&mut self, bytes: &[u8]) {
        if let Some(soname) = Elf::parse(bytes).ok().and_then(|e| e.soname) {
            self.provide(soname);
        }
    }

    fn pack(&mut self, guest: &str, bytes: &[u8], mode: u32) {
        if !self.files.iter().any(|f| f.guest == guest) {
            self.files.push(Packed {
                guest: guest.to_string(),
                bytes: bytes.to_vec(),
                mode,
            });
        }
    }

    /// Where `name`, needed by `by`, is on the host and goes in the guest: `search` (with
    /// `$ORIGIN` the object's directory, on each side), then ld.so.conf's and the system's
    /// directories, at the same path in the guest.
    fn find(&mut self, name: &str, search: &[String], by: &Pending) -> Option<(PathBuf, String)> {
        if name.contains('/') {
            let p = Path::new(name);
            return (p.is_absolute() && is_x86_64_elf(p))
                .then(|| (p.to_path_buf(), normalize(name)));
        }
        let host_origin = by.host.parent().map(Path::to_path_buf).unwrap_or_default();
        let guest_origin = by.guest.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        for dir in search {
            let host_dir = expand_origin(dir, &host_origin.to_string_lossy());
            let candidate = Path::new(&host_dir).join(name);
            if is_x86_64_elf(&candidate) {
                let guest_dir = expand_origin(dir, &guest_origin);
                if !guest_dir.starts_with('/') {
                    continue; // a relative RUNPATH: relative to the guest's working directory
                }
                return Some((candidate, normalize(&format!("{guest_dir}/{name}"))));
            }
        }
        let conf = self.conf_dirs.get_or_insert_with(ld_so_conf_dirs).clone();
        let system = SYSTEM_DIRS.iter().map(PathBuf::from);
        for dir in conf.into_iter().chain(system) {
            let candidate = dir.join(name);
            if dir.is_absolute() && is_x86_64_elf(&candidate) {
                let guest = normalize(&candidate.to_string_lossy());
                return Some((candidate, guest));
            }
        }
        None
    }
}

/// Whether `path` is a 64-bit x86-64 ELF file: what the dynamic linker takes for a library,
/// skipping anything else of the same name (a linker script such as glibc's libc.so, a 32-bit
/// library) and looking on, as ld.so does.
fn is_x86_64_elf(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false; // never open a FIFO or a device to look at it
    }
    let mut head = [0u8; 20];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    read.is_ok()
        && head[..4] == *b"\x7fELF"
        && head[4] == 2
        && head[5] == 1
        && u16::from_le_bytes([head[18], head[19]]) == abi::elf::EM_X86_64
}

/// DT_RPATH or DT_RUNPATH entries: colon-separated lists of directories.
fn dirs(lists: &[&str]) -> Vec<String> {
    lists
        .iter()
        .flat_map(|l| l.split(':'))
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

fn expand_origin(dir: &str, origin: &str) -> String {
    dir.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
}

/// An absolute path without `.`, `..` or empty components (as the archive names files).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Why a file could not be read, without repeating its path.
fn reason(e: &ImageError) -> String {
    match e {
        ImageError::Missing(_) => "is not on this machine".to_string(),
        ImageError::Directory(_) => "is a directory".to_string(),
        ImageError::NotRegular(_) => "is not a regular file".to_string(),
        ImageError::Unreadable(_, io) => format!("cannot be read: {io}"),
        other => other.to_string(),
    }
}

/// The directories /etc/ld.so.conf lists, its `include` globs followed (one `*` in the last
/// component, as Debian's and Fedora's use), in order.
fn ld_so_conf_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    read_conf(Path::new("/etc/ld.so.conf"), &mut out, 0);
    out
}

fn read_conf(path: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            if depth < 4 {
                for file in glob_one(pattern) {
                    read_conf(&file, out, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            let dir = PathBuf::from(line);
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
}

/// The files a pattern with at most one `*` (in its last component) names, sorted.
fn glob_one(pattern: &str) -> Vec<PathBuf> {
    let p = Path::new(pattern);
    let (Some(dir), Some(name)) = (p.parent(), p.file_name().map(|n| n.to_string_lossy())) else {
        return Vec::new();
    };
    let Some((pre, post)) = name.split_once('*') else {
        return vec![p.to_path_buf()];
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|f| {
            f.file_name().map(|n| n.to_string_lossy()).is_some_and(|n| {
                n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post)
            })
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_and_origins_expanded() {
        assert_eq!(normalize("/bin/../lib//libx.so"), "/lib/libx.so");
        assert_eq!(normalize("/a/./b/"), "/a/b");
        assert_eq!(expand_origin("$ORIGIN/../lib", "/bin"), "/bin/../lib");
        assert_eq!(expand_origin("${ORIGIN}", "/opt/x"), "/opt/x");
        assert_eq!(dirs(&["/a:/b", "", "$ORIGIN"]), ["/a", "/b", "$ORIGIN"]);
    }

    #[test]
    fn a_test_binary_brings_its_interpreter_and_libc() {
        // This test binary is dynamically linked on a glibc host (and needs nothing if static).
        let me = std::env::current_exe().unwrap();
        let mut libs = Libraries::default();
        let bytes = std::fs::read(&me).unwrap();
        libs.add_program(&me, "/bin/t", &bytes).unwrap();
        let elf = Elf::parse(&bytes).unwrap();
        let files = libs.into_files();
        match elf.interpreter {
            None => assert!(files.is_empty()),
            Some(interp) => {
                assert_eq!(
                    files[0].guest, interp,
                    "the interpreter first, at its own path"
                );
                let names: Vec<&str> = files.iter().map(|f| f.guest.as_str()).collect();
                assert!(names.iter().any(|n| n.ends_with("/libc.so.6")), "{names:?}");
                let mut unique = names.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(names.len(), unique.len(), "each file once: {names:?}");
            }
        }
    }
}
