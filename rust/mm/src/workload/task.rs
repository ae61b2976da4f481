//! The life of a workload: start, the step loop, stop and reap, and its statistics.
//!
//! Each workload is a task with its own owner (its name), so every page it maps and every
//! pin it takes is attributed to it: that is how a report names what blocked a device. It
//! runs as one event, `EventKind::Workload(id)`, that does a batch of operations and
//! schedules itself again. Operations happen at their own virtual times: the step moves the
//! clock forward from one operation to the next, but never past the next pending event or
//! the end of the current `run_until`, so whatever else the machine does (kswapd, writeback
//! completions, pin releases, `cma_alloc` batches) interleaves with the workload exactly as
//! it would one operation at a time, and the event heap is touched once per batch, not once
//! per page.
//!
//! Pacing: a workload's rate spaces its operations (`1 / rate` apart); the virtual time the
//! engine charges to an operation (direct reclaim, storage reads on a miss, migration on
//! pin, dirty throttling, fsync) is time the task is stalled, and its next operation cannot
//! start before the stall is over. So an operation takes `max(1 / rate, charged time)`: a
//! reader that misses in the page cache does less, as a real task blocked on I/O would.
//! Missed operations are not made up later.
//!
//! Stopping a workload releases its holds and frees its pages (the file is truncated, the
//! process exits). Two kinds of page cannot be freed at that instant: a page under writeback
//! (or isolated by a contiguous allocation in progress) is freed when that is over (a
//! follow-up event reaps it); a page another owner holds (a reference taken from Python) is
//! left where it is, still mapped by the stopped workload: user pages stay on the LRU for
//! reclaim to evict once the reference is dropped.
//!
//! An allocation that fails even after direct reclaim and the OOM killer (-ENOMEM) is counted
//! in `alloc_failures` and the workload carries on. A workload the OOM killer chose
//! (`oom_kill.rs`) does no more operations: its memory is freed at the kill and its stop runs
//! at once.

use serde::Serialize;

use super::{Task, WorkloadKind};
use crate::error::{misuse, MmError, MmResult};
use crate::event::{EventKind, EventQueue};
use crate::gfp::Gfp;
use crate::memory::Access;
use crate::owner::{slot_is_resident, slot_pfn, OwnerId, SLOT_EMPTY};
use crate::page::{pg, Kind};
use crate::pfn::Pfn;
use crate::readahead::{FileRaState, RaRead};
use crate::vmstat::Counter;
use crate::Machine;

/// `EventKind::Workload` ids with this bit set stop the workload (or reap what it left).
const STOP_EVENT: u32 = 1 << 31;
/// A step yields after this many operations even if nothing else is due.
const MAX_OPS_PER_STEP: u32 = 4096;
/// How often a stopped workload looks again for pages isolated by a contiguous allocation.
const REAP_RETRY_NS: u64 = 1_000_000;

/// What a workload has done (cumulative), as `workload_stats` reports it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct WorkloadStats {
    pub name: String,
    pub kind: &'static str,
    pub running: bool,
    /// Operations done: page reads and writes, touches, I/Os, allocations and frees.
    pub ops: u64,
    pub pages_read: u64,
    pub pages_written: u64,
    /// Accesses that found the page resident.
    pub hits: u64,
    /// First touches: new page cache or anonymous pages.
    pub populated: u64,
    /// File pages read again after reclaim dropped them (`workingset_refault_file`).
    pub refaults: u64,
    pub swapins: u64,
    pub cleancache_hits: u64,
    /// Pins (FOLL_PIN, FOLL_LONGTERM) and, for `fs_mount` and `direct_io` with a
    /// `get_page`/`get_page_short` hold, page references taken.
    pub pins_taken: u64,
    pub pin_failures: u64,
    pub alloc_failures: u64,
    /// Virtual time the task spent stalled in the engine (reclaim, storage, migration,
    /// throttling, fsync).
    pub stall_ns: u64,
    /// Pages migrated out of CMA on its behalf (`migrate_on_*pin`, `migrate_on_first_dirty`).
    pub migrations_charged: u64,
    /// Pages it has resident now (after a stop: the ones it could not free yet).
    pub resident_pages: u64,
    /// When it ran out of operations (a build: its last process exited), if it has.
    pub finished_ns: Option<u64>,
}

/// One started workload: its kind (spec and the kind's own progress) and what the step loop
/// keeps for every kind.
#[derive(Clone, Debug)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub owner: OwnerId,
    pub running: bool,
    task: TaskState,
}

