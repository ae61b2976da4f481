//! CPU contention (`sched.rs`): the kernel work of a contiguous allocation and of kswapd
//! takes its CFS share of the CPUs the workloads keep busy.
//! `cargo test -p cmadev-mm --test sched -- --nocapture` prints the figures.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::Kind;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::Machine;
use common::*;

/// A 16 MiB cma_alloc over an area full of anonymous pages, with `runnable` tasks of a
/// workload on the run queues: its latency.
fn cma_alloc_latency(runnable: u32, placement: Placement) -> (u64, u64) {
    let mut m = machine(256, 64, placement);
    let app = m.owners.intern("app").unwrap();
    // Fill memory so the area holds movable pages (legacy takes CMA last), then free the
    // first third (outside the area) to leave the migration targets room.
    let mut n = 0;
    while m.zones[0].nr_free_cma > 256 {
        if m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
            .is_err()
        {
            break;
        }
        n += 1;
    }
    for i in 0..n / 3 {
        m.free_owned(app, i).unwrap();
    }
    m.sched.set_runnable(99, runnable);
    let dev = m.owners.intern("dev").unwrap();
    let id = m.cma_alloc(0, 16 * 256, 8, dev, false).unwrap();
    run_job(&mut m, id, 10_000 * MS);
    let j = m.job(id).unwrap();
    assert!(j.pfn.is_some(), "{:?}", j.errno);
    m.check_invariants().unwrap();
    (j.latency_ns().unwrap(), j.pages_migrated)
}

/// 16 runnable tasks on 4 CPUs: the allocation's CPU work gets 4/17 of a CPU and each
/// flush waits for the busy CPUs, so it takes over 4 times as long; 3 tasks leave the
/// caller a CPU of its own, and only the flushes wait for the three busy ones.
#[test]
fn cma_alloc_takes_its_share_of_busy_cpus() {
    for placement in [Placement::Legacy, Placement::Legacy2014] {
        let (idle, migrated) = cma_alloc_latency(0, placement);
        let (light, _) = cma_alloc_latency(3, placement);
        let (busy, busy_migrated) = cma_alloc_latency(16, placement);
        println!(
            "{placement:?}: idle {:.1} ms, 3 tasks {:.1} ms, 16 tasks {:.1} ms ({migrated} pages)",
            idle as f64 / 1e6,
            light as f64 / 1e6,
            busy as f64 / 1e6
        );
        assert!(migrated > 1000 && busy_migrated == migrated);
        // 2.25 ms of scaled granularity: the last of 3 busy CPUs, 1.69 ms a flush; of 4,
        // 1.8 ms (`sched.rs`). 3.x flushes twice per attempt, 6.1 twice (lru, pcp).
        assert!(
            light > idle && light <= idle + 4 * MS,
            "only the flushes wait"
        );
        assert!(
            busy >= idle * 17 / 4,
            "the CFS share 4/17: {busy} vs {idle}"
        );
        assert!(busy <= idle * 17 / 4 + 4 * MS, "plus the flushes' waits");
    }
}

/// kswapd shares the CPUs too: with a reader as fast as memory (storage at 1 us a page)
/// and reclaim at 5 us a scanned page, on CPUs kept busy by 16 tasks it falls behind,
/// reclaims less and leaves more to direct reclaim.
#[test]
fn kswapd_reclaims_slower_on_busy_cpus() {
    let run = |runnable: u32| {
        let mut cfg = board(128, 0, Placement::Balanced);
        cfg.cost.reclaim_scan_page_ns = 5_000;
        cfg.cost.storage_read_request_ns = 1_000;
        cfg.cost.storage_read_page_ns = 1_000;
        let mut m = Machine::new(cfg).unwrap();
        m.sched.set_runnable(99, runnable);
        m.start_workload(spec(serde_json::json!({
            "kind": "page_cache_reader", "name": "reader", "file_pages": 200_000,
            "rate_pages_per_s": 200_000.0})))
            .unwrap();
        m.run_until(10_000 * MS);
        m.check_invariants().unwrap();
        let stall = m.vmstat.get(Counter::AllocstallNormal);
        (m.vmstat.get(Counter::PgstealKswapd), stall)
    };
    let (idle_stolen, idle_stalls) = run(0);
    let (busy_stolen, busy_stalls) = run(16);
    println!(
        "kswapd reclaimed {idle_stolen} pages on idle CPUs ({idle_stalls} direct reclaims), \
         {busy_stolen} on busy CPUs ({busy_stalls})"
    );
    assert!(busy_stolen < idle_stolen, "fewer pages reclaimed by kswapd");
    assert!(busy_stalls > idle_stalls, "more direct reclaim");
}
