//! Page frames: the model's `struct page`.
//!
//! The kernel's `struct page` is 64 bytes; ours is 16 (SPEC §6). What the kernel keeps in
//! `struct page` that is rare here (extra references, pins with their owners and start
//! times, writeback completion times) lives in side tables (`gup.rs`, `writeback.rs`); a
//! frame only carries a flag saying "look in the side table".
//!
//! Layout (16 bytes):
//! - `next`/`prev`: the neighbours on the intrusive list the frame is on: a buddy free list,
//!   a per-CPU list or an LRU list (the kernel's `page->lru`/`buddy_list`/`pcp_list`, which
//!   also share one `list_head`), each a `Link`: the pfn plus one, so that "no frame" is
//!   0;
//! - `index`: `page->index`, the slot in the owner's mapping (file offset or virtual page);
//!   for a tail page of a compound allocation, the head's pfn;
//! - `flags`: kind (4 bits), order (4 bits, for a buddy head or a compound head) and
//!   eight PG_ flags;
//! - `owner`: who allocated the page (a workload, a device, a Python-named owner).
//!
//! A free frame on no list (`Page::FREE`) is all zero bits: kind `Free` is 0, order 0, no
//! flags, owner `OWNER_NONE`, index 0, and both links "no frame". So the frame array is
//! allocated zeroed (`Page::try_zeroed_vec`, `calloc`): the operating system hands out zero
//! pages, and the memory of frames nothing has written yet is never touched (SPEC §6: boot
//! cost and resident memory follow what is used, not the board's size).

use std::fmt;
use std::ops::{Index, IndexMut};

use crate::pfn::Pfn;

/// "No frame": the end of a list.
pub const NIL: Pfn = Pfn::NIL;

/// A list link as a frame stores it: the pfn plus one, so that `NIL` (`u32::MAX`, never a
/// frame) is stored as 0 and a zeroed frame links to nothing. (Plus one rather than, say, the
/// complement: the minus one of the decoding folds into the address of the frame indexed.)
/// Compares with a `Pfn` as the frame it names.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Link(u32);

impl Link {
    /// No frame (`NIL`): the zero bits.
    pub const NONE: Link = Link(Pfn::NIL.0.wrapping_add(1));

    #[inline(always)]
    pub const fn to(pfn: Pfn) -> Link {
        Link(pfn.0.wrapping_add(1))
    }

    /// The frame linked to (`NIL` for none).
    #[inline(always)]
    pub const fn pfn(self) -> Pfn {
        Pfn(self.0.wrapping_sub(1))
    }
}

impl PartialEq<Pfn> for Link {
    #[inline(always)]
    fn eq(&self, pfn: &Pfn) -> bool {
        self.pfn() == *pfn
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Link::NONE {
            f.write_str("NIL")
        } else {
            write!(f, "{:?}", self.pfn())
        }
    }
}

/// What a frame is used for. Free frames are `Free` (inside a buddy block), `Buddy` (the
/// head of a free buddy block) or `Pcp` (on a per-CPU list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    Free = 0,
    Buddy = 1,
    Pcp = 2,
    /// Tail page of a compound (order > 0) allocation; `index` holds the head pfn.
    Tail = 3,
    Anon = 4,
    File = 5,
    /// Kernel memory: slab, page tables, driver buffers. Never migratable.
    Kernel = 6,
    /// Part of a contiguous range handed to a device by `alloc_contig_range`/`cma_alloc`.
    Device = 7,
    /// A discardable page in a gcma area (cleancache or frontswap copy).
    Cache = 8,
    /// Memory the kernel kept at boot (image, memmap); never in the buddy allocator.
    Reserved = 9,
    /// A shmem/tmpfs page (`mm/shmem.c`): page cache that is swap-backed, so it sits on the
    /// anonymous LRU lists and is reclaimed only to swap.
    Shmem = 10,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::Free,
        Kind::Buddy,
        Kind::Pcp,
        Kind::Tail,
        Kind::Anon,
        Kind::File,
        Kind::Kernel,
        Kind::Device,
        Kind::Cache,
        Kind::Reserved,
        Kind::Shmem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Free => "free",
            Kind::Buddy => "buddy",
            Kind::Pcp => "pcp",
            Kind::Tail => "tail",
            Kind::Anon => "anon",
            Kind::File => "file",
            Kind::Kernel => "kernel",
            Kind::Device => "device",
            Kind::Cache => "cache",
            Kind::Reserved => "reserved",
            Kind::Shmem => "shmem",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == s)
    }

    pub fn is_free(self) -> bool {
        matches!(self, Kind::Free | Kind::Buddy | Kind::Pcp)
    }

    /// Pages the LRU and migration can move: user memory.
    pub fn is_movable_kind(self) -> bool {
        matches!(self, Kind::Anon | Kind::File | Kind::Shmem)
    }

    /// Swap-backed user memory (`folio_test_swapbacked`): anonymous and shmem pages, on the
    /// anonymous LRU lists, reclaimed only by writing them to swap.
    #[inline]
    pub fn is_swap_backed(self) -> bool {
        matches!(self, Kind::Anon | Kind::Shmem)
    }
}

