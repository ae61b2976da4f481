//! Views in the kernel's formats, as Linux 6.1 prints them (`fs/proc/meminfo.c`,
//! `mm/vmstat.c`, `mm/cma_sysfs.c`): `/proc/meminfo`, `/proc/buddyinfo`,
//! `/proc/pagetypeinfo`, `/proc/vmstat`, `/sys/kernel/mm/cma/<area>/`. `/proc/zoneinfo` is in
//! `zoneinfo.rs`, the debugfs files of an area in `cma_debug.rs`.
//!
//! Every line the kernel prints is printed, in its order. What the model does not track is
//! printed as 0 and listed in [`MEMINFO_UNTRACKED`] (and the README), never estimated.

use std::fmt::Write;

use crate::config::{KernelVersion, MAX_PAGE_ORDER, PAGE_SIZE};
use crate::page::{pg, Kind};
use crate::pageblock::{Migratetype, MIGRATE_TYPES};
use crate::pfn::Pfn;
use crate::vmstat::{Counter, MODEL_COUNTERS, VMSTAT_6_1};
use crate::Machine;

/// `/proc/meminfo` lines the model does not track: printed as 0. (The huge-page lines and
/// `Mapped` are 0 because the model has no THP or hugetlbfs and maps no file pages: they are
/// the model's true figures.)
pub const MEMINFO_UNTRACKED: [&str; 14] = [
    "SwapCached",
    "KernelStack",
    "PageTables",
    "SecPageTables",
    "NFS_Unstable",
    "Bounce",
    "WritebackTmp",
    "Committed_AS",
    "VmallocUsed",
    "VmallocChunk",
    "Percpu",
    "DirectMap4k",
    "DirectMap2M",
    "KReclaimable",
];

/// `VMALLOC_TOTAL` of x86-64 with 4-level page tables (32 TiB), in kB.
const VMALLOC_TOTAL_KB: u64 = 34_359_738_367;

/// Pages by what they hold, per zone: one walk over the frames, for the views that need
/// what no counter keeps (LRU lists per zone, isolated pages, kernel memory).
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameCounts {
    /// inactive anon, active anon, inactive file, active file (on an LRU list).
    pub lru: [u64; 4],
    /// On the unevictable LRU (mlocked, `mlock.rs`): flagged LRU, on no list.
    pub unevictable: u64,
    pub isolated_anon: u64,
    pub isolated_file: u64,
    /// Kernel pages in RECLAIMABLE pageblocks (the model's reclaimable slab).
    pub kernel_reclaimable: u64,
    /// Other kernel pages (slab, page tables and driver memory, which the model does not
    /// tell apart).
    pub kernel_unreclaimable: u64,
    pub anon: u64,
    pub file: u64,
    pub dirty: u64,
    pub writeback: u64,
}

impl FrameCounts {
    fn add(&mut self, o: &FrameCounts) {
        for i in 0..4 {
            self.lru[i] += o.lru[i];
        }
        self.unevictable += o.unevictable;
        self.isolated_anon += o.isolated_anon;
        self.isolated_file += o.isolated_file;
        self.kernel_reclaimable += o.kernel_reclaimable;
        self.kernel_unreclaimable += o.kernel_unreclaimable;
        self.anon += o.anon;
        self.file += o.file;
        self.dirty += o.dirty;
        self.writeback += o.writeback;
    }
}

impl Machine {
    /// [`FrameCounts`] of zone `zi` (one pass over its frames).
    pub fn zone_frame_counts(&self, zi: usize) -> FrameCounts {
        let z = &self.zones[zi];
        let mut c = FrameCounts::default();
        let mut p = z.start_pfn;
        while p < z.end_pfn {
            if p == z.deferred.next && !z.deferred.is_empty() {
                p = z.deferred.end; // free blocks, unwritten (`mm_init.rs`): nothing to count
                continue;
            }
            let page = self.pages[p];
            let n = 1u64 << page.order();
            match page.kind() {
                Kind::Anon | Kind::File | Kind::Shmem => {
                    // Shmem is swap-backed: on the anon lists, counted with them.
                    let anon = page.kind().is_swap_backed();
                    if page.test(pg::LRU) && self.page_unevictable(p) {
                        c.unevictable += n;
                    } else if page.test(pg::LRU) {
                        let active = page.test(pg::ACTIVE) as usize;
                        c.lru[if anon { 0 } else { 2 } + active] += n;
                    }
                    if page.test(pg::ISOLATED) {
                        if anon {
                            c.isolated_anon += n;
                        } else {
                            c.isolated_file += n;
                        }
                    }
                    if anon {
                        c.anon += n;
                    } else {
                        c.file += n;
                    }
                    if page.test(pg::DIRTY) {
                        c.dirty += n;
                    }
                    if page.test(pg::WRITEBACK) {
                        c.writeback += n;
                    }
                }
                Kind::Kernel => {
                    if self.pageblocks.get(p) == Migratetype::Reclaimable {
                        c.kernel_reclaimable += n;
                    } else {
                        c.kernel_unreclaimable += n;
                    }
                }
                _ => {}
            }
            p += match page.kind() {
                Kind::Buddy | Kind::Anon | Kind::File | Kind::Shmem | Kind::Kernel => n as u32,
                _ => 1,
            };
        }
        c
    }

