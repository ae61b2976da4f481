//! The OOM killer (`mm/oom_kill.c`) and the allocator's road to it (`mm/page_alloc.c`:
//! the direct-reclaim part of `__alloc_pages_slowpath`, `should_reclaim_retry`,
//! `__alloc_pages_may_oom`), as Linux 6.1 has them.
//!
//! Reproduced (6.1):
//! - after each round of direct reclaim that reclaimed something but left the request unmet,
//!   the per-CPU lists are drained and the freelists tried again
//!   (`__alloc_pages_direct_reclaim`); a
//!   `__GFP_NORETRY` request then fails, and so does a costly one (order > 3,
//!   `PAGE_ALLOC_COSTLY_ORDER`) without `__GFP_RETRY_MAYFAIL`;
//! - `should_reclaim_retry`: a round that reclaimed something resets `no_progress_loops`,
//!   one that did not counts it; past `MAX_RECLAIM_RETRIES` (16) fruitless rounds, or as soon
//!   as no eligible zone would pass its min watermark even with every reclaimable page
//!   reclaimed (`zone_reclaimable_pages`: the file LRU, and the anon LRU while swap has
//!   room), reclaim stops;
//! - `__alloc_pages_may_oom`: one last try at the high watermark, then no OOM killer for a
//!   costly order or `__GFP_RETRY_MAYFAIL` (migration targets: a `cma_alloc` under full
//!   memory fails with -ENOMEM, it does not kill), else `out_of_memory`;
//! - `out_of_memory` -> `select_bad_process`: the task with the highest `oom_badness`, its
//!   resident anonymous pages plus its swap entries (`get_mm_rss` + `MM_SWAPENTS`), ties to
//!   the later task; `oom_kill_process`: `oom_kill` counted, the kernel's lines in dmesg
//!   (`dump_header`'s first line, `dump_oom_summary`, `__oom_kill_process`'s "Out of memory:
//!   Killed process ..."), the victim's memory freed by its exit (its anonymous memory
//!   unmapped, its pins, held by files it had open, dropped);
//! - the allocation retries while the OOM killer makes progress (`no_progress_loops` reset);
//!   with no task to kill it fails with -ENOMEM. The allocating task itself, once killed,
//!   gets no page (`tsk_is_oom_victim` && `ALLOC_OOM`: the task dies instead).
//!
//! Every loop ends: a round that makes progress frees pages taken off the LRU (finitely
//! many), `no_progress_loops` bounds the rounds that do not, and each kill takes a task out
//! of the candidates. A request that cannot be met costs a bounded number of rounds, and
//! once memory is full the first kills free it: the machine does not re-run reclaim forever.
//!
//! Simplified: the tasks are the running workloads (the Python API's owners and the
//! devices are not tasks; the kernel's own task, PID 1 in the guest, is unkillable anyway);
//! a task's RSS is the anonymous memory it maps (its program text, stack and page tables are
//! not modelled, so a reader, a writer, a tmpfs file or a mount, whose pages are page cache
//! and stay when the process dies, has no badness and is never chosen: the kernel would
//! eventually kill them for their few pages, free nothing, and panic with "Out of memory and
//! no killable processes", which the model reports once and then fails the request);
//! `oom_score_adj` is 0 for all; the kill is synchronous (the reaper frees the memory before
//! the allocation retries); no memcg, cpuset or mempolicy constraints; `reclaim_throttle`'s
//! sleeps while writeback completes are not waited (the retries happen at the same virtual
//! instant); the zone loop of `should_reclaim_retry` counts the node's reclaimable pages for
//! every eligible zone (exact with one zone); no Mem-Info and task list dump.

use crate::error::Errno;
use crate::event::EventKind;
use crate::owner::{
    slot_cached_pfn, slot_is_resident, slot_pfn, OwnerId, SLOT_EMPTY, SLOT_SWAPPED,
};
use crate::page::{pg, Kind};
use crate::page_alloc::{AllocFlags, AllocRequest};
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::zone::Wmark;
use crate::Machine;

