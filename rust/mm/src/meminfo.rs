//! The values of `/proc/meminfo` a user looks at first, from engine state: the node page
//! counters the kernel keeps for them (`enum node_stat_item`, kept up to date where a page
//! enters or leaves its owner's mapping, as `__filemap_add_folio`, `shmem_add_to_page_cache`,
//! `page_add_new_anon_rmap` and their removals do), and the functions that turn them into
//! the lines `fs/proc/meminfo.c` (`meminfo_proc_show`) prints, `si_mem_available`
//! (`mm/page_alloc.c`, 6.1) first. The counters are O(zones + workloads); the kernel
//! memory by pageblock type (the model's slab, for `KReclaimable`, `SUnreclaim` and
//! `MemAvailable`) is one walk over the frames (`procfs.rs`'s `frame_counts`).
//!
//! The layout of `/proc/meminfo` (every line, in order, with the kernel's widths) is
//! `procfs.rs`'s; this file gives it [`MemInfo`], in pages.
//!
//! What the model does not track, and so does not put here: `SwapCached` (no swap cache:
//! a page swapped in leaves swap at once), page tables, kernel stacks, vmalloc, per-CPU
//! memory, huge pages. Its kernel pages are not slab objects and nothing shrinks them; they
//! are reported as `SReclaimable` when they sit in RECLAIMABLE pageblocks (what a
//! `__GFP_RECLAIMABLE` slab page is), `SUnreclaim` otherwise.

use crate::config::PAGE_SIZE;
use crate::error::{MmError, MmResult};
use crate::owner::{pfn_slot, slot_is_resident, slot_pfn};
use crate::page::Kind;
use crate::pfn::Pfn;
use crate::workload::WorkloadKind;
use crate::zone::Wmark;
use crate::Machine;

/// The node page counters the model keeps (`enum node_stat_item`), in pages: the user
/// pages mapped by their owners, by kind (one add on the fault path, whatever the kind), and
/// `NR_MLOCK`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStat {
    /// Pages mapped by their owners, indexed by `Kind as usize` (user kinds only).
    pub mapped: [u64; 16],
    /// `NR_MLOCK`: mlocked pages (`Mlocked`), `mlock.rs`.
    pub nr_mlock: u64,
}

impl NodeStat {
    /// `NR_ANON_MAPPED`: anonymous pages mapped by their owner (`AnonPages`).
    pub fn nr_anon_mapped(&self) -> u64 {
        self.mapped[Kind::Anon as usize]
    }

    /// `NR_FILE_PAGES`: page cache, shmem included (`Cached` + `Buffers` + `SwapCached`).
    pub fn nr_file_pages(&self) -> u64 {
        self.mapped[Kind::File as usize] + self.mapped[Kind::Shmem as usize]
    }

    /// `NR_SHMEM`: shmem/tmpfs pages (`Shmem`), a part of `nr_file_pages`.
    pub fn nr_shmem(&self) -> u64 {
        self.mapped[Kind::Shmem as usize]
    }
}

/// `/proc/meminfo`'s values that come from the engine's state, in pages: what
/// `Machine::meminfo_values` computes, for `procfs.rs` to print.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub mem_total: u64,
    pub mem_free: u64,
    /// `si_mem_available`.
    pub mem_available: u64,
    /// `nr_blockdev_pages`: the block devices' page cache (the `fs_mount` workloads'
    /// superblock and group-descriptor buffers).
    pub buffers: u64,
    /// `NR_FILE_PAGES - SwapCached - Buffers`: page cache and shmem.
    pub cached: u64,
    pub active_anon: u64,
    pub inactive_anon: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    /// `NR_UNEVICTABLE`.
    pub unevictable: u64,
    /// `NR_MLOCK`.
    pub mlocked: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub dirty: u64,
    pub writeback: u64,
    /// `NR_ANON_MAPPED`.
    pub anon_pages: u64,
    /// `NR_FILE_MAPPED`: file pages mapped into page tables. The model's readers and tmpfs
    /// files use `read()`/`write()` and no program text is modelled: always 0, its true
    /// figure.
    pub mapped: u64,
    /// `NR_SHMEM`.
    pub shmem: u64,
    pub cma_total: u64,
    pub cma_free: u64,
    /// Kernel pages in RECLAIMABLE pageblocks (`NR_SLAB_RECLAIMABLE_B`).
    pub k_reclaimable: u64,
    /// Other kernel pages (`NR_SLAB_UNRECLAIMABLE_B`).
    pub s_unreclaim: u64,
}

impl Machine {
    /// A user page of `kind` and `order` just entered its owner's mapping at `pfn` (a first
    /// touch, a refault, a swap-in, a page allocated from Python): count it, and mlock it if
    /// the owner is locked.
    #[inline]
    pub(crate) fn account_page_mapped(&mut self, pfn: Pfn, kind: Kind, order: u32) {
        self.node_stat.mapped[kind as usize] += 1 << order;
        if self.page_unevictable(pfn) {
            self.mlock_new_page(pfn);
        }
    }

