//! A process's memory: the heap's break, and the FS base its thread-local storage hangs from.

use core::sync::atomic::Ordering::Relaxed;

use super::{pml4, SysResult};
use crate::file::FileKind;
use crate::memory::address_space::{AddressSpace, MapError, Placement};
use crate::memory::paging::USER_END;
use crate::memory::{PAGE_SIZE, PHYS_OFFSET};
use crate::percpu::current;
use crate::scheduler;
use crate::trap_frame::TrapFrame;
use crate::uaccess::copy_to_user;
use abi::Errno;
use kcore::regions::{Backing, PROT_WRITE};

/// brk(addr): moves the heap's end; its pages appear, zeroed, when first touched. Returns the
/// break (the old one when refused, as Linux does).
pub fn sys_brk(f: &mut TrapFrame) -> SysResult {
    let mm = current().mm().ok_or(Errno::ENOMEM)?;
    Ok(mm.brk(f.rdi))
}

pub fn sys_arch_prctl(f: &mut TrapFrame) -> SysResult {
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    match f.rdi {
        ARCH_SET_FS => {
            if f.rsi >= USER_END {
                return Err(Errno::EPERM);
            }
            current().fs_base.store(f.rsi, Relaxed);
            scheduler::load_fs_base(f.rsi);
            Ok(0)
        }
        ARCH_GET_FS => {
            let fs = current().fs_base.load(Relaxed);
            copy_to_user(pml4(), f.rsi, &fs.to_le_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

const PROT_MASK: u64 = 7;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_POPULATE: u64 = 0x8000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// Flags accepted and needing nothing from us: MAP_GROWSDOWN, MAP_DENYWRITE, MAP_EXECUTABLE,
/// MAP_LOCKED, MAP_NORESERVE, MAP_NONBLOCK, MAP_STACK, MAP_HUGETLB (as small pages), MAP_SYNC.
const MAP_IGNORED: u64 =
    0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x1_0000 | 0x2_0000 | 0x4_0000 | 0x8_0000;

fn map_err(e: MapError) -> Errno {
    match e {
        MapError::Invalid => Errno::EINVAL,
        MapError::Exists => Errno::EEXIST,
        MapError::NoMemory => Errno::ENOMEM,
        MapError::Fault => Errno::ENOMEM,
    }
}

fn page_len(len: u64) -> Result<u64, Errno> {
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    len.checked_next_multiple_of(PAGE_SIZE).ok_or(Errno::ENOMEM)
}

/// mmap(addr, len, prot, flags, fd, offset): anonymous memory (private or shared), and files
/// of the tree mapped privately (below).
pub fn sys_mmap(f: &mut TrapFrame) -> SysResult {
    let (addr, len, prot, flags, offset) = (f.rdi, f.rsi, f.rdx, f.r10, f.r9);
    let len = page_len(len)?;
    let kind = flags & 0x3;
    let known = 0x3 | MAP_FIXED | MAP_ANONYMOUS | MAP_POPULATE | MAP_FIXED_NOREPLACE | MAP_IGNORED;
    // MAP_SHARED_VALIDATE refuses flags it does not know; the others ignore them.
    if kind == 0 || (kind == MAP_SHARED_VALIDATE && flags & !known != 0) {
        return Err(Errno::EINVAL);
    }
    if !offset.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let shared = kind != MAP_PRIVATE;
    let mut file = None;
    if flags & MAP_ANONYMOUS == 0 {
        let files = current().files().ok_or(Errno::EBADF)?;
        let open = files.get(f.r8)?;
        match &open.kind {
            // /dev/zero maps as anonymous memory, as on Linux.
            FileKind::Zero => {}
            FileKind::Inode(i) => {
                if !open.readable() {
                    return Err(Errno::EACCES);
                }
                // Writes through a shared mapping would have to reach the file's pages: not
                // supported; a read-only shared mapping is the same as a private one.
                if shared && prot & PROT_WRITE as u64 != 0 {
                    return Err(Errno::ENODEV);
                }
                file = Some(i.ino);
            }
            _ => return Err(Errno::ENODEV),
        }
    }
    let shared = shared && file.is_none();
    let placement = if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace
    } else if flags & MAP_FIXED != 0 {
        Placement::Fixed
    } else {
        Placement::Hint
    };
    if placement != Placement::Hint && !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let mm = current().mm().ok_or(Errno::ENOMEM)?;
    let prot = (prot & PROT_MASK) as u8;
    if let Some(ino) = file {
        return map_file(&mm, ino, addr, len, prot, offset, placement);
    }
    let start = mm
        .map_region(addr, len, prot, Backing::Anon, shared, placement)
        .map_err(map_err)?;
    if shared || flags & MAP_POPULATE != 0 {
        if let Err(e) = mm.populate(start, len, prot & PROT_WRITE != 0 && !shared) {
            let _ = mm.unmap(start, start + len);
            return Err(e.into());
        }
    }
    Ok(start)
}

/// A private mapping of file `ino` from `offset`: a file of the boot archive is backed by its
/// own pages, mapped on first touch and copied on the first write (as exec maps programs); a
/// file written since boot is copied in now. Past the file's end the pages are zero, as
/// Linux's are up to the end of the last page.
fn map_file(
    mm: &AddressSpace,
    ino: kcore::fs::Ino,
    addr: u64,
    len: u64,
    prot: u8,
    offset: u64,
    placement: Placement,
) -> SysResult {
    let (size, static_data) = {
        let fs = crate::fs::fs();
        let node = fs.get(ino)?;
        if node.is_dir() {
            return Err(Errno::ENODEV);
        }
        (node.size(), fs.static_data(ino))
    };
    let in_file = size.saturating_sub(offset).min(len);
    if let Some(data) = static_data {
        let phys = data.as_ptr() as u64 - PHYS_OFFSET;
        if phys.is_multiple_of(PAGE_SIZE) {
            let backing = Backing::File {
                phys: phys + offset.min(size),
                len: in_file,
            };
            return mm
                .map_region(addr, len, prot, backing, false, placement)
                .map_err(map_err);
        }
    }
    // Copied: writable while the data goes in, then the protection asked for.
    let start = mm
        .map_region(
            addr,
            len,
            prot | PROT_WRITE,
            Backing::Anon,
            false,
            placement,
        )
        .map_err(map_err)?;
    let mut at = start;
    let copied = crate::fs::fs().read(ino, offset, in_file, |piece: &[u8]| {
        crate::uaccess::copy_to_user_in(mm, at, piece)?;
        at += piece.len() as u64;
        Ok::<(), crate::uaccess::Fault>(())
    });
    if copied.is_err() || (prot & PROT_WRITE == 0 && mm.protect(start, start + len, prot).is_err())
    {
        let _ = mm.unmap(start, start + len);
        return Err(Errno::ENOMEM);
    }
    Ok(start)
}

/// munmap(addr, len).
pub fn sys_munmap(f: &mut TrapFrame) -> SysResult {
    let (addr, len) = (f.rdi, page_len(f.rsi)?);
    if !addr.is_multiple_of(PAGE_SIZE) || addr.checked_add(len).is_none_or(|e| e > USER_END) {
        return Err(Errno::EINVAL);
    }
    let mm = current().mm().ok_or(Errno::ENOMEM)?;
    mm.unmap(addr, addr + len).map_err(map_err)?;
    Ok(0)
}

/// mprotect(addr, len, prot).
pub fn sys_mprotect(f: &mut TrapFrame) -> SysResult {
    let (addr, prot) = (f.rdi, f.rdx);
    if !addr.is_multiple_of(PAGE_SIZE) || prot & !(PROT_MASK | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    if f.rsi == 0 {
        return Ok(0);
    }
    let len = page_len(f.rsi)?;
    let end = addr
        .checked_add(len)
        .filter(|&e| e <= USER_END)
        .ok_or(Errno::ENOMEM)?;
    let mm = current().mm().ok_or(Errno::ENOMEM)?;
    mm.protect(addr, end, (prot & PROT_MASK) as u8)
        .map_err(map_err)?;
    Ok(0)
}

/// mremap(old, old_len, new_len, flags, new_addr): MREMAP_MAYMOVE.
pub fn sys_mremap(f: &mut TrapFrame) -> SysResult {
    const MREMAP_MAYMOVE: u64 = 1;
    let (old, flags) = (f.rdi, f.r10);
    if !old.is_multiple_of(PAGE_SIZE) || flags & !MREMAP_MAYMOVE != 0 {
        return Err(Errno::EINVAL);
    }
    let old_len = page_len(f.rsi)?;
    let new_len = page_len(f.rdx)?;
    let mm = current().mm().ok_or(Errno::ENOMEM)?;
    match mm.remap(old, old_len, new_len, flags & MREMAP_MAYMOVE != 0) {
        Ok(a) => Ok(a),
        Err(MapError::Fault) => Err(Errno::EFAULT),
        Err(e) => Err(map_err(e)),
    }
}

/// madvise(addr, len, advice): MADV_DONTNEED and MADV_FREE drop the pages (they read as
/// zeros, or the file's bytes, afterwards); other advice is accepted and ignored.
pub fn sys_madvise(f: &mut TrapFrame) -> SysResult {
    const MADV_DONTNEED: u64 = 4;
    const MADV_FREE: u64 = 8;
    let addr = f.rdi;
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if f.rsi == 0 {
        return Ok(0);
    }
    let len = page_len(f.rsi)?;
    let end = addr
        .checked_add(len)
        .filter(|&e| e <= USER_END)
        .ok_or(Errno::EINVAL)?;
    if matches!(f.rdx, MADV_DONTNEED | MADV_FREE) {
        current().mm().ok_or(Errno::ENOMEM)?.discard(addr, end);
    }
    Ok(0)
}

/// msync, mlock, munlock, mlockall, munlockall: nothing to do in RAM without swap.
pub fn sys_nothing(_f: &mut TrapFrame) -> SysResult {
    Ok(0)
}
