//! Event counters with the kernel's `/proc/vmstat` names (`mm/vmstat.c`
//! `vmstat_text[]`). Gauges (nr_free_pages, nr_dirty, ...) are computed from the state when
//! the view is read (`procfs.rs`); this file holds the monotonically increasing events, and
//! the names `/proc/vmstat` prints, in its order ([`VMSTAT_6_1`]).
//!
//! A few counters are the model's own, with no kernel name ([`MODEL_COUNTERS`]): they are
//! kept out of `/proc/vmstat` and read through `Machine::model_counters`.

macro_rules! counters {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Counter { $($variant,)* }

        impl Counter {
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)*];
            pub fn name(self) -> &'static str {
                match self { $(Counter::$variant => $name,)* }
            }
        }
    };
}

counters! {
    PgallocNormal => "pgalloc_normal",
    PgallocMovable => "pgalloc_movable",
    PgallocCma => "pgalloc_cma",
    Pgfree => "pgfree",
    Pgactivate => "pgactivate",
    Pgdeactivate => "pgdeactivate",
    Pgfault => "pgfault",
    Pgmajfault => "pgmajfault",
    Pgrefill => "pgrefill",
    PgstealKswapd => "pgsteal_kswapd",
    PgstealDirect => "pgsteal_direct",
    PgscanKswapd => "pgscan_kswapd",
    PgscanDirect => "pgscan_direct",
    PgskipNormal => "pgskip_normal",
    PgskipMovable => "pgskip_movable",
    PgskipCma => "pgskip_cma",
    Pswpin => "pswpin",
    Pswpout => "pswpout",
    Pgpgin => "pgpgin",
    Pgpgout => "pgpgout",
    WorkingsetRefaultAnon => "workingset_refault_anon",
    WorkingsetRefaultFile => "workingset_refault_file",
    WorkingsetActivateFile => "workingset_activate_file",
    AllocstallNormal => "allocstall_normal",
    AllocstallMovable => "allocstall_movable",
    AllocstallCma => "allocstall_cma",
    Pageoutrun => "pageoutrun",
    KswapdWakeups => "kswapd_wakeups",
    PgmigrateSuccess => "pgmigrate_success",
    PgmigrateFail => "pgmigrate_fail",
    CompactIsolated => "compact_isolated",
    CmaAllocSuccess => "cma_alloc_success",
    CmaAllocFail => "cma_alloc_fail",
    Pgdrop => "pgdrop_clean_contig",
    CleancachePuts => "cleancache_puts",
    CleancacheHits => "cleancache_hits",
    CleancacheDiscards => "cleancache_discards",
    CleancacheEvictions => "cleancache_evictions",
    FrontswapStores => "frontswap_stores",
    FrontswapLoads => "frontswap_loads",
    PinMigrations => "pin_migrations",
    PinMigrationFail => "pin_migration_fail",
    DirtyMigrations => "dirty_migrations",
    OomKill => "oom_kill",
    AllocFail => "alloc_fail",
    NrFollPinAcquired => "nr_foll_pin_acquired",
    NrFollPinReleased => "nr_foll_pin_released",
    UnevictablePgsCulled => "unevictable_pgs_culled",
    UnevictablePgsRescued => "unevictable_pgs_rescued",
    UnevictablePgsMlocked => "unevictable_pgs_mlocked",
    UnevictablePgsMunlocked => "unevictable_pgs_munlocked",
    UnevictablePgsCleared => "unevictable_pgs_cleared",
    UnevictablePgsStranded => "unevictable_pgs_stranded",
}

/// The counters with no kernel name, and what each counts (the model's view beside
/// `/proc/vmstat`).
pub const MODEL_COUNTERS: [(Counter, &str); 15] = [
    (Counter::PgallocCma, "pages allocated from ZONE_CMA (zone_cma placement; the patches named it pgalloc_cma)"),
    (Counter::PgskipCma, "pages skipped by reclaim for being in ZONE_CMA (zone_cma placement)"),
    (Counter::AllocstallCma, "direct reclaim entered for ZONE_CMA (zone_cma placement)"),
    (Counter::KswapdWakeups, "times kswapd was woken (the kernel traces mm_vmscan_kswapd_wake, it counts nothing)"),
    (Counter::Pgdrop, "clean file pages dropped instead of migrated by alloc_contig_range (reclaim_clean_pages_from_list)"),
    (Counter::CleancachePuts, "gcma: clean file pages put in the area's cleancache"),
    (Counter::CleancacheHits, "gcma: reads served from the cleancache"),
    (Counter::CleancacheDiscards, "gcma: cache pages discarded by a contiguous allocation"),
    (Counter::CleancacheEvictions, "gcma: cache pages evicted to make room"),
    (Counter::FrontswapStores, "gcma: anonymous pages stored by the write-through frontswap"),
    (Counter::FrontswapLoads, "gcma: swap-ins served from the frontswap"),
    (Counter::PinMigrations, "pages migrated out of CMA before a pin (migrate_on_longterm_pin, migrate_on_pin)"),
    (Counter::PinMigrationFail, "pins refused because the page could not leave CMA (-ENOMEM)"),
    (Counter::DirtyMigrations, "pages migrated out of CMA when first dirtied (migrate_on_first_dirty)"),
    (Counter::AllocFail, "page allocations that failed after direct reclaim"),
];

