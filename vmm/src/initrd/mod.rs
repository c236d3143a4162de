//! The boot module: the program archive (cpio newc with a START manifest) built from `--user`
//! programs, a file passed unchanged with `--initrd`, or the default set embedded at build time;
//! plus any `--file HOST_PATH[:GUEST_PATH]`, added under names written from the root
//! (`/etc/motd`), which the kernel puts at that path in its file tree (read-only there).
//! A dynamically linked program brings its interpreter and libraries (libraries.rs).

mod libraries;

use std::path::{Path, PathBuf};

pub use libraries::{Libraries, Packed};

use crate::boot::loader::{check_user_program, read_user_file};
use crate::error::ImageError;
use abi::cpio::{CpioWriter, S_IFMT, S_IFREG};

/// One `--user` value: `PATH [ARG...]`, split into words as a POSIX shell splits them (quotes
/// and backslashes, no expansions), so `"./prog 'one argument' two"` has two arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProgram {
    pub path: PathBuf,
    pub args: Vec<String>,
}

impl UserProgram {
    pub fn parse(spec: &str) -> Result<UserProgram, ImageError> {
        let words =
            shlex::split(spec).ok_or_else(|| ImageError::UnbalancedUserSpec(spec.to_string()))?;
        let mut words = words.into_iter();
        let path = words
            .next()
            .ok_or_else(|| ImageError::EmptyUserSpec(spec.to_string()))?;
        Ok(UserProgram {
            path: PathBuf::from(path),
            args: words.collect(),
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
/// that starts them in the order given, with their arguments. Only those programs: `vmm bench`
/// boots this, so that its boot row measures a kernel and one program.
pub fn build_program_archive(programs: &[UserProgram]) -> Result<Vec<u8>, ImageError> {
    let (start, files, libs) = program_files(programs)?;
    // Page-aligned, so that the kernel maps each program's pages instead of copying them.
    let mut w = CpioWriter::page_aligned();
    w.add_file("START", start.as_bytes());
    for (name, bytes) in &files {
        w.add_file(name, bytes);
    }
    for f in &libs {
        w.add_file_mode(&f.guest, f.mode, &f.bytes);
    }
    Ok(w.finish())
}

/// The archive `vmm --user` boots: the `--user` programs, started in the order given, and
/// beside them in /bin everything of `default` (the embedded default set) that they do not
/// replace, so that a program can run `sh -c`, `ls` or `echo` as it would on Linux. A default
/// file at a path that one of `files` (`--file`, added after by `add_files`) names is left out:
/// that file replaces it.
pub fn user_archive(
    default: &[u8],
    programs: &[UserProgram],
    files: &[ExtraFile],
) -> Result<Vec<u8>, ImageError> {
    if default.is_empty() {
        return build_program_archive(programs); // a VMM built without the guest's programs
    }
    let (start, mine, libs) = program_files(programs)?;
    with_defaults(default, mine, libs, &start, &[], files)
}

/// A program's name in the archive and its bytes.
type NamedFile = (String, Vec<u8>);

/// The START manifest and the files of `programs`: each file read and checked once, however
/// often it is started; and what the dynamically linked ones need.
fn program_files(
    programs: &[UserProgram],
) -> Result<(String, Vec<NamedFile>, Vec<Packed>), ImageError> {
    let mut start = String::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut libs = Libraries::default();
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
                libs.add_program(&p.path, &format!("/bin/{name}"), &bytes)?;
                files.push((name.clone(), bytes));
                paths.push(&p.path);
            }
        }
        for word in std::iter::once(&name).chain(&p.args) {
            let quoted = abi::start::quote(word)
                .ok_or_else(|| ImageError::UnpassableArgument(word.clone()))?;
            if word != &name {
                start.push(' ');
            }
            start.push_str(&quoted);
        }
        start.push('\n');
    }
    Ok((start, files, libs.into_files()))
}

/// One `--file HOST_PATH[:GUEST_PATH]`: a host file to put at an absolute path in the guest
/// (by default `/` and its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    pub host: PathBuf,
    pub guest: String,
}

