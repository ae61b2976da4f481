//! The cost model: how much virtual time each operation takes.
//!
//! Defaults describe an embedded ARM board (Cortex-A53 class, LPDDR3/4 on a narrow bus, eMMC
//! 5.x storage): the board the CMA debate is about. Where the numbers come from:
//! - memory copy ~2 GB/s effective for cold 4 KiB copies (`copy_page` on an A53 at 1.2 GHz
//!   with a 32-bit LPDDR bus) -> 2 us a page; zeroing (`clear_page`) runs about twice as fast;
//! - the fixed part of migrating a page (isolate from the LRU, unmap with rmap walk, TLB
//!   shootdown, remap, putback) ~ 4 us: the order reported for `migrate_pages` on ARM SoCs
//!   in the CMA latency threads on linux-mm;
//! - isolating a pageblock (zone lock, walk 512 struct pages, move free pages) ~ 5 us;
//! - `drain_all_pages` (6.1): each CPU whose lists hold pages is drained from the caller
//!   (remotely under its pcp lock since 6.0; before, a work item per CPU), ~ 15 us per CPU
//!   plus the buddy free of each page drained (`page_alloc_ns`);
//! - `lru_cache_disable`, once per `alloc_contig_range`: `synchronize_rcu_expedited` (IPIs
//!   to the other CPUs, the caller sleeps until each reports a quiescent state, ~ 40 us on
//!   a four-core A53 at 1.2 GHz: a few IPI round trips and two context switches), then a
//!   work item queued on each CPU with pages in its LRU batches and flushed (a kworker
//!   wakes there and the caller waits for it: ~ 20 us a CPU, scheduler wake-up latency on
//!   an idle A53; far more behind a busy task);
//! - a pfn walk, ~ 20 ns per `struct page` examined (64 bytes, one cache line read
//!   sequentially with a few flag tests: `isolate_migratepages_block`,
//!   `test_pages_isolated`, and `split_map_pages` setting each taken page's count);
//! - eMMC 5.1: ~ 150 us latency per random read request and ~ 250 MB/s sequential read
//!   (16 us a page); writes ~ 400 us a request and ~ 100 MB/s (40 us a page);
//! - reclaim scanning ~ 150 ns a page (`shrink_folio_list` per-folio work without I/O);
//! - a cleancache hit copies a page back from the cache (~ the copy cost).
//!
//! Desktop presets (Python `Board` presets) divide the memory numbers by ~10 and storage
//! latency by ~20 (NVMe).

use serde::{Deserialize, Serialize};

use crate::error::{MmError, MmResult};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// Copy one 4 KiB page (`copy_highpage`).
    pub page_copy_ns: u64,
    /// Fixed cost of migrating one page: unmap, TLB flush, remap.
    pub migrate_fixed_ns: u64,
    /// A migration attempt that fails at once (refcount check, -EAGAIN).
    pub migrate_fail_ns: u64,
    /// Isolate one pageblock (`set_migratetype_isolate`).
    pub isolate_pageblock_ns: u64,
    /// `drain_all_pages`: draining one CPU's lists that hold pages (each page drained
    /// costs `page_alloc_ns` on top).
    pub drain_per_cpu_ns: u64,
    /// `lru_cache_disable`'s `synchronize_rcu_expedited`, once per contiguous allocation.
    pub lru_cache_disable_ns: u64,
    /// `lru_cache_disable`'s drain work item, per CPU whose LRU batches hold pages.
    pub lru_drain_per_cpu_ns: u64,
    /// Examining one `struct page` in a pfn walk (isolating migrate pages, testing the
    /// range, taking the free pages).
    pub pfn_walk_ns: u64,
    pub storage_read_request_ns: u64,
    pub storage_read_page_ns: u64,
    pub storage_write_request_ns: u64,
    pub storage_write_page_ns: u64,
    /// Reclaim work for one scanned page.
    pub reclaim_scan_page_ns: u64,
    /// A hit in the gcma cleancache: the page comes back from memory, not storage.
    pub cleancache_hit_ns: u64,
    /// Clear one page of a device buffer (dma-heap zeroing).
    pub zero_page_ns: u64,
    /// Allocating or freeing one page in the buddy allocator, charged to the caller.
    pub page_alloc_ns: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel::DEFAULT
    }
}

