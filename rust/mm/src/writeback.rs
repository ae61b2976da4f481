//! Dirty pages, writeback and swap (`mm/page-writeback.c`, `fs/fs-writeback.c`,
//! `mm/page_io.c`), and the storage device they queue on.
//!
//! Reproduced: a page dirtied is counted in `nr_dirty`; the flusher wakes every 5 s
//! (`dirty_writeback_interval`) and writes back pages dirty for longer than
//! `dirty_expire`; when dirty pages exceed `dirty_ratio` percent of available memory the
//! dirtier is throttled (`balance_dirty_pages`): it starts writeback itself and waits for
//! it; a page under writeback cannot be migrated (synchronous migration waits) until the
//! write completes. Storage is one queue: reads (refaults, swap-ins) wait behind writes.
//!
//! Simplified: pages are written in requests of up to 256 pages (1 MiB), oldest first, one
//! queue for the whole device; no per-inode or per-bdi accounting; no
//! `dirty_background_ratio` separate from the flusher's periodic pass.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::event::EventKind;
use crate::migrate::MigrateMode;
use crate::page::pg;
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::Machine;

const DIRTY_WRITEBACK_INTERVAL_NS: u64 = 5_000_000_000;
const MAX_WRITEBACK_PAGES: usize = 256;

#[derive(Clone, Debug, Default)]
pub struct Writeback {
    pub nr_dirty: u64,
    pub nr_writeback: u64,
    /// Pages in the order they were first dirtied, with the time: the flusher's queue.
    /// Entries go stale when a page is cleaned or freed; they are skipped then.
    dirty_fifo: VecDeque<(Pfn, u64)>,
    /// In-flight write requests: completion event id -> pages.
    requests: FxHashMap<u32, Vec<Pfn>>,
    next_request: u32,
    /// When the storage device is next idle.
    pub storage_free_at: u64,
    pub swap_used: u64,
    /// Anonymous pages under writeback to swap (part of `nr_writeback`).
    pub swap_writing: u64,
}

impl Machine {
    /// Queue `cost` of work on the storage device; returns when it completes.
    pub(crate) fn storage_submit(&mut self, cost: u64) -> u64 {
        let start = self.writeback.storage_free_at.max(self.now);
        self.writeback.storage_free_at = start + cost;
        start + cost
    }

    /// A synchronous read of `pages` pages: the caller waits until it completes.
    pub(crate) fn storage_read(&mut self, pages: u64) -> u64 {
        let cost = self.cfg.cost.storage_read_ns(pages);
        let done = self.storage_submit(cost);
        self.vmstat.add(Counter::Pgpgin, pages * 4);
        done - self.now
    }

    /// `folio_mark_dirty`. With `migrate_on_first_dirty`, a CMA page is first moved out of
    /// the area (Mel Gorman's proposal), at the dirtier's expense. Returns the page's pfn
    /// afterwards.
    pub(crate) fn set_page_dirty(&mut self, pfn: Pfn) -> Pfn {
        if self.pages[pfn].test(pg::DIRTY) {
            return pfn;
        }
        let pfn = self.migrate_if_first_dirty(pfn);
        if self.pages[pfn].kind().is_swap_backed() {
            // An anonymous page's dirtiness lives in its page table entry: it is not page
            // cache, not counted in nr_dirty, and never written back by the flusher (reclaim
            // swaps it out). A shmem page is page cache, but its mapping cannot write back
            // (`noop_dirty_folio`: PG_dirty without NR_FILE_DIRTY): the same here.
            return pfn;
        }
        self.pages[pfn].set(pg::DIRTY);
        self.writeback.nr_dirty += 1;
        self.writeback.dirty_fifo.push_back((pfn, self.now));
        self.balance_dirty_pages();
        pfn
    }

