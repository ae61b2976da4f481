//! Background workloads: each kind runs, keeps the invariants, stops cleanly, and is
//! deterministic; memory pressure from a reader produces reclaim and refaults.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::owner::SLOT_EMPTY;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::workload::{WorkloadKind, WorkloadStats};
use cmadev_mm::Machine;
use common::*;
use serde_json::json;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn spec(v: serde_json::Value) -> WorkloadKind {
    serde_json::from_value(v).expect("valid workload spec")
}

fn stats(m: &Machine, id: u32) -> WorkloadStats {
    m.workload_stats(id).unwrap()
}

fn mem_free(m: &Machine) -> u64 {
    m.zones.iter().map(|z| z.nr_free_pages).sum()
}

/// Give every per-CPU list back, so that MemFree counts every free page.
fn drain(m: &mut Machine) {
    for zi in 0..m.zones.len() {
        m.drain_all_pages(zi);
    }
    m.take_charge();
}

/// Run in slices, checking the invariants after each.
fn run_checked(m: &mut Machine, until: u64, slice: u64) {
    while m.now < until {
        let t = (m.now + slice).min(until);
        m.run_until(t);
        m.check_invariants().unwrap();
    }
}

fn every_kind() -> Vec<serde_json::Value> {
    vec![
        json!({"kind": "page_cache_reader", "name": "reader", "file_pages": 20_000,
               "rate_pages_per_s": 20_000.0, "zipf_s": 0.9}),
        json!({"kind": "page_cache_reader", "name": "streamer", "file_pages": 5_000,
               "rate_pages_per_s": 5_000.0, "sequential": true}),
        json!({"kind": "writer", "name": "writer", "file_pages": 3_000,
               "rate_pages_per_s": 4_000.0, "fsync_every_pages": 256}),
        json!({"kind": "anon_hog", "name": "hog", "target_pages": 8_000,
               "growth_pages_per_s": 10_000.0, "touch_rate_pages_per_s": 5_000.0,
               "write_fraction": 0.3}),
        json!({"kind": "direct_io", "name": "dio", "buffer_pages": 2_048, "ios_per_s": 2_000.0,
               "pages_per_io": 16, "pin_mean_ns": 2_000_000}),
        json!({"kind": "longterm_pinner", "name": "rdma", "pages": 1_024,
               "hold_ns": 1_500_000_000u64}),
        json!({"kind": "fs_mount", "name": "ext4", "superblock_pages": 8}),
        json!({"kind": "kernel_alloc", "name": "slab", "rate_allocs_per_s": 3_000.0,
               "order": 1, "lifetime_mean_ns": 200_000_000}),
        json!({"kind": "build", "name": "make", "jobs": 6, "cpu_ns": 300_000_000u64,
               "anon_pages": 2_000, "touches_per_page": 1.0, "source_pages": 5_000,
               "reads_per_process": 300, "source_zipf": 0.6, "output_pages": 20}),
    ]
}

#[test]
fn each_kind_runs_keeps_invariants_and_stop_frees_everything() {
    for v in every_kind() {
        let kind = v["kind"].as_str().unwrap().to_string();
        for placement in [Placement::Legacy, Placement::Balanced] {
            let mut m = machine(256, 64, placement);
            let free0 = mem_free(&m);
            let id = m.start_workload(spec(v.clone())).unwrap();
            run_checked(&mut m, 2 * S, 250 * MS);
            let st = stats(&m, id);
            assert!(st.running && st.ops > 0, "{kind}: {st:?}");
            assert!(st.resident_pages > 0, "{kind}: {st:?}");
            m.stop_workload(id).unwrap();
            m.check_invariants().unwrap();
            // Writeback in flight ends, then the reap frees the last pages.
            m.run_until(m.now + S);
            drain(&mut m);
            m.check_invariants().unwrap();
            let st = stats(&m, id);
            assert!(!st.running, "{kind}");
            assert_eq!(st.resident_pages, 0, "{kind}: {st:?}");
            assert!(m.holds.is_empty(), "{kind}: holds left");
            assert_eq!(
                mem_free(&m),
                free0,
                "{kind} under {placement:?}: MemFree back"
            );
        }
    }
}

