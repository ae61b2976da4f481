//! The `build` workload (`workload/build.rs`): a parallel build's short processes, their
//! churn of heaps and page cache, and CPU-bound progress on the board's CPUs.
//! `cargo test -p cmadev-mm --test build -- --nocapture` prints the figures.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::Machine;
use common::*;
use serde_json::json;

const S: u64 = 1_000_000_000;

fn make(jobs: u32, processes: u32, cpu_ms: u64, anon_pages: u32) -> serde_json::Value {
    json!({"kind": "build", "name": "make", "jobs": jobs, "processes": processes,
           "cpu_ns": cpu_ms * MS, "anon_pages": anon_pages, "touches_per_page": 1.0,
           "source_pages": 8_000, "reads_per_process": 400, "source_zipf": 0.6,
           "output_pages": 25})
}

/// Run a build to its end on a 512 MiB board with `cpus` CPUs; its elapsed time (ns).
fn elapsed(cpus: u32, jobs: u32, processes: u32, seed: u64) -> (u64, Machine, u32) {
    let mut cfg = board(512, 64, Placement::Legacy);
    cfg.cpus = cpus;
    cfg.seed = seed;
    let mut m = Machine::new(cfg).unwrap();
    let id = m
        .start_workload(spec(make(jobs, processes, 200, 1_000)))
        .unwrap();
    m.run_until(600 * S);
    let st = m.workload_stats(id).unwrap();
    let done = st.finished_ns.expect("the build finished");
    m.check_invariants().unwrap();
    (done, m, id)
}

/// With memory to spare, a CPU-bound build takes its CPU time divided by the CPUs it can
/// use: `min(jobs, cpus)`, less what storage reads add.
#[test]
fn a_build_takes_its_cpu_time_over_the_cpus() {
    let total_cpu = 200 * 200 * MS; // 200 processes of 200 ms on average
    for (cpus, jobs) in [(4, 16), (4, 2), (2, 8)] {
        let (done, m, id) = elapsed(cpus, jobs, 200, 1);
        let st = m.workload_stats(id).unwrap();
        let ideal = total_cpu / cpus.min(jobs) as u64;
        println!(
            "{jobs} jobs on {cpus} CPUs: {:.2} s (CPU bound: {:.2} s), stalled {:.2} s",
            done as f64 / 1e9,
            ideal as f64 / 1e9,
            st.stall_ns as f64 / 1e9
        );
        assert!(
            done as f64 > 0.9 * ideal as f64,
            "not faster than its CPUs allow"
        );
        assert!(
            (done as f64) < 1.3 * ideal as f64,
            "little more than its CPU time"
        );
        assert_eq!(st.alloc_failures, 0);
        assert!(!st.running || st.finished_ns.is_some());
    }
}

/// Every process frees its heap and kernel memory at exit: what stays is page cache (the
/// tree read and the objects written) and its files' slab, and the run-queue load it
/// declared is gone.
#[test]
fn processes_free_their_memory_at_exit() {
    let (_, m, id) = elapsed(4, 16, 120, 2);
    let st = m.workload_stats(id).unwrap();
    let lru = m.lru_sizes();
    assert_eq!(lru[0] + lru[1], 0, "no anonymous page left: {lru:?}");
    // The page cache and its metadata slab (a page per 16 cached) stay.
    let cache = lru[2] + lru[3];
    let meta = st.resident_pages - cache;
    assert!(
        meta > 0 && meta <= cache / 16 + 1,
        "{meta} pages of slab for {cache} cached"
    );
    assert!(st.pages_written >= 120 * 25 && st.pages_read > 120 * 300);
    assert_eq!(
        m.sched.runnable, 0,
        "a finished build keeps no task runnable"
    );
    assert!(
        m.vmstat.get(Counter::Pgfault) > 120 * 500,
        "heaps were faulted in"
    );
}

/// Equal seeds, equal builds.
#[test]
fn same_seed_same_build() {
    assert_eq!(elapsed(4, 16, 60, 3).0, elapsed(4, 16, 60, 3).0);
    assert_ne!(elapsed(4, 16, 60, 3).0, elapsed(4, 16, 60, 4).0);
}

