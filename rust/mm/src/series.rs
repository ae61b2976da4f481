//! Time series sampled at a fixed interval of virtual time (SPEC §4 "Results": CMA
//! utilisation, free memory, kswapd activity, refaults), kept as a struct of arrays so that
//! Python gets one list per quantity.
//!
//! Every sample is O(CMA areas + zones): nothing scans the frames. Gauges are in pages,
//! `kswapd_busy_ns` is cumulative virtual time, `refaults` and `pgscan` are cumulative
//! counts (difference them for rates).
//!
//! `cma_movable` (CMA pages lent to movable pages) is derived as the areas' pages, less the
//! free ones in the buddy lists (`NR_FREE_CMA_PAGES`), less those handed to devices by
//! `cma_alloc` (sysfs `alloc_pages_success - release_pages_success`), less gcma's cache pages
//! (`cma_cache`, the length of the backend's list). It is approximate in two ways: free CMA
//! pages sitting on the per-CPU lists (at most `pcp.high` per CPU) and free pages of
//! pageblocks isolated by a `cma_alloc` in progress are not in `NR_FREE_CMA_PAGES`, so they
//! count as movable; and ranges taken with `alloc_contig_range` outside `cma_alloc` are not
//! subtracted.

use serde::Serialize;

use crate::event::EventKind;
use crate::vmstat::Counter;
use crate::Machine;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {
    /// Sampling interval (0: not sampling).
    pub interval_ns: u64,
    /// Pages in all CMA areas (`CmaTotal`), to turn `cma_movable` into utilisation.
    pub cma_total: u64,
    pub t_ns: Vec<u64>,
    /// `MemFree` (pages in the buddy free lists, all zones).
    pub mem_free: Vec<u64>,
    /// `CmaFree` (`NR_FREE_CMA_PAGES`, all zones).
    pub cma_free: Vec<u64>,
    /// CMA pages used by movable (user) pages: see the module comment.
    pub cma_movable: Vec<u64>,
    /// CMA pages holding gcma cleancache/frontswap copies (discardable).
    pub cma_cache: Vec<u64>,
    /// CMA pages handed to devices by `cma_alloc` and not released yet (sysfs
    /// `alloc_pages_success - release_pages_success`, all areas).
    pub cma_device: Vec<u64>,
    /// Virtual time kswapd has spent reclaiming, cumulative.
    pub kswapd_busy_ns: Vec<u64>,
    /// `workingset_refault_file + workingset_refault_anon`, cumulative.
    pub refaults: Vec<u64>,
    /// `pgscan_kswapd + pgscan_direct`, cumulative.
    pub pgscan: Vec<u64>,
    pub nr_dirty: Vec<u64>,
    pub nr_writeback: Vec<u64>,
    /// A `Sample` event is in the queue.
    #[serde(skip)]
    pending: bool,
}

impl Machine {
    /// Sample every `interval_ns` from now on, starting now (0 stops sampling). Samples
    /// accumulate across calls.
    pub fn set_sampling(&mut self, interval_ns: u64) {
        self.series.interval_ns = interval_ns;
        self.series.cma_total = self.cma.iter().map(|a| a.count as u64).sum();
        if interval_ns > 0 && !self.series.pending {
            self.series.pending = true;
            self.events.schedule(self.now, EventKind::Sample);
        }
    }

    pub(crate) fn sample(&mut self) {
        self.series.pending = false;
        let interval = self.series.interval_ns;
        if interval == 0 {
            return;
        }
        let free: u64 = self.zones.iter().map(|z| z.nr_free_pages).sum();
        let cma_free: u64 = self.zones.iter().map(|z| z.nr_free_cma).sum();
        let device: u64 = self
            .cma
            .iter()
            .map(|a| {
                a.alloc_pages_success
                    .saturating_sub(a.release_pages_success)
            })
            .sum();
        let cache = self.gcma.lru.len as u64;
        let movable = self
            .series
            .cma_total
            .saturating_sub(cma_free)
            .saturating_sub(device)
            .saturating_sub(cache);
        let v = &self.vmstat;
        let refaults =
            v.get(Counter::WorkingsetRefaultFile) + v.get(Counter::WorkingsetRefaultAnon);
        let pgscan = v.get(Counter::PgscanKswapd) + v.get(Counter::PgscanDirect);
        let s = &mut self.series;
        s.t_ns.push(self.now);
        s.mem_free.push(free);
        s.cma_free.push(cma_free);
        s.cma_movable.push(movable);
        s.cma_cache.push(cache);
        s.cma_device.push(device);
        s.kswapd_busy_ns.push(self.kswapd.busy_ns);
        s.refaults.push(refaults);
        s.pgscan.push(pgscan);
        s.nr_dirty.push(self.writeback.nr_dirty);
        s.nr_writeback.push(self.writeback.nr_writeback);
        s.pending = true;
        self.events.schedule(self.now + interval, EventKind::Sample);
        self.sample_area_maps();
    }

    pub(crate) fn schedule_background(&mut self) {
        self.schedule_flusher();
    }
}
