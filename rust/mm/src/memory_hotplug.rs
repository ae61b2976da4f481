//! Memory offlining and onlining (`mm/memory_hotplug.c`: `offline_pages`,
//! `online_pages`), to show why CMA memory must not be unpluggable (SPEC §3, the
//! `movable_zone` placement; Joonsoo Kim's first objection to putting CMA in ZONE_MOVABLE:
//! "reserved CMA pages should not be offlined").
//!
//! Reproduced (`offline_pages`, 6.x, in virtual time): the range must lie in one zone;
//! its pageblocks are isolated (`start_isolate_page_range` with MEMORY_OFFLINE: a pageblock
//! already isolated, or holding an unmovable page found by `has_unmovable_pages` — kernel
//! memory, a device buffer, boot memory — fails with -EBUSY "failure to isolate range");
//! the per-CPU lists are drained; then `scan_movable_pages` + `do_migrate_range` move every
//! LRU page out in MIGRATE_SYNC mode, with `GFP_USER | __GFP_MOVABLE` targets
//! (`__GFP_HIGHMEM` added for pages of ZONE_MOVABLE/ZONE_CMA, as `alloc_migration_target`
//! does), until `test_pages_isolated` passes; the free pages then leave the buddy allocator
//! (`__offline_isolated_pages`), the frames become reserved and offline, the zone's managed
//! pages drop and watermarks are recomputed (`init_per_zone_wmark_min`); the pageblocks stay
//! isolated (the kernel leaves their flags stale).
//!
//! What happens to CMA memory depends on the kernel the placement reproduces
//! (`offline_refuses_cma` in `placement.rs`):
//! - since 5.4 (`balanced`, `gcma`), `has_unmovable_pages` reports any CMA pageblock as
//!   unmovable to everyone but a CMA allocation: offlining it fails at isolation;
//! - `zone_cma` (Joonsoo Kim's series) refuses ZONE_CMA in `__offline_pages` (-EINVAL);
//! - before 5.4 (`legacy`, and `movable_zone`, where CMA memory *is* ZONE_MOVABLE, the zone
//!   meant to be hot-removed), only the pages are looked at: a CMA range holding movable or
//!   free pages is offlined, a device buffer (`cma_alloc`'d) blocks it. The CMA area's
//!   bitmap does not know: its memory is gone, and `cma_alloc` over it fails with -EBUSY
//!   (the pageblocks are isolated). That is the hazard.
//!
//! Simplified: ranges are aligned to the largest buddy block (4 MiB) instead of a memory
//! block (128 MiB on arm64/x86-64), so boards stay small; no memory notifiers, no hugetlb
//! dissolving, no node state. The kernel retries the migration loop until a signal arrives
//! (-EINTR, "signal backoff"); we give up with -EBUSY after `MAX_PASSES` passes over the
//! range (the retry count of kernels before 4.15). `online_pages` gives pageblocks back the
//! type they had (MIGRATE_CMA inside a CMA area): the kernel's `online_pages` makes every
//! onlined pageblock MIGRATE_MOVABLE, so an area that lost memory never fully gets it back.

use crate::alloc_contig::{forget_freed_folios, Blocker, COMPACT_CLUSTER_MAX};
use crate::config::{MAX_PAGE_ORDER, PAGE_SIZE};
use crate::error::{misuse, Errno, MmResult};
use crate::gfp::Gfp;
use crate::migrate::{MigrateProgress, MigrateStats};
use crate::owner::{OWNER_KERNEL, OWNER_NONE};
use crate::page::{pg, Kind, Page};
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;
use crate::zone::ZoneId;
use crate::Machine;

/// Passes of the migration loop before giving up.
pub const MAX_PASSES: u32 = 5;

/// What an `offline_pages` call did.
#[derive(Clone, Debug)]
pub struct OfflineReport {
    /// `[start, end)`.
    pub start: Pfn,
    pub end: Pfn,
    /// Ok, or the errno `offline_pages` returns.
    pub result: Result<(), Errno>,
    /// The kernel's reason string for a failure (`memory offlining ... failed due to %s`).
    pub reason: Option<&'static str>,
    pub pages_migrated: u64,
    pub pages_discarded: u64,
    pub passes: u32,
    /// Virtual time the call took.
    pub elapsed_ns: u64,
    /// The pages that kept the range from going offline, and who held them.
    pub blockers: Vec<Blocker>,
}

impl Machine {
    fn hotplug_range_check(&self, start: Pfn, end: Pfn, what: &str) -> MmResult<usize> {
        let block = 1u32 << MAX_PAGE_ORDER;
        if start >= end || end > self.end_pfn() {
            return misuse(format!(
                "{what} [{start:#x}, {end:#x}) is empty or beyond the end of memory ({:#x} \
                 pages)",
                self.nr_pages()
            ));
        }
        if !start.is_aligned(MAX_PAGE_ORDER) || !end.is_aligned(MAX_PAGE_ORDER) {
            return misuse(format!(
                "{what} [{start:#x}, {end:#x}) is not aligned to {block} pages (4 MiB, the \
                 memory block size this model uses): round it to 4 MiB"
            ));
        }
        let zi = self.zone_idx(start);
        if zi != self.zone_idx(end - 1) {
            return misuse(format!(
                "{what} [{start:#x}, {end:#x}) spans two zones (\"multizone range\"): keep it \
                 in one"
            ));
        }
        Ok(zi)
    }