/// `/proc/vmstat` of Linux 6.1 as the kernel backend's guest prints it (x86-64, one node,
/// `CONFIG_NUMA` off, swap, THP, compaction, CMA and `CONFIG_DEBUG_VM_VMACACHE` as Debian's
/// 6.1 source builds them for the guest): the zone items, the node items, the dirty
/// thresholds, then the events of `vm_event_item`, in `vmstat_text[]` order.
pub const VMSTAT_6_1: [&str; 150] = [
    "nr_free_pages",
    "nr_zone_inactive_anon",
    "nr_zone_active_anon",
    "nr_zone_inactive_file",
    "nr_zone_active_file",
    "nr_zone_unevictable",
    "nr_zone_write_pending",
    "nr_mlock",
    "nr_bounce",
    "nr_free_cma",
    "nr_inactive_anon",
    "nr_active_anon",
    "nr_inactive_file",
    "nr_active_file",
    "nr_unevictable",
    "nr_slab_reclaimable",
    "nr_slab_unreclaimable",
    "nr_isolated_anon",
    "nr_isolated_file",
    "workingset_nodes",
    "workingset_refault_anon",
    "workingset_refault_file",
    "workingset_activate_anon",
    "workingset_activate_file",
    "workingset_restore_anon",
    "workingset_restore_file",
    "workingset_nodereclaim",
    "nr_anon_pages",
    "nr_mapped",
    "nr_file_pages",
    "nr_dirty",
    "nr_writeback",
    "nr_writeback_temp",
    "nr_shmem",
    "nr_shmem_hugepages",
    "nr_shmem_pmdmapped",
    "nr_file_hugepages",
    "nr_file_pmdmapped",
    "nr_anon_transparent_hugepages",
    "nr_vmscan_write",
    "nr_vmscan_immediate_reclaim",
    "nr_dirtied",
    "nr_written",
    "nr_throttled_written",
    "nr_kernel_misc_reclaimable",
    "nr_foll_pin_acquired",
    "nr_foll_pin_released",
    "nr_kernel_stack",
    "nr_page_table_pages",
    "nr_sec_page_table_pages",
    "nr_swapcached",
    "nr_dirty_threshold",
    "nr_dirty_background_threshold",
    "pgpgin",
    "pgpgout",
    "pswpin",
    "pswpout",
    "pgalloc_dma",
    "pgalloc_dma32",
    "pgalloc_normal",
    "pgalloc_movable",
    "allocstall_dma",
    "allocstall_dma32",
    "allocstall_normal",
    "allocstall_movable",
    "pgskip_dma",
    "pgskip_dma32",
    "pgskip_normal",
    "pgskip_movable",
    "pgfree",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pgfault",
    "pgmajfault",
    "pglazyfreed",
    "pgrefill",
    "pgreuse",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgscan_direct_throttle",
    "pgscan_anon",
    "pgscan_file",
    "pgsteal_anon",
    "pgsteal_file",
    "pginodesteal",
    "slabs_scanned",
    "kswapd_inodesteal",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "pageoutrun",
    "pgrotated",
    "drop_pagecache",
    "drop_slab",
    "oom_kill",
    "pgmigrate_success",
    "pgmigrate_fail",
    "thp_migration_success",
    "thp_migration_fail",
    "thp_migration_split",
    "compact_migrate_scanned",
    "compact_free_scanned",
    "compact_isolated",
    "compact_stall",
    "compact_fail",
    "compact_success",
    "compact_daemon_wake",
    "compact_daemon_migrate_scanned",
    "compact_daemon_free_scanned",
    "htlb_buddy_alloc_success",
    "htlb_buddy_alloc_fail",
    "cma_alloc_success",
    "cma_alloc_fail",
    "unevictable_pgs_culled",
    "unevictable_pgs_scanned",
    "unevictable_pgs_rescued",
    "unevictable_pgs_mlocked",
    "unevictable_pgs_munlocked",
    "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
    "thp_fault_alloc",
    "thp_fault_fallback",
    "thp_fault_fallback_charge",
    "thp_collapse_alloc",
    "thp_collapse_alloc_failed",
    "thp_file_alloc",
    "thp_file_fallback",
    "thp_file_fallback_charge",
    "thp_file_mapped",
    "thp_split_page",
    "thp_split_page_failed",
    "thp_deferred_split_page",
    "thp_split_pmd",
    "thp_scan_exceed_none_pte",
    "thp_scan_exceed_swap_pte",
    "thp_scan_exceed_share_pte",
    "thp_split_pud",
    "thp_zero_page_alloc",
    "thp_zero_page_alloc_failed",
    "thp_swpout",
    "thp_swpout_fallback",
    "swap_ra",
    "swap_ra_hit",
    "direct_map_level2_splits",
    "direct_map_level3_splits",
    "nr_unstable",
];

/// The zone items of [`VMSTAT_6_1`] (`zone_stat_item`), which `/proc/zoneinfo` prints per zone.
pub const ZONE_ITEMS: usize = 10;
/// The node items of [`VMSTAT_6_1`] (`node_stat_item`), after the zone items.
pub const NODE_ITEMS: usize = 41;

#[derive(Clone, Debug)]
pub struct Vmstat {
    values: Vec<u64>,
}

impl Default for Vmstat {
    fn default() -> Self {
        Vmstat {
            values: vec![0; Counter::ALL.len()],
        }
    }
}

impl Vmstat {
    #[inline]
    pub fn add(&mut self, c: Counter, n: u64) {
        self.values[c as usize] += n;
    }

    #[inline]
    pub fn inc(&mut self, c: Counter) {
        self.values[c as usize] += 1;
    }

    #[inline]
    pub fn get(&self, c: Counter) -> u64 {
        self.values[c as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Counter::ALL
            .iter()
            .map(move |c| (c.name(), self.values[*c as usize]))
    }
}