    /// `migrate_on_first_dirty` (Mel Gorman, LSFMM 2015: "whenever a page changes state in
    /// a way that could block a CMA allocation, it should be migrated immediately"): move a
    /// CMA page out of the area when it is first dirtied (the write fault) or put under
    /// writeback, to a non-CMA, non-movable-zone page (`memalloc_pin_save` gfp, as for a
    /// long-term pin), in MIGRATE_SYNC mode, charged to whoever dirties or writes. Best
    /// effort: a page that cannot move (pinned, isolated by a contiguous allocation right
    /// now, no target) stays. From the start of writeback (`writeback_pages`) the target is
    /// allocated without direct reclaim (the caller may be reclaim itself). The proposal was
    /// never merged; the hooks sit where the discussion put them.
    fn migrate_if_first_dirty(&mut self, pfn: Pfn) -> Pfn {
        self.migrate_dirty_out_of_cma(pfn, true)
    }

    fn migrate_dirty_out_of_cma(&mut self, pfn: Pfn, may_reclaim: bool) -> Pfn {
        let page = self.pages[pfn];
        if !self.cfg.policy.migrate_on_first_dirty
            || !page.kind().is_movable_kind()
            || !self.in_cma_pageblock(pfn)
            || page.test(pg::EXTRA)
            || page.test(pg::WRITEBACK)
            || page.test(pg::ISOLATED)
        {
            return pfn;
        }
        let cpu = self.owners.cpu(page.owner);
        // Best effort: a target that would take an OOM kill is not worth it.
        let gfp = crate::gfp::Gfp {
            direct_reclaim: may_reclaim,
            ..crate::gfp::Gfp::HIGHUSER_MOVABLE.pinned().retry_mayfail()
        };
        match self.migrate_folio(pfn, MigrateMode::Sync, gfp, cpu, true) {
            Ok(new) => {
                self.vmstat.inc(Counter::DirtyMigrations);
                new
            }
            Err(_) => pfn,
        }
    }

    /// A dirty page moved (migration): the flusher must find it at its new place.
    pub(crate) fn dirty_moved(&mut self, _old: Pfn, new: Pfn) {
        if self.pages[new].test(pg::DIRTY) {
            self.writeback.dirty_fifo.push_back((new, self.now));
        }
    }

    /// A page leaves memory: forget its dirty state.
    pub(crate) fn clear_dirty_accounting(&mut self, pfn: Pfn) {
        if self.pages[pfn].test(pg::DIRTY) {
            self.pages[pfn].clear(pg::DIRTY);
            self.writeback.nr_dirty -= 1;
        }
    }

    /// Start writeback of these dirty pages as requests of up to 1 MiB. With
    /// `migrate_on_first_dirty`, a CMA page about to be written is first moved out of the
    /// area (the migration is charged to the caller).
    pub(crate) fn writeback_pages(&mut self, pfns: &[Pfn]) -> u64 {
        let moved: Vec<Pfn>;
        let pfns = if self.cfg.policy.migrate_on_first_dirty {
            moved = pfns
                .iter()
                .map(|&p| {
                    if self.pages[p].test(pg::DIRTY) {
                        self.migrate_dirty_out_of_cma(p, false)
                    } else {
                        p
                    }
                })
                .collect();
            &moved[..]
        } else {
            pfns
        };
        let mut last_done = self.now;
        for chunk in pfns.chunks(MAX_WRITEBACK_PAGES) {
            let pages: Vec<Pfn> = chunk
                .iter()
                .copied()
                .filter(|&p| {
                    // A page redirtied while under writeback waits for that write to end
                    // (`folio_wait_writeback`); `end_page_writeback` requeues it.
                    let page = &self.pages[p];
                    page.test(pg::DIRTY) && !page.test(pg::WRITEBACK)
                })
                .collect();
            if pages.is_empty() {
                continue;
            }
            let cost = self.cfg.cost.storage_write_ns(pages.len() as u64);
            let done = self.storage_submit(cost);
            for &p in &pages {
                let page = &mut self.pages[p];
                page.clear(pg::DIRTY);
                page.set(pg::WRITEBACK);
                self.writeback_end.insert(p, done);
            }
            self.writeback.nr_dirty -= pages.len() as u64;
            self.writeback.nr_writeback += pages.len() as u64;
            self.vmstat.add(Counter::Pgpgout, pages.len() as u64 * 4);
            let id = self.writeback.next_request;
            self.writeback.next_request = self.writeback.next_request.wrapping_add(1);
            self.writeback.requests.insert(id, pages);
            self.events.schedule(done, EventKind::WritebackDone(id));
            last_done = done;
        }
        last_done
    }