impl ExtraFile {
    pub fn parse(spec: &str) -> Result<ExtraFile, ImageError> {
        let bad = |why: &str| ImageError::BadFileSpec(spec.to_string(), why.to_string());
        // The guest path is what follows the last colon, if that starts with a slash (so a
        // host path may hold colons as long as a guest path is given).
        let (host, guest) = match spec.rsplit_once(':') {
            Some((h, g)) if g.starts_with('/') => (h, g.to_string()),
            Some((_, g)) if !g.is_empty() => {
                return Err(bad("GUEST_PATH must be absolute (start with /)"))
            }
            _ => {
                let host = spec.trim_end_matches(':');
                let name = Path::new(host)
                    .file_name()
                    .ok_or_else(|| bad("HOST_PATH has no file name"))?;
                (host, format!("/{}", name.to_string_lossy()))
            }
        };
        if host.is_empty() {
            return Err(bad("empty HOST_PATH"));
        }
        let parts: Vec<&str> = guest.split('/').skip(1).collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(bad(
                "GUEST_PATH must name a file: no empty, . or .. components",
            ));
        }
        if parts.iter().any(|p| p.len() > 255) || guest.len() >= 4096 {
            return Err(bad("GUEST_PATH too long (255 bytes a name, 4095 in all)"));
        }
        if guest == "/START" {
            return Err(bad("/START is the archive's start manifest"));
        }
        Ok(ExtraFile {
            host: PathBuf::from(host),
            guest,
        })
    }
}

/// Most files one `--file DIR` may bring.
const MAX_DIR_FILES: usize = 100_000;

/// `files` with each directory among them replaced by the files of its tree, at the same
/// places under its guest path (as `cp -r` copies it): regular files, and symbolic links to
/// files (their targets' bytes); links to directories are not followed (no loops), and
/// anything else (sockets, devices) is left out.
pub fn expand_dirs(files: Vec<ExtraFile>) -> Result<Vec<ExtraFile>, ImageError> {
    let mut out = Vec::new();
    for f in files {
        if !f.host.is_dir() {
            out.push(f);
            continue;
        }
        let mut stack = vec![(f.host.clone(), f.guest.clone())];
        while let Some((dir, guest)) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| ImageError::Unreadable(dir.clone(), e))?
                .filter_map(Result::ok)
                .collect();
            entries.sort_by_key(|e| e.file_name());
            // Files in name order, each directory's together; subdirectories after, in order.
            let mut subdirs = Vec::new();
            for e in entries {
                let name = e.file_name().to_string_lossy().into_owned();
                let (host, at) = (e.path(), format!("{guest}/{name}"));
                if name.len() > 255 || at.len() >= 4096 {
                    return Err(ImageError::BadFileSpec(
                        host.display().to_string(),
                        "a name in the tree is too long for the guest (255 bytes, 4095 in all)"
                            .to_string(),
                    ));
                }
                let link = e.file_type().is_ok_and(|t| t.is_symlink());
                match std::fs::metadata(&host) {
                    Ok(m) if m.is_dir() && !link => subdirs.push((host, at)),
                    Ok(m) if m.is_file() => out.push(ExtraFile { host, guest: at }),
                    _ => {}
                }
            }
            stack.extend(subdirs.into_iter().rev());
            if out.len() > MAX_DIR_FILES {
                return Err(ImageError::BadFileSpec(
                    f.host.display().to_string(),
                    format!("more than {MAX_DIR_FILES} files"),
                ));
            }
        }
    }
    Ok(out)
}

/// Rewrites `archive` with `files` added (page-aligned, so that every file can be mapped).
/// Every entry of the archive is kept as it was.
pub fn add_files(archive: &[u8], files: &[ExtraFile]) -> Result<Vec<u8>, ImageError> {
    let mut w = CpioWriter::page_aligned();
    let mut taken: Vec<String> = Vec::new();
    for e in abi::cpio::entries(archive) {
        let Ok(e) = e else { break }; // the kernel reports a broken archive itself
        let name = if e.rooted {
            format!("/{}", e.name)
        } else {
            e.name.to_string()
        };
        if e.is_dir() {
            w.add_dir(&name);
        } else if e.is_file() {
            w.add_file_mode(&name, e.mode & 0o7777, e.data);
            // Where the kernel will put it.
            taken.push(if e.rooted || e.name.contains('/') || e.name == "START" {
                format!("/{}", e.name)
            } else {
                format!("/bin/{}", e.name)
            });
        } else if e.mode & S_IFMT != S_IFREG {
            continue; // links, devices: not kept (the kernel skips them too)
        }
    }
    let mut libs = Libraries::default();
    for f in files {
        if taken.contains(&f.guest) {
            return Err(ImageError::DuplicateFile(f.guest.clone()));
        }
        let bytes = read_user_file(&f.host)?;
        let perm = host_mode(&f.host, 0o644);
        // A dynamically linked program given as a file (to run from a shell) brings what it
        // needs, as a `--user` one does; so does a shared object (its DT_NEEDED), though one
        // whose libraries the host lacks is only warned of: it may never be loaded.
        match libs.add_object(&f.host, &f.guest, &bytes) {
            Err(e @ ImageError::MissingLibrary(..))
                if !abi::elf::Elf::parse(&bytes).is_ok_and(|e| e.has_interp()) =>
            {
                log::warn!("{e}");
            }
            r => r?,
        }
        w.add_file_mode(&f.guest, perm, &bytes);
        taken.push(f.guest.clone());
    }
    // What is already there (packed for a `--user` program, or given) stays as it is.
    for lib in libs.into_files() {
        if !taken.contains(&lib.guest) {
            w.add_file_mode(&lib.guest, lib.mode, &lib.bytes);
            taken.push(lib.guest);
        }
    }
    Ok(w.finish())
}

