//! LRU lists and reclaim (`mm/vmscan.c`, `mm/swap.c`), and kswapd.
//!
//! The LRU is per node, as in Linux 4.8+ (one node here): four lists (inactive/active x
//! anon/file). Reclaim for a request whose highest usable zone is below a page's zone
//! skips that page (`isolate_lru_folios`: counted in `pgskip_<zone>`, and, since Minchan
//! Kim's "mm: vmscan: scan until it finds eligible pages" (4.11), also in `pgscan_*` and
//! `pgrefill` through `total_scan`, while only eligible pages count towards the batch):
//! this is where ZONE_CMA's extra zone costs page aging work. Pages are added at the head,
//! reclaimed from the tail; a second access activates (`folio_mark_accessed`); the active
//! list is aged into the inactive list when the inactive list is small
//! (`inactive_is_low`); anon pages are scanned only with swap.
//!
//! kswapd is woken by the slow path and balances the node until one eligible zone is above
//! its high watermark, counted *without* free CMA pages (`pgdat_balanced` ->
//! `zone_watermark_ok_safe` with `alloc_flags == 0`): the check that lets the CMA area sit
//! idle while kswapd throws page cache away (the seed's second problem).
//!
//! Swap-backed pages are swapped out as the kernel does (`pageout` -> `swap_writepage`): the
//! page is written to its swap slot under writeback, stays on the LRU meanwhile, and is freed
//! when the write completes (`end_swap_bio_write` -> `folio_end_writeback` rotates the
//! reclaimed page to the inactive tail, where the next pass frees it; here, at completion),
//! unless it was touched or taken in the meantime. So reclaim of anonymous memory goes as
//! fast as the swap device writes, which on an SD card or eMMC is far slower than the scans.
//!
//! Swap-backed pages (anonymous and shmem, `Kind::is_swap_backed`) are on the anon lists
//! and reclaimed only to swap; mlocked pages are on the unevictable LRU, which has no list
//! (6.1: `lruvec_add_folio` counts an LRU_UNEVICTABLE folio but links it nowhere), so
//! reclaim never meets them (`mlock.rs`).
//!
//! Simplified: no MGLRU, no swappiness-driven cost model beyond a fixed anon/file split, no
//! workingset activation of refaulting pages, no swap cache kept for a page touched during
//! its write (its slot is given back).

use crate::config::Placement;
use crate::list::List;
use crate::page::{pg, Kind};
use crate::page_alloc::AllocRequest;
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::zone::{Wmark, ZoneId};
use crate::Machine;

pub const LRU_INACTIVE_ANON: usize = 0;
pub const LRU_ACTIVE_ANON: usize = 1;
pub const LRU_INACTIVE_FILE: usize = 2;
pub const LRU_ACTIVE_FILE: usize = 3;
pub const SWAP_CLUSTER_MAX: usize = 32;
/// The longest a direct reclaimer waits for swap writes: `reclaim_throttle` sleeps up to
/// HZ/10 a time, and `should_reclaim_retry` gives up after `MAX_RECLAIM_RETRIES` (16) rounds
/// without progress.
const RECLAIM_THROTTLE_NS: u64 = 16 * RECLAIM_THROTTLE_ONCE_NS;
/// One `reclaim_throttle` sleep at most: HZ/10.
const RECLAIM_THROTTLE_ONCE_NS: u64 = 100_000_000;

#[derive(Clone, Debug, Default)]
pub struct Lru {
    pub lists: [List; 4],
    /// `NR_UNEVICTABLE`: pages on the unevictable LRU, which links them on no list.
    pub nr_unevictable: u64,
    /// Owners with `VM_LOCKED` (`mlock.rs`): while there are none, no page is unevictable
    /// and the LRU's hot paths skip the owner lookup.
    pub locked_owners: u32,
    /// `lru_disable_count` (`lru_cache_disable`, `mm/swap.c`): callers migrating in bulk
    /// bypass the LRU batches while it is above 0.
    pub lru_disable_count: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Kswapd {
    pub running: bool,
    pub order: u32,
    pub highest_zone: usize,
    /// Virtual time kswapd has spent reclaiming.
    pub busy_ns: u64,
    failures: u32,
    /// kswapd is the one reclaiming now (`current_is_kswapd`).
    pub(crate) reclaiming: bool,
}

impl Kswapd {
    /// `pgdat->kswapd_failures`: balancing rounds in a row that reclaimed nothing.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct ScanResult {
    scanned: u64,
    skipped: u64,
    reclaimed: u64,
    /// Anonymous pages kswapd put under writeback to swap (freed when it completes).
    writeback: u64,
}

/// What reclaim does with one isolated folio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Reclaimed,
    Kept,
    SwapOut,
}

