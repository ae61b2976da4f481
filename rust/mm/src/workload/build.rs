//! `build`: a parallel build (`make -jN`): many short processes, `jobs` of them at a time,
//! each compiling one unit and exiting. What it does to memory is what the 2015 papers'
//! `make -j16` did: anonymous memory and page cache that churn.
//!
//! A process (`fork` + `exec` of a compiler) starts with its kernel memory (`GFP_KERNEL`:
//! kernel stack, `mm_struct`, VMAs and page tables, one page-table page per 512 pages of
//! heap: `8 + anon / 512` pages), then does its work as a sequence of operations whose order
//! is drawn at random, in proportion to what is left of each:
//! - first-touch faults of its heap (`GFP_HIGHUSER_MOVABLE` anonymous pages, written),
//! - re-touches of the heap it has (its working set: a swapped-out page is a swap-in),
//! - reads of the source tree (headers and its own file: shared page cache, Zipf-skewed
//!   over the tree, so headers stay hot and a cold file is read from storage). With
//!   `source_file_pages` the tree is made of files of that many pages and a process reads
//!   whole files, each from its first page to its last with `read()`, as a compiler reads
//!   a source file or a header: through `filemap_read` with the file's own readahead state
//!   (`readahead.rs`; a fresh `struct file` per open), so a cold or evicted file comes back
//!   in a few requests of up to `read_ahead_kb` instead of one request per page. Without it
//!   (0) the tree is read a page at a time at random, one request per miss,
//!
//! and at the end writes its object file (dirty page cache in the output space, written
//! around: older objects are overwritten), then exits: its heap and kernel memory are freed
//! (`exit_mmap`), and make starts the next process in its place.
//!
//! The files' kernel memory grows with their page cache: inodes, dentries and page-cache
//! tree nodes (`GFP_KERNEL | __GFP_RECLAIMABLE` slab), one page per `META_EVERY` pages of
//! the tree or the output first cached (an inode and dentry are about 1.2 KiB per file, and
//! a kernel tree's files average tens of KiB). They stay for the build (no slab shrinker is
//! modelled). Like every allocation that may not use CMA, they check the watermark without
//! the free CMA pages: once the memory outside CMA is used up they wake kswapd, which
//! reclaims until it is above its high watermark again, the mechanism behind both papers'
//! complaint that the area sits idle while the rest of memory thrashes.
//!
//! Time: a process has a CPU time (drawn uniformly within ±50% of `cpu_ns`), spread evenly
//! over its operations. Its wall time is that CPU time under the run queues' load (`sched.rs`:
//! the running processes that are not waiting for storage share the CPUs with kswapd), plus
//! what the kernel charges it (storage reads of cold files, swap-ins, direct reclaim). A
//! process waiting for storage is not runnable. The workload tells the scheduler how many of
//! its processes are runnable, so a `cma_alloc` or kswapd running meanwhile gets its CFS
//! share. The build's elapsed time is `WorkloadStats::finished_ns` (the last exit).
//!
//! Reproduced: the churn of short-lived movable memory (each exit frees a heap, each start
//! faults a new one into whatever free pages the placement gives it), the hot and cold page
//! cache of a source tree, dirty output, unmovable kernel memory per process, CPU-bound
//! progress that slows when the CPUs are shared or when processes wait on swap.
//! Simplified: no shared libraries or page cache of the compiler binary beyond what the tree
//! stands for, no COW of fork (`exec` replaces the image at once), processes are
//! independent (no dependency order, no link step), a heap grows at a uniform pace.

use serde::{Deserialize, Serialize};

