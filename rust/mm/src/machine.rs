//! The machine: one node of physical memory with its allocator state, the clock and the
//! event loop. Each kernel mechanism adds its methods to `Machine` in the file named after
//! it (`page_alloc.rs`, `migrate.rs`, `cma.rs`, ...), the way `mm/` functions share the
//! global state of a node.

use rustc_hash::FxHashMap;

use crate::cma::{CmaArea, CmaJob, CmaLocks};
use crate::config::{MachineConfig, Placement, MAX_PAGE_ORDER, PAGE_SIZE};
use crate::error::{MmError, MmResult};
use crate::event::{EventKind, EventQueue};
use crate::gup::Holds;
use crate::owner::{Owners, OWNER_KERNEL};
use crate::page::{Kind, Page};
use crate::page_alloc::{Fpi, PerCpuPages};
use crate::pageblock::{Migratetype, Pageblocks};
use crate::pfn::Pfn;
use crate::rng::Rng;
use crate::trace::{Dmesg, Trace, TraceEvents};
use crate::vmscan::Lru;
use crate::vmstat::Vmstat;
use crate::workload::Workloads;
use crate::zone::{default_min_free_kbytes, setup_watermarks, Zone, ZoneId};

pub struct Machine {
    pub cfg: MachineConfig,
    pub pages: Vec<Page>,
    pub pageblocks: Pageblocks,
    /// Ordered by `ZoneId`.
    pub zones: Vec<Zone>,
    /// `[zone index * cpus + cpu]`.
    pub pcp: Vec<PerCpuPages>,
    pub cma: Vec<CmaArea>,
    pub cma_locks: CmaLocks,
    pub jobs: Vec<CmaJob>,
    /// The contiguous allocations handed out, and their owners (`allocation.rs`).
    pub allocations: crate::allocation::Allocations,
    /// Device requests through the dma-heap (`dma_heap.rs`), by id.
    pub dma_requests: Vec<crate::dma_heap::DmaHeapRequest>,
    pub holds: Holds,
    pub lru: Lru,
    /// Which CPUs hold pages in their LRU batches (`swap.rs`).
    pub lru_batches: crate::swap::LruBatches,
    pub owners: Owners,
    pub workloads: Workloads,
    pub events: EventQueue,
    pub now: u64,
    /// Events dispatched by `run_slice` so far (against `MachineConfig::max_events`).
    pub events_run: u64,
    /// Where the current `run_until`/`run_while` stops: events may move the clock forward
    /// within their own work (a workload's batch of operations) but never past it.
    pub horizon: u64,
    pub vmstat: Vmstat,
    pub trace: Trace,
    pub dmesg: Dmesg,
    pub rng: Rng,
    /// Completion time of each page under writeback.
    pub writeback_end: FxHashMap<Pfn, u64>,
    /// Virtual time charged to whoever is calling into the allocator right now (direct
    /// reclaim, storage reads, migration on pin). Callers take it with `take_charge`.
    pub charge: u64,
    pub kswapd: crate::vmscan::Kswapd,
    pub writeback: crate::writeback::Writeback,
    pub series: crate::series::Series,
    /// The guaranteed-CMA backend's cache pages (`gcma.rs`).
    pub gcma: crate::gcma::Gcma,
    /// The CMA areas' pages by state, sampled with the series when asked (`cma_map.rs`).
    pub area_maps: crate::cma_map::AreaMaps,
    /// The run queues' load: tasks the workloads keep runnable (`sched.rs`).
    pub sched: crate::sched::Sched,
    /// The node page counters behind `/proc/meminfo` (`meminfo.rs`).
    pub node_stat: crate::meminfo::NodeStat,
    /// The OOM killer's view of the tasks (`oom_kill.rs`).
    pub oom: crate::oom_kill::Oom,
}

