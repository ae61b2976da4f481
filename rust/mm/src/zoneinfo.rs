//! `/proc/zoneinfo` (Linux 6.1 `mm/vmstat.c` `zoneinfo_show_print`), every zone of the node
//! in order, populated or not:
//!
//! ```text
//! Node 0, zone   Normal            "Node %d, zone %8s"
//!   per-node stats                 (first populated zone only)
//!       nr_inactive_anon 57373     "\n      %-12s %lu", each node item
//!   pages free     55005           "\n  pages free     %lu", boost, min, low, high,
//!         boost    0                spanned, present, managed, cma ("\n        %-8s %lu")
//!         protection: (0, 0)       "\n        protection: (%ld, ...)"
//!       nr_free_pages 55005        zone items, then the per-CPU pagesets:
//!   pagesets                       "\n    cpu: %i" count, high, batch,
//!     cpu: 0                       "\n  vm stats threshold: %d" (CONFIG_SMP)
//!   node_unreclaimable:  0         "\n  node_unreclaimable:  %u"
//!   start_pfn:           4096      "\n  start_pfn:           %lu"
//! ```
//!
//! An unpopulated zone stops after `protection`. The zones are those a kernel running the
//! model's layout has: Normal and Movable (unpopulated unless the `movable_zone` placement
//! fills it), and CMA after them under `zone_cma` (Joonsoo Kim's series adds ZONE_CMA last).
//! `boost` is 0: the model has no watermark boosting.

use std::fmt::Write;

use crate::config::Placement;
use crate::vmstat::{NODE_ITEMS, VMSTAT_6_1, ZONE_ITEMS};
use crate::zone::ZoneId;
use crate::Machine;

/// `calculate_normal_threshold` (6.1): `2 * fls(cpus) * (1 + fls(managed >> (27 -
/// PAGE_SHIFT)))`, at most 125.
pub fn stat_threshold(managed_pages: u64, cpus: u32) -> u32 {
    let fls = |x: u64| 64 - x.leading_zeros();
    let mem = managed_pages >> (27 - 12);
    (2 * fls(cpus as u64) * (1 + fls(mem))).min(125)
}

impl Machine {
    /// `/proc/zoneinfo`.
    pub fn zoneinfo_text(&self) -> String {
        let mut ids = vec![ZoneId::Normal, ZoneId::Movable];
        if self.cfg.policy.placement == Placement::ZoneCma {
            ids.push(ZoneId::Cma);
        }
        let vmstat = self.vmstat();
        let value = |name: &str| -> u64 {
            vmstat
                .iter()
                .find(|(k, _)| k == name)
                .map_or(0, |(_, v)| *v)
        };
        let mut s = String::new();
        let mut first_populated = true;
        for id in &ids {
            let zi = self.zones.iter().position(|z| z.id == *id);
            let _ = write!(s, "Node 0, zone {:>8}", id.name());
            let Some(zi) = zi else {
                // Unpopulated: every figure 0, then stop after the protection line.
                for (k, _) in Self::zone_figures_empty() {
                    let _ = write!(s, "\n{k}0");
                }
                let _ = write!(
                    s,
                    "\n        protection: ({})\n",
                    vec!["0"; ids.len()].join(", ")
                );
                continue;
            };
            let z = &self.zones[zi];
            if first_populated {
                first_populated = false;
                s += "\n  per-node stats";
                for name in &VMSTAT_6_1[ZONE_ITEMS..ZONE_ITEMS + NODE_ITEMS] {
                    let _ = write!(s, "\n      {:<12} {}", name, value(name));
                }
            }
            let spanned = (z.end_pfn.0 - z.start_pfn.0) as u64;
            let cma: u64 = self
                .cma
                .iter()
                .filter(|a| a.base_pfn >= z.start_pfn && a.base_pfn < z.end_pfn)
                .map(|a| a.count as u64)
                .sum();
            let figures = [
                ("  pages free     ", z.nr_free_pages),
                ("        boost    ", 0),
                ("        min      ", z.watermark[0]),
                ("        low      ", z.watermark[1]),
                ("        high     ", z.watermark[2]),
                ("        spanned  ", spanned),
                ("        present  ", spanned),
                ("        managed  ", z.managed_pages),
                ("        cma      ", cma),
            ];
            for (k, v) in figures {
                let _ = write!(s, "\n{k}{v}");
            }
            let protection: Vec<String> = (0..ids.len())
                .map(|i| z.lowmem_reserve.get(i).copied().unwrap_or(0).to_string())
                .collect();
            let _ = write!(s, "\n        protection: ({})", protection.join(", "));
            let c = self.zone_frame_counts(zi);
            let zone_items: [u64; ZONE_ITEMS] = [
                z.nr_free_pages,
                c.lru[0],
                c.lru[1],
                c.lru[2],
                c.lru[3],
                0,
                c.dirty + c.writeback,
                0,
                0,
                z.nr_free_cma,
            ];
            for (name, v) in VMSTAT_6_1[..ZONE_ITEMS].iter().zip(zone_items) {
                let _ = write!(s, "\n      {name:<12} {v}");
            }
            s += "\n  pagesets";
            let cpus = self.cfg.cpus;
            let threshold = stat_threshold(z.managed_pages, cpus);
            for cpu in 0..cpus {
                let pcp = &self.pcp[zi * cpus as usize + cpu as usize];
                let _ = write!(
                    s,
                    "\n    cpu: {cpu}\n              count: {}\n              high:  {}\n              batch: {}\n  vm stats threshold: {threshold}",
                    pcp.count, pcp.high, pcp.batch
                );
            }
            let _ = write!(
                s,
                "\n  node_unreclaimable:  {}\n  start_pfn:           {}\n",
                u32::from(self.kswapd.failures() >= 16),
                z.start_pfn.0
            );
        }
        s
    }

    fn zone_figures_empty() -> [(&'static str, u64); 9] {
        [
            ("  pages free     ", 0),
            ("        boost    ", 0),
            ("        min      ", 0),
            ("        low      ", 0),
            ("        high     ", 0),
            ("        spanned  ", 0),
            ("        present  ", 0),
            ("        managed  ", 0),
            ("        cma      ", 0),
        ]
    }
}