    /// Whether `pfn` was taken offline by `offline_pages` (boot memory is reserved too, but
    /// belongs to the kernel).
    fn is_offline(&self, pfn: Pfn) -> bool {
        let page = &self.pages[pfn];
        page.kind() == Kind::Reserved && page.owner == OWNER_NONE
    }

    /// `offline_pages([start, end))`, run to completion in virtual time (other events run
    /// between its steps). `start` and `end` must be 4 MiB aligned and in one zone.
    pub fn offline_pages(&mut self, start: Pfn, end: Pfn) -> MmResult<OfflineReport> {
        let zi = self.hotplug_range_check(start, end, "offline_pages")?;
        self.deferred_init_upto(end);
        if let Some(p) = Pfn::range(start, end).find(|&p| self.is_offline(p)) {
            return misuse(format!(
                "offline_pages [{start:#x}, {end:#x}): pfn {p:#x} is already offline"
            ));
        }
        let t0 = self.now;
        let caller_charge = self.take_charge();
        let mut report = OfflineReport {
            start,
            end,
            result: Ok(()),
            reason: None,
            pages_migrated: 0,
            pages_discarded: 0,
            passes: 0,
            elapsed_ns: 0,
            blockers: Vec::new(),
        };
        let outcome = self.offline_pages_locked(zi, &mut report);
        if let Err((errno, reason)) = outcome {
            report.result = Err(errno);
            report.reason = Some(reason);
            let msg = format!(
                "memory offlining [mem {:#010x}-{:#010x}] failed due to {reason}",
                start.0 as u64 * PAGE_SIZE,
                end.0 as u64 * PAGE_SIZE - 1
            );
            self.dmesg.printk(self.now, &msg);
        }
        report.elapsed_ns = self.now - t0;
        self.charge = caller_charge;
        Ok(report)
    }

    /// Let the time charged so far elapse, running other events meanwhile.
    fn hotplug_advance(&mut self) {
        let cost = self.take_charge();
        let t = self.now + cost;
        self.run_until(t);
    }

    fn offline_pages_locked(
        &mut self,
        zi: usize,
        report: &mut OfflineReport,
    ) -> Result<(), (Errno, &'static str)> {
        let (start, end) = (report.start, report.end);
        if self.zones[zi].id == ZoneId::Cma {
            // ZONE_CMA series: `if (is_zone_cma(zone)) goto out;` with ret = -EINVAL.
            return Err((Errno::Einval, "ZONE_CMA memory cannot be offlined"));
        }
        let saved = match self.offline_isolate(start, end) {
            Ok(saved) => saved,
            Err(blocker) => {
                report.blockers.push(blocker);
                self.hotplug_advance();
                return Err((Errno::Ebusy, "failure to isolate range"));
            }
        };
        self.drain_all_pages(zi);
        self.hotplug_advance();
        // Targets with `__GFP_RETRY_MAYFAIL` (`do_migrate_range`): no OOM kill for them.
        let gfp = if self.zones[zi].id == ZoneId::Normal {
            Gfp::USER_MOVABLE.retry_mayfail()
        } else {
            Gfp::HIGHUSER_MOVABLE.retry_mayfail()
        };
        let cpu = self.owners.cpu(OWNER_KERNEL);
        loop {
            report.passes += 1;
            self.do_migrate_range(start, end, gfp, cpu, report);
            if self.test_pages_isolated(start, end).is_ok() {
                break;
            }
            if report.passes == MAX_PASSES {
                self.offline_blockers(start, end, report);
                for (pb, mt) in saved {
                    let nr = self.pageblocks.nr_pages();
                    self.undo_isolate_page_range(pb, pb + nr, mt);
                }
                return Err((Errno::Ebusy, "unmovable page"));
            }
        }
        self.offline_isolated_pages(start, end);
        let zone = &mut self.zones[zi];
        zone.managed_pages -= (end - start) as u64;
        self.init_per_zone_wmark_min();
        Ok(())
    }

    /// `start_isolate_page_range(..., MIGRATE_MOVABLE, MEMORY_OFFLINE)`, pageblock by
    /// pageblock so that a failure gives each block its own type back. Returns the blocks
    /// with their original types.
    fn offline_isolate(
        &mut self,
        start: Pfn,
        end: Pfn,
    ) -> Result<Vec<(Pfn, Migratetype)>, Blocker> {
        let nr = self.pageblocks.nr_pages();
        let mut saved = Vec::new();
        let mut failed = None;
        for pb in Pfn::range_step(start, end, nr) {
            self.charge += self.cfg.cost.isolate_pageblock_ns;
            let mt = self.pageblocks.get(pb);
            if mt == Migratetype::Isolate {
                failed = Some(self.describe_blocker(pb, "isolated"));
                break;
            }
            if mt == Migratetype::Cma && self.offline_refuses_cma() {
                failed = Some(self.describe_blocker(pb, "cma"));
                break;
            }
            if let Some(bad) = Pfn::range(pb, pb + nr).find(|&p| {
                matches!(
                    self.pages[p].kind(),
                    Kind::Kernel | Kind::Device | Kind::Reserved
                )
            }) {
                failed = Some(self.describe_blocker(bad, "unmovable"));
                break;
            }
            self.move_freepages_block(pb, Migratetype::Isolate);
            saved.push((pb, mt));
        }
        match failed {
            None => Ok(saved),
            Some(blocker) => {
                for (pb, mt) in saved {
                    self.undo_isolate_page_range(pb, pb + nr, mt);
                }
                Err(blocker)
            }
        }
    }

