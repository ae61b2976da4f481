//! Page migration (`mm/migrate.c`).
//!
//! Reproduced: a folio with references beyond its owner's (a `get_page`, a pin) fails with
//! -EAGAIN (`folio_migrate_mapping`'s refcount check); non-LRU kernel memory cannot move;
//! a folio under writeback fails at once in asynchronous mode (-EBUSY) and is waited for in
//! synchronous mode (`migrate_folio_unmap`); `migrate_pages` makes 10 passes, the first 3
//! asynchronous over the whole batch, then 7 synchronous per remaining folio
//! (`migrate_pages_sync`, 6.3+); clean file pages are dropped rather than copied before
//! contiguous-range migration (`reclaim_clean_pages_from_list`). The target comes from the
//! allocator with the caller's gfp (`alloc_migration_target`) and may need reclaim.
//!
//! Simplified: no rmap walk or mapcount (a page is mapped by its owner only), no THP split
//! on failure, no deferred split lists.

use crate::error::Errno;
use crate::gfp::Gfp;
use crate::owner::{pfn_slot, slot_is_resident};
use crate::page::{pg, Kind};
use crate::page_alloc::AllocRequest;
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::Machine;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateMode {
    Async,
    Sync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateError {
    /// Extra references or pins: try again later.
    Again,
    /// Under writeback in asynchronous mode.
    Busy,
    /// Under writeback in synchronous mode: the caller must wait until this time.
    WaitWriteback(u64),
    /// No target page.
    NoMemory,
    /// Not user memory: cannot be migrated at all.
    Unmovable,
}

pub const NR_MAX_MIGRATE_ASYNC_RETRY: u32 = 3;
pub const NR_MAX_MIGRATE_SYNC_RETRY: u32 = 7;

/// What one `migrate_pages` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrateStats {
    pub succeeded: u64,
    pub failed_attempts: u64,
    pub nr_failed: u64,
}

impl Machine {
    /// Migrate one folio to a page allocated with `gfp`. Charges the copy to `self.charge`.
    /// With `wait_writeback` (a caller that sleeps), synchronous mode waits out writeback
    /// here by charging the remaining time; otherwise it returns `WaitWriteback`.
    pub(crate) fn migrate_folio(
        &mut self,
        pfn: Pfn,
        mode: MigrateMode,
        gfp: Gfp,
        cpu: u32,
        wait_writeback: bool,
    ) -> Result<Pfn, MigrateError> {
        let page = self.pages[pfn];
        if !page.kind().is_movable_kind() {
            return Err(MigrateError::Unmovable);
        }
        if page.test(pg::WRITEBACK) {
            let end = self.writeback_end.get(&pfn).copied().unwrap_or(self.now);
            match mode {
                MigrateMode::Async => return Err(MigrateError::Busy),
                MigrateMode::Sync if !wait_writeback => {
                    return Err(MigrateError::WaitWriteback(end))
                }
                MigrateMode::Sync => {
                    self.charge += end.saturating_sub(self.now);
                    self.end_page_writeback(pfn);
                }
            }
        }
        if page.test(pg::EXTRA) {
            self.charge += self.cfg.cost.migrate_fail_ns;
            return Err(MigrateError::Again);
        }
        let order = page.order();
        let req = AllocRequest {
            order,
            gfp,
            owner: page.owner,
            cpu,
        };
        // `folio_isolate_lru`: a folio still on the LRU (a pin or a first write migrating
        // it) is taken off while its target is allocated, so that reclaim for the target
        // cannot free the very folio being migrated. Contiguous-range migration has
        // isolated its folios already.
        let isolate = page.test(pg::LRU);
        if isolate {
            self.lru_del(pfn);
            self.pages[pfn].set(pg::ISOLATED);
        }
        let new = match self.alloc_pages_raw(&req) {
            Ok(new) => new,
            Err(_) => {
                if isolate {
                    self.pages[pfn].clear(pg::ISOLATED);
                    self.lru_add(pfn);
                }
                return Err(MigrateError::NoMemory);
            }
        };
        self.move_folio(pfn, new, order, gfp);
        self.charge += self.cfg.cost.migrate_page_ns() << order;
        self.vmstat.add(Counter::PgmigrateSuccess, 1 << order);
        Ok(new)
    }

    /// Copy the folio's state to `new`, fix the owner's mapping and the LRU, free the old.
    fn move_folio(&mut self, old: Pfn, new: Pfn, order: u32, gfp: Gfp) {
        let page = self.pages[old];
        let traced = self.trace.page_alloc_on();
        self.trace.migration_target = traced; // `kmem:mm_page_alloc` prints the target's mask
        self.prep_new_page(new, order, page.kind(), page.owner, page.index, gfp);
        self.trace.migration_target = false;
        const KEEP: u16 = pg::ACTIVE | pg::REFERENCED | pg::DIRTY | pg::MOVABLE;
        self.pages[new].flags |= page.flags & KEEP;
        if !gfp.alloc_cma() && gfp.migratetype != crate::pageblock::Migratetype::Movable {
            // A page migrated for a long-term pin lands in an unmovable pageblock but stays
            // user memory: keep its LRU movability flag as the kernel does.
            self.pages[new].set(pg::MOVABLE);
        }
        let was_on_lru = page.test(pg::LRU) || page.test(pg::ISOLATED);
        if page.test(pg::LRU) {
            self.lru_del(old);
        }
        self.pages[old].clear(pg::ISOLATED);
        if was_on_lru {
            self.lru_add(new);
        }
        self.dirty_moved(old, new);
        if self.page_unevictable(new) {
            let disabled = self.lru.lru_disable_count > 0;
            self.mlock_migrated(order, disabled);
        }
        let owner = &mut self.owners.list[page.owner as usize];
        if let Some(slot) = owner.map.get_mut(page.index as usize) {
            if slot_is_resident(*slot) && *slot == pfn_slot(old) {
                *slot = pfn_slot(new);
            }
        }
        let cpu = self.owners.cpu(page.owner);
        self.free_pages(old, order, cpu);
    }