impl Machine {
    #[inline]
    fn lru_index(&self, pfn: Pfn) -> usize {
        let page = &self.pages[pfn];
        let base = if page.kind() == Kind::File {
            LRU_INACTIVE_FILE
        } else {
            LRU_INACTIVE_ANON
        };
        base + page.test(pg::ACTIVE) as usize
    }

    /// `lruvec_add_folio`: onto the head of its list; an unevictable page is only counted.
    pub(crate) fn lru_add(&mut self, pfn: Pfn) {
        if self.page_unevictable(pfn) {
            self.pages[pfn].set(pg::LRU);
            self.lru.nr_unevictable += 1;
            return;
        }
        let idx = self.lru_index(pfn);
        self.pages[pfn].set(pg::LRU);
        self.lru.lists[idx].push_head(&mut self.pages, pfn);
    }

    pub(crate) fn lru_del(&mut self, pfn: Pfn) {
        if self.page_unevictable(pfn) {
            self.lru.nr_unevictable -= 1;
            self.pages[pfn].clear(pg::LRU);
            return;
        }
        let idx = self.lru_index(pfn);
        self.lru.lists[idx].remove(&mut self.pages, pfn);
        self.pages[pfn].clear(pg::LRU);
    }

    /// `folio_mark_accessed`: the first access sets PG_referenced, the second activates (an
    /// unevictable page is never activated).
    #[inline]
    pub(crate) fn mark_page_accessed(&mut self, pfn: Pfn) {
        let page = self.pages[pfn];
        if !page.test(pg::REFERENCED) {
            self.pages[pfn].set(pg::REFERENCED);
        } else if !page.test(pg::ACTIVE) && page.test(pg::LRU) {
            self.folio_activate(pfn);
        }
    }

    /// `folio_activate`: a referenced inactive page moves to the active list.
    #[inline(never)]
    fn folio_activate(&mut self, pfn: Pfn) {
        if self.page_unevictable(pfn) {
            return;
        }
        self.lru_del(pfn);
        let p = &mut self.pages[pfn];
        p.set(pg::ACTIVE);
        p.clear(pg::REFERENCED);
        self.lru_add(pfn);
        self.vmstat.inc(Counter::Pgactivate);
    }

