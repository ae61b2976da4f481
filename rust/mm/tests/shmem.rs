//! shmem/tmpfs pages (`shmem.rs`, the `tmpfs_file` workload): page cache in `Cached` and
//! `Shmem`, on the anonymous LRU, reclaimed only to swap, migratable.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::page::Kind;
use cmadev_mm::vmstat::Counter;
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

fn tmpfs(name: &str, pages: u32) -> cmadev_mm::workload::WorkloadKind {
    spec(
        json!({"kind": "tmpfs_file", "name": name, "file_pages": pages,
                "rate_pages_per_s": 50_000.0, "access_rate_pages_per_s": 20_000.0,
                "write_fraction": 0.2}),
    )
}

#[test]
fn a_tmpfs_file_is_shmem_page_cache_on_the_anon_lru() {
    let mut m = machine(256, 64, Placement::Balanced);
    let avail0 = meminfo(&m, "MemAvailable");
    let id = m.start_workload(tmpfs("shm", 10_000)).unwrap();
    m.run_until(S);
    m.check_invariants().unwrap();
    let st = m.workload_stats(id).unwrap();
    println!("{st:?}");
    assert_eq!(st.resident_pages, 10_000);
    assert!(st.pages_read > 1_000 && st.hits > 1_000, "{st:?}");
    assert_eq!(meminfo(&m, "Shmem"), 40_000);
    assert_eq!(meminfo(&m, "Cached"), 40_000);
    assert_eq!(meminfo(&m, "AnonPages"), 0);
    assert_eq!(
        meminfo(&m, "Active(anon)") + meminfo(&m, "Inactive(anon)"),
        40_000
    );
    assert_eq!(
        meminfo(&m, "Active(file)") + meminfo(&m, "Inactive(file)"),
        0
    );
    assert_eq!(meminfo(&m, "Dirty"), 0, "shmem dirties without accounting");
    // MemAvailable counts the file LRU only: the tmpfs file takes its pages away.
    let avail = meminfo(&m, "MemAvailable");
    assert!(avail0 - avail >= 39_000, "{avail0} -> {avail} kB");
    m.stop_workload(id).unwrap();
    assert_eq!(meminfo(&m, "Shmem"), 0);
    m.check_invariants().unwrap();
}

/// Without swap, shmem cannot be reclaimed: the reader's page cache goes instead. With
/// swap, shmem is swapped out and read back from swap.
#[test]
fn shmem_is_reclaimed_only_to_swap() {
    for swap in [0u64, 256] {
        let mut cfg = board(256, 0, Placement::Balanced);
        cfg.swap = swap * MIB;
        let mut m = Machine::new(cfg).unwrap();
        let shm = m.start_workload(tmpfs("shm", 40_000)).unwrap();
        m.run_until(S);
        let reader = m
            .start_workload(spec(json!({"kind": "page_cache_reader", "name": "reader",
                "file_pages": 60_000, "rate_pages_per_s": 30_000.0})))
            .unwrap();
        m.run_until(12 * S);
        m.check_invariants().unwrap();
        let (s, r) = (
            m.workload_stats(shm).unwrap(),
            m.workload_stats(reader).unwrap(),
        );
        println!(
            "swap {swap} MiB: shm resident {} swapins {}, reader resident {} refaults {}, \
             pswpout {}",
            s.resident_pages,
            s.swapins,
            r.resident_pages,
            r.refaults,
            m.vmstat.get(Counter::Pswpout)
        );
        assert!(r.refaults > 1_000, "memory ran short: {r:?}");
        if swap == 0 {
            assert_eq!(s.resident_pages, 40_000, "nothing can take shmem");
            assert_eq!(m.vmstat.get(Counter::Pswpout), 0);
        } else {
            assert!(m.vmstat.get(Counter::Pswpout) > 1_000);
            assert!(s.resident_pages < 40_000);
            assert!(s.swapins > 0, "{s:?}");
            // What comes back from swap is shmem again.
            assert_eq!(
                meminfo(&m, "Shmem") / 4,
                s.resident_pages,
                "swapped-in pages are shmem"
            );
        }
    }
}

/// A contiguous allocation migrates shmem pages out of its range.
#[test]
fn cma_alloc_migrates_shmem_pages() {
    let mut m = machine(256, 64, Placement::Balanced);
    let id = m.start_workload(tmpfs("shm", 50_000)).unwrap();
    m.run_until(2 * S);
    let in_cma = m.cma_usage(0).anon;
    assert!(in_cma > 4_000, "shmem pages in CMA: {in_cma}");
    let cam = m.owners.intern("camera").unwrap();
    let job = m.cma_alloc(0, 8192, 8, cam, false).unwrap();
    run_job(&mut m, job, 10 * S);
    let j = &m.jobs[job as usize];
    assert!(j.pfn.is_some(), "{:?}", j.errno);
    assert!(j.pages_migrated > 0);
    m.check_invariants().unwrap();
    let owner = m.owners.lookup("shm").unwrap();
    let moved = (0..50_000u32)
        .filter_map(|i| m.owned_pfn(owner, i).unwrap())
        .all(|pfn| m.pages[pfn].kind() == Kind::Shmem);
    assert!(moved, "migrated pages stay shmem");
    assert_eq!(m.workload_stats(id).unwrap().resident_pages, 50_000);
}
