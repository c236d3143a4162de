//! Four-level x86-64 page tables (Intel SDM vol. 3, 4.5), over any physical memory.
//!
//! The kernel passes its direct map and frame allocator as a [`PhysMem`]; the host tests pass a
//! map of fake frames. Entries are read and written one at a time through `PhysMem`, so no
//! reference into a table is ever held across another access.

/// Entry bits.
pub const PRESENT: u64 = 1 << 0;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
pub const WRITE_THROUGH: u64 = 1 << 3;
pub const NO_CACHE: u64 = 1 << 4;
pub const ACCESSED: u64 = 1 << 5;
pub const DIRTY: u64 = 1 << 6;
/// A 2 MiB (level 1) or 1 GiB (level 2) page instead of a table.
pub const HUGE: u64 = 1 << 7;
pub const GLOBAL: u64 = 1 << 8;
pub const NO_EXECUTE: u64 = 1 << 63;
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
pub const PAGE: u64 = 4096;
/// The top of the lower canonical half: user space is `[0, USER_END)`.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Levels: 3 is the PML4, 0 the page table whose entries map 4 KiB pages.
pub const PML4_LEVEL: u32 = 3;

/// Physical memory as the page-table code needs it.
pub trait PhysMem {
    /// Entry `index` of the table at physical address `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    fn write(&self, table: u64, index: usize, entry: u64);
    /// A zeroed frame for a new table; `None` when memory is exhausted.
    fn alloc_table(&self) -> Option<u64>;
    fn free_frame(&self, frame: u64);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// As a system call reports it.
impl From<OutOfMemory> for abi::Errno {
    fn from(_: OutOfMemory) -> abi::Errno {
        abi::Errno::ENOMEM
    }
}

/// The index of `va` in its table at `level`.
#[inline(always)]
pub const fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * level)) & 0x1ff) as usize
}

/// Where a last-level entry lives: its table and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub table: u64,
    pub index: usize,
}

impl Slot {
    pub fn read(self, mem: &impl PhysMem) -> u64 {
        mem.read(self.table, self.index)
    }
    pub fn write(self, mem: &impl PhysMem, entry: u64) {
        mem.write(self.table, self.index, entry)
    }
}

/// The last-level entry for `va` under `root` (a table of level `top`), creating missing
/// intermediate tables with `table_flags`.
pub fn walk_create(
    mem: &impl PhysMem,
    root: u64,
    top: u32,
    va: u64,
    table_flags: u64,
) -> Result<Slot, OutOfMemory> {
    let mut t = root;
    for level in (1..=top).rev() {
        let i = index(va, level);
        let mut e = mem.read(t, i);
        if e & PRESENT == 0 {
            let f = mem.alloc_table().ok_or(OutOfMemory)?;
            e = f | table_flags;
            mem.write(t, i, e);
        }
        t = e & ADDR_MASK;
    }
    Ok(Slot {
        table: t,
        index: index(va, 0),
    })
}

/// The last-level entry for `va` if every table on the way exists (and none is a huge page).
pub fn leaf(mem: &impl PhysMem, root: u64, va: u64) -> Option<Slot> {
    let mut t = root;
    for level in (1..=PML4_LEVEL).rev() {
        let e = mem.read(t, index(va, level));
        if e & PRESENT == 0 || e & HUGE != 0 {
            return None;
        }
        t = e & ADDR_MASK;
    }
    Some(Slot {
        table: t,
        index: index(va, 0),
    })
}

/// Maps the 4 KiB page at `va` to frame `pa` with `flags` (PRESENT is added). Tables created
/// on the way are writable, and user-accessible for user addresses (the leaf decides).
pub fn map(mem: &impl PhysMem, root: u64, va: u64, pa: u64, flags: u64) -> Result<(), OutOfMemory> {
    let table_flags = PRESENT | WRITABLE | if va < USER_END { USER } else { 0 };
    walk_create(mem, root, PML4_LEVEL, va, table_flags)?
        .write(mem, (pa & ADDR_MASK) | flags | PRESENT);
    Ok(())
}

