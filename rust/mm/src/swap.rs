//! The per-CPU LRU batches (`mm/swap.c`): `folio_add_lru` and `lru_cache_disable`.
//!
//! Reproduced (6.1): a page a task faults in or reads goes first into its CPU's `lru_add`
//! folio batch (`folio_add_lru`, up to `PAGEVEC_SIZE` pages) and reaches the LRU when the
//! batch fills; so before collecting pages to migrate, `__alloc_contig_migrate_range` calls
//! `lru_cache_disable`, which waits for an expedited RCU grace period
//! (`synchronize_rcu_expedited`: every other CPU is interrupted and the caller sleeps until
//! each has passed a quiescent state) and then drains the batches of every CPU that holds
//! any (`__lru_add_drain_all(force_all_cpus = true)`: a work item queued on each such CPU's
//! `mm_percpu_wq` and flushed, so the caller waits for a kworker to run there). This is
//! work per call, whatever the range's size: the reason an idle one-page `cma_alloc` costs
//! about as much as a 16 MiB one.
//!
//! Simplified: the model puts pages on the LRU at once; a CPU "holds a batch" when a task
//! on it allocated an LRU page since the last drain (`cpu_needs_drain` looks at the
//! `lru_add`, rotate, deactivate, lazyfree and activate batches and the mlock and buffer-
//! head LRUs: only the first is modelled). Pages in a batch are not shown with the extra
//! reference the batch holds.

use crate::Machine;

/// Which CPUs hold pages in an LRU batch (`cpu_needs_drain`), one bit each.
#[derive(Clone, Debug, Default)]
pub struct LruBatches {
    pending: Vec<u64>,
}

impl LruBatches {
    /// Room for `cpus` CPUs, none holding a batch.
    pub fn new(cpus: u32) -> Self {
        LruBatches {
            pending: vec![0; cpus.div_ceil(64) as usize],
        }
    }

    /// `folio_add_lru` on `cpu`: its batch is not empty now.
    #[inline]
    pub fn add(&mut self, cpu: u32) {
        if let Some(word) = self.pending.get_mut((cpu / 64) as usize) {
            *word |= 1 << (cpu % 64);
        }
    }

    /// The CPUs whose batches hold pages.
    pub fn pending(&self) -> u32 {
        self.pending.iter().map(|w| w.count_ones()).sum()
    }

    /// Every batch is drained.
    fn clear(&mut self) {
        self.pending.iter_mut().for_each(|w| *w = 0);
    }
}

impl Machine {
    /// `lru_cache_disable` (6.1): an expedited grace period, then a drain work item on each
    /// CPU whose batches hold pages (`__lru_add_drain_all(true)`). Charged to the caller.
    /// (`lru_cache_enable`, at the end of the migration, only decrements a counter.)
    pub(crate) fn lru_cache_disable(&mut self) {
        let cost = &self.cfg.cost;
        let cpus = self.lru_batches.pending() as u64;
        self.charge += cost.lru_cache_disable_ns + cpus * cost.lru_drain_per_cpu_ns;
        self.lru_batches.clear();
    }
}
