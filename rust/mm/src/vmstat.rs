//! Event counters with the kernel's `/proc/vmstat` names (`mm/vmstat.c`
//! `vmstat_text[]`). Gauges (nr_free_pages, nr_dirty, ...) are computed from the state when
//! the view is read (`procfs.rs`); this file holds the monotonically increasing events.

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
    UnevictablePgsCulled => "unevictable_pgs_culled",
    UnevictablePgsRescued => "unevictable_pgs_rescued",
    UnevictablePgsMlocked => "unevictable_pgs_mlocked",
    UnevictablePgsMunlocked => "unevictable_pgs_munlocked",
    UnevictablePgsCleared => "unevictable_pgs_cleared",
    UnevictablePgsStranded => "unevictable_pgs_stranded",
}

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
