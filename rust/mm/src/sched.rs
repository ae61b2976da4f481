//! CPU contention (`kernel/sched/fair.c`): what the run queues do to the kernel work a
//! contiguous allocation and reclaim need, when background tasks keep the CPUs busy.
//!
//! The engine's costs are CPU time. On an idle board that is also the wall time; under a
//! parallel build (16 compilers on 4 CPUs) the kernel work competes with the build's tasks
//! for the CPUs, and CFS gives every runnable task of equal weight an equal share:
//! - **CPU-bound kernel work** (a `cma_alloc` caller migrating pages, kswapd reclaiming) runs
//!   in a task among `R` other runnable tasks on `C` CPUs; with `R + 1 > C` each gets
//!   `C / (R + 1)` of a CPU (`sched_slice`: the period is shared by weight; the load balancer
//!   spreads the tasks over the CPUs), so `cost` of CPU time takes `cost * (R + 1) / C` of
//!   wall time (`cpu_wall_ns`). `R` counts the tasks the workloads keep runnable
//!   (`Sched::runnable`: a build's processes that are not waiting for storage) and kswapd
//!   while it runs.
//! - **Per-CPU work items flushed on every CPU**: `lru_add_drain_all` (3.x: `migrate_prep`
//!   at the start of `__alloc_contig_migrate_range` and again after it, in every
//!   `alloc_contig_range`; 6.1: once, in `lru_cache_disable`) and `drain_all_pages` (a work
//!   item on `mm_percpu_wq` since 4.11, Michal Hocko's "mm, page_alloc: drain per-cpu pages
//!   from workqueue context"; an IPI through `on_each_cpu_mask` before). The caller sleeps
//!   in `flush_work` until the bound kworker of every CPU has run. On a CPU whose run queue
//!   holds workload tasks the kworker waits for the running task's slice: CFS does not
//!   preempt a task that has run less than `sysctl_sched_min_granularity` (0.75 ms times
//!   `1 + ilog2(min(C, 8))`, `sched_tunable_scaling = log`) at the tick that would switch
//!   to it, so each waits up to that long, and the flush waits for the last of the `C`
//!   (the mean of the largest of `b` uniform waits on the `b` CPUs the workloads keep busy:
//!   `g * b / (b + 1)`, `flush_wait_ns`). The sleep is wall time, not CPU time:
//!   it is not stretched again.
//!
//! Reproduced: CFS fair share among equal-weight tasks, the scaled scheduler tunables, which
//! flushes each kernel generation does per `alloc_contig_range` attempt.
//! Not reproduced: nice levels and cgroup weights, wakeup preemption (a woken kworker with
//! sleeper credit may preempt at once when the running task is in user mode), the IPI of a
//! pre-4.11 `drain_all_pages` waiting for CPUs with interrupts off, load-balancer
//! imbalance, SMT, frequency scaling. Workloads other than `build` declare no CPU demand.

use crate::Machine;

/// `sysctl_sched_min_granularity` before scaling: 0.75 ms.
const SCHED_MIN_GRANULARITY_NS: u64 = 750_000;

/// Runnable tasks declared by the workloads (one count per workload id).
#[derive(Clone, Debug, Default)]
pub struct Sched {
    by_workload: Vec<u32>,
    /// Sum of `by_workload`.
    pub runnable: u32,
    /// Wall time the current caller slept in `flush_work` (taken by `take_sleep`).
    sleep_ns: u64,
}

impl Sched {
    /// Workload `id` keeps `n` tasks runnable from now on.
    pub fn set_runnable(&mut self, id: u32, n: u32) {
        let i = id as usize;
        if self.by_workload.len() <= i {
            self.by_workload.resize(i + 1, 0);
        }
        self.runnable = self.runnable - self.by_workload[i] + n;
        self.by_workload[i] = n;
    }

    /// The wall time slept in flushes since the last call.
    pub fn take_sleep(&mut self) -> u64 {
        std::mem::take(&mut self.sleep_ns)
    }
}

/// `get_update_sysctl_factor` with `SCHED_TUNABLESCALING_LOG`: `1 + ilog2(min(cpus, 8))`.
pub fn tunable_factor(cpus: u32) -> u64 {
    1 + (cpus.clamp(1, 8)).ilog2() as u64
}

/// Who asks for CPU time: the others it competes with differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asker {
    /// A task calling into the kernel (`cma_alloc`, `alloc_contig_range`): competes with the
    /// workloads' tasks and kswapd.
    Caller,
    /// kswapd itself: competes with the workloads' tasks.
    Kswapd,
}