/// Heaps that do not fit beside the page cache: the build's heaps churn through memory,
/// so with swap the build swaps and stalls, and takes longer than with room to spare.
#[test]
fn heaps_beyond_memory_swap_and_slow_the_build() {
    let run = |ram_mib: u64| {
        let mut cfg = board(ram_mib, 0, Placement::Legacy);
        cfg.swap = 512 * MIB;
        let mut m = Machine::new(cfg).unwrap();
        let id = m.start_workload(spec(make(16, 160, 200, 4_000))).unwrap();
        m.run_until(900 * S);
        m.check_invariants().unwrap();
        let st = m.workload_stats(id).unwrap();
        (
            st.finished_ns.expect("finished"),
            m.vmstat.get(Counter::Pswpout),
        )
    };
    let (roomy, roomy_swapped) = run(768);
    let (tight, tight_swapped) = run(192);
    println!(
        "768 MiB: {:.1} s, {roomy_swapped} pages swapped out; 192 MiB: {:.1} s, {tight_swapped}",
        roomy as f64 / 1e9,
        tight as f64 / 1e9
    );
    assert_eq!(roomy_swapped, 0);
    assert!(tight_swapped > 10_000 && tight > roomy * 11 / 10);
}

/// make starts its jobs at the workload's start, not when it is declared.
#[test]
fn a_build_starts_at_its_start_time() {
    let mut m = machine(256, 0, Placement::Legacy);
    let mut v = make(4, 8, 100, 500);
    v["start_ns"] = json!(2 * S);
    let id = m.start_workload(spec(v)).unwrap();
    m.run_until(2 * S - 1);
    let st = m.workload_stats(id).unwrap();
    assert_eq!((st.ops, st.resident_pages), (0, 0), "{st:?}");
    assert_eq!(m.sched.runnable, 0);
    m.run_until(2 * S + 10 * MS);
    let st = m.workload_stats(id).unwrap();
    assert!(st.resident_pages > 0 && m.sched.runnable > 0, "{st:?}");
    m.run_until(60 * S);
    assert!(m.workload_stats(id).unwrap().finished_ns.unwrap() > 2 * S);
    m.check_invariants().unwrap();
}

/// A build whose tree is made of files reads each file whole, in order, with readahead
/// (`source_file_pages`): a cold tree comes in a request per file or window, not one per
/// page, so on a slow disk it waits for storage a fraction of the time a build reading the
/// same tree a page at a time at random waits, while it reads as many pages.
#[test]
fn whole_file_reads_come_in_readahead_windows() {
    let run = |file_pages: u32| {
        let mut cfg = board(512, 64, Placement::Legacy);
        cfg.cpus = 4;
        cfg.cost.storage_read_request_ns = 2 * MS;
        let mut m = Machine::new(cfg).unwrap();
        let mut spec_json = make(16, 200, 200, 1_000);
        spec_json["source_file_pages"] = json!(file_pages);
        let id = m.start_workload(spec(spec_json)).unwrap();
        m.run_until(600 * S);
        m.check_invariants().unwrap();
        let st = m.workload_stats(id).unwrap();
        assert!(st.finished_ns.is_some(), "the build finished");
        (st.stall_ns, st.pages_read, m.vmstat.get(Counter::Pgpgin))
    };
    let (random_stall, random_read, random_in) = run(0);
    let (file_stall, file_read, file_in) = run(4);
    println!(
        "tree read a page at a time: stalled {:.1} s, {random_read} pages read, pgpgin \
         {random_in} kB; in 4-page files: stalled {:.1} s, {file_read} pages read, pgpgin \
         {file_in} kB",
        random_stall as f64 / 1e9,
        file_stall as f64 / 1e9
    );
    assert_eq!(
        random_read, file_read,
        "both read reads_per_process pages a process"
    );
    assert!(
        file_stall * 2 < random_stall,
        "files come in fewer requests"
    );
    assert!(file_in > 0 && random_in > 0);
}

/// A file larger than the tree is refused, naming the field.
#[test]
fn a_source_file_must_fit_the_tree() {
    let mut cfg_json = make(4, 10, 200, 1_000);
    cfg_json["source_file_pages"] = json!(9_000);
    let mut m = Machine::new(board(512, 64, Placement::Legacy)).unwrap();
    let err = m.start_workload(spec(cfg_json)).unwrap_err().to_string();
    assert!(err.contains("source_file_pages"), "{err}");
}