use super::spec::Check;
use super::task::Cx;
use super::zipf::Zipf;
use super::Task;
use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::memory::Access;
use crate::owner::{pfn_slot, slot_is_resident, slot_pfn, OwnerId, SLOT_EMPTY};
use crate::page::{pg, Kind};
use crate::pfn::Pfn;
use crate::readahead::FileRaState;
use crate::rng::Rng;
use crate::Machine;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub name: String,
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub stop_ns: Option<u64>,
    /// `make -j`: processes at a time.
    pub jobs: u32,
    /// Processes in all (compile units); None: start new ones until the workload stops.
    #[serde(default)]
    pub processes: Option<u32>,
    /// Mean CPU time of one process.
    pub cpu_ns: u64,
    /// Mean heap of one process (pages), drawn within ±50%.
    pub anon_pages: u32,
    /// Re-touches of its heap per heap page (its working set).
    #[serde(default)]
    pub touches_per_page: f64,
    /// Pages of the source tree.
    pub source_pages: u32,
    /// Source pages one process reads.
    #[serde(default)]
    pub reads_per_process: u32,
    /// Zipf exponent of the reads over the tree (0: uniform): over its pages, or over its
    /// files when it has them.
    #[serde(default)]
    pub source_zipf: f64,
    /// Pages of one source file, read whole and in order (0: no files, the tree is read a
    /// page at a time at random).
    #[serde(default)]
    pub source_file_pages: u32,
    /// Pages of the object file one process writes at its end.
    #[serde(default)]
    pub output_pages: u32,
    /// Pages of output space, written around (0: as much as the build writes in all).
    #[serde(default)]
    pub output_space_pages: u32,
    #[serde(skip)]
    state: BuildState,
}

/// One process slot of `make -j`.
#[derive(Clone, Debug, Default)]
struct Proc {
    alive: bool,
    /// make has yet to start it (its first step at `next_at`).
    pending: bool,
    /// First slot of its region of the owner's mapping: heap, then kernel pages.
    region: u32,
    anon_target: u32,
    anon_done: u32,
    touches_left: u32,
    reads_left: u32,
    writes_left: u32,
    kernel_pages: u32,
    cpu_per_op: u64,
    /// When its next operation may run.
    next_at: u64,
    /// Waiting for storage (or reclaim) until then: not runnable.
    stalled_until: u64,
    /// The source file it is reading, when the tree has files.
    file: Option<OpenFile>,
}

/// A source file a process has open: its length, the next page to read, and its `struct
/// file`'s readahead state.
#[derive(Clone, Debug)]
struct OpenFile {
    pages: u32,
    pos: u32,
    ra: FileRaState,
}

#[derive(Clone, Debug)]
struct BuildState {
    procs: Vec<Proc>,
    started: u32,
    rng: Rng,
    zipf: Option<Zipf>,
    output_base: u32,
    output_space: u32,
    output_cursor: u32,
    regions_base: u32,
    region_pages: u32,
    regions: u32,
    next_region: u32,
    owner: OwnerId,
    /// File metadata: its slots start here; pages of page cache populated so far.
    meta_base: u32,
    meta_slots: u32,
    populated_files: u32,
}

impl BuildState {
    /// The next unit a read draws among `units` (the tree's pages, or its files), by the
    /// Zipf law (built over the same count) or uniformly.
    fn draw_unit(&mut self, units: u32) -> u32 {
        match &self.zipf {
            Some(z) => z.sample(&mut self.rng) - 1,
            None => self.rng.below(units as u64) as u32,
        }
    }
}

impl Default for BuildState {
    fn default() -> Self {
        BuildState {
            procs: Vec::new(),
            started: 0,
            rng: Rng::new(0),
            zipf: None,
            output_base: 0,
            output_space: 0,
            output_cursor: 0,
            regions_base: 0,
            region_pages: 0,
            regions: 0,
            next_region: 0,
            owner: 0,
            meta_base: 0,
            meta_slots: 0,
            populated_files: 0,
        }
    }
}

/// One page of file metadata slab per this many pages of page cache first populated.
const META_EVERY: u32 = 16;

/// Regions per process slot: a region is reused two exits later, by when what could not be
/// freed at an exit (a page isolated by a contiguous allocation in progress, or under
/// writeback) is long free.
const REGIONS_PER_JOB: u32 = 2;

/// The most slots a build's mapping may have (4 bytes of host memory each).
const MAX_BUILD_SLOTS: u64 = 1 << 27;

/// What one operation of process `i` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Grow,
    Touch,
    Read,
    Write,
    Exit,
}

impl Build {
    fn max_anon(&self) -> u32 {
        self.anon_pages + self.anon_pages / 2
    }