/// PG_ flags kept in the frame (bits 8..16 of `flags`).
pub mod pg {
    pub const LRU: u16 = 1 << 8;
    pub const ACTIVE: u16 = 1 << 9;
    pub const REFERENCED: u16 = 1 << 10;
    pub const DIRTY: u16 = 1 << 11;
    pub const WRITEBACK: u16 = 1 << 12;
    /// The page has extra references or pins recorded in the side table (`gup.rs`).
    pub const EXTRA: u16 = 1 << 13;
    /// Isolated from the LRU for migration (`folio_isolate_lru`).
    pub const ISOLATED: u16 = 1 << 14;
    /// Allocated with `__GFP_MOVABLE` (`PageMovable` intent; used by pageblock stealing).
    pub const MOVABLE: u16 = 1 << 15;
}

const KIND_MASK: u16 = 0x000f;
const ORDER_SHIFT: u16 = 4;
const ORDER_MASK: u16 = 0x00f0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Page {
    pub next: Link,
    pub prev: Link,
    /// The slot in the owner's mapping; for a tail page, the head's pfn (`head()`).
    pub index: u32,
    pub flags: u16,
    pub owner: u16,
}

const _: () = assert!(std::mem::size_of::<Page>() == 16);
// `Page::try_zeroed_vec` relies on this: a free frame is all zero bits (and `Page` has no
// padding: 4 + 4 + 4 + 2 + 2 bytes).
const _: () = assert!(
    Page::FREE.next.0 == 0
        && Page::FREE.prev.0 == 0
        && Page::FREE.index == 0
        && Page::FREE.flags == 0
        && Page::FREE.owner == 0
        && Kind::Free as u16 == 0
        && crate::owner::OWNER_NONE == 0
);

impl Page {
    /// A free frame on no list: all zero bits.
    pub const FREE: Page = Page {
        next: Link::NONE,
        prev: Link::NONE,
        index: 0,
        flags: 0,
        owner: crate::owner::OWNER_NONE,
    };

    /// `n` frames, each `Page::FREE`, allocated zeroed (`calloc`), so that the operating
    /// system maps its zero page and the frames cost resident memory only once written.
    /// (`vec![Page::FREE; n]` would write every frame: `vec!` only asks for zeroed memory
    /// for primitive types.) `None` when the host cannot give the memory.
    #[allow(unsafe_code)]
    pub fn try_zeroed_vec(n: usize) -> Option<Vec<Page>> {
        if n == 0 {
            return Some(Vec::new());
        }
        let layout = std::alloc::Layout::array::<Page>(n).ok()?;
        // SAFETY: the layout has a non-zero size (n > 0). `alloc_zeroed` returns memory for
        // `n` `Page`s with `Page`'s alignment (or null, handled), all zero bytes; `Page` is
        // `repr(C)` with only integer fields and no padding, and all zero bytes are
        // `Page::FREE` (asserted above), so all `n` elements are initialised. The memory
        // comes from the global allocator with `Layout::array::<Page>(n)`, which is how
        // `Vec<Page>` with capacity `n` frees it.
        unsafe {
            let ptr = std::alloc::alloc_zeroed(layout).cast::<Page>();
            if ptr.is_null() {
                return None;
            }
            Some(Vec::from_raw_parts(ptr, n, n))
        }
    }

    #[inline]
    pub fn kind(&self) -> Kind {
        // A match rather than `Kind::ALL[..]`: the kind bits are always one of the kinds
        // (`set_kind` writes them), and the match compiles to the bits themselves, with no
        // bounds check, so `page.kind() == Kind::Buddy` is one compare in a frame scan. (A
        // test checks that every kind comes back as itself.)
        match self.flags & KIND_MASK {
            0 => Kind::Free,
            1 => Kind::Buddy,
            2 => Kind::Pcp,
            3 => Kind::Tail,
            4 => Kind::Anon,
            5 => Kind::File,
            6 => Kind::Kernel,
            7 => Kind::Device,
            8 => Kind::Cache,
            10 => Kind::Shmem,
            _ => Kind::Reserved,
        }
    }

