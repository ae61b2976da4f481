//! `alloc_contig_range` (`mm/page_alloc.c`), run step by step in virtual time.
//!
//! Reproduced (6.x): isolate the pageblocks (`start_isolate_page_range`, -EBUSY at once),
//! drain the per-CPU lists, then `__alloc_contig_migrate_range`: isolate up to 32
//! (`COMPACT_CLUSTER_MAX`) LRU folios from the range (anonymous folios with extra
//! references are skipped, as `isolate_migratepages_block` does), drop the clean file ones,
//! migrate the rest; a batch that keeps failing is retried up to 5 times, then -EBUSY.
//! -EBUSY from migration is not final: `test_pages_isolated` decides (-EBUSY if any page in
//! the range is not free). On success the free pages are taken off the ISOLATE lists
//! (`isolate_freepages_range`), the parts of buddy blocks outside the range are freed back;
//! on every exit the isolation is undone and unmigrated folios go back to the LRU.
//!
//! Per call, whatever the range's size (6.1): `lru_cache_disable` (an expedited RCU grace
//! period and a drain work item on each CPU with pages in its LRU batches, `swap.rs`), the
//! drain of every CPU's per-CPU lists that hold pages, the isolation and its undo for each
//! pageblock; per page: the walks of `isolate_migratepages_range` and
//! `test_pages_isolated` (free blocks skipped by their order), `split_map_pages` for each
//! page taken, and the free of each page of a larger free block left outside the range.
//!
//! Each step (isolation + drain, one migration batch, the final check) charges its cost and
//! the next step runs after it, so pins taken and released, writeback completing and other
//! allocations interleave with the batches, as they do on a real machine.

use rustc_hash::FxHashSet;
use serde::Serialize;

use crate::allocation::Source;
use crate::error::Errno;
use crate::gfp::Gfp;
use crate::gup::HoldKind;
use crate::migrate::{MigrateProgress, MigrateStats};
use crate::owner::OwnerId;
use crate::page::{pg, Kind};
use crate::page_isolation::IsolateError;
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;
use crate::trace::MigrateReason;
use crate::vmstat::Counter;
use crate::Machine;

pub const COMPACT_CLUSTER_MAX: usize = 32;
const MAX_TRIES: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Isolate,
    Migrate,
    Finish,
}

/// Why a page in a range could not be made free, and who is responsible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub pfn: Pfn,
    /// `pinned`, `longterm_pinned`, `referenced`, `writeback`, `unmovable`, `isolated`.
    pub reason: &'static str,
    pub page_kind: &'static str,
    pub owner: String,
    /// Who holds the pin or reference, and since when (ns).
    pub holder: Option<String>,
    pub hold_kind: Option<&'static str>,
    pub since_ns: Option<u64>,
}

/// The pages already reported as blockers of one call (`cma_alloc` walks overlapping ranges
/// and meets the same pinned pages again): a bitmap over the frames the call walks, and a set
/// for the rare frame outside them (a pageblock head, the head of a compound page that
/// straddles the start). The bitmap is allocated at the first report.
#[derive(Clone, Debug, Default)]
pub struct ReportedPfns {
    base: Pfn,
    len: u32,
    bits: Vec<u64>,
    outside: FxHashSet<Pfn>,
}

impl ReportedPfns {
    /// Nothing reported yet, for a call over `[start, end)`.
    pub fn new(start: Pfn, end: Pfn) -> Self {
        ReportedPfns {
            base: start,
            len: end - start,
            ..Default::default()
        }
    }

    #[inline]
    fn bit(&self, pfn: Pfn) -> Option<usize> {
        (pfn >= self.base && pfn - self.base < self.len).then(|| (pfn - self.base) as usize)
    }

    #[inline]
    pub fn contains(&self, pfn: Pfn) -> bool {
        match self.bit(pfn) {
            Some(i) => self
                .bits
                .get(i / 64)
                .is_some_and(|w| w & (1 << (i % 64)) != 0),
            None => self.outside.contains(&pfn),
        }
    }