    /// `fork` + `exec` of the next process in slot `i` (if the build has any left).
    fn spawn(&mut self, i: usize, m: &mut Machine, stats: &mut super::task::WorkloadStats) {
        if self.processes.is_some_and(|n| self.state.started >= n) {
            self.state.procs[i].alive = false;
            return;
        }
        let max_anon = self.max_anon();
        let s = &mut self.state;
        s.started += 1;
        let region = s.regions_base + s.next_region * s.region_pages;
        s.next_region = (s.next_region + 1) % s.regions;
        let spread = |rng: &mut Rng, mean: u64| mean / 2 + rng.below(mean.max(1));
        let anon = (spread(&mut s.rng, self.anon_pages as u64) as u32).clamp(1, max_anon);
        let cpu = spread(&mut s.rng, self.cpu_ns).max(1);
        let touches = (self.touches_per_page * anon as f64).round() as u32;
        let ops =
            anon as u64 + touches as u64 + self.reads_per_process as u64 + self.output_pages as u64;
        let kernel_pages = 8 + anon / 512;
        // A region reused: free what the process before the last one could not free then.
        free_region(m, s.owner, region, s.region_pages);
        for k in 0..kernel_pages {
            let index = region + max_anon + k;
            match m.alloc_for_slot(s.owner, Gfp::KERNEL, 0, Kind::Kernel, index) {
                Ok(pfn) => m.owners.list[s.owner as usize].map[index as usize] = pfn_slot(pfn),
                Err(_) => stats.alloc_failures += 1,
            }
        }
        let now = m.now;
        let stall = m.take_charge();
        m.charge = stall;
        s.procs[i] = Proc {
            alive: true,
            pending: false,
            region,
            anon_target: anon,
            anon_done: 0,
            touches_left: touches,
            reads_left: self.reads_per_process,
            writes_left: self.output_pages,
            kernel_pages,
            cpu_per_op: (cpu / ops.max(1)).max(1),
            next_at: now + stall,
            stalled_until: now + stall,
            file: None,
        };
    }

    /// The next thing process `i` does: heap faults, re-touches and reads at random in
    /// proportion to what is left of each, then its output, then its exit.
    fn action(&mut self, i: usize) -> Action {
        let s = &mut self.state;
        let p = &s.procs[i];
        let grow = (p.anon_target - p.anon_done) as u64;
        let touch = if p.anon_done > 0 {
            p.touches_left as u64
        } else {
            0
        };
        let read = p.reads_left as u64;
        let total = grow + touch + read;
        if total == 0 {
            if p.touches_left > 0 {
                return Action::Touch;
            }
            return if p.writes_left > 0 {
                Action::Write
            } else {
                Action::Exit
            };
        }
        let r = s.rng.below(total);
        if r < grow {
            Action::Grow
        } else if r < grow + touch {
            Action::Touch
        } else {
            Action::Read
        }
    }

    /// Processes running and not waiting for storage at `now`.
    fn runnable(&self, now: u64) -> u32 {
        self.state
            .procs
            .iter()
            .filter(|p| p.alive && p.stalled_until <= now)
            .count() as u32
    }
}

/// Free what a process left in `[region, region + pages)`: its heap (resident or swapped)
/// and its kernel memory; pages another owner holds, under writeback or isolated by a
/// contiguous allocation stay until the region is reused.
fn free_region(m: &mut Machine, owner: OwnerId, region: u32, pages: u32) {
    for index in region..region + pages {
        let slot = m.owners.list[owner as usize].map[index as usize];
        if slot == SLOT_EMPTY {
            continue;
        }
        if slot_is_resident(slot) {
            let page = m.pages[slot_pfn(slot)];
            if page.test(pg::EXTRA) || page.test(pg::WRITEBACK) || page.test(pg::ISOLATED) {
                continue;
            }
        }
        let freed = m.free_owned(owner, index);
        debug_assert!(freed.is_ok(), "{freed:?}");
    }
}

impl Task for Build {
    const KIND: &'static str = "build";
    type Op = u32;

    fn name(&self) -> &str {
        &self.name
    }

    fn window(&self) -> (u64, Option<u64>) {
        (self.start_ns, self.stop_ns)
    }