#[test]
fn workload_kinds_do_what_they_say() {
    let mut m = machine(256, 64, Placement::Balanced);
    let ids: Vec<u32> = every_kind()
        .into_iter()
        .map(|v| m.start_workload(spec(v)).unwrap())
        .collect();
    run_checked(&mut m, 3 * S, 500 * MS);
    let st: Vec<WorkloadStats> = ids.iter().map(|&id| stats(&m, id)).collect();
    for s in &st {
        println!("{s:?}");
    }
    let [reader, streamer, writer, hog, dio, rdma, ext4, slab, make] = &st[..] else {
        panic!()
    };
    // Six compilers at a time of 300 ms each: about 60 processes in 3 s on 4 CPUs, each
    // reading 300 pages of the tree and writing a 20-page object.
    assert!(
        make.pages_written >= 20 * 20 && make.pages_read > 300 * 20,
        "{make:?}"
    );
    // Zipf-skewed reads over 80 MiB on a 256 MiB board: mostly hits after warm-up.
    assert!(reader.hits > reader.populated, "{reader:?}");
    assert_eq!(reader.pages_read, reader.ops);
    // The streamer wraps around its 20 MiB file: second pass hits.
    assert!(
        streamer.hits > 0 && streamer.populated == 5_000,
        "{streamer:?}"
    );
    assert!(
        writer.pages_written > 3_000 && writer.stall_ns > 0,
        "{writer:?}"
    );
    assert_eq!(hog.populated, 8_000, "{hog:?}");
    assert!(hog.hits > 0, "{hog:?}");
    // ~2000 I/Os/s x 16 pages for 3 s (less the populate phase).
    assert!(dio.pins_taken > 50_000, "{dio:?}");
    assert_eq!(rdma.pins_taken, 1_024, "{rdma:?}");
    assert_eq!(ext4.pins_taken, 8, "{ext4:?}");
    assert!(
        ext4.stall_ns >= 8 * 150_000,
        "superblock reads are charged: {ext4:?}"
    );
    // About 3000 allocations/s living 200 ms: ~600 live order-1 blocks.
    assert!(slab.ops > 15_000, "{slab:?}");
    assert!((400..=900).contains(&(slab.resident_pages / 2)), "{slab:?}");
    // The long-term pins were released at 1.5 s.
    let rdma_owner = m.owners.lookup("rdma").unwrap();
    assert!(m.holds.by_id.values().all(|h| h.holder != rdma_owner));
    // The mount still holds its buffers.
    let ext4_owner = m.owners.lookup("ext4").unwrap();
    let held = m
        .holds
        .by_id
        .values()
        .filter(|h| h.holder == ext4_owner)
        .count();
    assert_eq!(held, 8);
}

#[test]
fn start_and_stop_times_are_honoured() {
    let mut m = machine(256, 64, Placement::Balanced);
    let id = m
        .start_workload(spec(json!({
            "kind": "page_cache_reader", "name": "late", "file_pages": 1000,
            "rate_pages_per_s": 1000.0, "start_ns": 500 * MS, "stop_ns": 1500 * MS
        })))
        .unwrap();
    m.run_until(400 * MS);
    assert_eq!(stats(&m, id).ops, 0);
    m.run_until(2 * S);
    let st = stats(&m, id);
    assert!(!st.running);
    // 1000 reads/s for 1 s, less what misses stalled.
    assert!((300..=1001).contains(&st.ops), "{st:?}");
    assert_eq!(st.resident_pages, 0);
    m.check_invariants().unwrap();
    // fs_mount takes mount_ns/unmount_ns as its start and stop.
    let id = m
        .start_workload(spec(json!({
            "kind": "fs_mount", "name": "ext4", "mount_ns": 3 * S, "unmount_ns": 4 * S
        })))
        .unwrap();
    m.run_until(3 * S + 100 * MS);
    assert_eq!(stats(&m, id).pins_taken, 8);
    assert_eq!(m.holds.len(), 8);
    m.run_until(4 * S + 1);
    assert!(m.holds.is_empty());
    assert!(!stats(&m, id).running);
}