    /// `reclaim_clean_pages_from_list`: drop clean, unpinned file pages instead of copying
    /// them; they become evicted (a later read refaults). Returns the pages dropped.
    pub(crate) fn reclaim_clean_pages_from_list(&mut self, list: &mut Vec<Pfn>) -> u64 {
        let mut dropped = 0;
        list.retain(|&pfn| {
            let page = self.pages[pfn];
            let clean_file = page.kind() == Kind::File
                && !page.test(pg::DIRTY)
                && !page.test(pg::WRITEBACK)
                && !page.test(pg::EXTRA)
                && !self.page_unevictable(pfn);
            if clean_file {
                self.pages[pfn].clear(pg::ISOLATED);
                dropped += 1u64 << page.order();
                self.evict_page(pfn);
            }
            !clean_file
        });
        self.vmstat.add(Counter::Pgdrop, dropped);
        dropped
    }

    /// `migrate_pages` over a batch, asynchronous passes first. Folios left in `list` failed
    /// (the caller decides whether to try again). A synchronous pass that meets writeback
    /// stops with `WaitWriteback(t)`; `sync_cursor` then remembers the folio, and the caller
    /// calls again (skipping the asynchronous passes) once the clock reaches `t`.
    ///
    /// Its callers (`alloc_contig_range`, memory offlining) hold `lru_cache_disable` while
    /// they migrate: the LRU batches are bypassed, which decides how an mlocked page's
    /// migration is counted (`mlock.rs`).
    pub(crate) fn migrate_pages(
        &mut self,
        list: &mut Vec<Pfn>,
        gfp: Gfp,
        cpu: u32,
        sync_cursor: &mut Option<usize>,
        stats: &mut MigrateStats,
    ) -> Result<MigrateProgress, Errno> {
        self.lru.lru_disable_count += 1;
        let r = self.migrate_pages_batch(list, gfp, cpu, sync_cursor, stats);
        self.lru.lru_disable_count -= 1;
        r
    }

    fn migrate_pages_batch(
        &mut self,
        list: &mut Vec<Pfn>,
        gfp: Gfp,
        cpu: u32,
        sync_cursor: &mut Option<usize>,
        stats: &mut MigrateStats,
    ) -> Result<MigrateProgress, Errno> {
        if sync_cursor.is_none() {
            self.migrate_pages_async(list, gfp, cpu, stats)?;
        }
        // One by one, synchronously, in list order.
        let mut i = sync_cursor.take().unwrap_or(0);
        while i < list.len() {
            let mut migrated = false;
            for _ in 0..NR_MAX_MIGRATE_SYNC_RETRY {
                match self.migrate_folio(list[i], MigrateMode::Sync, gfp, cpu, false) {
                    Ok(_) => {
                        migrated = true;
                        break;
                    }
                    Err(MigrateError::NoMemory) => return Err(Errno::Enomem),
                    Err(MigrateError::WaitWriteback(t)) => {
                        *sync_cursor = Some(i);
                        return Ok(MigrateProgress::WaitWriteback(t));
                    }
                    Err(MigrateError::Again) => stats.failed_attempts += 1,
                    Err(_) => {
                        stats.failed_attempts += 1;
                        break;
                    }
                }
            }
            if migrated {
                list.remove(i);
                stats.succeeded += 1;
            } else {
                stats.nr_failed += 1;
                self.vmstat.inc(Counter::PgmigrateFail);
                i += 1;
            }
        }
        Ok(MigrateProgress::Done)
    }

    /// The asynchronous passes of `migrate_pages_sync`: up to 3 over the whole batch while
    /// some folio asks to be retried.
    fn migrate_pages_async(
        &mut self,
        list: &mut Vec<Pfn>,
        gfp: Gfp,
        cpu: u32,
        stats: &mut MigrateStats,
    ) -> Result<(), Errno> {
        for _ in 0..NR_MAX_MIGRATE_ASYNC_RETRY {
            let mut retry = false;
            let mut i = 0;
            while i < list.len() {
                match self.migrate_folio(list[i], MigrateMode::Async, gfp, cpu, false) {
                    Ok(_) => {
                        list.remove(i);
                        stats.succeeded += 1;
                        continue;
                    }
                    Err(MigrateError::NoMemory) => return Err(Errno::Enomem),
                    Err(MigrateError::Again) => retry = true,
                    Err(_) => {}
                }
                stats.failed_attempts += 1;
                i += 1;
            }
            if !retry {
                break;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateProgress {
    Done,
    WaitWriteback(u64),
}