    #[inline]
    pub fn set_kind(&mut self, kind: Kind) {
        self.flags = (self.flags & !KIND_MASK) | kind as u16;
    }

    /// The head of the compound page a tail page belongs to (`compound_head`).
    #[inline]
    pub fn head(&self) -> Pfn {
        Pfn(self.index)
    }

    /// Order of a buddy head or a compound head (0 for everything else).
    #[inline]
    pub fn order(&self) -> u32 {
        ((self.flags & ORDER_MASK) >> ORDER_SHIFT) as u32
    }

    #[inline]
    pub fn set_order(&mut self, order: u32) {
        debug_assert!(order <= 15);
        self.flags = (self.flags & !ORDER_MASK) | ((order as u16) << ORDER_SHIFT);
    }

    #[inline]
    pub fn test(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    #[inline]
    pub fn set(&mut self, flag: u16) {
        self.flags |= flag;
    }

    #[inline]
    pub fn clear(&mut self, flag: u16) {
        self.flags &= !flag;
    }

    /// Reset to a plain free frame of the given kind and order (all PG_ flags cleared).
    #[inline]
    pub fn make_free(&mut self, kind: Kind, order: u32) {
        *self = Page::FREE;
        self.set_kind(kind);
        self.set_order(order);
    }

    /// Names of the PG_ flags set, kernel style (`%pGp`).
    pub fn flag_names(&self) -> Vec<&'static str> {
        const NAMES: [(u16, &str); 8] = [
            (pg::LRU, "lru"),
            (pg::ACTIVE, "active"),
            (pg::REFERENCED, "referenced"),
            (pg::DIRTY, "dirty"),
            (pg::WRITEBACK, "writeback"),
            (pg::EXTRA, "extra_refs"),
            (pg::ISOLATED, "isolated"),
            (pg::MOVABLE, "movable"),
        ];
        NAMES
            .iter()
            .filter(|(f, _)| self.test(*f))
            .map(|(_, n)| *n)
            .collect()
    }
}

// The frames indexed by frame number (`pages[pfn]`).
impl Index<Pfn> for [Page] {
    type Output = Page;
    #[inline(always)]
    fn index(&self, pfn: Pfn) -> &Page {
        &self[pfn.idx()]
    }
}

impl IndexMut<Pfn> for [Page] {
    #[inline(always)]
    fn index_mut(&mut self, pfn: Pfn) -> &mut Page {
        &mut self[pfn.idx()]
    }
}

impl Index<Pfn> for Vec<Page> {
    type Output = Page;
    #[inline(always)]
    fn index(&self, pfn: Pfn) -> &Page {
        &self[pfn.idx()]
    }
}

impl IndexMut<Pfn> for Vec<Page> {
    #[inline(always)]
    fn index_mut(&mut self, pfn: Pfn) -> &mut Page {
        &mut self[pfn.idx()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fields_do_not_overlap() {
        let mut p = Page::FREE;
        p.set_kind(Kind::Cache);
        p.set_order(10);
        p.set(pg::DIRTY | pg::MOVABLE);
        assert_eq!(p.kind(), Kind::Cache);
        assert_eq!(p.order(), 10);
        assert!(p.test(pg::DIRTY) && p.test(pg::MOVABLE) && !p.test(pg::LRU));
        p.set_kind(Kind::Anon);
        assert_eq!(p.order(), 10);
        assert_eq!(p.flag_names(), vec!["dirty", "movable"]);
    }

    #[test]
    fn every_kind_reads_back_as_itself() {
        for kind in Kind::ALL {
            let mut p = Page::FREE;
            p.set_kind(kind);
            assert_eq!(p.kind(), kind);
        }
    }

    #[test]
    fn a_free_frame_is_zero_bits() {
        let frames = Page::try_zeroed_vec(3).unwrap();
        assert_eq!(frames, vec![Page::FREE; 3]);
        assert_eq!(Page::FREE.next, NIL);
        assert_eq!(Page::FREE.kind(), Kind::Free);
        assert_eq!(Link::to(Pfn(7)).pfn(), Pfn(7));
        assert!(Link::to(Pfn(0)) != Link::NONE && Link::to(Pfn(0)) == Pfn(0));
        assert!(Page::try_zeroed_vec(0).unwrap().is_empty());
    }
}