    fn validate(&self, check: &Check) -> MmResult<()> {
        check.positive("jobs", self.jobs as u64)?;
        if self.jobs > 1024 {
            return check.bad(format!("jobs = {} is above 1024", self.jobs));
        }
        if let Some(n) = self.processes {
            check.positive("processes", n as u64)?;
        }
        check.positive("cpu_ns", self.cpu_ns)?;
        check.positive("anon_pages", self.anon_pages as u64)?;
        check.positive("source_pages", self.source_pages as u64)?;
        if self.source_file_pages > self.source_pages {
            return check.bad(format!(
                "source_file_pages = {} is larger than the tree ({} pages)",
                self.source_file_pages, self.source_pages
            ));
        }
        let t = self.touches_per_page;
        if !t.is_finite() || !(0.0..=1000.0).contains(&t) {
            return check.bad(format!("touches_per_page = {t} must be between 0 and 1000"));
        }
        let z = self.source_zipf;
        if !z.is_finite() || !(0.0..=10.0).contains(&z) {
            return check.bad(format!(
                "source_zipf = {z} must be between 0 (uniform) and 10"
            ));
        }
        let region = (self.max_anon() as u64 + 8 + self.max_anon() as u64 / 512)
            * (self.jobs * REGIONS_PER_JOB) as u64;
        let total = region + self.source_pages as u64 + self.output_space() as u64;
        if total > MAX_BUILD_SLOTS {
            return check.bad(format!(
                "the build maps {total} pages (heaps of every job, source tree, output): \
                 shrink anon_pages, source_pages or output_space_pages"
            ));
        }
        Ok(())
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, start: u64) {
        let region_pages = self.max_anon() + 8 + self.max_anon() / 512;
        let regions = self.jobs * REGIONS_PER_JOB;
        let output_space = self.output_space();
        let output_base = self.source_pages;
        let meta_base = output_base + output_space;
        let meta_slots = (self.source_pages + output_space) / META_EVERY + 1;
        let regions_base = meta_base + meta_slots;
        m.reserve_slots(owner, regions_base + regions * region_pages);
        self.state = BuildState {
            procs: vec![Proc::default(); self.jobs as usize],
            started: 0,
            rng: Rng::new(m.rng.next_u64()),
            zipf: (self.source_zipf > 0.0).then(|| Zipf::new(self.read_units(), self.source_zipf)),
            output_base,
            output_space,
            output_cursor: 0,
            regions_base,
            region_pages,
            regions,
            next_region: 0,
            owner,
            meta_base,
            meta_slots,
            populated_files: 0,
        };
        // make starts its jobs at `start`, one step each (`spawn`).
        for p in &mut self.state.procs {
            p.pending = true;
            p.next_at = start;
        }
    }

    /// The process whose next operation is due first.
    fn next_op(&self, _free_at: u64) -> Option<(u64, u32)> {
        self.state
            .procs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.alive || p.pending)
            .min_by_key(|(_, p)| p.next_at)
            .map(|(i, p)| (p.next_at, i as u32))
    }

    fn run(&mut self, i: u32, cx: &mut Cx<'_>) {
        let i = i as usize;
        let owner = cx.owner;
        if self.state.procs[i].pending {
            self.spawn(i, cx.m, cx.stats);
            let runnable = self.runnable(cx.m.now);
            cx.m.sched.set_runnable(owner as u32, runnable);
            return;
        }
        let action = self.action(i);
        let s = &mut self.state;
        let p = &mut s.procs[i];
        let gfp = Gfp::HIGHUSER_MOVABLE;
        match action {
            Action::Grow => {
                let index = p.region + p.anon_done;
                let r = cx.m.touch_slot(owner, index, gfp, Kind::Anon, true);
                if cx.record(r).is_some() {
                    p.anon_done += 1;
                } else {
                    // Out of memory for this page: the process makes do with less.
                    p.anon_target -= 1;
                }
            }
            Action::Touch => {
                p.touches_left -= 1;
                if p.anon_done > 0 {
                    let index = p.region + s.rng.below(p.anon_done as u64) as u32;
                    let write = s.rng.below(2) == 0;
                    let r = cx.m.touch_slot(owner, index, gfp, Kind::Anon, write);
                    cx.record(r);
                }
            }
            Action::Read if self.source_file_pages > 0 => {
                p.reads_left -= 1;
                let (r, populated) = self.read_source_file(i, cx);
                if cx.record(r).is_some() {
                    cx.stats.pages_read += 1;
                }
                for _ in 0..populated {
                    self.file_metadata(cx);
                }
            }
            Action::Read => {
                p.reads_left -= 1;
                let index = s.draw_unit(self.source_pages);
                let r = cx.m.touch_slot(owner, index, gfp, Kind::File, false);
                let populated = matches!(r, Ok((_, Access::Populated)));
                if cx.record(r).is_some() {
                    cx.stats.pages_read += 1;
                }
                if populated {
                    self.file_metadata(cx);
                }
            }
            Action::Write => {
                p.writes_left -= 1;
                let index = s.output_base + s.output_cursor;
                s.output_cursor = (s.output_cursor + 1) % s.output_space.max(1);
                let r = cx.m.touch_slot(owner, index, gfp, Kind::File, true);
                let populated = matches!(r, Ok((_, Access::Populated)));
                if cx.record(r).is_some() {
                    cx.stats.pages_written += 1;
                }
                if populated {
                    self.file_metadata(cx);
                }
            }
            Action::Exit => {
                let (region, pages) = (p.region, s.region_pages);
                debug_assert!(p.kernel_pages <= pages);
                free_region(cx.m, owner, region, pages);
                self.spawn(i, cx.m, cx.stats);
                let runnable = self.runnable(cx.m.now);
                cx.m.sched.set_runnable(owner as u32, runnable);
                return;
            }
        }
        // What the kernel charged this operation (storage, swap-in, reclaim): the process
        // waits for it, off the CPU; then its CPU time under the run queues' load.
        let stall = cx.m.take_charge();
        cx.m.charge = stall;
        let now = cx.m.now;
        let runnable = self.runnable(now);
        let cpu = self.state.procs[i].cpu_per_op;
        let wall = cx.m.cpu_wall_ns_among(cpu, runnable);
        let p = &mut self.state.procs[i];
        p.stalled_until = now + stall;
        p.next_at = now + stall + wall;
        let runnable = self.runnable(now);
        cx.m.sched.set_runnable(owner as u32, runnable);
    }

    /// Each process runs on its own: the workload's own clock is not one task's.
    fn task_bound(_op: u32) -> bool {
        false
    }

    fn stop(&mut self) {
        for p in &mut self.state.procs {
            p.alive = false;
            p.pending = false;
        }
    }
}