/// The step loop's bookkeeping, the same for every kind.
#[derive(Clone, Debug)]
struct TaskState {
    stats: WorkloadStats,
    /// When the task is done with its last operation (its stall included).
    free_at: u64,
    /// A step event is in the queue.
    step_pending: bool,
    /// Stopped with pages left to free later (a reap event is in the queue).
    reap_pending: bool,
    /// Length of the owner's mapping once the workload started (see
    /// `workload_resident_pages`).
    map_len: usize,
}

impl TaskState {
    /// Queue the next step at `at`, unless one is queued already.
    fn schedule_step(&mut self, events: &mut EventQueue, id: u32, at: u64) {
        if !self.step_pending {
            self.step_pending = true;
            events.schedule(at, EventKind::Workload(id));
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Workloads {
    pub list: Vec<Workload>,
}

/// What an operation works with besides its kind's own state: the machine, the owner it
/// runs as and the statistics it counts into.
pub(crate) struct Cx<'a> {
    pub(crate) m: &'a mut Machine,
    pub(crate) owner: OwnerId,
    pub(crate) stats: &'a mut WorkloadStats,
}

impl Cx<'_> {
    /// `filemap_read` of page `index` of the workload's file (`readahead.rs`), with the pages
    /// readahead brought in tallied: first reads and refaults.
    pub(crate) fn filemap_read(
        &mut self,
        index: u32,
        ra: &mut FileRaState,
        file_pages: u32,
    ) -> MmResult<RaRead> {
        let read = self.m.filemap_read(self.owner, index, ra, file_pages)?;
        self.stats.populated += read.populated as u64;
        self.stats.refaults += read.refaulted as u64;
        Ok(read)
    }

    /// Count what an access found, or an allocation failure; the frame accessed.
    pub(crate) fn record(&mut self, result: MmResult<(Pfn, Access)>) -> Option<Pfn> {
        let stats = &mut *self.stats;
        match result {
            Ok((pfn, how)) => {
                match how {
                    Access::Hit => stats.hits += 1,
                    Access::Populated => stats.populated += 1,
                    Access::Refault => stats.refaults += 1,
                    Access::SwapIn => stats.swapins += 1,
                    Access::CleancacheHit => stats.cleancache_hits += 1,
                }
                Some(pfn)
            }
            Err(e) => {
                debug_assert!(matches!(e, MmError::OutOfMemory(_)), "{e:?}");
                stats.alloc_failures += 1;
                None
            }
        }
    }

    /// Tally a pin or reference the workload took (or failed to take).
    pub(crate) fn count_hold(&mut self, held: &MmResult<(u64, Pfn)>) {
        match held {
            Ok(_) => self.stats.pins_taken += 1,
            Err(_) => self.stats.pin_failures += 1,
        }
    }

    /// Fault in the next page of a buffer filled at start (a direct-I/O buffer, a long-term
    /// pinner's buffer populated before it is pinned).
    pub(crate) fn populate_next(&mut self, populated: &mut u32) {
        let index = *populated;
        *populated += 1;
        let r = self
            .m
            .touch_slot(self.owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, true);
        self.record(r);
    }
}

/// Nanoseconds between operations at `rate` per second (at least 1).
pub(crate) fn interval_ns(rate: f64) -> u64 {
    ((1e9 / rate).round() as u64).max(1)
}

impl Machine {
    /// Start a background workload; it runs from `start_ns` (or now, if that has passed).
    /// Returns its id.
    pub fn start_workload(&mut self, mut kind: WorkloadKind) -> MmResult<u32> {
        kind.validate()?;
        let (start, stop) = kind.window();
        if let Some(stop) = stop {
            if stop <= self.now {
                return Err(MmError::InvalidConfig(format!(
                    "workload {:?}: stop_ns ({stop}) is not after the current time ({}): \
                     pick a later stop or none",
                    kind.name(),
                    self.now
                )));
            }
        }
        let owner = self.workload_owner(kind.name())?;
        let start = start.max(self.now);
        kind.start(self, owner, start);
        let id = self.workloads.list.len() as u32;
        if id >= STOP_EVENT {
            return misuse("too many workloads (2^31)");
        }
        let stats = WorkloadStats {
            name: kind.name().to_string(),
            kind: kind.kind(),
            running: true,
            ..Default::default()
        };
        let map_len = self.owners.list[owner as usize].map.len();
        let mut task = TaskState {
            stats,
            free_at: start,
            step_pending: false,
            reap_pending: false,
            map_len,
        };
        task.schedule_step(&mut self.events, id, start);
        self.workloads.list.push(Workload {
            kind,
            owner,
            running: true,
            task,
        });
        if let Some(stop) = stop {
            self.events
                .schedule(stop, EventKind::Workload(id | STOP_EVENT));
        }
        self.oom_task_started(id, owner);
        Ok(id)
    }