/// Readers draw their pages a few reads ahead (to prefetch them): that must not skip,
/// repeat or reorder a read. A streamer reads page 0, 1, 2, ... exactly once each per pass,
/// and readahead keeps at most two windows (of at most 32 pages) ahead of it, in order: only
/// its first read misses.
#[test]
fn a_streamer_reads_every_page_in_order_once_per_pass() {
    let mut m = machine(256, 64, Placement::Balanced);
    let id = m
        .start_workload(spec(json!({
            "kind": "page_cache_reader", "name": "streamer", "file_pages": 1_000,
            "rate_pages_per_s": 10_000.0, "sequential": true
        })))
        .unwrap();
    let owner = m.owners.lookup("streamer").unwrap();
    let mut seen = 0u64;
    while stats(&m, id).ops < 1_500 {
        m.run_until(m.now + MS);
        let st = stats(&m, id);
        let first_pass = st.ops.min(1_000);
        assert_eq!(
            st.hits,
            st.ops.saturating_sub(1),
            "only the first read misses: {st:?}"
        );
        // The pages read so far are the first ones of the file, and readahead's windows
        // follow them without a gap.
        let map = &m.owners.list[owner as usize].map;
        let resident = map.iter().take_while(|&&slot| slot != SLOT_EMPTY).count() as u64;
        assert_eq!(st.populated, resident, "{st:?}");
        assert!(
            resident >= first_pass && resident <= (first_pass + 64).min(1_000),
            "{resident} resident after {first_pass} reads"
        );
        assert!(map[resident as usize..]
            .iter()
            .all(|&slot| slot == SLOT_EMPTY));
        assert!(st.ops >= seen);
        seen = st.ops;
    }
    m.check_invariants().unwrap();
}

#[test]
fn run_until_stops_the_clock_where_asked() {
    let mut m = machine(256, 64, Placement::Balanced);
    m.start_workload(spec(json!({
        "kind": "page_cache_reader", "name": "r", "file_pages": 50_000,
        "rate_pages_per_s": 30_000.0
    })))
    .unwrap();
    for k in 1..=50u64 {
        let t = k * 7 * MS + 3;
        m.run_until(t);
        assert_eq!(m.now, t);
    }
}

#[test]
fn same_seed_same_stats_and_series() {
    let run = |seed: u64| {
        let mut cfg = board(256, 64, Placement::Legacy);
        cfg.seed = seed;
        let mut m = Machine::new(cfg).unwrap();
        m.set_sampling(100 * MS);
        let ids: Vec<u32> = every_kind()
            .into_iter()
            .map(|v| m.start_workload(spec(v)).unwrap())
            .collect();
        m.run_until(2 * S);
        let stats: Vec<String> = ids
            .iter()
            .map(|&id| serde_json::to_string(&m.workload_stats(id).unwrap()).unwrap())
            .collect();
        (stats, serde_json::to_string(&m.series).unwrap())
    };
    let (a, sa) = run(7);
    let (b, sb) = run(7);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = run(8);
    assert_ne!(a, c, "another seed, another run");
    let series: serde_json::Value = serde_json::from_str(&sa).unwrap();
    assert_eq!(series["t_ns"].as_array().unwrap().len(), 21);
    assert_eq!(series["cma_total"], 64 * 256);
}