/// `MAX_RECLAIM_RETRIES` (`mm/internal.h`).
pub const MAX_RECLAIM_RETRIES: u32 = 16;
/// `PAGE_ALLOC_COSTLY_ORDER` (`include/linux/mmzone.h`).
pub const PAGE_ALLOC_COSTLY_ORDER: u32 = 3;
/// `EventKind::Workload` ids with this bit set stop the workload (`workload/task.rs`).
const STOP_EVENT: u32 = 1 << 31;

/// A workload as the OOM killer sees it: a task.
#[derive(Clone, Debug)]
struct OomTask {
    /// The workload's id (`Machine::start_workload`).
    id: u32,
    owner: OwnerId,
    alive: bool,
    /// Killed, its stop not run yet.
    killed: bool,
}

/// The OOM killer's state.
#[derive(Clone, Debug, Default)]
pub struct Oom {
    tasks: Vec<OomTask>,
    /// Tasks killed whose stop has not run yet.
    pending: u32,
    /// "Out of memory and no killable processes..." was printed (once: the kernel panics).
    reported_none: bool,
}

/// What `__alloc_pages_may_oom` did.
enum MayOom {
    Page(Pfn),
    /// A task was killed (its memory freed); `true` if it is the allocating one.
    Killed(bool),
    Nothing,
}

impl Machine {
    /// A workload started: a task the OOM killer may choose.
    pub(crate) fn oom_task_started(&mut self, id: u32, owner: OwnerId) {
        self.oom.tasks.push(OomTask {
            id,
            owner,
            alive: true,
            killed: false,
        });
    }

    /// A workload stopped (by its stop time, by hand, or after a kill).
    pub(crate) fn oom_task_stopped(&mut self, id: u32) {
        if let Some(t) = self.oom.tasks.iter_mut().find(|t| t.id == id && t.alive) {
            t.alive = false;
            if t.killed {
                t.killed = false;
                self.oom.pending -= 1;
            }
        }
    }

    /// Whether the task running as `owner` has been killed and must do nothing more.
    #[inline]
    pub(crate) fn oom_killed(&self, owner: OwnerId) -> bool {
        self.oom.pending > 0 && self.oom.tasks.iter().any(|t| t.owner == owner && t.killed)
    }

    /// `oom_badness` of the task running as `owner`, in its two parts: resident anonymous
    /// pages (`get_mm_rss`) and swap entries (`MM_SWAPENTS`). The model has no page tables
    /// and every `oom_score_adj` is 0.
    pub fn oom_badness(&self, owner: OwnerId) -> (u64, u64) {
        let mut rss = 0u64;
        let mut swapents = 0u64;
        for &slot in &self.owners.list[owner as usize].map {
            if slot == SLOT_EMPTY {
                continue;
            }
            if slot_is_resident(slot) {
                let page = &self.pages[slot_pfn(slot)];
                if page.kind() == Kind::Anon && page.owner == owner {
                    rss += 1 << page.order();
                }
            } else if slot == SLOT_SWAPPED
                || slot_cached_pfn(slot).is_some_and(|c| self.gcma_is_frontswap(c))
            {
                // A swapped-out page of a task is anonymous (a tmpfs file's are the file's).
                if !self.owners.list[owner as usize].shmem {
                    swapents += 1;
                }
            }
        }
        (rss, swapents)
    }

    /// `select_bad_process`: the live task with the highest badness (the later one on a
    /// tie, as `oom_evaluate_task` replaces the choice on equal points); tasks with none are
    /// not candidates (see the module comment).
    fn select_bad_process(&self) -> Option<(usize, u64)> {
        let mut chosen: Option<(usize, u64)> = None;
        for (i, t) in self.oom.tasks.iter().enumerate() {
            if !t.alive || t.killed {
                continue;
            }
            let (rss, swap) = self.oom_badness(t.owner);
            let points = rss + swap;
            if points > 0 && chosen.is_none_or(|(_, best)| points >= best) {
                chosen = Some((i, points));
            }
        }
        chosen
    }