    /// The owner a new workload runs as: its name, which must not be in use by a running
    /// workload or own pages already (two tasks would share one file mapping).
    fn workload_owner(&mut self, name: &str) -> MmResult<OwnerId> {
        let owner = self.owners.intern(name)?;
        if owner <= crate::owner::OWNER_KERNEL {
            return Err(MmError::InvalidConfig(format!(
                "workload name {name:?} is reserved: choose another"
            )));
        }
        if self
            .workloads
            .list
            .iter()
            .any(|w| w.running && w.owner == owner)
        {
            return Err(MmError::InvalidConfig(format!(
                "a workload named {name:?} is already running: give each workload its own name"
            )));
        }
        if self.owners.list[owner as usize]
            .map
            .iter()
            .any(|&s| s != SLOT_EMPTY)
        {
            return Err(MmError::InvalidConfig(format!(
                "owner {name:?} already has pages: give the workload a name of its own"
            )));
        }
        Ok(owner)
    }

    fn workload(&self, id: u32) -> MmResult<&Workload> {
        self.workloads.list.get(id as usize).ok_or_else(|| {
            MmError::Misuse(format!(
                "no workload #{id}: {} were started",
                self.workloads.list.len()
            ))
        })
    }

    /// Stop a workload now: no more operations; its holds are released and its pages freed
    /// (see the module comment for pages that cannot be freed at once). Stopping a stopped
    /// workload does nothing.
    pub fn stop_workload(&mut self, id: u32) -> MmResult<()> {
        if !self.workload(id)?.running {
            return Ok(());
        }
        let saved = self.take_charge();
        let w = &mut self.workloads.list[id as usize];
        w.running = false;
        w.kind.stop();
        let owner = w.owner;
        // A stopped workload keeps no task runnable (`sched.rs`).
        self.sched.set_runnable(owner as u32, 0);
        let holds: Vec<u64> = self
            .holds
            .by_id
            .iter()
            .filter(|(_, h)| h.holder == owner)
            .map(|(&hid, _)| hid)
            .collect();
        for hid in holds {
            self.release_hold(hid)?;
        }
        // Exit munlocks the whole mapping before it unmaps it (`exit_mmap` -> `munlock_vma_page`).
        if self.owner_locked(owner) {
            self.mlock_owner(owner, false)?;
        }
        self.reap_workload(id);
        self.oom_task_stopped(id);
        self.charge = saved;
        Ok(())
    }

    /// Free what a stopped workload still maps. Pages under writeback or isolated for
    /// migration are retried when that is over; pages held by others are left on the LRU.
    fn reap_workload(&mut self, id: u32) {
        let owner = self.workloads.list[id as usize].owner;
        self.workloads.list[id as usize].task.reap_pending = false;
        let mut retry_at: Option<u64> = None;
        let len = self.owners.list[owner as usize].map.len();
        for index in 0..len as u32 {
            let slot = self.owners.list[owner as usize].map[index as usize];
            if slot == SLOT_EMPTY {
                continue;
            }
            if slot_is_resident(slot) {
                let pfn = slot_pfn(slot);
                let page = self.pages[pfn];
                if page.test(pg::WRITEBACK) {
                    let end = self.writeback_end.get(&pfn).copied().unwrap_or(self.now);
                    retry_at = Some(retry_at.unwrap_or(0).max(end));
                    continue;
                }
                if page.test(pg::ISOLATED) {
                    let at = self.now + REAP_RETRY_NS;
                    retry_at = Some(retry_at.unwrap_or(0).max(at));
                    continue;
                }
                if page.test(pg::EXTRA) {
                    continue;
                }
            }
            let freed = self.free_owned(owner, index);
            debug_assert!(freed.is_ok(), "{freed:?}");
        }
        if let Some(at) = retry_at {
            self.workloads.list[id as usize].task.reap_pending = true;
            self.events
                .schedule(at.max(self.now), EventKind::Workload(id | STOP_EVENT));
        }
        self.take_charge();
    }

    /// A workload's statistics so far.
    pub fn workload_stats(&self, id: u32) -> MmResult<WorkloadStats> {
        let w = self.workload(id)?;
        let mut stats = w.task.stats.clone();
        stats.running = w.running;
        // A name is reused only once its earlier workload has nothing left: the mapping is
        // the latest workload's.
        let latest = self.workloads.list.iter().rposition(|x| x.owner == w.owner);
        if latest == Some(id as usize) {
            stats.resident_pages = self.workload_resident_pages(w);
        }
        Ok(stats)
    }