/// The physical address `va` maps to, if every level has all the bits in `need` (e.g.
/// `PRESENT | USER | WRITABLE`). Huge pages are followed.
pub fn translate(mem: &impl PhysMem, root: u64, va: u64, need: u64) -> Option<u64> {
    let mut t = root;
    for level in (0..=PML4_LEVEL).rev() {
        let e = mem.read(t, index(va, level));
        if e & need != need {
            return None;
        }
        if level == 0 {
            return Some((e & ADDR_MASK) | (va & (PAGE - 1)));
        }
        if e & HUGE != 0 {
            let size = 1u64 << (12 + 9 * level);
            return Some((e & ADDR_MASK & !(size - 1)) | (va & (size - 1)));
        }
        t = e & ADDR_MASK;
    }
    None
}

/// A user address `translate` would accept for a user access (`write`: a write access).
pub fn translate_user(mem: &impl PhysMem, root: u64, va: u64, write: bool) -> Option<u64> {
    if va >= USER_END {
        return None;
    }
    translate(
        mem,
        root,
        va,
        PRESENT | USER | if write { WRITABLE } else { 0 },
    )
}

/// The user pages of `[va, va + len)` that `translate_user` would accept (`write`: for a
/// write), in order, as (physical address, bytes) pieces, one a page. The upper levels are
/// walked once per page table (2 MiB of address space), then one entry is read a page: a
/// long buffer costs a load and a test a page, not a walk. The iterator ends at the end of
/// the range or at the first page not accessible ([`UserPages::at`] says which); once that
/// page is made accessible, [`UserPages::rewalk`] goes on from it.
pub struct UserPages<'m, M: PhysMem> {
    mem: &'m M,
    root: u64,
    at: u64,
    end: u64,
    need: u64,
    /// The page table that maps addresses below `table_end`, when `at` is below it.
    table: u64,
    table_end: u64,
}

/// `UserPages` over `[va, va + len)`; `None` when the range wraps or leaves user space.
pub fn user_pages<M: PhysMem>(
    mem: &M,
    root: u64,
    va: u64,
    len: u64,
    write: bool,
) -> Option<UserPages<'_, M>> {
    let end = va.checked_add(len).filter(|&e| e <= USER_END)?;
    Some(UserPages {
        mem,
        root,
        at: va,
        end,
        need: PRESENT | USER | if write { WRITABLE } else { 0 },
        table: 0,
        table_end: 0,
    })
}

impl<M: PhysMem> UserPages<'_, M> {
    /// Where the next piece would start: the range's end once it is all handed out.
    pub fn at(&self) -> u64 {
        self.at
    }

    /// Whether every piece has been handed out.
    pub fn done(&self) -> bool {
        self.at >= self.end
    }

    /// Forgets the page table in hand (the tables changed: a page was made present).
    pub fn rewalk(&mut self) {
        self.table_end = 0;
    }

    /// The page table in hand and the end of the addresses it maps (0: none yet), for a
    /// caller to remember as a TLB remembers a translation.
    pub fn table(&self) -> (u64, u64) {
        (self.table, self.table_end)
    }

    /// Starts from page table `table`, which the caller knows maps the 2 MiB around the
    /// range's start with the access this iterator checks (an earlier `table()`, no table
    /// written since): the upper levels are not walked again.
    pub fn starting_in(mut self, table: u64) -> Self {
        self.table = table;
        self.table_end = ((self.at >> 21) + 1) << 21;
        self
    }
}

impl<M: PhysMem> Iterator for UserPages<'_, M> {
    type Item = (u64, u64);

    #[inline(always)]
    fn next(&mut self) -> Option<(u64, u64)> {
        let at = self.at;
        if at >= self.end {
            return None;
        }
        if at >= self.table_end {
            let mut t = self.root;
            for level in (1..=PML4_LEVEL).rev() {
                let e = self.mem.read(t, index(at, level));
                if e & self.need != self.need {
                    return None;
                }
                if e & HUGE != 0 {
                    let size = 1u64 << (12 + 9 * level);
                    let n = (size - (at & (size - 1))).min(self.end - at);
                    self.at += n;
                    return Some(((e & ADDR_MASK & !(size - 1)) | (at & (size - 1)), n));
                }
                t = e & ADDR_MASK;
            }
            self.table = t;
            self.table_end = ((at >> 21) + 1) << 21;
        }
        let e = self.mem.read(self.table, index(at, 0));
        if e & self.need != self.need {
            return None;
        }
        let n = (PAGE - (at & (PAGE - 1))).min(self.end - at);
        self.at += n;
        Some(((e & ADDR_MASK) | (at & (PAGE - 1)), n))
    }
}