    /// The comm of an owner, as `task_struct.comm` holds it (15 characters).
    fn comm(&self, owner: OwnerId) -> String {
        self.owners.name(owner).chars().take(15).collect()
    }

    /// `out_of_memory` for `req`: kill the worst task, or say there is none. Returns the
    /// victim's owner.
    fn out_of_memory(&mut self, req: &AllocRequest) -> Option<OwnerId> {
        let (mask, names) = req.gfp.kernel_mask();
        let current = self.comm(req.owner);
        let header = format!(
            "{current} invoked oom-killer: gfp_mask={mask:#x}({names}), order={}, \
             oom_score_adj=0",
            req.order
        );
        let Some((i, _)) = self.select_bad_process() else {
            if !self.oom.reported_none {
                self.oom.reported_none = true;
                self.dmesg.printk(self.now, &header);
                self.dmesg
                    .printk(self.now, "Out of memory and no killable processes...");
            }
            return None;
        };
        let (id, victim) = (self.oom.tasks[i].id, self.oom.tasks[i].owner);
        let (rss, _) = self.oom_badness(victim);
        let total_vm = self.owners.list[victim as usize].map.len() as u64;
        let (comm, pid) = (self.comm(victim), self.owners.pid(victim));
        self.dmesg.printk(self.now, &header);
        self.dmesg.printk(
            self.now,
            &format!(
                "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task={comm},pid={pid},uid=0"
            ),
        );
        self.dmesg.printk(
            self.now,
            &format!(
                "Out of memory: Killed process {pid} ({comm}) total-vm:{}kB, anon-rss:{}kB, \
                 file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:0",
                total_vm * 4,
                rss * 4
            ),
        );
        self.vmstat.inc(Counter::OomKill);
        self.oom.tasks[i].killed = true;
        self.oom.pending += 1;
        // The victim exits at once, so the oom reaper (which waits `OOM_REAPER_DELAY`, 2 s,
        // for a victim that does not) has nothing to say: its memory is freed by the exit.
        self.oom_reap(victim);
        // The stop proper (its statistics, what could not be freed yet) runs as the
        // workload's stop event, now: the workload may be the one allocating.
        self.events
            .schedule(self.now, EventKind::Workload(id | STOP_EVENT));
        Some(victim)
    }

    /// The victim's exit: its holds are released and every page it maps that can be freed
    /// now is freed (pages under writeback or isolated by a migration in progress are left
    /// for the stop to reap).
    fn oom_reap(&mut self, owner: OwnerId) {
        let saved = self.take_charge();
        if self.owner_locked(owner) {
            let unlocked = self.mlock_owner(owner, false);
            debug_assert!(unlocked.is_ok(), "{unlocked:?}");
        }
        let holds: Vec<u64> = self
            .holds
            .by_id
            .iter()
            .filter(|(_, h)| h.holder == owner)
            .map(|(&id, _)| id)
            .collect();
        for id in holds {
            let released = self.release_hold(id);
            debug_assert!(released.is_ok(), "{released:?}");
        }
        let len = self.owners.list[owner as usize].map.len();
        for index in 0..len as u32 {
            let slot = self.owners.list[owner as usize].map[index as usize];
            if slot == SLOT_EMPTY {
                continue;
            }
            if slot_is_resident(slot) {
                let page = self.pages[slot_pfn(slot)];
                if page.test(pg::WRITEBACK) || page.test(pg::ISOLATED) || page.test(pg::EXTRA) {
                    continue;
                }
            }
            let freed = self.free_owned(owner, index);
            debug_assert!(freed.is_ok(), "{freed:?}");
        }
        self.charge = saved;
    }

