//! The file calls' numbers, as Linux x86-64 has them: open's flags, the file-type bits of a
//! mode, getdents64's d_type, the *at calls' special values. The kernel, its host-tested
//! file tree (kcore::fs), the cpio reader and the user runtime all take them from here.

/// open/openat flags (`O_*`), as u32 (the user runtime casts to its C `int`).
pub mod open {
    pub const O_ACCMODE: u32 = 3;
    pub const O_RDONLY: u32 = 0;
    pub const O_WRONLY: u32 = 1;
    pub const O_RDWR: u32 = 2;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
    pub const O_NONBLOCK: u32 = 0o4000;
    pub const O_LARGEFILE: u32 = 0o100000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
    pub const O_CLOEXEC: u32 = 0o2000000;
}

/// The file-type bits of `st_mode` (and of a cpio entry's mode).
pub mod mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFLNK: u32 = 0o120000;
}

/// getdents64's `d_type` values.
pub mod dtype {
    pub const DT_CHR: u8 = 2;
    pub const DT_DIR: u8 = 4;
    pub const DT_REG: u8 = 8;
    pub const DT_LNK: u8 = 10;
}

/// The *at calls' directory "the working directory", and unlinkat's flag.
pub const AT_FDCWD: i32 = -100;
pub const AT_REMOVEDIR: i32 = 0x200;