    /// The four evictable lists' lengths (inactive anon, active anon, inactive file, active
    /// file); the unevictable LRU is `lru.nr_unevictable`.
    pub fn lru_sizes(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.lru.lists[i].len as u64)
    }

    fn can_swap(&self) -> bool {
        self.swap_free() > 0
    }

    /// `shrink_node`: reclaim up to `nr_to_reclaim` pages from zones up to `reclaim_idx`.
    /// Charges the scanning work to `self.charge`.
    fn shrink_node(&mut self, nr_to_reclaim: u64, reclaim_idx: usize, kswapd: bool) -> ScanResult {
        let mut total = ScanResult::default();
        let lru_pages: u64 = self.lru_sizes().iter().sum();
        // Give up after scanning the LRU twice over (the kernel's priority loop ends after
        // scanning everything at priority 0).
        let budget = 2 * lru_pages + SWAP_CLUSTER_MAX as u64;
        while total.reclaimed + total.writeback < nr_to_reclaim
            && total.scanned + total.skipped < budget
        {
            let file_first = !self.can_swap() || self.scan_file_next();
            let order = if file_first {
                [true, false]
            } else {
                [false, true]
            };
            let mut progress = false;
            for file in order {
                if !file && !self.can_swap() {
                    continue;
                }
                let r = self.shrink_lruvec(file, reclaim_idx);
                total.scanned += r.scanned;
                total.skipped += r.skipped;
                total.reclaimed += r.reclaimed;
                total.writeback += r.writeback;
                progress |= r.scanned + r.skipped > 0;
                if r.reclaimed + r.writeback > 0 {
                    break;
                }
            }
            if !progress {
                break;
            }
        }
        let (scan, steal) = if kswapd {
            (Counter::PgscanKswapd, Counter::PgstealKswapd)
        } else {
            (Counter::PgscanDirect, Counter::PgstealDirect)
        };
        // `*nr_scanned = total_scan`: skipped pages are part of what was scanned.
        self.vmstat.add(scan, total.scanned + total.skipped);
        self.vmstat.add(steal, total.reclaimed);
        self.charge += (total.scanned + total.skipped) * self.cfg.cost.reclaim_scan_page_ns;
        total
    }

    /// Anon vs file in proportion to their sizes, weighted by swappiness 60 (of 200).
    fn scan_file_next(&mut self) -> bool {
        let s = self.lru_sizes();
        let anon = (s[0] + s[1]) * 60;
        let file = (s[2] + s[3]) * 140;
        if anon + file == 0 {
            return true;
        }
        self.rng.below(anon + file) < file
    }

    fn shrink_lruvec(&mut self, file: bool, reclaim_idx: usize) -> ScanResult {
        let (inactive, active) = if file {
            (LRU_INACTIVE_FILE, LRU_ACTIVE_FILE)
        } else {
            (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON)
        };
        let mut r = ScanResult::default();
        if self.inactive_is_low(inactive, active) {
            let a = self.shrink_active_list(active, reclaim_idx);
            r.skipped += a.skipped;
            r.scanned += a.scanned;
        }
        let i = self.shrink_inactive_list(inactive, reclaim_idx);
        r.scanned += i.scanned;
        r.skipped += i.skipped;
        r.reclaimed += i.reclaimed;
        r.writeback += i.writeback;
        r
    }

    /// `inactive_is_low`: the inactive list is smaller than active / sqrt(10 * size in GB).
    fn inactive_is_low(&self, inactive: usize, active: usize) -> bool {
        let (i, a) = (
            self.lru.lists[inactive].len as u64,
            self.lru.lists[active].len as u64,
        );
        let gb = (i + a) >> 18;
        let ratio = if gb > 0 {
            ((10 * gb) as f64).sqrt() as u64
        } else {
            1
        };
        i * ratio < a
    }

    fn zone_counter_skip(&self, zi: usize) -> Counter {
        match self.zones[zi].id {
            ZoneId::Normal => Counter::PgskipNormal,
            ZoneId::Movable => Counter::PgskipMovable,
            ZoneId::Cma => Counter::PgskipCma,
        }
    }

    /// Take a page off the tail of `list`. Pages of zones above `reclaim_idx` rotate to
    /// the head and count as skipped (at most one lap of the list per call).
    fn isolate_lru_tail(
        &mut self,
        list: usize,
        reclaim_idx: usize,
        r: &mut ScanResult,
    ) -> Option<Pfn> {
        let len = self.lru.lists[list].len as u64;
        let mut skipped_here = 0;
        while skipped_here < len {
            let pfn = self.lru.lists[list].pop_tail(&mut self.pages)?;
            let zi = self.zone_idx(pfn);
            if zi > reclaim_idx {
                self.lru.lists[list].push_head(&mut self.pages, pfn);
                self.vmstat.inc(self.zone_counter_skip(zi));
                r.skipped += 1;
                skipped_here += 1;
                continue;
            }
            self.pages[pfn].clear(pg::LRU);
            r.scanned += 1;
            return Some(pfn);
        }
        None
    }

    /// `shrink_active_list`: deactivate a batch from the active tail.
    fn shrink_active_list(&mut self, active: usize, reclaim_idx: usize) -> ScanResult {
        let mut r = ScanResult::default();
        let mut moved = 0;
        while moved < SWAP_CLUSTER_MAX {
            let Some(pfn) = self.isolate_lru_tail(active, reclaim_idx, &mut r) else {
                break;
            };
            let p = &mut self.pages[pfn];
            p.clear(pg::ACTIVE);
            p.clear(pg::REFERENCED);
            self.lru_add(pfn);
            moved += 1;
        }
        self.vmstat.add(Counter::Pgrefill, r.scanned + r.skipped);
        self.vmstat.add(Counter::Pgdeactivate, moved as u64);
        r
    }

    /// `shrink_inactive_list` + `shrink_folio_list`: up to 32 pages from the inactive tail.
    fn shrink_inactive_list(&mut self, inactive: usize, reclaim_idx: usize) -> ScanResult {
        let mut r = ScanResult::default();
        let mut taken = 0;
        let mut swap_out = Vec::new();
        while taken < SWAP_CLUSTER_MAX {
            let Some(pfn) = self.isolate_lru_tail(inactive, reclaim_idx, &mut r) else {
                break;
            };
            taken += 1;
            match self.shrink_folio(pfn) {
                Fate::Reclaimed => r.reclaimed += 1,
                Fate::Kept => {}
                Fate::SwapOut => swap_out.push(pfn),
            }
        }
        if !swap_out.is_empty() {
            // The batch's anonymous pages go to swap in one request (the block layer merges
            // the adjacent slots of a swap cluster). kswapd leaves them under writeback, to
            // be freed when the write completes; a direct reclaimer waits for its write
            // (`reclaim_throttle` on writeback; `congestion_wait` before 5.16) and frees
            // them.
            if self.kswapd.reclaiming {
                for &pfn in &swap_out {
                    self.lru_add(pfn);
                }
                self.swap_out_async(&swap_out);
                r.writeback += swap_out.len() as u64;
            } else {
                let done = self.swap_write(swap_out.len() as u64);
                self.charge += done.saturating_sub(self.now);
                for &pfn in &swap_out {
                    self.evict_page(pfn);
                }
                r.reclaimed += swap_out.len() as u64;
            }
        }
        r
    }

    /// Decide one isolated folio's fate: reclaim it, put it back, or write it to swap. A
    /// shmem page is swap-backed like an anonymous one, but read and written through the page
    /// cache, not mapped: PG_referenced alone does not keep it (`folio_check_references`
    /// activates swap-backed folios for referenced ptes only).
    fn shrink_folio(&mut self, pfn: Pfn) -> Fate {
        let page = self.pages[pfn];
        let busy = page.test(pg::EXTRA) || page.test(pg::WRITEBACK);
        let anon = page.kind() == Kind::Anon;
        let swap_backed = page.kind().is_swap_backed();
        if busy || (anon && page.test(pg::REFERENCED)) {
            // Pinned or referenced pages cannot be freed (`__remove_mapping` refcount
            // freeze fails); a referenced mapped page is activated.
            if anon && page.test(pg::REFERENCED) && !busy {
                let p = &mut self.pages[pfn];
                p.set(pg::ACTIVE);
                p.clear(pg::REFERENCED);
                self.vmstat.inc(Counter::Pgactivate);
            }
            self.lru_add(pfn);
            return Fate::Kept;
        }
        if !swap_backed && page.test(pg::DIRTY) {
            // Reclaim does not write file pages itself: the flusher is asked to, and the
            // page rotates (`PG_reclaim`). Back on the LRU first: with
            // `migrate_on_first_dirty` the start of writeback may move the page.
            self.lru_add(pfn);
            self.writeback_pages(&[pfn]);
            return Fate::Kept;
        }
        if swap_backed {
            // `pageout` -> `swap_writepage`: written with the batch (`shrink_inactive_list`).
            return Fate::SwapOut;
        }
        self.evict_page(pfn);
        Fate::Reclaimed
    }

    /// Free a resident page and record why its slot is empty (shadow or swap entry).
    pub(crate) fn evict_page(&mut self, pfn: Pfn) {
        let page = self.pages[pfn];
        if page.test(pg::LRU) {
            self.lru_del(pfn);
        }
        // With gcma, a copy stays in the area's cleancache (clean file pages) or write-through
        // frontswap (anonymous pages, just written to swap by the caller).
        let marker = if page.kind() == Kind::File {
            self.cleancache_put(pfn)
                .unwrap_or(crate::owner::SLOT_EVICTED)
        } else {
            self.frontswap_store(pfn)
                .unwrap_or(crate::owner::SLOT_SWAPPED)
        };
        if let Some(slot) = self.owners.list[page.owner as usize]
            .map
            .get_mut(page.index as usize)
        {
            if *slot == crate::owner::pfn_slot(pfn) {
                *slot = marker;
            }
        }
        self.clear_dirty_accounting(pfn);
        self.account_page_unmapped(pfn);
        let cpu = self.owners.cpu(page.owner);
        self.free_pages(pfn, page.order(), cpu);
    }

    /// `try_to_free_pages`: direct reclaim for a request, charged to it.
    pub(crate) fn try_to_free_pages(&mut self, req: &AllocRequest) -> u64 {
        let highest = self.highest_zone(req.gfp);
        let counter = match self.zones[highest].id {
            ZoneId::Normal => Counter::AllocstallNormal,
            ZoneId::Movable => Counter::AllocstallMovable,
            ZoneId::Cma => Counter::AllocstallCma,
        };
        self.vmstat.inc(counter);
        let nr = (SWAP_CLUSTER_MAX as u64).max(1 << req.order);
        let r = self.shrink_node(nr, highest, false);
        self.kswapd.failures = 0;
        if r.reclaimed == 0 {
            // Everything reclaimable is being written to swap: wait for a write.
            return self.wait_for_swap_write(RECLAIM_THROTTLE_NS);
        }
        r.reclaimed
    }

    /// Whether free CMA pages count towards a zone's watermark for this request. Where the
    /// CMA area is its own zone (ZONE_CMA, ZONE_MOVABLE), the series removed ALLOC_CMA and
    /// every free page counts.
    pub(crate) fn wmark_counts_cma(&self, alloc_cma: bool) -> bool {
        alloc_cma
            || matches!(
                self.cfg.policy.placement,
                Placement::ZoneCma | Placement::MovableZone
            )
    }

    /// `pgdat_balanced`: balanced when *any* eligible zone is above its high watermark,
    /// counting no free CMA pages (`zone_watermark_ok_safe(.., alloc_flags = 0)`).
    pub fn pgdat_balanced(&self, order: u32, highest: usize) -> bool {
        let highest_id = self.zones[highest].id;
        let counts_cma = self.wmark_counts_cma(false);
        self.zones[..=highest].iter().any(|z| {
            z.managed_pages > 0
                && z.watermark_ok(order, z.wmark(Wmark::High), highest_id, counts_cma)
        })
    }

    /// `wakeup_kswapd`.
    pub(crate) fn wake_all_kswapds(&mut self, order: u32, highest: usize) {
        if self.kswapd.running {
            self.kswapd.order = self.kswapd.order.max(order);
            self.kswapd.highest_zone = self.kswapd.highest_zone.max(highest);
            return;
        }
        if self.kswapd.failures >= 16 || self.pgdat_balanced(order, highest) {
            return;
        }
        self.kswapd.running = true;
        self.kswapd.order = order;
        self.kswapd.highest_zone = highest;
        self.vmstat.inc(Counter::KswapdWakeups);
        if self.trace.enabled() {
            let fields = format!("nid=0 order={order}");
            self.trace
                .emit(self.now, "kswapd0", 80, 0, "mm_vmscan_kswapd_wake", &fields);
        }
        self.events
            .schedule(self.now, crate::event::EventKind::Kswapd);
    }

    /// One round of `balance_pgdat`: reclaim a batch, then run again after the time it took,
    /// or sleep when balanced (or when reclaim keeps failing).
    pub(crate) fn kswapd_run(&mut self) {
        let (order, highest) = (self.kswapd.order, self.kswapd.highest_zone);
        if self.pgdat_balanced(order, highest) || self.kswapd.failures >= 16 {
            self.kswapd.running = false;
            if self.trace.enabled() {
                self.trace.emit(
                    self.now,
                    "kswapd0",
                    80,
                    0,
                    "mm_vmscan_kswapd_sleep",
                    "nid=0",
                );
            }
            return;
        }
        // `kswapd_shrink_node`: reclaim the high watermark of every eligible zone per round,
        // so each extra zone (ZONE_CMA, ZONE_MOVABLE) adds to kswapd's work.
        let nr_to_reclaim: u64 = self.zones[..=highest]
            .iter()
            .filter(|z| z.managed_pages > 0)
            .map(|z| z.wmark(Wmark::High).max(SWAP_CLUSTER_MAX as u64))
            .sum();
        // Swap writes already in flight will free a round's worth: kswapd waits for the
        // first to complete (`reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK)`, at most HZ/10)
        // instead of starting more.
        if self.writeback.swap_writing >= nr_to_reclaim {
            let wake = match self.first_swap_write() {
                Some((done, _)) => done.min(self.now + RECLAIM_THROTTLE_ONCE_NS),
                None => self.now + RECLAIM_THROTTLE_ONCE_NS,
            };
            self.events
                .schedule(wake.max(self.now + 1), crate::event::EventKind::Kswapd);
            return;
        }
        self.vmstat.inc(Counter::Pageoutrun);
        let saved = self.take_charge();
        self.kswapd.reclaiming = true;
        let r = self.shrink_node(nr_to_reclaim, highest, true);
        self.kswapd.reclaiming = false;
        let cost = self.take_charge().max(1_000);
        self.charge = saved;
        self.kswapd.busy_ns += cost;
        // kswapd competes for the CPUs with the workloads' runnable tasks (`sched.rs`).
        let wall = self.cpu_wall_ns(cost, crate::sched::Asker::Kswapd);
        if r.reclaimed + r.writeback == 0 {
            self.kswapd.failures += 1;
        } else {
            self.kswapd.failures = 0;
        }
        self.events
            .schedule(self.now + wall, crate::event::EventKind::Kswapd);
    }
}