    /// [`FrameCounts`] of the whole node.
    pub fn frame_counts(&self) -> FrameCounts {
        let mut c = FrameCounts::default();
        for zi in 0..self.zones.len() {
            c.add(&self.zone_frame_counts(zi));
        }
        c
    }

    /// `/proc/meminfo`, in kB (the `HugePages_*` lines in pages), every line of 6.1 for the
    /// guest's configuration, in the kernel's order.
    pub fn meminfo(&self) -> Vec<(&'static str, u64)> {
        let kb = |pages: u64| pages * PAGE_SIZE / 1024;
        let v = self.meminfo_values();
        let slab = v.k_reclaimable + v.s_unreclaim;
        // `vm_commit_limit`: overcommit_ratio 50% of RAM, plus swap.
        let commit_limit = v.mem_total * 50 / 100 + v.swap_total;
        vec![
            ("MemTotal", kb(v.mem_total)),
            ("MemFree", kb(v.mem_free)),
            ("MemAvailable", kb(v.mem_available)),
            ("Buffers", kb(v.buffers)),
            ("Cached", kb(v.cached)),
            ("SwapCached", 0),
            ("Active", kb(v.active_anon + v.active_file)),
            ("Inactive", kb(v.inactive_anon + v.inactive_file)),
            ("Active(anon)", kb(v.active_anon)),
            ("Inactive(anon)", kb(v.inactive_anon)),
            ("Active(file)", kb(v.active_file)),
            ("Inactive(file)", kb(v.inactive_file)),
            ("Unevictable", kb(v.unevictable)),
            ("Mlocked", kb(v.mlocked)),
            ("SwapTotal", kb(v.swap_total)),
            ("SwapFree", kb(v.swap_free)),
            ("Dirty", kb(v.dirty)),
            ("Writeback", kb(v.writeback)),
            ("AnonPages", kb(v.anon_pages)),
            ("Mapped", kb(v.mapped)),
            ("Shmem", kb(v.shmem)),
            ("KReclaimable", kb(v.k_reclaimable)),
            ("Slab", kb(slab)),
            ("SReclaimable", kb(v.k_reclaimable)),
            ("SUnreclaim", kb(v.s_unreclaim)),
            ("KernelStack", 0),
            ("PageTables", 0),
            ("SecPageTables", 0),
            ("NFS_Unstable", 0),
            ("Bounce", 0),
            ("WritebackTmp", 0),
            ("CommitLimit", kb(commit_limit)),
            ("Committed_AS", 0),
            ("VmallocTotal", VMALLOC_TOTAL_KB),
            ("VmallocUsed", 0),
            ("VmallocChunk", 0),
            ("Percpu", 0),
            ("AnonHugePages", 0),
            ("ShmemHugePages", 0),
            ("ShmemPmdMapped", 0),
            ("FileHugePages", 0),
            ("FilePmdMapped", 0),
            ("CmaTotal", kb(v.cma_total)),
            ("CmaFree", kb(v.cma_free)),
            ("HugePages_Total", 0),
            ("HugePages_Free", 0),
            ("HugePages_Rsvd", 0),
            ("HugePages_Surp", 0),
            ("Hugepagesize", 2048),
            ("Hugetlb", 0),
            ("DirectMap4k", 0),
            ("DirectMap2M", 0),
        ]
    }

    /// `/proc/meminfo` as text: `show_val_kb` (`%-16s` label with its colon, `%8lu kB`),
    /// `hugetlb_report_meminfo` (`HugePages_*:` `%5lu`), `arch_report_meminfo`
    /// (`DirectMap*:` `%8lu kB`).
    pub fn meminfo_text(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.meminfo() {
            let label = format!("{k}:");
            if k.starts_with("HugePages_") {
                let _ = writeln!(s, "{label:<19}{v:>5}");
            } else {
                let _ = writeln!(s, "{label:<16}{v:>8} kB");
            }
        }
        s
    }

    /// `/proc/buddyinfo`: free blocks per order, all migratetypes together.
    pub fn buddyinfo_text(&self) -> String {
        let mut s = String::new();
        for z in &self.zones {
            let _ = write!(s, "Node 0, zone {:>8} ", z.id.name());
            for area in &z.free_area {
                let _ = write!(s, "{:>6} ", area.nr_free);
            }
            s.push('\n');
        }
        s
    }

