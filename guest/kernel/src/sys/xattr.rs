//! Extended attributes (getxattr, setxattr, listxattr, removexattr, with their `l` forms, which
//! do not follow a final symbolic link, and `f` forms, on a descriptor). Our file tree keeps
//! none, so after the path or descriptor is checked (ENOENT, ENOTDIR, ELOOP, EBADF, EFAULT as
//! usual) every call is EOPNOTSUPP, what Linux answers for a file system without xattr
//! support. Programs take that as "no ACL, no security label": GNU `ls -l` then prints no
//! error and no `+`.

use super::fd::file;
use super::{user_path, SysResult};
use crate::fs::{self, fs, start_dir, AT_FDCWD};
use crate::trap_frame::TrapFrame;
use abi::Errno;

/// The path in `rdi` names something (`follow`: through a final symbolic link).
fn check_path(f: &TrapFrame, follow: bool) -> Result<(), Errno> {
    let path = user_path(f.rdi)?;
    let start = start_dir(AT_FDCWD as u64, &path)?;
    fs::resolve(&fs(), start, &path, follow)?;
    Ok(())
}

/// getxattr, setxattr, listxattr, removexattr (through links).
pub fn sys_xattr_path(f: &mut TrapFrame) -> SysResult {
    check_path(f, true)?;
    Err(Errno::EOPNOTSUPP)
}

/// lgetxattr, lsetxattr, llistxattr, lremovexattr (of a link itself).
pub fn sys_xattr_link(f: &mut TrapFrame) -> SysResult {
    check_path(f, false)?;
    Err(Errno::EOPNOTSUPP)
}

/// fgetxattr, fsetxattr, flistxattr, fremovexattr.
pub fn sys_xattr_fd(f: &mut TrapFrame) -> SysResult {
    file(f.rdi)?;
    Err(Errno::EOPNOTSUPP)
}