/// The archive `vmm --shell` boots: the programs of `default` (the embedded default set) and
/// the `extra` ones given with `--user` (which replace a default program of the same name),
/// with a START that runs `init sh` (`sh -i`, with a prompt, when `interactive`): our shell
/// under pid 1, reading the console. As in `user_archive`, a `--file` of `files` replaces the
/// default file at its path.
pub fn shell_archive(
    default: &[u8],
    extra: &[UserProgram],
    files: &[ExtraFile],
    interactive: bool,
) -> Result<Vec<u8>, ImageError> {
    let mut mine: Vec<NamedFile> = Vec::new();
    let mut libs = Libraries::default();
    for p in extra {
        let name = p.name();
        if name == "START" || mine.iter().any(|(n, _)| *n == name) {
            return Err(ImageError::DuplicateProgram(name));
        }
        let bytes = read_user_file(&p.path)?;
        check_user_program(&p.path, &bytes)?;
        libs.add_program(&p.path, &format!("/bin/{name}"), &bytes)?;
        mine.push((name, bytes));
    }
    let start = if interactive {
        "init sh -i\n"
    } else {
        "init sh\n"
    };
    with_defaults(
        default,
        mine,
        libs.into_files(),
        start,
        &["init", "sh"],
        files,
    )
}

/// An archive of `start`, `mine` (bare program names), `libs` (what the dynamically linked ones
/// need) and everything else of `default` as it was: its programs that `mine` does not replace,
/// its files at paths, its directories; but no file at a path that one of `replaced` names.
/// Each name of `needed` must be among the programs (given, or of `default`).
fn with_defaults(
    default: &[u8],
    mut mine: Vec<NamedFile>,
    libs: Vec<Packed>,
    start: &str,
    needed: &[&str],
    replaced: &[ExtraFile],
) -> Result<Vec<u8>, ImageError> {
    let mut others: Vec<abi::cpio::Entry> = Vec::new();
    let mut missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|n| !mine.iter().any(|(m, _)| m == n))
        .collect();
    for e in abi::cpio::entries(default) {
        let e = e.map_err(|e| ImageError::BadDefaultArchive(e.to_string()))?;
        let bare = !e.rooted && !e.name.contains('/');
        if bare && e.is_file() {
            missing.retain(|n| *n != e.name);
        }
        if bare && (e.name == "START" || mine.iter().any(|(n, _)| n == e.name)) {
            continue;
        }
        // Where the kernel puts it (fs/boot.rs): a bare name in /bin, others at their path.
        let guest = if bare {
            format!("/bin/{}", e.name)
        } else {
            format!("/{}", e.name)
        };
        if e.is_file() && replaced.iter().any(|f| f.guest == guest) {
            continue;
        }
        if bare && e.is_file() {
            mine.push((e.name.to_string(), e.data.to_vec()));
        } else if e.is_file() || e.is_dir() {
            others.push(e);
        }
    }
    if let Some(needed) = missing.first() {
        return Err(ImageError::BadDefaultArchive(format!(
            "it has no {needed} (was guest/user built?)"
        )));
    }
    // Page-aligned, so that the kernel maps each program's pages instead of copying them.
    let mut w = CpioWriter::page_aligned();
    w.add_file("START", start.as_bytes());
    for (name, bytes) in &mine {
        w.add_file(name, bytes);
    }
    for f in &libs {
        let at_default = others
            .iter()
            .any(|e| e.rooted && format!("/{}", e.name) == f.guest);
        if !at_default && !replaced.iter().any(|r| r.guest == f.guest) {
            w.add_file_mode(&f.guest, f.mode, &f.bytes);
        }
    }
    for e in others {
        let name = if e.rooted {
            format!("/{}", e.name)
        } else {
            e.name.to_string()
        };
        if e.is_dir() {
            w.add_dir(&name);
        } else {
            w.add_file_mode(&name, e.mode & 0o7777, e.data);
        }
    }
    Ok(w.finish())
}