impl Machine {
    /// Runnable tasks other than `asker`.
    fn others_runnable(&self, asker: Asker) -> u64 {
        let kswapd = (asker != Asker::Kswapd && self.kswapd.running) as u64;
        self.sched.runnable as u64 + kswapd
    }

    /// Wall time for `cpu_ns` of CPU work by `asker` under the current run-queue load: the
    /// CFS share `C / (R + 1)` of a CPU when `R + 1` tasks want `C` CPUs.
    pub fn cpu_wall_ns(&self, cpu_ns: u64, asker: Asker) -> u64 {
        let cpus = self.cfg.cpus as u64;
        let tasks = self.others_runnable(asker) + 1;
        if tasks <= cpus {
            return cpu_ns;
        }
        (cpu_ns as u128 * tasks as u128 / cpus as u128) as u64
    }

    /// Wall time of a build-like task's `cpu_ns` when `runnable` tasks of its own kind (it
    /// included) and kswapd share the CPUs.
    pub fn cpu_wall_ns_among(&self, cpu_ns: u64, runnable: u32) -> u64 {
        let cpus = self.cfg.cpus as u64;
        let tasks = runnable as u64 + self.kswapd.running as u64;
        if tasks <= cpus {
            return cpu_ns;
        }
        (cpu_ns as u128 * tasks as u128 / cpus as u128) as u64
    }

    /// The mean wait of one flush of a work item on every CPU (see the module comment): the
    /// largest of the waits on the `b` CPUs the workloads keep busy, `g * b / (b + 1)`; 0
    /// while they leave the CPUs idle.
    pub fn flush_wait_ns(&self) -> u64 {
        let cpus = self.cfg.cpus as u64;
        let busy = (self.sched.runnable as u64).min(cpus);
        if busy == 0 {
            return 0;
        }
        let gran = SCHED_MIN_GRANULARITY_NS * tunable_factor(self.cfg.cpus);
        gran * busy / (busy + 1)
    }

    /// `lru_add_drain_all` as `alloc_contig_range` does it: twice per attempt in 3.x
    /// (`migrate_prep`, and after the migration), once in 6.1 (`lru_cache_disable`). The
    /// caller sleeps; the time is taken by `take_sleep`.
    pub(crate) fn lru_add_drain_all_flushes(&mut self) {
        let flushes = if self.cma_fallback_2014() { 2 } else { 1 };
        self.sched.sleep_ns += flushes * self.flush_wait_ns();
    }

    /// `drain_all_pages`: work items flushed on every CPU since 4.11; an IPI before (the
    /// `legacy_2014` kernels), which does not wait for the run queues.
    pub(crate) fn drain_all_pages_flush(&mut self) {
        if !self.cma_fallback_2014() {
            self.sched.sleep_ns += self.flush_wait_ns();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MachineConfig;

    #[test]
    fn fair_share_and_flush_waits() {
        let mut cfg = MachineConfig::with_ram(256 << 20);
        cfg.cpus = 4;
        let mut m = Machine::new(cfg).unwrap();
        assert_eq!(tunable_factor(4), 3);
        assert_eq!(tunable_factor(1), 1);
        assert_eq!(tunable_factor(64), 4);
        // Idle CPUs: CPU time is wall time, flushes do not wait.
        assert_eq!(m.cpu_wall_ns(1000, Asker::Caller), 1000);
        assert_eq!(m.flush_wait_ns(), 0);
        // Three tasks and the caller fit four CPUs.
        m.sched.set_runnable(0, 3);
        assert_eq!(m.cpu_wall_ns(1000, Asker::Caller), 1000);
        // make -j16 on 4 CPUs: the caller gets 4/17 of a CPU.
        m.sched.set_runnable(0, 16);
        assert_eq!(m.cpu_wall_ns(4000, Asker::Caller), 17_000);
        assert_eq!(m.cpu_wall_ns(4000, Asker::Kswapd), 17_000);
        // 2.25 ms scaled granularity, the last of 4 CPUs: 1.8 ms.
        assert_eq!(m.flush_wait_ns(), 1_800_000);
        m.sched.set_runnable(1, 2);
        assert_eq!(m.sched.runnable, 18);
        m.sched.set_runnable(0, 0);
        assert_eq!(m.sched.runnable, 2);
        assert_eq!(m.flush_wait_ns(), 1_500_000);
    }
}
