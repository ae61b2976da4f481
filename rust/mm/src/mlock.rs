//! mlock and the unevictable LRU (`mm/mlock.c`, `mm/swap.c`'s `lru_add_fn`, the
//! unevictable cases of `mm/vmscan.c` and `mm/migrate.c`), as Linux 6.1 has them.
//!
//! Reproduced (6.1):
//! - `VM_LOCKED` belongs to a mapping. Here a mapping is an owner's, and an owner is locked
//!   as a whole (`Owner::vm_locked`, `mlock_owner`): what `mlock2(MLOCK_ONFAULT)` over a
//!   whole buffer, or `mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`, does. A user page of
//!   a locked owner is PG_mlocked: counted in `NR_MLOCK` (`Mlocked`, `nr_mlock`).
//! - An mlocked page is on the unevictable LRU, which 6.1 counts (`NR_UNEVICTABLE`:
//!   `Unevictable`, `nr_unevictable`) but links on no list (`lruvec_add_folio` skips
//!   `list_add` for `LRU_UNEVICTABLE`: the list head holds `mlock_count`). Reclaim scans lists
//!   only, so it never meets an mlocked page: mlocked memory is never reclaimed or swapped.
//! - mlocked pages *are* migratable: `isolate_migratepages_block` takes unevictable pages for
//!   `alloc_contig_range` (`ISOLATE_UNEVICTABLE`: "Compaction might skip unevictable pages
//!   but CMA takes them") and `folio_isolate_lru` for a long-term pin, so mlock does not
//!   block a contiguous allocation (the model's isolation and migration treat them as any LRU
//!   page).
//! - The events, counted where 6.1 counts them:
//!   - a page faulted into a locked mapping (`folio_add_lru_vma` -> `mlock_new_page` ->
//!     `__mlock_new_page`): `unevictable_pgs_mlocked` and `unevictable_pgs_culled`;
//!   - locking pages already resident (`mlock_fixup` -> `mlock_vma_pages_range` ->
//!     `mlock_folio`, `__mlock_page`): `mlocked`, and `culled` for those on the LRU (an
//!     isolated page is mlocked and goes to the unevictable LRU when put back);
//!   - unlocking (`munlock_page` -> `__munlock_page`, also on munmap and exit:
//!     `page_remove_rmap` -> `munlock_vma_page`): a page on the LRU is `munlocked` and
//!     `rescued` to the evictable lists; an isolated one is `stranded` (its PG_unevictable is
//!     still set, so `__munlock_page` cannot tell it was the last mlock);
//!   - migrating an mlocked page: the source is unmapped (`try_to_migrate_one` ->
//!     `page_remove_rmap` -> `munlock_vma_page`): `stranded` when the LRU caches are disabled
//!     (`alloc_contig_range` and memory offlining hold `lru_cache_disable`, so
//!     `munlock_page` runs at once, while the isolated source still has PG_unevictable), else
//!     `munlocked` (the batch drains after `folio_migrate_flags` moved PG_unevictable to the
//!     destination); the destination is put on the LRU before its ptes are restored
//!     (`migrate_folio_move`: `folio_add_lru`, whose `lru_add_fn` finds it unevictable but
//!     not yet mlocked: `rescued`), then mlocked by `remove_migration_pte` ->
//!     `mlock_vma_folio`: `mlocked` and `culled`. `NR_MLOCK` is the same after as before.
//!
//! Not reproduced: the per-CPU mlock pagevec (15 pages whose extra reference would make a
//! migration retry; `alloc_contig_range`'s `lru_cache_disable` drains it before migrating),
//! `mlock_count` (a page is mapped by one owner here), locking part of a mapping, mlocked
//! file or shmem mappings (workloads lock anonymous memory), `RLIMIT_MEMLOCK`,
//! `unevictable_pgs_scanned` (`check_move_unevictable_pages`, for SHM_UNLOCK and ramfs).

use crate::error::{MmError, MmResult};
use crate::owner::{slot_is_resident, slot_pfn, OwnerId, SLOT_EMPTY};
use crate::page::pg;
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::Machine;

impl Machine {
    /// `!folio_evictable`: a user page of a locked owner (PG_mlocked).
    #[inline]
    pub(crate) fn page_unevictable(&self, pfn: Pfn) -> bool {
        if self.lru.locked_owners == 0 {
            return false;
        }
        let page = &self.pages[pfn];
        page.kind().is_movable_kind() && self.owners.list[page.owner as usize].vm_locked
    }

    /// Whether `owner`'s mapping is `VM_LOCKED`.
    pub fn owner_locked(&self, owner: OwnerId) -> bool {
        self.owners.list[owner as usize].vm_locked
    }

    /// `mlock_new_page`: a page just mapped by a locked owner (on the unevictable LRU
    /// already: `lru_add` saw the owner locked) is mlocked and culled.
    #[inline]
    pub(crate) fn mlock_new_page(&mut self, pfn: Pfn) {
        let n = 1u64 << self.pages[pfn].order();
        self.node_stat.nr_mlock += n;
        self.vmstat.add(Counter::UnevictablePgsMlocked, n);
        self.vmstat.add(Counter::UnevictablePgsCulled, n);
    }

    /// A page of a locked owner leaves its mapping (munmap, exit, truncation): it is
    /// munlocked first (`page_remove_rmap` -> `munlock_vma_page` -> `__munlock_page`). On the
    /// LRU: `munlocked` and `rescued` (the caller then takes it off the evictable list);
    /// isolated: `stranded`.
    pub(crate) fn munlock_unmapped_page(&mut self, pfn: Pfn) {
        let page = self.pages[pfn];
        let n = 1u64 << page.order();
        self.node_stat.nr_mlock -= n;
        if page.test(pg::LRU) {
            self.vmstat.add(Counter::UnevictablePgsMunlocked, n);
            self.vmstat.add(Counter::UnevictablePgsRescued, n);
        } else {
            self.vmstat.add(Counter::UnevictablePgsStranded, n);
        }
    }