    /// Free blocks per zone, migratetype and order.
    pub fn free_blocks(&self, zi: usize, mt: Migratetype) -> Vec<u64> {
        let zone = &self.zones[zi];
        (0..zone.free_area.len() as u32)
            .map(|order| zone.free_list_len(order, mt) as u64)
            .collect()
    }

    /// `/proc/pagetypeinfo` (6.1 `pagetypeinfo_show`): the free lists per migratetype and
    /// order (`%-43s ` header, `Node %4d, zone %8s, type %12s ` rows, `%6lu ` counts, `>100000`
    /// past 100000 entries), then the pageblocks per type (`%-23s`, `%12lu `), over the
    /// populated zones. The model has no MIGRATE_HIGHATOMIC reserve: its row and column are
    /// printed, as zeros, where the kernel prints them.
    pub fn pagetypeinfo_text(&self) -> String {
        const NAMES: [&str; 6] = [
            "Unmovable",
            "Movable",
            "Reclaimable",
            "HighAtomic",
            "CMA",
            "Isolate",
        ];
        let types: [Option<Migratetype>; 6] = [
            Some(Migratetype::Unmovable),
            Some(Migratetype::Movable),
            Some(Migratetype::Reclaimable),
            None,
            Some(Migratetype::Cma),
            Some(Migratetype::Isolate),
        ];
        let mut s = String::new();
        let _ = writeln!(s, "Page block order: {}", self.pageblocks.order);
        let _ = writeln!(s, "Pages per block:  {}\n", self.pageblocks.nr_pages());
        let _ = write!(s, "{:<43} ", "Free pages count per migrate type at order");
        for o in 0..=MAX_PAGE_ORDER {
            let _ = write!(s, "{o:>6} ");
        }
        s.push('\n');
        for (zi, z) in self.zones.iter().enumerate() {
            for (name, mt) in NAMES.iter().zip(types) {
                let _ = write!(
                    s,
                    "Node {:>4}, zone {:>8}, type {:>12} ",
                    0,
                    z.id.name(),
                    name
                );
                let counts = match mt {
                    Some(mt) => self.free_blocks(zi, mt),
                    None => vec![0; MAX_PAGE_ORDER as usize + 1],
                };
                for n in counts {
                    if n >= 100_000 {
                        let _ = write!(s, ">{:>6} ", 100_000);
                    } else {
                        let _ = write!(s, "{n:>6} ");
                    }
                }
                s.push('\n');
            }
        }
        let _ = write!(s, "\n{:<23}", "Number of blocks type ");
        for name in NAMES {
            let _ = write!(s, "{name:>12} ");
        }
        s.push('\n');
        for (zi, z) in self.zones.iter().enumerate() {
            let counts = self.pageblock_counts(zi);
            let _ = write!(s, "Node 0, zone {:>8} ", z.id.name());
            for mt in types {
                let c = mt.map_or(0, |mt| counts[mt.index()]);
                let _ = write!(s, "{c:>12} ");
            }
            s.push('\n');
        }
        s
    }

    pub fn pageblock_counts(&self, zi: usize) -> [u64; MIGRATE_TYPES] {
        let z = &self.zones[zi];
        let mut counts = [0; MIGRATE_TYPES];
        let step = self.pageblocks.nr_pages();
        for pb in Pfn::range_step(z.start_pfn, z.end_pfn, step) {
            counts[self.pageblocks.get(pb).index()] += 1;
        }
        counts
    }

    /// `/proc/vmstat` of 6.1 ([`VMSTAT_6_1`]), kernel names only, in the kernel's order.
    /// What the model does not track is 0 (THP, hugetlb, NUMA-free, slab shrinking,
    /// compaction beyond `compact_isolated`, which `alloc_contig_range` counts).
    pub fn vmstat(&self) -> Vec<(String, u64)> {
        let c = self.frame_counts();
        let v = &self.vmstat;
        let free: u64 = self.zones.iter().map(|z| z.nr_free_pages).sum();
        let cma_free: u64 = self.zones.iter().map(|z| z.nr_free_cma).sum();
        let lru = self.lru_sizes();
        let (thresh, bg) = self.dirty_thresholds(&c);
        let nr_dirty = self.writeback.nr_dirty;
        let nr_writeback = self.writeback.nr_writeback;
        VMSTAT_6_1
            .iter()
            .map(|&name| {
                let n = match name {
                    "nr_free_pages" => free,
                    "nr_free_cma" => cma_free,
                    "nr_zone_inactive_anon" | "nr_inactive_anon" => lru[0],
                    "nr_zone_active_anon" | "nr_active_anon" => lru[1],
                    "nr_zone_inactive_file" | "nr_inactive_file" => lru[2],
                    "nr_zone_active_file" | "nr_active_file" => lru[3],
                    "nr_zone_write_pending" => nr_dirty + nr_writeback,
                    "nr_slab_reclaimable" => c.kernel_reclaimable,
                    "nr_slab_unreclaimable" => c.kernel_unreclaimable,
                    "nr_isolated_anon" => c.isolated_anon,
                    "nr_isolated_file" => c.isolated_file,
                    "nr_zone_unevictable" | "nr_unevictable" => self.lru.nr_unevictable,
                    "nr_mlock" => self.node_stat.nr_mlock,
                    "nr_anon_pages" => self.node_stat.nr_anon_mapped(),
                    "nr_file_pages" => self.node_stat.nr_file_pages(),
                    "nr_shmem" => self.node_stat.nr_shmem(),
                    "nr_dirty" => nr_dirty,
                    "nr_writeback" => nr_writeback,
                    "nr_dirty_threshold" => thresh,
                    "nr_dirty_background_threshold" => bg,
                    _ => Counter::ALL
                        .iter()
                        .find(|c| c.name() == name)
                        .map_or(0, |&c| v.get(c)),
                };
                (name.to_string(), n)
            })
            .collect()
    }