impl Build {
    /// What a read draws from: the tree's files, or its pages when it has no files.
    fn read_units(&self) -> u32 {
        match self.source_file_pages {
            0 => self.source_pages,
            per_file => self.source_pages.div_ceil(per_file),
        }
    }

    /// The next page of the source file process `i` is reading, opening the next file (drawn
    /// over the tree's files) when it has none or has read its last page: `filemap_read`
    /// with that file's readahead. Returns the read and how many pages it brought into the
    /// page cache for the first time (the page itself, readahead's).
    fn read_source_file(&mut self, i: usize, cx: &mut Cx<'_>) -> (MmResult<(Pfn, Access)>, u32) {
        let per_file = self.source_file_pages;
        let files = self.read_units();
        let s = &mut self.state;
        let read_to_end = s.procs[i].file.as_ref().is_none_or(|f| f.pos >= f.pages);
        if read_to_end {
            let base = s.draw_unit(files) * per_file;
            s.procs[i].file = Some(OpenFile {
                pages: per_file.min(self.source_pages - base),
                pos: 0,
                ra: FileRaState::for_file_at(cx.m.cfg.read_ahead_kb, base),
            });
        }
        let f = s.procs[i].file.as_mut().expect("opened above");
        let index = f.pos;
        f.pos += 1;
        match cx.filemap_read(index, &mut f.ra, f.pages) {
            Ok(read) => {
                let own = u32::from(matches!(read.access, Access::Populated));
                (Ok((read.pfn, read.access)), read.populated + own)
            }
            Err(e) => (Err(e), 0),
        }
    }

    /// A page of the tree or the output entered the page cache: every `META_EVERY`th one
    /// brings a page of inode, dentry and tree-node slab (reclaimable, not movable).
    fn file_metadata(&mut self, cx: &mut Cx<'_>) {
        let s = &mut self.state;
        s.populated_files += 1;
        if s.populated_files % META_EVERY != 0 {
            return;
        }
        let n = s.populated_files / META_EVERY - 1;
        if n >= s.meta_slots {
            return;
        }
        let index = s.meta_base + n;
        match cx
            .m
            .alloc_for_slot(s.owner, Gfp::KERNEL_RECLAIMABLE, 0, Kind::Kernel, index)
        {
            Ok(pfn) => cx.m.owners.list[s.owner as usize].map[index as usize] = pfn_slot(pfn),
            Err(_) => cx.stats.alloc_failures += 1,
        }
    }

    /// Pages of output space: as set, or what the whole build writes (at least one object).
    fn output_space(&self) -> u32 {
        if self.output_pages == 0 {
            return 0;
        }
        if self.output_space_pages > 0 {
            return self.output_space_pages;
        }
        let n = self.processes.unwrap_or(self.jobs * 64) as u64;
        (n * self.output_pages as u64).min(u32::MAX as u64 / 4) as u32
    }
}
