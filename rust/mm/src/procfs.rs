//! Views in the kernel's formats: `/proc/meminfo` (the lines this model knows),
//! `/proc/buddyinfo`, `/proc/pagetypeinfo`, `/proc/vmstat`, `/sys/kernel/mm/cma/<area>/`.

use std::fmt::Write;

use crate::config::MAX_PAGE_ORDER;
use crate::page::Kind;
use crate::pageblock::{Migratetype, MIGRATE_TYPES};
use crate::pfn::Pfn;
use crate::Machine;

impl Machine {
    /// `/proc/meminfo`, in kB: the lines whose values the model keeps (`meminfo.rs`).
    pub fn meminfo(&self) -> Vec<(&'static str, u64)> {
        self.meminfo_values().lines()
    }

    pub fn meminfo_text(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.meminfo() {
            let _ = writeln!(s, "{:<16}{:>8} kB", format!("{k}:"), v);
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
        self.zones[zi]
            .free_area
            .iter()
            .map(|a| a.lists[mt.index()].len as u64)
            .collect()
    }

    /// `/proc/pagetypeinfo`.
    pub fn pagetypeinfo_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Page block order: {}", self.pageblocks.order);
        let _ = writeln!(s, "Pages per block:  {}\n", self.pageblocks.nr_pages());
        let _ = write!(s, "Free pages count per migrate type at order ");
        for o in 0..=MAX_PAGE_ORDER {
            let _ = write!(s, "{o:>6} ");
        }
        s.push('\n');
        for (zi, z) in self.zones.iter().enumerate() {
            for mt in Migratetype::ALL {
                let _ = write!(
                    s,
                    "Node    0, zone {:>8}, type {:>12} ",
                    z.id.name(),
                    mt.name()
                );
                for n in self.free_blocks(zi, mt) {
                    let _ = write!(s, "{n:>6} ");
                }
                s.push('\n');
            }
        }
        let _ = write!(s, "\nNumber of blocks type ");
        for mt in Migratetype::ALL {
            let _ = write!(s, "{:>12} ", mt.name());
        }
        s.push('\n');
        for (zi, z) in self.zones.iter().enumerate() {
            let counts = self.pageblock_counts(zi);
            let _ = write!(s, "Node 0, zone {:>8} ", z.id.name());
            for c in counts {
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

    /// `/proc/vmstat`: gauges first, then the event counters.
    pub fn vmstat(&self) -> Vec<(String, u64)> {
        let free: u64 = self.zones.iter().map(|z| z.nr_free_pages).sum();
        let cma_free: u64 = self.zones.iter().map(|z| z.nr_free_cma).sum();
        let lru = self.lru_sizes();
        let mut v: Vec<(String, u64)> = vec![
            ("nr_free_pages".into(), free),
            ("nr_free_cma".into(), cma_free),
            ("nr_inactive_anon".into(), lru[0]),
            ("nr_active_anon".into(), lru[1]),
            ("nr_inactive_file".into(), lru[2]),
            ("nr_active_file".into(), lru[3]),
            ("nr_dirty".into(), self.writeback.nr_dirty),
            ("nr_writeback".into(), self.writeback.nr_writeback),
        ];
        v.extend(
            self.node_stat_gauges()
                .into_iter()
                .map(|(k, n)| (k.into(), n)),
        );
        v.extend(self.vmstat.iter().map(|(k, n)| (k.to_string(), n)));
        v
    }

    /// `/sys/kernel/mm/cma/<area>/*`, plus what the area holds right now.
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