    /// A write request completed: `folio_end_writeback` on each of its pages; a swap write
    /// frees its page.
    pub(crate) fn writeback_request_done(&mut self, id: u32) {
        let Some(pages) = self.writeback.requests.remove(&id) else {
            return;
        };
        for pfn in pages {
            let swapping =
                self.pages[pfn].kind().is_swap_backed() && self.writeback_end.contains_key(&pfn);
            self.end_page_writeback(pfn);
            if swapping {
                // The kernel's reclaim frees it from the swap cache; the completion's charge
                // (a frontswap copy under gcma) is nobody's latency.
                let saved = self.take_charge();
                self.swap_out_done(pfn);
                self.charge = saved;
            }
        }
    }

    /// `folio_end_writeback` (idempotent: a waiter may have ended it already).
    pub(crate) fn end_page_writeback(&mut self, pfn: Pfn) {
        if self.writeback_end.remove(&pfn).is_some() {
            self.pages[pfn].clear(pg::WRITEBACK);
            self.writeback.nr_writeback -= 1;
            if self.pages[pfn].kind().is_swap_backed() {
                // A swap write: the slot is given back unless the page is freed into it
                // (`swap_out_done`); a waiter (migration) keeps the page resident.
                self.writeback.swap_used -= 1;
                self.writeback.swap_writing -= 1;
            }
            if self.pages[pfn].test(pg::DIRTY) {
                // Redirtied during the write: back on the flusher's queue.
                self.writeback.dirty_fifo.push_back((pfn, self.now));
            }
        }
    }