impl<M: PhysMem> UserPages<'_, M> {
    /// As `next`, but a run: the whole pages after the piece that the same page table maps
    /// with the access asked, each starting where the run's bytes end physically, join it, up
    /// to `max` bytes. A device reads a run as one buffer; the pages of a buffer that was
    /// touched in order are usually contiguous, so a long write costs a load and a few tests
    /// a page, not a piece's way each.
    #[inline(always)]
    pub fn next_run(&mut self, max: u64) -> Option<(u64, u64)> {
        let (pa, mut n) = self.next()?;
        // After a 4 KiB piece `at` is page-aligned or the end; after a huge one it lies past
        // `table_end`, so the loop does not start.
        while self.at < self.end && self.at < self.table_end {
            let e = self.mem.read(self.table, index(self.at, 0));
            let k = PAGE.min(self.end - self.at);
            if e & self.need != self.need || e & ADDR_MASK != pa + n || n + k > max {
                break;
            }
            n += k;
            self.at += k;
        }
        Some((pa, n))
    }
}

/// Calls `f(i)` for every present entry `i` in `first..=last` of table `t`. Absent entries
/// are skipped 64 or eight at a time (one OR of the entries, then one test), so an empty
/// stretch of a table costs little more than one load an entry, not the five of a test each.
#[inline(always)]
fn each_present(
    mem: &impl PhysMem,
    t: u64,
    first: usize,
    last: usize,
    mut f: impl FnMut(usize, u64),
) {
    let mut i = first;
    while i <= last {
        if i.is_multiple_of(64) && i + 63 <= last {
            let any = (0..64).fold(0, |acc, k| acc | mem.read(t, i + k));
            if any & PRESENT == 0 {
                i += 64;
                continue;
            }
        }
        if i.is_multiple_of(8) && i + 7 <= last {
            let any = (0..8).fold(0, |acc, k| acc | mem.read(t, i + k));
            if any & PRESENT == 0 {
                i += 8;
                continue;
            }
        }
        let e = mem.read(t, i);
        if e & PRESENT != 0 {
            f(i, e);
        }
        i += 1;
    }
}

/// The indices of table entries (each `span` bytes, the table's first at `base`) that meet
/// `[start, end)`, as `first..=last`; None if none does.
#[inline(always)]
fn entries_meeting(base: u64, span: u64, start: u64, end: u64) -> Option<(usize, usize)> {
    let table_end = base.saturating_add(span * 512);
    if end <= base || start >= table_end || start >= end {
        return None;
    }
    let first = (start.max(base) - base) / span;
    let last = (end.min(table_end) - 1 - base) / span;
    Some((first as usize, last as usize))
}

/// Calls `f(va, slot, entry)` for every present 4 KiB leaf of `[start, end)` under `root`,
/// in address order. Missing tables are skipped whole and only the entries inside the range
/// are read, so the cost follows what is mapped, not the size of the range (fork copies a
/// process this way; munmap and mprotect use it too).
pub fn for_each_leaf(
    mem: &impl PhysMem,
    root: u64,
    start: u64,
    end: u64,
    mut f: impl FnMut(u64, Slot, u64),
) {
    fn level(
        mem: &impl PhysMem,
        t: u64,
        lvl: u32,
        base: u64,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u64, Slot, u64),
    ) {
        let span = 1u64 << (12 + 9 * lvl);
        let Some((first, last)) = entries_meeting(base, span, start, end) else {
            return;
        };
        each_present(mem, t, first, last, |i, e| {
            let va = base + i as u64 * span;
            if lvl == 0 {
                f(va, Slot { table: t, index: i }, e);
            } else if e & HUGE == 0 {
                level(mem, e & ADDR_MASK, lvl - 1, va, start, end, f);
            }
        });
    }
    let end = end.min(USER_END);
    if start < end {
        level(mem, root, PML4_LEVEL, 0, start & !(PAGE - 1), end, &mut f);
    }
}