    /// One pass of `scan_movable_pages` + `do_migrate_range` over `[start, end)`, in batches
    /// of 32 so that other events interleave; gcma cache pages are dropped.
    fn do_migrate_range(
        &mut self,
        start: Pfn,
        end: Pfn,
        gfp: Gfp,
        cpu: u32,
        report: &mut OfflineReport,
    ) {
        let mut cursor = start;
        while cursor < end {
            let mut batch = Vec::new();
            while cursor < end && batch.len() < COMPACT_CLUSTER_MAX {
                let pfn = cursor;
                let page = self.pages[pfn];
                cursor += match page.kind() {
                    Kind::Buddy | Kind::Anon | Kind::File => 1 << page.order(),
                    _ => 1,
                };
                if page.kind() == Kind::Cache {
                    self.cleancache_discard(pfn);
                    report.pages_discarded += 1;
                    continue;
                }
                if page.kind().is_movable_kind() && page.test(pg::LRU) {
                    self.lru_del(pfn);
                    self.pages[pfn].set(pg::ISOLATED);
                    batch.push(pfn);
                }
            }
            let mut sync_cursor = None;
            loop {
                let mut stats = MigrateStats::default();
                let progress =
                    self.migrate_pages(&mut batch, gfp, cpu, &mut sync_cursor, &mut stats);
                report.pages_migrated += stats.succeeded;
                match progress {
                    Ok(MigrateProgress::WaitWriteback(t)) => {
                        self.hotplug_advance();
                        let t = t.max(self.now);
                        self.run_until(t);
                        forget_freed_folios(&self.pages, &mut batch, &mut sync_cursor);
                    }
                    Ok(MigrateProgress::Done) | Err(_) => break,
                }
            }
            forget_freed_folios(&self.pages, &mut batch, &mut None);
            for pfn in batch {
                self.pages[pfn].clear(pg::ISOLATED);
                self.lru_add(pfn);
            }
            self.hotplug_advance();
        }
    }

    /// The pages left in use in the range, with who holds them.
    fn offline_blockers(&mut self, start: Pfn, end: Pfn, report: &mut OfflineReport) {
        report.blockers.extend(self.range_blockers(start, end));
    }

    /// `__offline_isolated_pages`: take every free block off the ISOLATE lists; the frames
    /// become reserved and offline.
    fn offline_isolated_pages(&mut self, start: Pfn, end: Pfn) {
        let mut p = start;
        while p < end {
            let page = self.pages[p];
            debug_assert_eq!(page.kind(), Kind::Buddy, "test_pages_isolated passed");
            let order = self.take_free_block(p);
            p += 1 << order;
        }
        for p in Pfn::range(start, end) {
            let page = &mut self.pages[p];
            *page = Page::FREE;
            page.set_kind(Kind::Reserved);
            page.owner = OWNER_NONE;
        }
    }

    /// `online_pages([start, end))`: bring memory taken offline by `offline_pages` back to
    /// its zone. Its pageblocks get back the type they had (see the module comment for
    /// where the kernel differs).
    pub fn online_pages(&mut self, start: Pfn, end: Pfn) -> MmResult<()> {
        let zi = self.hotplug_range_check(start, end, "online_pages")?;
        if let Some(p) = Pfn::range(start, end).find(|&p| !self.is_offline(p)) {
            return misuse(format!(
                "online_pages [{start:#x}, {end:#x}): pfn {p:#x} is not offline (take the \
                 range offline with offline_pages first)"
            ));
        }
        let nr = self.pageblocks.nr_pages();
        for pb in Pfn::range_step(start, end, nr) {
            let in_area = self.cma.iter().any(|a| a.contains(pb));
            let mt = if in_area {
                Migratetype::Cma
            } else {
                Migratetype::Movable
            };
            self.pageblocks.set(pb, mt);
        }
        let block = 1u32 << MAX_PAGE_ORDER;
        for pfn in Pfn::range_step(start, end, block) {
            for p in Pfn::range(pfn, pfn + block) {
                self.pages[p] = Page::FREE;
            }
            // `generic_online_page` -> `__free_pages_core`: to the tail (`FPI_TO_TAIL`,
            // 5.10), so that just onlined memory is used last.
            self.free_one_page_fpi(pfn, MAX_PAGE_ORDER, crate::page_alloc::Fpi::ToTail);
        }
        self.zones[zi].managed_pages += (end - start) as u64;
        self.init_per_zone_wmark_min();
        Ok(())
    }
}