    /// The first frame of `[pfn, end)` not reported (`end` if there is none): a run of
    /// reported frames is skipped a word of the bitmap at a time.
    #[inline]
    pub fn next_unreported(&self, pfn: Pfn, end: Pfn) -> Pfn {
        let Some(mut i) = self.bit(pfn) else {
            return pfn;
        };
        let stop = (end.min(self.base + self.len) - self.base) as usize;
        while i < stop {
            let Some(&w) = self.bits.get(i / 64) else {
                break;
            };
            let ones = (w >> (i % 64)).trailing_ones() as usize;
            i += ones;
            if ones == 0 || i % 64 != 0 {
                break;
            }
        }
        (self.base + i.min(stop) as u32).max(pfn)
    }

    /// Mark `pfn` reported; false if it already was.
    #[inline]
    pub fn insert(&mut self, pfn: Pfn) -> bool {
        match self.bit(pfn) {
            Some(i) => {
                if self.bits.is_empty() {
                    self.bits = vec![0; (self.len as usize).div_ceil(64)];
                }
                let (w, m) = (&mut self.bits[i / 64], 1u64 << (i % 64));
                let new = *w & m == 0;
                *w |= m;
                new
            }
            None => self.outside.insert(pfn),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ContigRange {
    /// `[start, end)`.
    pub start: Pfn,
    pub end: Pfn,
    pub mt: Migratetype,
    phase: Phase,
    /// `cc->migrate_pfn`.
    cursor: Pfn,
    /// `cc->migratepages`.
    migratepages: Vec<Pfn>,
    tries: u32,
    sync_cursor: Option<usize>,
    isolated: bool,
    migrate_ebusy: bool,
    cpu: u32,
    pub nr_migrated: u64,
    pub nr_reclaimed: u64,
    /// gcma cache pages dropped from the range (`cleancache_discard`): no copy.
    pub nr_discarded: u64,
    /// Mapped pages among those given to `migrate_pages` (the tracepoint's `nr_mapped`,
    /// `folio_mapped` before migration): the model maps anonymous pages only.
    pub nr_mapped: u64,
    /// The `migrate_pages` call in progress (it may wait out writeback across steps).
    call: crate::migrate::MigrateStats,
    pub failed_attempts: u64,
    /// The blockers found, each page once (see `reported`).
    pub blockers: Vec<Blocker>,
    /// The allocation made (`allocation.rs`), when `alloc_contig_range` called directly
    /// succeeded.
    pub allocation: Option<u64>,
    /// The pages reported so far, in `blockers` or (for `cma_alloc`) by an earlier attempt
    /// of the same call: they are not described again.
    pub reported: ReportedPfns,
}

/// What one step did: its cost, and the result once the range is done.
pub struct Step {
    pub cost: u64,
    /// Resume no earlier than this (a synchronous pass waiting on writeback).
    pub wait_until: Option<u64>,
    pub result: Option<Result<(), Errno>>,
}

impl ContigRange {
    pub fn new(start: Pfn, end: Pfn, mt: Migratetype, cpu: u32) -> Self {
        ContigRange {
            start,
            end,
            mt,
            phase: Phase::Isolate,
            cursor: start,
            migratepages: Vec::new(),
            tries: 0,
            sync_cursor: None,
            isolated: false,
            migrate_ebusy: false,
            cpu,
            nr_migrated: 0,
            nr_reclaimed: 0,
            nr_discarded: 0,
            nr_mapped: 0,
            call: crate::migrate::MigrateStats::default(),
            failed_attempts: 0,
            blockers: Vec::new(),
            allocation: None,
            reported: ReportedPfns::new(start, end),
        }
    }

    /// Report the page at `pfn` (a head page) as a blocker, unless it was already.
    fn report(&mut self, m: &Machine, pfn: Pfn, reason: &'static str) {
        if self.reported.insert(pfn) {
            self.blockers.push(m.describe_blocker(pfn, reason));
        }
    }
}

impl Machine {
    /// Run the next step of `cr`, taking the pages for `owner` on success.
    pub fn contig_step(&mut self, cr: &mut ContigRange, owner: OwnerId) -> Step {
        let before = self.take_charge();
        self.sched.take_sleep();
        let (wait_until, result) = match cr.phase {
            Phase::Isolate => (None, self.contig_isolate(cr)),
            Phase::Migrate => self.contig_migrate_batch(cr, owner),
            Phase::Finish => (None, Some(self.contig_finish(cr, owner))),
        };
        if result.is_some() {
            self.contig_cleanup(cr);
        }
        // CPU time under the run queues' load, then the flushes slept through (`sched.rs`).
        let cpu = self.take_charge();
        let cost = self.cpu_wall_ns(cpu, crate::sched::Asker::Caller) + self.sched.take_sleep();
        self.charge = before;
        if let Some(res) = result {
            self.trace_contig_info(cr, owner);
            return Step {
                cost,
                wait_until: None,
                result: Some(res),
            };
        }
        Step {
            cost,
            wait_until,
            result: None,
        }
    }

    /// Whether `cr` is an allocation from a gcma area: `gcma_alloc_range` (2025 series)
    /// takes each page from the backend's pool (discarding its cached contents) and
    /// prepares it (`post_alloc_hook`, `set_page_refcounted`); it isolates no pageblock,
    /// drains nothing and tests nothing. The model still isolates the range (so that
    /// nothing else takes its pages meanwhile) but charges only the per-page work.
    fn gcma_range(&self, cr: &ContigRange) -> bool {
        cr.mt == Migratetype::Cma && self.cma_frees_bypass_pcp()
    }

    /// Run `f` without charging what it costs when `free` (for a gcma range).
    fn charged_unless<R>(&mut self, free: bool, f: impl FnOnce(&mut Self) -> R) -> R {
        let charge = self.charge;
        let r = f(self);
        if free {
            self.charge = charge;
        }
        r
    }

    fn contig_isolate(&mut self, cr: &mut ContigRange) -> Option<Result<(), Errno>> {
        let gcma = self.gcma_range(cr);
        let isolated = self.charged_unless(gcma, |m| {
            m.start_isolate_page_range(cr.start, cr.end, cr.mt)
        });
        match isolated {
            Ok(()) => {
                cr.isolated = true;
                // A gcma area never has pages on the per-CPU lists (`cma_frees_bypass_pcp`):
                // `gcma_alloc_range` does not drain, and discards rather than migrates.
                if !gcma {
                    let zi = self.zone_idx(cr.start);
                    self.drain_all_pages(zi);
                    // `__alloc_contig_migrate_range` begins with `lru_cache_disable`.
                    self.lru_cache_disable();
                }
                self.lru_add_drain_all_flushes();
                cr.phase = Phase::Migrate;
                None
            }
            Err(IsolateError::AlreadyIsolated(pfn)) => {
                cr.report(self, pfn, "isolated");
                Some(Err(Errno::Ebusy))
            }
            Err(IsolateError::Unmovable(pfn)) => {
                cr.report(self, pfn, "unmovable");
                Some(Err(Errno::Ebusy))
            }
        }
    }

    /// One iteration of `__alloc_contig_migrate_range`'s loop.
    fn contig_migrate_batch(
        &mut self,
        cr: &mut ContigRange,
        owner: OwnerId,
    ) -> (Option<u64>, Option<Result<(), Errno>>) {
        // `alloc_migration_target` with `__GFP_RETRY_MAYFAIL`: no OOM kill for a target.
        let target = Gfp::HIGHUSER_MOVABLE.retry_mayfail();
        forget_freed_folios(&self.pages, &mut cr.migratepages, &mut cr.sync_cursor);
        if cr.sync_cursor.is_none() {
            if cr.migratepages.is_empty() {
                if cr.cursor >= cr.end {
                    cr.phase = Phase::Finish;
                    return (None, None);
                }
                self.isolate_migratepages_range(cr);
                cr.tries = 0;
            } else {
                cr.tries += 1;
                if cr.tries == MAX_TRIES {
                    // -EBUSY here is not final: test_pages_isolated decides.
                    cr.migrate_ebusy = true;
                    self.putback_movable_pages(&mut cr.migratepages);
                    cr.phase = Phase::Finish;
                    return (None, None);
                }
            }
            cr.nr_reclaimed += self.reclaim_clean_pages_from_list(&mut cr.migratepages);
            let pages = &self.pages;
            cr.nr_mapped += cr
                .migratepages
                .iter()
                .filter(|&&p| pages[p].kind() == Kind::Anon)
                .count() as u64;
            self.trace_migrate_pages_start(owner, MigrateReason::ContigRange);
            cr.call = MigrateStats::default();
        }
        let mut stats = MigrateStats::default();
        let cpu = cr.cpu;
        let progress = self.migrate_pages(
            &mut cr.migratepages,
            target,
            cpu,
            &mut cr.sync_cursor,
            &mut stats,
        );
        cr.nr_migrated += stats.succeeded;
        cr.failed_attempts += stats.failed_attempts;
        cr.call.succeeded += stats.succeeded;
        cr.call.nr_failed += stats.nr_failed;
        if !matches!(progress, Ok(MigrateProgress::WaitWriteback(_))) {
            let (succeeded, failed) = (cr.call.succeeded, cr.call.nr_failed);
            self.trace_migrate_pages(owner, succeeded, failed, MigrateReason::ContigRange);
        }
        match progress {
            Ok(MigrateProgress::Done) => (None, None),
            Ok(MigrateProgress::WaitWriteback(t)) => (Some(t), None),
            Err(errno) => {
                self.putback_movable_pages(&mut cr.migratepages);
                (None, Some(Err(errno)))
            }
        }
    }

    /// `isolate_migratepages_range`: take up to 32 LRU folios off the LRU, from the cursor.
    /// Charges the walk: each frame examined, a free block or folio as one
    /// (`isolate_migratepages_block` skips them by their order).
    fn isolate_migratepages_range(&mut self, cr: &mut ContigRange) {
        let mut examined = 0u64;
        while cr.migratepages.len() < COMPACT_CLUSTER_MAX {
            let pfn = next_to_isolate(&self.pages, cr.cursor, cr.end, &mut examined);
            if pfn >= cr.end {
                cr.cursor = pfn;
                break;
            }
            let page = self.pages[pfn];
            if page.kind() == Kind::Cache {
                // gcma: the cache page's contents can be dropped at will.
                cr.cursor = pfn + 1;
                self.cleancache_discard(pfn);
                cr.nr_discarded += 1;
                continue;
            }
            cr.cursor = pfn + (1 << page.order());
            self.lru_del(pfn);
            self.pages[pfn].set(pg::ISOLATED);
            self.vmstat.inc(Counter::CompactIsolated);
            cr.migratepages.push(pfn);
        }
        self.charge += examined * self.cfg.cost.pfn_walk_ns;
    }

    /// `putback_movable_pages`: folios that did not move go back to the LRU.
    fn putback_movable_pages(&mut self, list: &mut Vec<Pfn>) {
        forget_freed_folios(&self.pages, list, &mut None);
        for pfn in list.drain(..) {
            self.pages[pfn].clear(pg::ISOLATED);
            self.lru_add(pfn);
        }
    }

    /// `test_pages_isolated`, then `isolate_freepages_range` and the frees of the parts of
    /// buddy blocks outside the range.
    fn contig_finish(&mut self, cr: &mut ContigRange, owner: OwnerId) -> Result<(), Errno> {
        let outer_start = self
            .buddy_head_of(cr.start)
            .unwrap_or(cr.start)
            .min(cr.start);
        let gcma = self.gcma_range(cr);
        let verdict = self.charged_unless(gcma, |m| m.test_pages_isolated(outer_start, cr.end));
        let fin_pfn = match verdict {
            Ok(()) => cr.end,
            Err(p) => p,
        };
        if self.trace.enabled() {
            let fields = format!(
                "start_pfn=0x{:x} end_pfn=0x{:x} fin_pfn=0x{:x} ret={}",
                outer_start,
                cr.end,
                fin_pfn,
                if verdict.is_ok() { "success" } else { "fail" }
            );
            self.trace_owner(owner, "test_pages_isolated", &fields);
        }
        if verdict.is_err() {
            self.collect_blockers(cr);
            return Err(Errno::Ebusy);
        }
        self.isolate_freepages_range(outer_start, cr.start, cr.end, owner);
        Ok(())
    }

    /// Take the free blocks covering `[outer_start, end)`; frames outside `[start, end)`
    /// go back to the allocator (`free_contig_range` on the head and tail). Charges
    /// `split_map_pages` (each page of the blocks taken gets its own reference count) and
    /// the free of each page given back: a small range taken from a large free block pays
    /// for freeing the rest of the block one page at a time.
    fn isolate_freepages_range(&mut self, outer_start: Pfn, start: Pfn, end: Pfn, owner: OwnerId) {
        let mut pfn = outer_start;
        let mut outer_end = end;
        while pfn < end {
            let order = self.take_free_block(pfn);
            outer_end = pfn + (1 << order);
            pfn = outer_end;
        }
        for p in Pfn::range(start, end) {
            let page = &mut self.pages[p];
            *page = crate::page::Page::FREE;
            page.set_kind(Kind::Device);
            page.owner = owner;
            page.index = p - start;
        }
        for p in Pfn::range(outer_start, start).chain(Pfn::range(end, outer_end)) {
            self.free_one_page(p, 0);
        }
        let cost = &self.cfg.cost;
        let freed = (start - outer_start) as u64 + (outer_end - end) as u64;
        self.charge += (outer_end - outer_start) as u64 * cost.pfn_walk_ns;
        self.charge += freed * cost.page_alloc_ns;
    }

    /// Every exit: undo the isolation and put back what was not migrated.
    fn contig_cleanup(&mut self, cr: &mut ContigRange) {
        self.putback_movable_pages(&mut cr.migratepages);
        if cr.isolated {
            let gcma = self.gcma_range(cr);
            self.charged_unless(gcma, |m| m.undo_isolate_page_range(cr.start, cr.end, cr.mt));
            cr.isolated = false;
        }
    }

    /// The pages that kept the range busy, with who is responsible: every page with a cause
    /// (a pin or reference, writeback, unmovable memory), like the kernel's
    /// `alloc_contig_dump_pages` lists the pages that failed. Movable pages merely left
    /// unmigrated because the attempt gave up are not causes; only when there is no cause
    /// at all is the first busy page (`fin_pfn`) reported. Pages already reported
    /// (`cr.reported`) are not described again.
    fn collect_blockers(&mut self, cr: &mut ContigRange) {
        self.range_blockers_into(cr.start, cr.end, &mut cr.reported, &mut cr.blockers);
    }

    /// The in-use pages of `[start, end)` that have a cause (see `collect_blockers`), or the
    /// first busy page when none has.
    pub(crate) fn range_blockers(&self, start: Pfn, end: Pfn) -> Vec<Blocker> {
        let mut blockers = Vec::new();
        self.range_blockers_into(
            start,
            end,
            &mut ReportedPfns::new(start, end),
            &mut blockers,
        );
        blockers
    }

    /// `range_blockers`, leaving out the pages in `reported` (and adding those it reports):
    /// the same blockers, in the same order, as `range_blockers` filtered by `reported`.
    /// Whether an in-use page has a cause is in its frame (an unmovable kind, `PG_extra`,
    /// `PG_writeback`); the hold table is looked at only to describe a page not reported yet.
    /// Once a cause is known, a run of reported pages is skipped a bitmap word at a time (a
    /// walk that meets the same pinned pages again costs little more than the new ones).
    pub(crate) fn range_blockers_into(
        &self,
        start: Pfn,
        end: Pfn,
        reported: &mut ReportedPfns,
        out: &mut Vec<Blocker>,
    ) {
        let frames = &self.pages[..end.idx()];
        let (mut any_cause, mut first_busy) = (false, None);
        let mut p = start;
        while p < end {
            let page = frames[p];
            let kind = page.kind();
            match kind {
                Kind::Buddy => p += 1 << page.order(),
                Kind::Free | Kind::Tail => p += 1,
                _ => {
                    let cause = !kind.is_movable_kind() || page.test(pg::EXTRA | pg::WRITEBACK);
                    if !cause {
                        if !any_cause {
                            first_busy.get_or_insert(p);
                        }
                        p += 1 << page.order();
                    } else if reported.insert(p) {
                        any_cause = true;
                        let reason = self.blocking_cause(p).expect("a page with a cause");
                        out.push(self.describe_blocker(p, reason));
                        p += 1 << page.order();
                    } else {
                        // Reported already, by this attempt or an earlier one: nothing is
                        // left to learn from it or the reported pages after it. Where the
                        // skip lands inside a buddy block or a compound page, its free and
                        // tail frames are passed over one by one.
                        any_cause = true;
                        p = reported.next_unreported(p + 1, end);
                    }
                }
            }
        }
        if let (false, Some(pfn)) = (any_cause, first_busy) {
            if reported.insert(pfn) {
                out.push(self.describe_blocker(pfn, "busy"));
            }
        }
    }

    /// Why the in-use page at `pfn` keeps its range busy: `pcp`, `unmovable`,
    /// `longterm_pinned`, `pinned`, `referenced` or `writeback`; None for a movable page with
    /// no cause (left unmigrated because the attempt gave up: "busy").
    #[inline]
    pub(crate) fn blocking_cause(&self, pfn: Pfn) -> Option<&'static str> {
        let page = &self.pages[pfn];
        if !page.kind().is_movable_kind() {
            return Some(if page.kind() == Kind::Pcp {
                "pcp"
            } else {
                "unmovable"
            });
        }
        if !page.test(pg::EXTRA | pg::WRITEBACK) {
            return None;
        }
        // Only a page with `PG_extra` has holds (check.rs): the others need no lookup.
        let strongest = if page.test(pg::EXTRA) {
            self.holds.on_page(pfn).map(|h| h.kind).max()
        } else {
            None
        };
        match strongest {
            Some(HoldKind::LongtermPin) => Some("longterm_pinned"),
            Some(HoldKind::Pin) => Some("pinned"),
            Some(_) => Some("referenced"),
            None if page.test(pg::WRITEBACK) => Some("writeback"),
            None => None,
        }
    }

    pub(crate) fn describe_blocker(&self, pfn: Pfn, reason: &'static str) -> Blocker {
        let head = if self.pages[pfn].kind() == Kind::Tail {
            self.pages[pfn].head()
        } else {
            pfn
        };
        let page = &self.pages[head];
        let hold = self
            .holds
            .on_page(head)
            .max_by_key(|h| (h.kind, std::cmp::Reverse(h.since)));
        Blocker {
            pfn: head,
            reason,
            page_kind: page.kind().name(),
            owner: self.owners.name(page.owner).to_string(),
            holder: hold.map(|h| self.owners.name(h.holder).to_string()),
            hold_kind: hold.map(|h| h.kind.name()),
            since_ns: hold.map(|h| h.since),
        }
    }

    /// `mm_alloc_contig_migrate_range_info` (mainline 6.7 to 6.16; not in 6.1), with the
    /// migratetype as the number it prints.
    fn trace_contig_info(&mut self, cr: &ContigRange, owner: OwnerId) {
        if !self.trace.on("mm_alloc_contig_migrate_range_info")
            || self.cfg.kernel_version == crate::config::KernelVersion::V6_1
        {
            return;
        }
        let fields = format!(
            "start=0x{:x} end=0x{:x} migratetype={} nr_migrated={} nr_reclaimed={} nr_mapped={}",
            cr.start,
            cr.end,
            crate::trace::kernel_migratetype(cr.mt),
            cr.nr_migrated,
            cr.nr_reclaimed,
            cr.nr_mapped
        );
        self.trace_owner(owner, "mm_alloc_contig_migrate_range_info", &fields);
    }

    pub(crate) fn trace_owner(&mut self, owner: OwnerId, event: &str, fields: &str) {
        let comm = self.owners.name(owner).to_string();
        let pid = self.owners.pid(owner);
        let cpu = self.owners.cpu(owner);
        self.trace.emit(self.now, &comm, pid, cpu, event, fields);
    }
}

/// From `pfn`, the next frame `isolate_migratepages_range` acts on: a gcma cache page, or an
/// LRU folio it may isolate (an anonymous folio with references beyond its mapping is pinned:
/// migration would fail, so the kernel does not even isolate it). The frames in between are
/// stepped over as the kernel's scan does: a buddy block or a folio whole, anything else a
/// frame at a time, each step one frame `examined` (the one returned included). At or past
/// `end` when there is none: where the scan's cursor stops.
#[inline]
fn next_to_isolate(pages: &[crate::page::Page], mut pfn: Pfn, end: Pfn, examined: &mut u64) -> Pfn {
    let frames = &pages[..end.idx()];
    while pfn < end {
        *examined += 1;
        let page = &frames[pfn];
        match page.kind() {
            Kind::Cache => return pfn,
            kind @ (Kind::Anon | Kind::File | Kind::Shmem) => {
                if page.test(pg::LRU) && !(kind == Kind::Anon && page.test(pg::EXTRA)) {
                    return pfn;
                }
                pfn += 1 << page.order();
            }
            Kind::Buddy => pfn += 1 << page.order(),
            _ => pfn += 1,
        }
    }
    pfn
}

/// Drop from an isolated batch the folios their owner freed while the batch waited between
/// steps (the kernel's isolated folio holds a reference, so `migrate_pages` finds it with
/// `folio_ref_count == 1`, "freed from under us", and counts it done). A freed frame has
/// lost `PG_isolated`. Keeps a synchronous pass's cursor on the same folio.
pub(crate) fn forget_freed_folios(
    pages: &[crate::page::Page],
    list: &mut Vec<Pfn>,
    cursor: &mut Option<usize>,
) {
    let mut i = 0;
    list.retain(|&pfn| {
        let keep = pages[pfn].test(pg::ISOLATED);
        if !keep {
            if let Some(c) = cursor.as_mut() {
                if i < *c {
                    *c -= 1;
                }
            }
        }
        i += 1;
        keep
    });
    if let Some(c) = *cursor {
        if c >= list.len() {
            *cursor = None;
        }
    }
}

impl Machine {
    /// `alloc_contig_range([start, end), mt)` outside any CMA area's bookkeeping (as
    /// `alloc_contig_pages` does for gigantic pages), run to completion: the clock advances
    /// step by step and other events run in between. On success the pages belong to `owner`
    /// (kind `device`); free them with `free_contig_range`.
    pub fn alloc_contig_range(
        &mut self,
        start: Pfn,
        end: Pfn,
        mt: Migratetype,
        owner: OwnerId,
    ) -> crate::error::MmResult<(Result<(), Errno>, ContigRange)> {
        if start >= end || end > self.end_pfn() {
            return crate::error::misuse(format!(
                "alloc_contig_range [{start:#x}, {end:#x}) is empty or beyond the end of memory \
                 ({:#x} pages)",
                self.nr_pages()
            ));
        }
        if self.zone_idx(start) != self.zone_idx(end - 1) {
            return crate::error::misuse(format!(
                "alloc_contig_range [{start:#x}, {end:#x}) spans two zones: keep it in one"
            ));
        }
        // The undo gives every pageblock of the range this type: only MOVABLE, or CMA inside
        // CMA areas, leaves the pageblock types as they were.
        let outside_cma = |m: &Machine| {
            let (first, last) = (m.pageblocks.start(start), m.pageblocks.align_up(end));
            Pfn::range_step(first, last, m.pageblocks.nr_pages())
                .find(|&pb| !m.in_cma_pageblock(pb))
        };
        match mt {
            Migratetype::Movable => {}
            Migratetype::Cma => {
                if let Some(pb) = outside_cma(self) {
                    return crate::error::misuse(format!(
                        "alloc_contig_range [{start:#x}, {end:#x}) as CMA: pageblock {pb:#x} is \
                         outside every CMA area; use Movable outside CMA areas"
                    ));
                }
            }
            _ => {
                return crate::error::misuse(format!(
                    "alloc_contig_range takes migratetype Movable or CMA, not {}",
                    mt.name()
                ))
            }
        }
        let cpu = self.owners.cpu(owner);
        let mut cr = ContigRange::new(start, end, mt, cpu);
        loop {
            let step = self.contig_step(&mut cr, owner);
            if let Some(Ok(())) = step.result {
                // The frames are the caller's from now, while the last step's cost elapses.
                let id = self
                    .allocations
                    .insert(start, end - start, owner, Source::Contig);
                cr.allocation = Some(id);
            }
            let next = step.wait_until.unwrap_or(self.now).max(self.now) + step.cost;
            self.run_until(next);
            if let Some(result) = step.result {
                return Ok((result, cr));
            }
        }
    }

    /// `free_contig_range(start, count)` by `caller`: give back the pages `caller` took with
    /// `alloc_contig_range`. The range must be exactly one live allocation of `caller`
    /// (`allocation.rs`); anything else is a misuse that changes nothing.
    pub fn free_contig_range(
        &mut self,
        start: Pfn,
        count: u32,
        caller: OwnerId,
    ) -> crate::error::MmResult<()> {
        let a = self.exact_allocation("free_contig_range", start, count, caller)?;
        if a.source != Source::Contig {
            return crate::error::misuse(format!(
                "free_contig_range of pfn {start:#x}: that is {}, which cma_release frees",
                self.describe_allocation(&a)
            ));
        }
        self.forget_allocation(&a);
        for p in Pfn::range(start, a.end()) {
            let cpu = self.owners.cpu(self.pages[p].owner);
            self.free_pages(p, 0, cpu);
        }
        self.take_charge();
        Ok(())
    }
}