    /// An mlocked folio migrated from `old` to `new` (`migrate.rs` calls this once the new
    /// folio is mapped): see the module comment for the events. `NR_MLOCK` does not change.
    pub(crate) fn mlock_migrated(&mut self, order: u32, lru_cache_disabled: bool) {
        let n = 1u64 << order;
        let source = if lru_cache_disabled {
            Counter::UnevictablePgsStranded
        } else {
            Counter::UnevictablePgsMunlocked
        };
        self.vmstat.add(source, n);
        self.vmstat.add(Counter::UnevictablePgsRescued, n);
        self.vmstat.add(Counter::UnevictablePgsMlocked, n);
        self.vmstat.add(Counter::UnevictablePgsCulled, n);
    }

    /// `mlock_fixup` on `owner`'s whole mapping: set (`lock`) or clear `VM_LOCKED` and walk
    /// the resident pages (`mlock_vma_pages_range`), moving those on the LRU to or from the
    /// unevictable LRU. As with `MLOCK_ONFAULT`, pages not resident stay out until touched
    /// (plain `mlock()` would fault them in at once). Locking a locked owner, or unlocking
    /// an unlocked one, does nothing.
    pub fn mlock_owner(&mut self, owner: OwnerId, lock: bool) -> MmResult<()> {
        self.owners.check(owner)?;
        if owner <= crate::owner::OWNER_KERNEL {
            return Err(MmError::Misuse(format!(
                "owner {:?} is not a user mapping: it cannot be mlocked",
                self.owners.name(owner)
            )));
        }
        if self.owners.list[owner as usize].vm_locked == lock {
            return Ok(());
        }
        let resident: Vec<Pfn> = self.owners.list[owner as usize]
            .map
            .iter()
            .filter(|&&s| s != SLOT_EMPTY && slot_is_resident(s))
            .map(|&s| slot_pfn(s))
            .filter(|&pfn| self.pages[pfn].kind().is_movable_kind())
            .collect();
        // Off the lists they are on now, flip the mapping, back onto the lists it gives.
        let on_lru: Vec<bool> = resident
            .iter()
            .map(|&pfn| {
                let on = self.pages[pfn].test(pg::LRU);
                if on {
                    self.lru_del(pfn);
                }
                on
            })
            .collect();
        self.owners.list[owner as usize].vm_locked = lock;
        if lock {
            self.lru.locked_owners += 1;
        } else {
            self.lru.locked_owners -= 1;
        }
        for (&pfn, &on) in resident.iter().zip(&on_lru) {
            let n = 1u64 << self.pages[pfn].order();
            if lock {
                // `mlock_folio`, then `__mlock_page` culls a page it finds on the LRU.
                self.node_stat.nr_mlock += n;
                self.vmstat.add(Counter::UnevictablePgsMlocked, n);
                if on {
                    self.pages[pfn].clear(pg::ACTIVE);
                    self.vmstat.add(Counter::UnevictablePgsCulled, n);
                }
            } else {
                self.node_stat.nr_mlock -= n;
                if on {
                    self.vmstat.add(Counter::UnevictablePgsMunlocked, n);
                    self.vmstat.add(Counter::UnevictablePgsRescued, n);
                } else {
                    self.vmstat.add(Counter::UnevictablePgsStranded, n);
                }
            }
            if on {
                self.lru_add(pfn);
            }
        }
        Ok(())
    }

    /// The unevictable LRU and `NR_MLOCK` against the frames: every page on the LRU that
    /// is unevictable is counted in `nr_unevictable` (and linked on no list), every user page
    /// a locked owner maps (on the LRU or isolated) in `nr_mlock`, and `locked_owners` is the
    /// number of locked owners.
    pub(crate) fn check_mlock(&self) -> MmResult<()> {
        let bug = |msg: String| Err(MmError::Bug(msg));
        let locked = self.owners.list.iter().filter(|o| o.vm_locked).count() as u32;
        if locked != self.lru.locked_owners {
            return bug(format!(
                "{locked} owners are VM_LOCKED, lru.locked_owners says {}",
                self.lru.locked_owners
            ));
        }
        let (mut unevictable, mut mlocked) = (0u64, 0u64);
        for (owner, o) in self.owners.list.iter().enumerate() {
            if !o.vm_locked {
                continue;
            }
            for (index, &slot) in o.map.iter().enumerate() {
                if slot == SLOT_EMPTY || !slot_is_resident(slot) {
                    continue;
                }
                let pfn = slot_pfn(slot);
                let page = &self.pages[pfn];
                if page.owner as usize != owner
                    || page.index as usize != index
                    || !page.kind().is_movable_kind()
                {
                    continue;
                }
                let n = 1u64 << page.order();
                if page.test(pg::LRU) {
                    unevictable += n;
                    if page.next != crate::page::NIL || page.prev != crate::page::NIL {
                        return bug(format!("unevictable pfn {pfn:#x} is linked on a list"));
                    }
                }
                if page.test(pg::LRU) || page.test(pg::ISOLATED) {
                    mlocked += n;
                }
            }
        }
        if unevictable != self.lru.nr_unevictable {
            return bug(format!(
                "{unevictable} unevictable pages on the LRU, NR_UNEVICTABLE says {}",
                self.lru.nr_unevictable
            ));
        }
        if mlocked != self.node_stat.nr_mlock {
            return bug(format!(
                "{mlocked} mlocked pages mapped, NR_MLOCK says {}",
                self.node_stat.nr_mlock
            ));
        }
        Ok(())
    }
}