impl CostModel {
    /// The engine's own defaults: the embedded ARM board of the module comment. A board
    /// that gives no cost, or leaves a field out, gets these.
    pub const DEFAULT: CostModel = CostModel {
        page_copy_ns: 2_000,
        migrate_fixed_ns: 4_000,
        migrate_fail_ns: 300,
        isolate_pageblock_ns: 5_000,
        drain_per_cpu_ns: 15_000,
        lru_cache_disable_ns: 40_000,
        lru_drain_per_cpu_ns: 20_000,
        pfn_walk_ns: 20,
        storage_read_request_ns: 150_000,
        storage_read_page_ns: 16_000,
        storage_write_request_ns: 400_000,
        storage_write_page_ns: 40_000,
        reclaim_scan_page_ns: 150,
        cleancache_hit_ns: 2_000,
        zero_page_ns: 1_000,
        page_alloc_ns: 200,
    };

    /// Every cost with its name as the configuration JSON spells it (`page_copy_ns`, ...),
    /// in declaration order: `CostModel::DEFAULT.fields()` is the defaults table.
    pub fn fields(&self) -> [(&'static str, u64); 16] {
        [
            ("page_copy_ns", self.page_copy_ns),
            ("migrate_fixed_ns", self.migrate_fixed_ns),
            ("migrate_fail_ns", self.migrate_fail_ns),
            ("isolate_pageblock_ns", self.isolate_pageblock_ns),
            ("drain_per_cpu_ns", self.drain_per_cpu_ns),
            ("lru_cache_disable_ns", self.lru_cache_disable_ns),
            ("lru_drain_per_cpu_ns", self.lru_drain_per_cpu_ns),
            ("pfn_walk_ns", self.pfn_walk_ns),
            ("storage_read_request_ns", self.storage_read_request_ns),
            ("storage_read_page_ns", self.storage_read_page_ns),
            ("storage_write_request_ns", self.storage_write_request_ns),
            ("storage_write_page_ns", self.storage_write_page_ns),
            ("reclaim_scan_page_ns", self.reclaim_scan_page_ns),
            ("cleancache_hit_ns", self.cleancache_hit_ns),
            ("zero_page_ns", self.zero_page_ns),
            ("page_alloc_ns", self.page_alloc_ns),
        ]
    }

    pub fn validate(&self) -> MmResult<()> {
        // Every cost is a u64 already; only a zero storage cost would let time stand still
        // while I/O completes, which breaks the event loop's progress guarantee.
        if self.storage_read_page_ns == 0 && self.storage_read_request_ns == 0 {
            return Err(MmError::InvalidConfig(
                "cost: storage reads cost nothing (storage_read_*_ns are both 0)".into(),
            ));
        }
        if self.storage_write_page_ns == 0 && self.storage_write_request_ns == 0 {
            return Err(MmError::InvalidConfig(
                "cost: storage writes cost nothing (storage_write_*_ns are both 0)".into(),
            ));
        }
        Ok(())
    }

    pub fn migrate_page_ns(&self) -> u64 {
        self.page_copy_ns + self.migrate_fixed_ns
    }

    pub fn storage_read_ns(&self, pages: u64) -> u64 {
        self.storage_read_request_ns + pages * self.storage_read_page_ns
    }

    pub fn storage_write_ns(&self, pages: u64) -> u64 {
        self.storage_write_request_ns + pages * self.storage_write_page_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fields()` names every field once, as serde does, with its value.
    #[test]
    fn fields_are_the_serialised_fields() {
        let cost = CostModel {
            page_alloc_ns: 7,
            ..CostModel::DEFAULT
        };
        let json = serde_json::to_value(&cost).unwrap();
        let serde_fields = json.as_object().unwrap();
        let fields = cost.fields();
        assert_eq!(serde_fields.len(), fields.len());
        for (name, value) in fields {
            assert_eq!(serde_fields[name], value, "{name}");
        }
        assert_eq!(CostModel::default(), CostModel::DEFAULT);
    }
}
