//! `/proc/meminfo`'s values (`meminfo.rs`): `MemAvailable` is `si_mem_available`, free pages
//! less the reserves plus the reclaimable part of the page cache; the other lines come from
//! the node counters and agree with the mappings.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::Machine;
use common::*;
use serde_json::json;

const S: u64 = 1_000_000_000;

fn meminfo(m: &Machine, key: &str) -> u64 {
    m.meminfo()
        .into_iter()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("no {key}"))
        .1
}

#[test]
fn mem_available_follows_free_memory_and_reclaimable_page_cache() {
    let mut m = machine(256, 64, Placement::Balanced);
    let boot = (meminfo(&m, "MemFree"), meminfo(&m, "MemAvailable"));
    // At boot: free less the reserves (high watermark and lowmem reserves).
    assert_eq!(boot.1, boot.0 - m.totalreserve_pages() * 4);
    // Page cache: MemFree falls, MemAvailable barely (half the cache, at most the low
    // watermark, is kept out).
    m.start_workload(spec(json!({"kind": "page_cache_reader", "name": "reader",
        "file_pages": 20_000, "rate_pages_per_s": 100_000.0, "sequential": true})))
        .unwrap();
    m.run_until(4 * S);
    let (free, avail, cached) = (
        meminfo(&m, "MemFree"),
        meminfo(&m, "MemAvailable"),
        meminfo(&m, "Cached"),
    );
    let low: u64 = m.zones.iter().map(|z| z.watermark[1]).sum::<u64>() * 4;
    println!("after 80 MiB read: MemFree {free} kB, Cached {cached} kB, MemAvailable {avail} kB (low {low} kB)");
    assert_eq!(cached, 20_000 * 4);
    assert!(boot.0 - free >= 80_000);
    assert_eq!(
        avail,
        free - m.totalreserve_pages() * 4 + cached - low.min(cached / 2)
    );
    // Anonymous memory: both fall.
    m.start_workload(spec(
        json!({"kind": "anon_hog", "name": "hog", "target_pages": 10_000,
        "growth_pages_per_s": 100_000.0}),
    ))
    .unwrap();
    m.run_until(5 * S);
    assert_eq!(meminfo(&m, "AnonPages"), 40_000);
    assert!(avail - meminfo(&m, "MemAvailable") >= 39_000);
    // A mount's superblock buffers are Buffers, not Cached.
    m.start_workload(spec(
        json!({"kind": "fs_mount", "name": "ext4", "superblock_pages": 8}),
    ))
    .unwrap();
    m.run_until(6 * S);
    assert_eq!(meminfo(&m, "Buffers"), 32);
    assert_eq!(meminfo(&m, "Cached"), 20_000 * 4);
    m.check_invariants().unwrap();
}