/// The permission bits of a host file (`default` when it cannot be asked).
fn host_mode(path: &Path, default: u32) -> u32 {
    std::fs::metadata(path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .unwrap_or(default)
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
    fn a_directory_brings_its_tree() {
        let dir = std::env::temp_dir().join(format!("lde-expand-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("top.txt"), "t").unwrap();
        std::fs::write(dir.join("a/b/deep.txt"), "d").unwrap();
        std::os::unix::fs::symlink("top.txt", dir.join("link")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("dirlink")).unwrap();
        let spec = ExtraFile::parse(&format!("{}:/data", dir.display())).unwrap();
        let files = expand_dirs(vec![spec]).unwrap();
        let mut guests: Vec<&str> = files.iter().map(|f| f.guest.as_str()).collect();
        guests.sort();
        // The link to a file brings its target's bytes; the link to a directory is not followed.
        assert_eq!(
            guests,
            ["/data/a/b/deep.txt", "/data/link", "/data/top.txt"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_specs() {
        let f = ExtraFile::parse("dir/run.sh").unwrap();
        assert_eq!(
            (f.host, f.guest.as_str()),
            (PathBuf::from("dir/run.sh"), "/run.sh")
        );
        let f = ExtraFile::parse("a:b.txt:/etc/b").unwrap();
        assert_eq!(
            (f.host, f.guest.as_str()),
            (PathBuf::from("a:b.txt"), "/etc/b")
        );
        for bad in ["x:rel", "x:/a/../b", "x:/a/", ":/a", "x:/START"] {
            assert!(ExtraFile::parse(bad).is_err(), "{bad}");
        }
        assert!(ExtraFile::parse(&format!("x:/{}", "n".repeat(256))).is_err());
    }

    #[test]
    fn files_are_added_from_the_root_and_clashes_refused() {
        let dir = std::env::temp_dir().join(format!("vmm-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data.txt");
        std::fs::write(&data, b"some data").unwrap();
        let mut w = CpioWriter::page_aligned();
        w.add_file("START", b"hello\n");
        w.add_file("hello", b"\x7fELF");
        let base = w.finish();
        let spec = ExtraFile::parse(&format!("{}:/etc/data", data.display())).unwrap();
        let out = add_files(&base, &[spec]).unwrap();
        let entries: Vec<_> = abi::cpio::entries(&out).map(|e| e.unwrap()).collect();
        assert_eq!(entries.len(), 3);
        assert_eq!((entries[2].name, entries[2].rooted), ("etc/data", true));
        assert_eq!(entries[2].data, b"some data");
        assert!(!entries[1].rooted);
        assert_eq!(entries[2].data_offset % 4096, 0, "page-aligned");
        let clash = ExtraFile::parse(&format!("{}:/bin/hello", data.display())).unwrap();
        assert!(matches!(
            add_files(&base, &[clash]),
            Err(ImageError::DuplicateFile(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn spec_splits_on_blanks() {
        let p = UserProgram::parse("./bin/prog  a\tb").unwrap();
        assert_eq!(p.path, PathBuf::from("./bin/prog"));
        assert_eq!(p.args, vec!["a", "b"]);
        assert_eq!(p.name(), "prog");
        assert!(UserProgram::parse("   ").is_err());
    }

    #[test]
    fn spec_splits_as_a_posix_shell() {
        let p = UserProgram::parse(r#"./prog 'one argument' two "a \"b\"" c\ d ''"#).unwrap();
        assert_eq!(p.args, vec!["one argument", "two", "a \"b\"", "c d", ""]);
        assert!(matches!(
            UserProgram::parse("./prog 'open"),
            Err(ImageError::UnbalancedUserSpec(_))
        ));
    }

    #[test]
    fn start_quotes_what_the_kernel_must_read_back() {
        let dir = std::env::temp_dir().join(format!("vmm-initrd-q-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prog = fake_program(&dir, "prog");
        let p = UserProgram::parse(&format!("{} 'one argument' it\\'s a#b", prog.display()));
        let archive = build_program_archive(&[p.unwrap()]).unwrap();
        let text = String::from_utf8_lossy(&archive);
        let line = "prog 'one argument' 'it'\\''s' 'a#b'\n";
        assert!(text.contains(line), "START holds {line:?}");
        let words: Vec<Vec<u8>> = abi::start::words(line.trim_end())
            .map(|w| w.unwrap().bytes().collect())
            .collect();
        assert_eq!(words, [&b"prog"[..], b"one argument", b"it's", b"a#b"]);
        let nl = UserProgram::parse(&format!("{} 'a\nb'", prog.display())).unwrap();
        assert!(matches!(
            build_program_archive(&[nl]),
            Err(ImageError::UnpassableArgument(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
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
    fn the_shell_archive_starts_init_sh_with_every_program() {
        let dir = std::env::temp_dir().join(format!("vmm-initrd-sh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut default = CpioWriter::new();
        default.add_file("START", b"init\n");
        for name in ["init", "sh", "wc"] {
            default.add_file(name, name.as_bytes());
        }
        let default = default.finish();
        let wc = fake_program(&dir, "wc");
        let extra = [UserProgram::parse(wc.to_str().unwrap()).unwrap()];
        for (interactive, start) in [(false, "init sh\n"), (true, "init sh -i\n")] {
            let a = shell_archive(&default, &extra, &[], interactive).unwrap();
            let files: Vec<(String, Vec<u8>)> = abi::cpio::entries(&a)
                .map(|e| e.unwrap())
                .map(|e| (e.name.to_string(), e.data.to_vec()))
                .collect();
            let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["START", "wc", "init", "sh"]);
            assert_eq!(files[0].1, start.as_bytes());
            assert_eq!(
                files[1].1,
                std::fs::read(&wc).unwrap(),
                "--user replaces a default"
            );
        }
        let mut no_sh = CpioWriter::new();
        no_sh.add_file("init", b"init");
        assert!(matches!(
            shell_archive(&no_sh.finish(), &[], &[], false),
            Err(ImageError::BadDefaultArchive(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_user_archive_starts_its_programs_with_the_defaults_beside_them() {
        let dir = std::env::temp_dir().join(format!("vmm-initrd-user-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut default = CpioWriter::new();
        default.add_file("START", b"init\n");
        for name in ["init", "sh", "wc"] {
            default.add_file(name, name.as_bytes());
        }
        default.add_dir("/etc");
        default.add_file("/etc/motd", b"hi");
        let default = default.finish();
        let mine = fake_program(&dir, "mine");
        let wc = fake_program(&dir, "wc");
        let programs = [
            UserProgram::parse(&format!("{} a", mine.display())).unwrap(),
            UserProgram::parse(wc.to_str().unwrap()).unwrap(),
        ];
        let a = user_archive(&default, &programs, &[]).unwrap();
        let files: Vec<(String, Vec<u8>)> = abi::cpio::entries(&a)
            .map(|e| e.unwrap())
            .map(|e| (e.name.to_string(), e.data.to_vec()))
            .collect();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["START", "mine", "wc", "init", "sh", "etc", "etc/motd"]
        );
        assert_eq!(
            files[0].1, b"mine a\nwc\n",
            "only the --user programs start"
        );
        assert_eq!(
            files[2].1,
            std::fs::read(&wc).unwrap(),
            "--user replaces a default"
        );
        assert_eq!(
            user_archive(&[], &programs[..1], &[]).unwrap(),
            build_program_archive(&programs[..1]).unwrap(),
            "a VMM built without the default set packs the --user programs alone"
        );
        // A --file at a default's path replaces it (and add_files then finds no clash).
        let replacing = [
            ExtraFile::parse(&format!("{}:/bin/sh", mine.display())).unwrap(),
            ExtraFile::parse(&format!("{}:/etc/motd", mine.display())).unwrap(),
        ];
        let a = user_archive(&default, &programs, &replacing).unwrap();
        let names: Vec<String> = abi::cpio::entries(&a)
            .map(|e| e.unwrap().name.to_string())
            .collect();
        assert_eq!(names, ["START", "mine", "wc", "init", "etc"]);
        let a = add_files(&a, &replacing).unwrap();
        let sh = abi::cpio::entries(&a)
            .map(|e| e.unwrap())
            .find(|e| e.rooted && e.name == "bin/sh")
            .unwrap();
        assert_eq!(sh.data, std::fs::read(&mine).unwrap());
        assert!(
            shell_archive(&default, &[], &replacing, false).is_ok(),
            "the shell a --file replaces is still there"
        );
        let _ = std::fs::remove_dir_all(&dir);
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