    /// `__alloc_pages_may_oom`.
    fn alloc_pages_may_oom(&mut self, req: &AllocRequest, cma: bool) -> MayOom {
        let high = AllocFlags {
            wmark: Wmark::High,
            cma,
        };
        if let Some(pfn) = self.get_page_from_freelist(req, high) {
            return MayOom::Page(pfn);
        }
        if req.order > PAGE_ALLOC_COSTLY_ORDER || req.gfp.retry_mayfail {
            return MayOom::Nothing;
        }
        match self.out_of_memory(req) {
            Some(victim) => MayOom::Killed(victim == req.owner),
            None => MayOom::Nothing,
        }
    }

    /// `should_reclaim_retry`.
    fn should_reclaim_retry(
        &self,
        req: &AllocRequest,
        flags: AllocFlags,
        did_some_progress: bool,
        no_progress_loops: &mut u32,
    ) -> bool {
        if did_some_progress && req.order <= PAGE_ALLOC_COSTLY_ORDER {
            *no_progress_loops = 0;
        } else {
            *no_progress_loops += 1;
        }
        if *no_progress_loops > MAX_RECLAIM_RETRIES {
            return false;
        }
        let lru = self.lru_sizes();
        let mut reclaimable = lru[2] + lru[3];
        if self.swap_free() > 0 {
            reclaimable += lru[0] + lru[1];
        }
        let highest = self.highest_zone(req.gfp);
        let highest_id = self.zones[highest].id;
        let counts_cma = self.wmark_counts_cma(flags.cma);
        self.zones[..=highest].iter().any(|z| {
            z.managed_pages > 0
                && z.watermark_ok_free(
                    req.order,
                    z.wmark(Wmark::Min),
                    highest_id,
                    counts_cma,
                    z.nr_free_pages + reclaimable,
                )
        })
    }

    /// `drain_all_pages(NULL)`: every zone's per-CPU lists.
    fn drain_all_zones(&mut self) {
        for zi in 0..self.zones.len() {
            self.drain_all_pages(zi);
        }
    }

    /// The slow path from its first direct reclaim on (`__alloc_pages_slowpath` after the
    /// min-watermark attempt), for a request that may reclaim: reclaim, drain, retry while
    /// `should_reclaim_retry` says so, then the OOM killer, and again while it kills. The
    /// time spent is charged to the caller (`self.charge`).
    pub(crate) fn alloc_pages_direct_reclaim_retry(
        &mut self,
        req: &AllocRequest,
        flags: AllocFlags,
    ) -> Result<Pfn, Errno> {
        let costly = req.order > PAGE_ALLOC_COSTLY_ORDER;
        let mut no_progress_loops = 0;
        loop {
            // `__alloc_pages_direct_reclaim`: after a round that reclaimed something, the
            // freelists, and again once the per-CPU lists are drained.
            let progress = self.try_to_free_pages(req);
            if progress > 0 {
                if let Some(pfn) = self.get_page_from_freelist(req, flags) {
                    return Ok(pfn);
                }
                self.drain_all_zones();
                if let Some(pfn) = self.get_page_from_freelist(req, flags) {
                    return Ok(pfn);
                }
            }
            if req.gfp.noretry || (costly && !req.gfp.retry_mayfail) {
                break;
            }
            if self.should_reclaim_retry(req, flags, progress > 0, &mut no_progress_loops) {
                continue;
            }
            match self.alloc_pages_may_oom(req, flags.cma) {
                MayOom::Page(pfn) => return Ok(pfn),
                MayOom::Killed(false) => {
                    // `goto retry`: the freelists first, then reclaim again if need be.
                    no_progress_loops = 0;
                    if let Some(pfn) = self.get_page_from_freelist(req, flags) {
                        return Ok(pfn);
                    }
                }
                MayOom::Killed(true) | MayOom::Nothing => break,
            }
        }
        self.vmstat.inc(Counter::AllocFail);
        Err(Errno::Enomem)
    }
}