impl Machine {
    pub fn new(cfg: MachineConfig) -> MmResult<Machine> {
        cfg.validate()?;
        let nr_pages = (cfg.ram / PAGE_SIZE) as u32;
        let cma_pages: u32 = cfg
            .cma_areas
            .iter()
            .map(|a| (a.size / PAGE_SIZE) as u32)
            .sum();
        let cma_start = Pfn(nr_pages - cma_pages);
        let zones = zone_layout(cfg.policy.placement, Pfn(nr_pages), cma_start, cma_pages);
        let cpus = cfg.cpus;
        let mut m = Machine {
            pages: frames(nr_pages)?,
            pageblocks: Pageblocks::new(nr_pages as u64, cfg.pageblock_order),
            pcp: (0..zones.len() * cpus as usize)
                .map(|_| PerCpuPages::default())
                .collect(),
            zones,
            cma: Vec::new(),
            cma_locks: CmaLocks::default(),
            jobs: Vec::new(),
            allocations: Default::default(),
            dma_requests: Vec::new(),
            holds: Holds::default(),
            lru: Lru::default(),
            lru_batches: crate::swap::LruBatches::new(cpus),
            owners: Owners::new(cpus),
            workloads: Workloads::default(),
            events: EventQueue::default(),
            now: 0,
            events_run: 0,
            horizon: 0,
            vmstat: Vmstat::default(),
            trace: Trace::with_events(cfg.trace_limit, TraceEvents::of(&cfg.trace_events)?),
            dmesg: Dmesg::default(),
            rng: Rng::new(cfg.seed),
            writeback_end: FxHashMap::default(),
            charge: 0,
            kswapd: Default::default(),
            writeback: Default::default(),
            series: Default::default(),
            gcma: Default::default(),
            area_maps: Default::default(),
            sched: Default::default(),
            node_stat: Default::default(),
            oom: Default::default(),
            cfg,
        };
        m.boot(cma_start)?;
        Ok(m)
    }

    /// `mm_init` in miniature: keep the reserved memory, mark the CMA pageblocks
    /// (`init_cma_reserved_pageblock`), hand everything else to the buddy allocator
    /// (`memblock_free_all`), then compute watermarks and per-CPU list sizes.
    fn boot(&mut self, cma_start: Pfn) -> MmResult<()> {
        let reserved = Pfn((self.cfg.reserved / PAGE_SIZE) as u32);
        for pfn in Pfn::range(Pfn(0), reserved) {
            let page = &mut self.pages[pfn];
            page.set_kind(Kind::Reserved);
            page.owner = OWNER_KERNEL;
        }
        let mut base = self.end_pfn();
        let areas = self.cfg.cma_areas.clone();
        for (i, area) in areas.iter().enumerate() {
            let count = (area.size / PAGE_SIZE) as u32;
            base -= count;
            for pb in Pfn::range_step(base, base + count, self.pageblocks.nr_pages()) {
                self.pageblocks.set(pb, Migratetype::Cma);
            }
            self.cma
                .push(CmaArea::new(i, &area.name, base, count, area.order_per_bit));
        }
        debug_assert_eq!(base, cma_start);
        for zi in 0..self.zones.len() {
            let (start, end) = (
                self.zones[zi].start_pfn.max(reserved),
                self.zones[zi].end_pfn,
            );
            self.zones[zi].managed_pages = end.0.saturating_sub(start.0) as u64;
            self.free_range_at_boot(start, end);
        }
        self.init_per_zone_wmark_min();
        self.schedule_background();
        Ok(())
    }

    /// `init_per_zone_wmark_min` + `zone_pcp_update`: watermarks, lowmem reserves and
    /// per-CPU list sizes from the zones' managed pages and low watermarks (at boot, and
    /// again when memory hotplug changes them: 6.1's `setup_per_zone_wmarks` ends with
    /// `zone_pcp_update`, since `pcp->high` follows the low watermark).
    pub(crate) fn init_per_zone_wmark_min(&mut self) {
        let lowmem: u64 = self
            .zones
            .iter()
            .filter(|z| z.id == ZoneId::Normal)
            .map(|z| z.managed_pages)
            .sum();
        let min_free_kbytes = self
            .cfg
            .min_free_kbytes
            .unwrap_or_else(|| default_min_free_kbytes(lowmem));
        setup_watermarks(
            &mut self.zones,
            min_free_kbytes,
            self.cfg.watermark_scale_factor,
        );
        for zi in 0..self.zones.len() {
            let zone = &self.zones[zi];
            let low = zone.wmark(crate::zone::Wmark::Low);
            let (high, batch) = PerCpuPages::sizes(zone.managed_pages, low, self.cfg.cpus);
            for cpu in 0..self.cfg.cpus as usize {
                let pcp = &mut self.pcp[zi * self.cfg.cpus as usize + cpu];
                pcp.high = high;
                pcp.batch = batch;
            }
        }
    }