    /// Pages dirty for longer than `dirty_expire`, oldest first, at most `limit`.
    fn expired_dirty(&mut self, expire_before: u64, limit: usize) -> Vec<Pfn> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.writeback.dirty_fifo.front() {
                Some(&(pfn, at)) if at <= expire_before => {
                    self.writeback.dirty_fifo.pop_front();
                    if self.pages[pfn].test(pg::DIRTY) && !out.contains(&pfn) {
                        out.push(pfn);
                    }
                }
                _ => break,
            }
        }
        out
    }

    /// The flusher's periodic pass (`wb_workfn` -> `wb_check_old_data_flush`).
    pub(crate) fn flusher_run(&mut self) {
        let expire_before = self.now.saturating_sub(self.cfg.dirty_expire_ns);
        let pages = self.expired_dirty(expire_before, usize::MAX);
        // The flusher is a kernel thread: what it spends (migrations before writeback) is
        // nobody's latency.
        let saved = self.take_charge();
        self.writeback_pages(&pages);
        self.charge = saved;
        self.events
            .schedule(self.now + DIRTY_WRITEBACK_INTERVAL_NS, EventKind::Flusher);
    }

    /// Pages dirty memory may use before dirtiers are throttled.
    fn dirty_limit(&self) -> u64 {
        let s = self.lru_sizes();
        let free: u64 = self.zones.iter().map(|z| z.nr_free_pages).sum();
        (free + s[2] + s[3]) * self.cfg.dirty_ratio as u64 / 100
    }

    /// `balance_dirty_pages`: over the limit, the dirtier writes back the oldest dirty pages
    /// and waits for them (charged).
    fn balance_dirty_pages(&mut self) {
        if self.writeback.nr_dirty <= self.dirty_limit() {
            return;
        }
        let pages = self.expired_dirty(u64::MAX, MAX_WRITEBACK_PAGES);
        let done = self.writeback_pages(&pages);
        self.charge += done.saturating_sub(self.now);
    }

    pub(crate) fn swap_free(&self) -> u64 {
        (self.cfg.swap / crate::config::PAGE_SIZE).saturating_sub(self.writeback.swap_used)
    }

    /// `add_to_swap` + `swap_writepage` of `pages` anonymous pages in one request: each
    /// takes a swap slot. Returns when the write completes.
    pub(crate) fn swap_write(&mut self, pages: u64) -> u64 {
        let cost = self.cfg.cost.storage_write_ns(pages);
        let done = self.storage_submit(cost);
        self.writeback.swap_used += pages;
        self.vmstat.add(Counter::Pswpout, pages);
        self.vmstat.add(Counter::Pgpgout, 4 * pages);
        done
    }

    /// kswapd's swap-out: the pages stay under writeback (on the LRU, mapped) until the
    /// write completes; then `swap_out_done` frees them.
    pub(crate) fn swap_out_async(&mut self, pfns: &[Pfn]) {
        let done = self.swap_write(pfns.len() as u64);
        for &pfn in pfns {
            self.pages[pfn].set(pg::WRITEBACK);
            self.writeback_end.insert(pfn, done);
        }
        self.writeback.nr_writeback += pfns.len() as u64;
        self.writeback.swap_writing += pfns.len() as u64;
        let id = self.writeback.next_request;
        self.writeback.next_request = self.writeback.next_request.wrapping_add(1);
        self.writeback.requests.insert(id, pfns.to_vec());
        self.events.schedule(done, EventKind::WritebackDone(id));
    }

    /// `reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK)` (5.16; `congestion_wait` before): a
    /// direct reclaimer that found only pages under swap writeback sleeps until the first
    /// swap write completes (at most `cap_ns`), charged to it; the pages that write freed
    /// are its progress.
    pub(crate) fn wait_for_swap_write(&mut self, cap_ns: u64) -> u64 {
        let Some((done, id)) = self.first_swap_write() else {
            return 0;
        };
        let wait = done.saturating_sub(self.now);
        if wait > cap_ns {
            self.charge += cap_ns;
            return 0;
        }
        self.charge += wait;
        let resident_before = self.writeback.nr_writeback;
        let saved = self.take_charge();
        self.writeback_request_done(id);
        self.charge = saved;
        resident_before - self.writeback.nr_writeback
    }

    /// The swap write in flight that completes first: `(completion time, request id)`.
    pub(crate) fn first_swap_write(&self) -> Option<(u64, u32)> {
        if self.writeback.swap_writing == 0 {
            return None;
        }
        self.writeback
            .requests
            .iter()
            .filter(|(_, pages)| {
                pages
                    .first()
                    .is_some_and(|&p| self.pages[p].kind().is_swap_backed())
            })
            .filter_map(|(&id, pages)| {
                let done = pages
                    .iter()
                    .filter_map(|p| self.writeback_end.get(p))
                    .max()?;
                Some((*done, id))
            })
            .min()
    }

    /// A swap write completed (`folio_end_writeback` gave the slot back): the page is freed
    /// into its slot, unless it was touched, referenced, isolated for migration or freed
    /// meanwhile, and then it stays resident.
    fn swap_out_done(&mut self, pfn: Pfn) {
        let page = self.pages[pfn];
        let idle = page.kind().is_swap_backed()
            && page.test(pg::LRU)
            && !page.test(pg::REFERENCED)
            && !page.test(pg::ACTIVE)
            && !page.test(pg::EXTRA);
        if idle {
            self.writeback.swap_used += 1;
            self.evict_page(pfn);
        }
    }

    pub(crate) fn schedule_flusher(&mut self) {
        self.events
            .schedule(DIRTY_WRITEBACK_INTERVAL_NS, EventKind::Flusher);
    }
}