    /// A user page leaves its owner's mapping (freed, evicted, swapped out): the reverse of
    /// `account_page_mapped`, munlocking it first if it was mlocked. Called while the page
    /// is still on the LRU, if it is.
    #[inline(always)]
    pub(crate) fn account_page_unmapped(&mut self, pfn: Pfn) {
        let page = self.pages[pfn];
        if !page.kind().is_movable_kind() {
            return;
        }
        self.node_stat.mapped[page.kind() as usize] -= 1 << page.order();
        if self.page_unevictable(pfn) {
            self.munlock_unmapped_page(pfn);
        }
    }

    /// `totalreserve_pages` (`calculate_totalreserve_pages`): per zone, its largest
    /// `lowmem_reserve` plus its high watermark, at most its managed pages.
    pub fn totalreserve_pages(&self) -> u64 {
        self.zones
            .iter()
            .map(|z| {
                let max =
                    z.lowmem_reserve.iter().copied().max().unwrap_or(0) + z.wmark(Wmark::High);
                max.min(z.managed_pages)
            })
            .sum()
    }

    /// `si_mem_available` (6.1): free pages less the reserves, plus the page cache on the
    /// file LRU that could go without swapping (less half of it or the low watermarks,
    /// whichever is smaller), plus the same share of the reclaimable kernel memory
    /// (`k_reclaimable`). Shmem is on the anon LRU: like anonymous memory it is not counted.
    pub fn si_mem_available(&self, k_reclaimable: u64) -> u64 {
        let free: i64 = self.zones.iter().map(|z| z.nr_free_pages as i64).sum();
        let wmark_low: i64 = self.zones.iter().map(|z| z.wmark(Wmark::Low) as i64).sum();
        let mut available = free - self.totalreserve_pages() as i64;
        let lru = self.lru_sizes();
        let pagecache = (lru[2] + lru[3]) as i64;
        available += pagecache - (pagecache / 2).min(wmark_low);
        let reclaimable = k_reclaimable as i64;
        available += reclaimable - (reclaimable / 2).min(wmark_low);
        available.max(0) as u64
    }

    /// `nr_blockdev_pages`: pages of the block devices' page cache, which the model has for
    /// the mounted filesystems' superblock buffers (`fs_mount`).
    pub fn nr_blockdev_pages(&self) -> u64 {
        self.workloads
            .list
            .iter()
            .filter(|w| matches!(w.kind, WorkloadKind::FsMount(_)))
            .map(|w| {
                self.owners.list[w.owner as usize]
                    .map
                    .iter()
                    .filter(|&&s| slot_is_resident(s))
                    .count() as u64
            })
            .sum()
    }

    /// The values of `/proc/meminfo` the model keeps, in pages ([`MemInfo`]).
    pub fn meminfo_values(&self) -> MemInfo {
        let lru = self.lru_sizes();
        let s = &self.node_stat;
        let swap_total = self.cfg.swap / PAGE_SIZE;
        let buffers = self.nr_blockdev_pages();
        let kernel = self.frame_counts();
        MemInfo {
            mem_total: self.zones.iter().map(|z| z.managed_pages).sum(),
            mem_free: self.zones.iter().map(|z| z.nr_free_pages).sum(),
            mem_available: self.si_mem_available(kernel.kernel_reclaimable),
            buffers,
            cached: s.nr_file_pages().saturating_sub(buffers),
            active_anon: lru[1],
            inactive_anon: lru[0],
            active_file: lru[3],
            inactive_file: lru[2],
            unevictable: self.lru.nr_unevictable,
            mlocked: s.nr_mlock,
            swap_total,
            swap_free: swap_total - self.writeback.swap_used.min(swap_total),
            dirty: self.writeback.nr_dirty,
            writeback: self.writeback.nr_writeback,
            anon_pages: s.nr_anon_mapped(),
            mapped: 0,
            shmem: s.nr_shmem(),
            cma_total: self.cma.iter().map(|a| a.count as u64).sum(),
            cma_free: self.zones.iter().map(|z| z.nr_free_cma).sum(),
            k_reclaimable: kernel.kernel_reclaimable,
            s_unreclaim: kernel.kernel_unreclaimable,
        }
    }

    /// The node counters against the frames: every user page its owner maps, by kind.
    pub(crate) fn check_node_stat(&self) -> MmResult<()> {
        let mut counted = NodeStat {
            nr_mlock: self.node_stat.nr_mlock,
            ..NodeStat::default()
        };
        for (owner, o) in self.owners.list.iter().enumerate() {
            for &slot in &o.map {
                if !slot_is_resident(slot) {
                    continue;
                }
                let pfn = slot_pfn(slot);
                let Some(page) = self.pages.get(pfn.idx()) else {
                    continue;
                };
                if page.owner as usize != owner
                    || o.map.get(page.index as usize) != Some(&pfn_slot(pfn))
                {
                    continue;
                }
                if page.kind().is_movable_kind() {
                    counted.mapped[page.kind() as usize] += 1 << page.order();
                }
            }
        }
        if counted != self.node_stat {
            return Err(MmError::Bug(format!(
                "node counters {:?}, the mappings hold {counted:?}",
                self.node_stat
            )));
        }
        Ok(())
    }
}