#[test]
fn reader_larger_than_memory_makes_kswapd_reclaim_and_refaults() {
    let mut m = machine(256, 64, Placement::Balanced);
    m.set_sampling(100 * MS);
    // 320 MiB read at random on a 256 MiB board.
    let id = m
        .start_workload(spec(json!({
            "kind": "page_cache_reader", "name": "big", "file_pages": 81_920,
            "rate_pages_per_s": 40_000.0
        })))
        .unwrap();
    run_checked(&mut m, 30 * S, 5 * S);
    let st = stats(&m, id);
    println!("{st:?}");
    assert!(st.refaults > 1_000, "{st:?}");
    assert!(m.vmstat.get(Counter::PgscanKswapd) > 0);
    assert!(m.kswapd.busy_ns > 0);
    assert!(m.vmstat.get(Counter::WorkingsetRefaultFile) >= st.refaults);
    let s = &m.series;
    assert!(s.refaults.last() > s.refaults.first());
    assert!(s.kswapd_busy_ns.windows(2).all(|w| w[0] <= w[1]));
    // Balanced placement lends the CMA area to the page cache.
    let movable = *s.cma_movable.last().unwrap();
    assert!(movable > s.cma_total / 2, "{movable} of {}", s.cma_total);
    let usage = m.cma_usage(0);
    assert!(
        movable.abs_diff(usage.anon + usage.file) < 2_000,
        "approximation close to the scan: {movable} vs {usage:?}"
    );
}

#[test]
fn allocation_failures_are_counted_not_fatal() {
    // No swap: an anonymous hog larger than memory runs out; the machine carries on.
    let mut m = machine(128, 0, Placement::Balanced);
    let id = m
        .start_workload(spec(json!({
            "kind": "anon_hog", "name": "hog", "target_pages": 40_000,
            "growth_pages_per_s": 100_000.0
        })))
        .unwrap();
    run_checked(&mut m, 600 * MS, 100 * MS);
    let st = stats(&m, id);
    assert!(st.alloc_failures > 0, "{st:?}");
    assert!(st.populated > 25_000, "{st:?}");
    m.stop_workload(id).unwrap();
    m.check_invariants().unwrap();
}

#[test]
fn bad_specs_are_refused_with_the_field_named() {
    let mut m = machine(256, 64, Placement::Balanced);
    let cases = [
        (
            json!({"kind": "writer", "name": "w", "file_pages": 0, "rate_pages_per_s": 1.0}),
            "file_pages",
        ),
        (
            json!({"kind": "direct_io", "name": "d", "buffer_pages": 4, "ios_per_s": 1.0,
                   "pages_per_io": 8, "pin_mean_ns": 1}),
            "pages_per_io",
        ),
        (
            json!({"kind": "page_cache_reader", "name": "r", "file_pages": 4,
                   "rate_pages_per_s": -1.0}),
            "rate_pages_per_s",
        ),
        (
            json!({"kind": "kernel_alloc", "name": "k", "rate_allocs_per_s": 1.0, "order": 11,
                   "lifetime_mean_ns": 5}),
            "order",
        ),
        (
            json!({"kind": "fs_mount", "name": "f", "start_ns": 5, "stop_ns": 5}),
            "stop_ns",
        ),
    ];
    for (v, field) in cases {
        let err = m.start_workload(spec(v)).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
    let v = json!({"kind": "fs_mount", "name": "twice"});
    m.start_workload(spec(v.clone())).unwrap();
    let err = m.start_workload(spec(v)).unwrap_err().to_string();
    assert!(err.contains("already running"), "{err}");
    assert!(m.workload_stats(99).is_err());
    assert!(m.stop_workload(99).is_err());
}

#[test]
fn a_name_can_be_reused_once_its_workload_is_gone() {
    let mut m = machine(256, 64, Placement::Balanced);
    let v = |stop: u64| {
        spec(json!({
            "kind": "writer", "name": "w", "file_pages": 2_000, "rate_pages_per_s": 4_000.0,
            "fsync_every_pages": 64, "stop_ns": stop
        }))
    };
    let a = m.start_workload(v(2 * S)).unwrap();
    m.run_until(S);
    m.stop_workload(a).unwrap();
    m.stop_workload(a).unwrap(); // stopping twice is harmless
    m.run_until(1500 * MS);
    assert_eq!(stats(&m, a).resident_pages, 0);
    // The first writer's stop event (at 2 s) must not touch the second one's pages.
    let b = m.start_workload(v(10 * S)).unwrap();
    run_checked(&mut m, 3 * S, 500 * MS);
    let st = stats(&m, b);
    assert!(st.running && st.resident_pages == 2_000, "{st:?}");
    assert_eq!(stats(&m, a).resident_pages, 0);
}