/// Frees the tables under PML4 slots `slots` of `root` and hands every mapped 4 KiB frame to
/// `release` (which frees it, or drops a reference to it). Only present entries are visited.
pub fn free_range(
    mem: &impl PhysMem,
    root: u64,
    slots: core::ops::Range<usize>,
    mut release: impl FnMut(u64),
) {
    fn level(mem: &impl PhysMem, t: u64, lvl: u32, release: &mut dyn FnMut(u64)) {
        each_present(mem, t, 0, 511, |_, e| {
            if lvl == 0 {
                release(e & ADDR_MASK);
            } else if e & HUGE == 0 {
                level(mem, e & ADDR_MASK, lvl - 1, release);
            }
        });
        mem.free_frame(t);
    }
    for i in slots {
        let e = mem.read(root, i);
        if e & PRESENT != 0 {
            level(mem, e & ADDR_MASK, PML4_LEVEL - 1, &mut release);
            mem.write(root, i, 0);
        }
    }
}

/// Like [`free_range`] over the user half, but reading only the entries that meet `ranges`
/// (sorted, disjoint `[start, end)` pairs): the caller promises that every table under `root`
/// was made for an address inside one of them (a process's footprint, `regions::Footprint`).
/// A process's teardown then costs what it mapped, not 512 reads per table.
pub fn free_ranges(
    mem: &impl PhysMem,
    root: u64,
    ranges: &[(u64, u64)],
    mut release: impl FnMut(u64),
) {
    fn level(
        mem: &impl PhysMem,
        t: u64,
        lvl: u32,
        base: u64,
        ranges: &[(u64, u64)],
        release: &mut dyn FnMut(u64),
    ) {
        let span = 1u64 << (12 + 9 * lvl);
        // Entries already visited for an earlier range (two ranges may meet one entry).
        let mut next = 0;
        for &(start, end) in ranges {
            let Some((first, last)) = entries_meeting(base, span, start, end) else {
                continue;
            };
            if last < next {
                continue;
            }
            each_present(mem, t, first.max(next), last, |i, e| {
                if lvl == 0 {
                    release(e & ADDR_MASK);
                } else if e & HUGE == 0 {
                    let child = e & ADDR_MASK;
                    level(mem, child, lvl - 1, base + i as u64 * span, ranges, release);
                    mem.free_frame(child);
                }
                if lvl == PML4_LEVEL {
                    mem.write(t, i, 0);
                }
            });
            next = last + 1;
        }
    }
    level(mem, root, PML4_LEVEL, 0, ranges, &mut release);
}

#[cfg(test)]
pub mod fake {
    //! Fake physical memory for tests: frames in a map, a limit to run out of.
    use super::*;
    use core::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    pub struct FakeMem {
        pub frames: RefCell<BTreeMap<u64, [u64; 512]>>,
        next: Cell<u64>,
        pub limit: Cell<usize>,
        pub freed: RefCell<std::vec::Vec<u64>>,
    }

    impl FakeMem {
        pub fn new(limit: usize) -> FakeMem {
            FakeMem {
                frames: RefCell::new(BTreeMap::new()),
                next: Cell::new(0x10_0000),
                limit: Cell::new(limit),
                freed: RefCell::new(std::vec::Vec::new()),
            }
        }
        pub fn live(&self) -> usize {
            self.frames.borrow().len()
        }
    }