    /// `/proc/vmstat` as text: `%s %lu` a line.
    pub fn vmstat_text(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.vmstat() {
            let _ = writeln!(s, "{k} {v}");
        }
        s
    }

    /// The model's own counters, which have no kernel name ([`MODEL_COUNTERS`]).
    pub fn model_counters(&self) -> Vec<(&'static str, u64)> {
        MODEL_COUNTERS
            .iter()
            .map(|(c, _)| (c.name(), self.vmstat.get(*c)))
            .collect()
    }

    /// `global_dirty_limits` (6.1): `vm.dirty_ratio` and `vm.dirty_background_ratio` (10)
    /// of the dirtyable memory (free pages and the file LRU, less the reserves); the
    /// background threshold is at most half the other.
    pub fn dirty_thresholds(&self, c: &FrameCounts) -> (u64, u64) {
        let free: u64 = self.zones.iter().map(|z| z.nr_free_pages).sum();
        let dirtyable = (free + c.lru[2] + c.lru[3]).saturating_sub(self.totalreserve_pages());
        let thresh = dirtyable * self.cfg.dirty_ratio as u64 / 100;
        let mut bg = dirtyable * 10 / 100;
        if bg >= thresh {
            bg = thresh / 2;
        }
        (thresh, bg)
    }

    /// `/sys/kernel/mm/cma/<area>/*` as numbers, every file mainline has (the model keeps
    /// all five figures whatever the kernel version; [`Machine::cma_sysfs_files`] prints the
    /// version's).
    pub fn cma_sysfs(&self, area: usize) -> Vec<(&'static str, u64)> {
        let a = &self.cma[area];
        vec![
            ("alloc_pages_success", a.alloc_pages_success),
            ("alloc_pages_fail", a.alloc_pages_fail),
            ("release_pages_success", a.release_pages_success),
            ("total_pages", a.count as u64),
            ("available_pages", a.available_pages()),
        ]
    }

    /// The files of `/sys/kernel/mm/cma/<area>/` the board's kernel has, each as it prints
    /// it (`%lu\n`, pages): 6.1 has `alloc_pages_success` and `alloc_pages_fail`; mainline
    /// adds `release_pages_success`, `total_pages` and `available_pages` (2024).
    pub fn cma_sysfs_files(&self, area: usize) -> Vec<(&'static str, String)> {
        let files = self.cma_sysfs(area);
        let keep = match self.cfg.kernel_version {
            KernelVersion::V6_1 => 2,
            KernelVersion::Mainline => files.len(),
        };
        files
            .into_iter()
            .take(keep)
            .map(|(k, v)| (k, format!("{v}\n")))
            .collect()
    }

    /// Pages of a CMA area by what they hold: free, movable user pages, device buffers,
    /// cleancache, other (pinned counted within user pages).
    pub fn cma_usage(&self, area: usize) -> CmaUsage {
        let a = &self.cma[area];
        let mut u = CmaUsage::default();
        for pfn in Pfn::range(a.base_pfn, a.end_pfn()) {
            let page = &self.pages[pfn];
            let kind = if page.kind() == Kind::Tail {
                self.pages[page.head()].kind()
            } else {
                page.kind()
            };
            match kind {
                Kind::Free | Kind::Buddy | Kind::Pcp => u.free += 1,
                Kind::Anon | Kind::Shmem => u.anon += 1,
                Kind::File => u.file += 1,
                Kind::Device => u.device += 1,
                Kind::Cache => u.cache += 1,
                _ => u.other += 1,
            }
        }
        u
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmaUsage {
    pub free: u64,
    pub anon: u64,
    pub file: u64,
    pub device: u64,
    pub cache: u64,
    pub other: u64,
}