    /// `resident_pages` of a workload's owner, without looking at the frames when they are
    /// all order-0: a workload other than `kernel_alloc` maps only order-0 pages (`touch_slot`
    /// and `fault_in` allocate order 0, migration keeps the order), so its slots hold a
    /// compound page only if one was appended to its mapping from outside (`alloc_owned`
    /// appends at the end), which would have made the mapping longer than at the start.
    /// Counting the resident slots reads the mapping in order instead of one random frame
    /// per page (a cache miss each: a millisecond per scenario run).
    fn workload_resident_pages(&self, w: &Workload) -> u64 {
        let map = &self.owners.list[w.owner as usize].map;
        if map.len() != w.task.map_len || !w.kind.maps_only_order0() {
            return self.resident_pages(w.owner);
        }
        let n = map.iter().filter(|&&s| slot_is_resident(s)).count() as u64;
        debug_assert_eq!(n, self.resident_pages(w.owner));
        n
    }

    /// Pages resident in `owner`'s mapping (compound pages count all their frames).
    fn resident_pages(&self, owner: OwnerId) -> u64 {
        self.owners.list[owner as usize]
            .map
            .iter()
            .filter(|&&s| s != SLOT_EMPTY && slot_is_resident(s))
            .map(|&slot| 1u64 << self.pages[slot_pfn(slot)].order())
            .sum()
    }

    /// The event of workload `ev` (its id, with `STOP_EVENT` for a stop or a reap).
    pub(crate) fn workload_step(&mut self, ev: u32) {
        let id = ev & !STOP_EVENT;
        if ev & STOP_EVENT != 0 {
            let w = &self.workloads.list[id as usize];
            if w.running {
                let _ = self.stop_workload(id);
            } else if w.task.reap_pending {
                // Not a stale stop event (the workload was stopped by hand before stop_ns):
                // the pages it could not free at its stop.
                self.reap_workload(id);
            }
            return;
        }
        let w = &mut self.workloads.list[id as usize];
        w.task.step_pending = false;
        if !w.running {
            return;
        }
        let saved = self.take_charge();
        // The operations need the whole machine and the workload at once: the list is taken
        // out for the step (nothing an operation does looks at the workloads) and put back.
        let mut list = std::mem::take(&mut self.workloads.list);
        let Workload {
            kind, owner, task, ..
        } = &mut list[id as usize];
        kind.run_ops(self, id, *owner, task);
        self.workloads.list = list;
        self.charge = saved;
    }

    /// Do `k`'s operations at their times until the next one would pass the next pending
    /// event or the end of the current run; then schedule the step again for it.
    fn run_ops<K: Task>(&mut self, id: u32, k: &mut K, owner: OwnerId, task: &mut TaskState) {
        let mut ops = 0;
        while let Some((at, op)) = k.next_op(task.free_at) {
            if self.oom_killed(owner) {
                // Killed by the OOM killer (maybe by its own allocation): its stop event runs
                // next and no operation follows.
                return;
            }
            let at = at.max(self.now);
            let limit = self
                .events
                .peek_time()
                .unwrap_or(u64::MAX)
                .min(self.horizon);
            if ops >= MAX_OPS_PER_STEP || (at > self.now && at > limit) {
                task.schedule_step(&mut self.events, id, at);
                return;
            }
            self.now = at;
            let migrations = self.migrations_for_fixes();
            k.run(
                op,
                &mut Cx {
                    m: self,
                    owner,
                    stats: &mut task.stats,
                },
            );
            let stall = self.take_charge();
            let migrated = self.migrations_for_fixes() - migrations;
            task.stats.ops += 1;
            task.stats.stall_ns += stall;
            task.stats.migrations_charged += migrated;
            if K::task_bound(op) {
                task.free_at = at + stall;
            }
            ops += 1;
        }
        task.stats.finished_ns.get_or_insert(self.now);
    }

    /// Pages migrated out of CMA by the pin and dirty fixes, so far.
    fn migrations_for_fixes(&self) -> u64 {
        self.vmstat.get(Counter::PinMigrations) + self.vmstat.get(Counter::DirtyMigrations)
    }
}

impl WorkloadKind {
    /// Run the step loop for this kind (one `match`, then the kind's own loop).
    fn run_ops(&mut self, m: &mut Machine, id: u32, owner: OwnerId, task: &mut TaskState) {
        super::each_kind!(self, k => m.run_ops(id, k, owner, task))
    }
}