    impl PhysMem for FakeMem {
        fn read(&self, table: u64, index: usize) -> u64 {
            self.frames.borrow()[&table][index]
        }
        fn write(&self, table: u64, index: usize, entry: u64) {
            self.frames.borrow_mut().get_mut(&table).unwrap()[index] = entry;
        }
        fn alloc_table(&self) -> Option<u64> {
            if self.live() >= self.limit.get() {
                return None;
            }
            let f = self.next.get();
            self.next.set(f + PAGE);
            self.frames.borrow_mut().insert(f, [0; 512]);
            Some(f)
        }
        fn free_frame(&self, frame: u64) {
            assert!(
                self.frames.borrow_mut().remove(&frame).is_some(),
                "double free {frame:#x}"
            );
            self.freed.borrow_mut().push(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeMem;
    use super::*;

    #[test]
    fn indices() {
        let va = 0x0000_7fff_ffff_f000;
        assert_eq!(
            [index(va, 3), index(va, 2), index(va, 1), index(va, 0)],
            [255, 511, 511, 511]
        );
        assert_eq!(index(0xffff_8000_0000_0000, 3), 256);
        assert_eq!(index(0x40_1000, 0), 1);
        assert_eq!(index(0x40_1000, 1), 2);
    }

    #[test]
    fn map_translate_and_permissions() {
        let mem = FakeMem::new(16);
        let root = mem.alloc_table().unwrap();
        map(&mem, root, 0x40_0000, 0x1234_5000, USER).unwrap();
        map(&mem, root, 0x40_1000, 0x1234_6000, USER | WRITABLE).unwrap();
        assert_eq!(mem.live(), 4, "one PML4, PDPT, PD, PT");
        assert_eq!(
            translate_user(&mem, root, 0x40_0123, false),
            Some(0x1234_5123)
        );
        assert_eq!(
            translate_user(&mem, root, 0x40_0123, true),
            None,
            "read-only"
        );
        assert_eq!(
            translate_user(&mem, root, 0x40_1fff, true),
            Some(0x1234_6fff)
        );
        assert_eq!(
            translate_user(&mem, root, 0x40_2000, false),
            None,
            "unmapped"
        );
        assert_eq!(
            translate_user(&mem, root, USER_END, false),
            None,
            "kernel half"
        );
        // A supervisor-only leaf is not user memory.
        map(&mem, root, 0x40_2000, 0x1234_7000, WRITABLE).unwrap();
        assert_eq!(translate_user(&mem, root, 0x40_2000, false), None);
        assert_eq!(translate(&mem, root, 0x40_2000, PRESENT), Some(0x1234_7000));
        let slot = leaf(&mem, root, 0x40_1000).unwrap();
        assert_eq!(slot.read(&mem) & !ADDR_MASK, USER | WRITABLE | PRESENT);
        assert!(leaf(&mem, root, 0x8000_0000).is_none());
    }

    #[test]
    fn user_pages_walks_each_table_once_and_stops_where_access_ends() {
        let mem = FakeMem::new(16);
        let root = mem.alloc_table().unwrap();
        // Four pages across a page-table boundary (0x1fe000..0x202000), the third read-only.
        for (i, va) in [0x1fe000u64, 0x1ff000, 0x200000, 0x201000]
            .iter()
            .enumerate()
        {
            let flags = if i == 2 { USER } else { USER | WRITABLE };
            map(&mem, root, *va, 0x5000_0000 + i as u64 * PAGE, flags).unwrap();
        }
        let pieces = |va, len, write| {
            let mut it = user_pages(&mem, root, va, len, write).unwrap();
            let v: std::vec::Vec<_> = it.by_ref().collect();
            (v, it.at(), it.done())
        };
        let (v, stop, done) = pieces(0x1fe800, 0x2900, false);
        assert_eq!((stop, done), (0x201100, true));
        assert_eq!(
            v,
            [
                (0x5000_0800, 0x800),
                (0x5000_1000, 0x1000),
                (0x5000_2000, 0x1000),
                (0x5000_3000, 0x100)
            ]
        );
        // For a write, the read-only page ends it; past the mapping, the unmapped page does.
        assert_eq!(pieces(0x1fe000, 0x4000, true).1, 0x200000);
        let (v, stop, done) = pieces(0x201000, 0x2000, false);
        assert_eq!((v.len(), stop, done), (1, 0x202000, false));
        // Once the missing page is mapped, a rewalk goes on from it.
        let mut it = user_pages(&mem, root, 0x201000, 0x2000, false).unwrap();
        assert_eq!(it.by_ref().count(), 1);
        map(&mem, root, 0x202000, 0x6000_0000, USER).unwrap();
        it.rewalk();
        assert_eq!(it.next(), Some((0x6000_0000, 0x1000)));
        assert!(it.done());
        // A remembered table saves the walk and gives the same pieces.
        let (table, end) = it.table();
        assert_eq!(end, 0x40_0000);
        let mut again = user_pages(&mem, root, 0x201000, 0x2000, false)
            .unwrap()
            .starting_in(table);
        assert_eq!(again.next(), Some((0x5000_3000, 0x1000)));
        // The kernel half, and a range that wraps, are refused.
        assert!(user_pages(&mem, root, USER_END - 0x1000, 0x2000, false).is_none());
        assert!(user_pages(&mem, root, u64::MAX - 10, 20, false).is_none());
    }

    #[test]
    fn runs_join_contiguous_pages_of_one_table_up_to_a_limit() {
        let mem = FakeMem::new(16);
        let root = mem.alloc_table().unwrap();
        // 0x1fc000..0x1ff000 contiguous at 0x5000_0000; 0x1ff000 elsewhere; 0x200000 (the next
        // table) continues it; 0x201000 read-only.
        for (va, pa, flags) in [
            (0x1fc000u64, 0x5000_0000u64, USER),
            (0x1fd000, 0x5000_1000, USER),
            (0x1fe000, 0x5000_2000, USER),
            (0x1ff000, 0x7000_0000, USER),
            (0x200000, 0x7000_1000, USER),
            (0x201000, 0x7000_2000, USER | WRITABLE),
        ] {
            map(&mem, root, va, pa, flags).unwrap();
        }
        let runs = |va, len, write, max| {
            let mut it = user_pages(&mem, root, va, len, write).unwrap();
            let mut v = std::vec::Vec::new();
            while let Some(r) = it.next_run(max) {
                v.push(r);
            }
            (v, it.at())
        };
        // From mid-page: the first piece, then whole pages while contiguous; a new run where
        // the frames jump and where the page table changes (0x200000), which goes on in the
        // new table, to the last page's part.
        let (v, at) = runs(0x1fc800, 0x5000, false, 1 << 30);
        assert_eq!(
            v,
            [
                (0x5000_0800, 0x2800),
                (0x7000_0000, 0x1000),
                (0x7000_1000, 0x1800)
            ]
        );
        assert_eq!(at, 0x201800);
        // The limit ends a run before a page that would pass it.
        let (v, _) = runs(0x1fc000, 0x3000, false, 0x2000);
        assert_eq!(v, [(0x5000_0000, 0x2000), (0x5000_2000, 0x1000)]);
        // For a write, the read-only pages end it at once.
        let (v, at) = runs(0x1fc000, 0x1000, true, 1 << 30);
        assert_eq!((v.len(), at), (0, 0x1fc000));
        // The same bytes as `next` gives, piece by piece.
        let mut it = user_pages(&mem, root, 0x1fc800, 0x5000, false).unwrap();
        let total: u64 = it.by_ref().map(|(_, n)| n).sum();
        assert_eq!(total, v_total(&runs(0x1fc800, 0x5000, false, 1 << 30).0));
    }

    fn v_total(v: &[(u64, u64)]) -> u64 {
        v.iter().map(|(_, n)| n).sum()
    }

    #[test]
    fn huge_pages_are_followed() {
        let mem = FakeMem::new(8);
        let root = mem.alloc_table().unwrap();
        let slot =
            walk_create(&mem, root, PML4_LEVEL, 0x20_0000, PRESENT | WRITABLE | USER).unwrap();
        // Turn the PD entry into a 2 MiB page: write it one level up.
        let pdpt = mem.read(root, 0) & ADDR_MASK;
        let pd = mem.read(pdpt, 0) & ADDR_MASK;
        let _ = slot;
        mem.write(pd, 1, 0x4000_0000 | PRESENT | USER | HUGE);
        assert_eq!(
            translate(&mem, root, 0x21_2345, PRESENT | USER),
            Some(0x4001_2345)
        );
        assert!(leaf(&mem, root, 0x21_2345).is_none());
    }

    #[test]
    fn out_of_memory_is_an_error_and_leaves_the_tables_usable() {
        let mem = FakeMem::new(3);
        let root = mem.alloc_table().unwrap();
        assert_eq!(map(&mem, root, 0x40_0000, 0x5000, USER), Err(OutOfMemory));
        mem.limit.set(4);
        map(&mem, root, 0x40_0000, 0x5000, USER).unwrap();
        assert_eq!(translate_user(&mem, root, 0x40_0000, false), Some(0x5000));
    }

    #[test]
    fn leaves_of_a_range_only() {
        let mem = FakeMem::new(64);
        let root = mem.alloc_table().unwrap();
        let pages = [0x40_0000u64, 0x40_1000, 0x60_0000, 0x7fff_ffff_e000];
        for (i, &va) in pages.iter().enumerate() {
            map(&mem, root, va, 0x100_0000 + i as u64 * PAGE, USER).unwrap();
        }
        let mut seen = std::vec::Vec::new();
        for_each_leaf(&mem, root, 0x40_1000, 0x7fff_ffff_f000, |va, slot, e| {
            assert_eq!(slot.read(&mem), e);
            seen.push(va)
        });
        assert_eq!(seen, [0x40_1000, 0x60_0000, 0x7fff_ffff_e000]);
        seen.clear();
        for_each_leaf(&mem, root, 0, 0x40_1000, |va, _, _| seen.push(va));
        assert_eq!(seen, [0x40_0000]);
        seen.clear();
        for_each_leaf(&mem, root, 0x40_0800, 0x40_0900, |va, _, _| seen.push(va));
        assert_eq!(
            seen,
            [0x40_0000],
            "a range inside one page visits that page"
        );
    }

    #[test]
    fn freeing_visits_every_mapped_frame_once() {
        let mem = FakeMem::new(64);
        let root = mem.alloc_table().unwrap();
        let pages = [0x40_0000u64, 0x40_1000, 0x7fff_ffff_e000, 0x1_0000_0000];
        for (i, &va) in pages.iter().enumerate() {
            map(&mem, root, va, 0x100_0000 + i as u64 * PAGE, USER).unwrap();
        }
        let mut released = std::vec::Vec::new();
        free_range(&mem, root, 0..256, |f| released.push(f));
        released.sort();
        assert_eq!(released, [0x100_0000, 0x100_1000, 0x100_2000, 0x100_3000]);
        assert_eq!(mem.live(), 1, "only the PML4 is left");
        assert_eq!(mem.read(root, 0), 0);
    }

    #[test]
    fn freeing_by_ranges_frees_everything_made_inside_them() {
        let mem = FakeMem::new(64);
        let root = mem.alloc_table().unwrap();
        // Leaves at a group's edges (0, 7, 8, 15, 511 of a table), two ranges meeting one
        // table and one range crossing tables at every level.
        let ranges = [
            (0x40_0000u64, 0x40_9000u64),
            (0x40_f000, 0x41_0000),
            (0x5f_f000, 0x60_2000),
            (0x7f_ffff_f000, 0x80_0000_1000),
            (0x7fff_ff00_0000, 0x7fff_ffff_f000),
        ];
        let pages = [
            0x40_0000u64,
            0x40_7000,
            0x40_8000,
            0x40_f000,
            0x5f_f000,
            0x60_1000,
            0x7f_ffff_f000,
            0x80_0000_0000,
            0x7fff_ffff_e000,
        ];
        for (i, &va) in pages.iter().enumerate() {
            map(&mem, root, va, 0x100_0000 + i as u64 * PAGE, USER).unwrap();
        }
        let mut released = std::vec::Vec::new();
        free_ranges(&mem, root, &ranges, |f| released.push(f));
        released.sort();
        let want: std::vec::Vec<u64> = (0..pages.len() as u64)
            .map(|i| 0x100_0000 + i * PAGE)
            .collect();
        assert_eq!(released, want, "every leaf once");
        assert_eq!(
            mem.live(),
            1,
            "every table freed, once: only the PML4 is left"
        );
        assert!((0..512).all(|i| mem.read(root, i) == 0));
    }

    #[test]
    fn leaves_at_group_edges_are_all_seen() {
        let mem = FakeMem::new(64);
        let root = mem.alloc_table().unwrap();
        let pages: std::vec::Vec<u64> = [0usize, 6, 7, 8, 15, 16, 500, 511]
            .iter()
            .map(|&i| 0x40_0000 + i as u64 * PAGE)
            .collect();
        for &va in &pages {
            map(&mem, root, va, 0x100_0000, USER).unwrap();
        }
        let mut seen = std::vec::Vec::new();
        for_each_leaf(&mem, root, 0, USER_END, |va, _, _| seen.push(va));
        assert_eq!(seen, pages);
        seen.clear();
        for_each_leaf(&mem, root, 0x40_7000, 0x41_1000, |va, _, _| seen.push(va));
        assert_eq!(seen, pages[2..6]);
    }
}