    /// Hand `[start, end)` to the buddy allocator as 6.1 does at boot: memory outside CMA
    /// areas in the largest naturally aligned blocks, to the tails of the free lists
    /// (`memblock_free_all` -> `__free_pages_core`, `FPI_TO_TAIL` since 5.10: the lowest
    /// blocks end up first); each CMA pageblock on its own, in ascending order
    /// (`cma_activate_area` -> `init_cma_reserved_pageblock` -> `__free_pages`, which merges
    /// pairs into MAX_ORDER blocks at the head: the area is used from its top down).
    /// The frames are still `Page::FREE` from `Machine::new` (boot touches only the reserved
    /// ones, below `start`), so each block goes straight to the buddy lists: only its head
    /// frame is written, the rest of the (zeroed) frame array stays untouched. The top-order
    /// blocks outside CMA areas are deferred (`mm_init.rs`): not even their head is written
    /// until they are needed.
    fn free_range_at_boot(&mut self, start: Pfn, end: Pfn) {
        let mut pfn = start;
        let pb_order = self.pageblocks.order;
        while pfn < end {
            let cma = self.pageblocks.get(pfn) == Migratetype::Cma;
            let mut order = if cma { pb_order } else { MAX_PAGE_ORDER };
            while order > 0 && (!pfn.is_aligned(order) || pfn + (1 << order) > end) {
                order -= 1;
            }
            // CMA areas are whole MAX_ORDER blocks at the end of memory (`config.rs`): a
            // block outside them never covers a CMA pageblock.
            debug_assert!(cma || self.pageblocks.get(pfn + ((1 << order) - 1)) != Migratetype::Cma);
            debug_assert!(self.pages[pfn.idx()..(pfn + (1 << order)).idx()]
                .iter()
                .all(|p| *p == Page::FREE));
            if !cma && order == MAX_PAGE_ORDER && self.cfg.deferred_struct_page_init {
                self.free_boot_block_deferred(self.zone_idx(pfn), pfn);
            } else {
                let fpi = if cma { Fpi::None } else { Fpi::ToTail };
                self.free_one_page_fpi(pfn, order, fpi);
            }
            pfn += 1 << order;
        }
    }

    pub fn nr_pages(&self) -> u32 {
        self.pages.len() as u32
    }

    /// The frame after the last one: memory is `[Pfn(0), end_pfn())`.
    #[inline]
    pub fn end_pfn(&self) -> Pfn {
        Pfn(self.pages.len() as u32)
    }

    /// Index into `zones` of the zone spanning `pfn`.
    #[inline]
    pub fn zone_idx(&self, pfn: Pfn) -> usize {
        let mut zi = 0;
        while zi + 1 < self.zones.len() && pfn >= self.zones[zi + 1].start_pfn {
            zi += 1;
        }
        zi
    }

    #[inline]
    pub fn take_charge(&mut self) -> u64 {
        std::mem::take(&mut self.charge)
    }

    /// Run every event due at or before `t`, then stop the clock at `t`.
    pub fn run_until(&mut self, t: u64) {
        self.horizon = t;
        while let Some(ev) = self.events.pop_due(t) {
            self.now = self.now.max(ev.at);
            self.dispatch(ev.kind);
        }
        self.now = self.now.max(t);
    }

    /// Run like `run_while`, but stop after `max_events` events to let the caller look up
    /// (the binding checks for Ctrl-C between slices): `Slice::Paused` then, and calling
    /// again with the same `limit` goes on exactly where it stopped (the horizon is the same,
    /// so results do not depend on where slices end). Counts every event against the
    /// machine's `max_events` budget: a run that would pass it stops with `MmError::Budget`.
    pub fn run_slice(
        &mut self,
        limit: u64,
        max_events: u64,
        mut done: impl FnMut(&Machine) -> bool,
    ) -> MmResult<Slice> {
        self.horizon = limit;
        for _ in 0..max_events {
            if done(self) {
                return Ok(Slice::Done);
            }
            let Some(ev) = self.events.pop_due(limit) else {
                self.now = self.now.max(limit);
                return Ok(if done(self) {
                    Slice::Done
                } else {
                    Slice::Reached
                });
            };
            self.count_event()?;
            self.now = self.now.max(ev.at);
            self.dispatch(ev.kind);
        }
        Ok(Slice::Paused)
    }

    /// One more event against the budget (`MachineConfig::max_events`).
    fn count_event(&mut self) -> MmResult<()> {
        self.events_run += 1;
        if self.events_run <= self.cfg.max_events {
            return Ok(());
        }
        Err(MmError::Budget(format!(
            "the machine has run {} events, its budget (max_events): a workload rate, a sampling \
             interval or a duration asks for more than the engine can simulate in reasonable \
             time; raise max_events (Scenario.max_events, Machine(max_events=...)) to go on",
            self.cfg.max_events
        )))
    }

    /// Run until `done` holds or the clock reaches `limit`; true if `done` held.
    pub fn run_while(&mut self, limit: u64, mut done: impl FnMut(&Machine) -> bool) -> bool {
        self.horizon = limit;
        loop {
            if done(self) {
                return true;
            }
            match self.events.pop_due(limit) {
                Some(ev) => {
                    self.now = self.now.max(ev.at);
                    self.dispatch(ev.kind);
                }
                None => {
                    self.now = self.now.max(limit);
                    return done(self);
                }
            }
        }
    }

    fn dispatch(&mut self, kind: EventKind) {
        match kind {
            EventKind::CmaJob(id) => self.cma_job_step(id),
            EventKind::ReleaseHold(id) => self.release_hold_event(id),
            EventKind::ReleaseHolds(group) => self.release_hold_group(group),
            EventKind::WritebackDone(id) => self.writeback_request_done(id),
            EventKind::Kswapd => self.kswapd_run(),
            EventKind::Workload(id) => self.workload_step(id),
            EventKind::Flusher => self.flusher_run(),
            EventKind::Sample => self.sample(),
        }
    }
}

/// The frame array, every frame free; a host that cannot hold it is an error, not an abort.
fn frames(nr_pages: u32) -> MmResult<Vec<Page>> {
    Page::try_zeroed_vec(nr_pages as usize).ok_or_else(|| {
        MmError::OutOfMemory(format!(
            "the host cannot hold the {nr_pages} frames of this board ({} MiB of host memory)",
            (nr_pages as u64 * std::mem::size_of::<Page>() as u64) >> 20
        ))
    })
}

/// Zones for a placement: everything in ZONE_NORMAL, or the CMA areas (at the top of
/// memory, where memblock puts them) in their own ZONE_MOVABLE or ZONE_CMA.
fn zone_layout(placement: Placement, end: Pfn, cma_start: Pfn, cma_pages: u32) -> Vec<Zone> {
    let own_zone = match placement {
        Placement::ZoneCma => Some(ZoneId::Cma),
        Placement::MovableZone => Some(ZoneId::Movable),
        _ => None,
    };
    match own_zone {
        Some(id) if cma_pages > 0 => {
            vec![
                Zone::new(ZoneId::Normal, Pfn(0), cma_start),
                Zone::new(id, cma_start, end),
            ]
        }
        _ => vec![Zone::new(ZoneId::Normal, Pfn(0), end)],
    }
}

/// Where `Machine::run_slice` stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slice {
    /// The condition holds.
    Done,
    /// The clock reached the limit.
    Reached,
    /// The slice's events are spent: call again to go on.
    Paused,
}
