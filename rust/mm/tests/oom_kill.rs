//! The OOM killer (`oom_kill.rs`): when reclaim cannot make room, the task with the most
//! anonymous memory is killed and its memory freed; with nothing to kill the request fails;
//! migration targets never kill; and a machine out of memory and swap does not re-run
//! reclaim forever.

mod common;

use std::time::Instant;

use cmadev_mm::config::Placement;
use cmadev_mm::gfp::Gfp;
use cmadev_mm::page::Kind;
use cmadev_mm::vmstat::Counter;
use cmadev_mm::Machine;
use common::*;
use serde_json::json;

const S: u64 = 1_000_000_000;

fn hog(name: &str, pages: u32, rate: f64) -> cmadev_mm::workload::WorkloadKind {
    spec(
        json!({"kind": "anon_hog", "name": name, "target_pages": pages,
                "growth_pages_per_s": rate, "touch_rate_pages_per_s": 2_000.0}),
    )
}

fn oom_lines(m: &Machine) -> Vec<&String> {
    m.dmesg
        .lines
        .iter()
        .filter(|l| l.contains("Out of memory") || l.contains("oom"))
        .collect()
}

#[test]
fn the_largest_hog_is_killed_and_the_other_goes_on() {
    let mut m = machine(256, 0, Placement::Balanced);
    // 40,000 + 40,000 pages of a 65,536-page board with no swap.
    let small = m.start_workload(hog("small", 40_000, 20_000.0)).unwrap();
    let big = m.start_workload(hog("big", 40_000, 40_000.0)).unwrap();
    let t = Instant::now();
    m.run_until(10 * S);
    let host = t.elapsed();
    m.check_invariants().unwrap();
    for l in oom_lines(&m) {
        println!("{l}");
    }
    let (s, b) = (
        m.workload_stats(small).unwrap(),
        m.workload_stats(big).unwrap(),
    );
    println!("small {s:?}\nbig {b:?}\nhost {host:?}");
    assert_eq!(m.vmstat.get(Counter::OomKill), 1);
    assert!(
        !b.running && b.resident_pages == 0,
        "the bigger hog was killed"
    );
    assert!(s.running, "the other goes on");
    assert_eq!(s.resident_pages, 40_000, "and gets its memory");
    let lines = oom_lines(&m);
    assert!(lines.iter().any(|l| l.contains(
        "invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0"
    )));
    let pid = m.owners.pid(m.owners.lookup("big").unwrap());
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "Out of memory: Killed process {pid} (big) total-vm:160000kB, anon-rss:"
        ))),
        "{lines:?}"
    );
    assert!(host.as_secs() < 20, "bounded work: {host:?}");
}

/// Memory and swap full: the hogs are killed one after the other until what is left fits,
/// and the run takes host seconds, not minutes (it used to re-run direct reclaim forever).
#[test]
fn out_of_memory_and_swap_ends_in_kills_not_endless_reclaim() {
    let mut cfg = board(256, 64, Placement::Balanced);
    cfg.swap = 64 * MIB;
    let mut m = Machine::new(cfg).unwrap();
    let ids: Vec<u32> = (0..4)
        .map(|i| {
            m.start_workload(hog(&format!("hog{i}"), 30_000, 30_000.0))
                .unwrap()
        })
        .collect();
    m.start_workload(spec(json!({"kind": "page_cache_reader", "name": "reader",
        "file_pages": 20_000, "rate_pages_per_s": 5_000.0})))
        .unwrap();
    let t = Instant::now();
    m.run_until(40 * S);
    let host = t.elapsed();
    m.check_invariants().unwrap();
    let alive = ids
        .iter()
        .filter(|&&id| m.workload_stats(id).unwrap().running)
        .count();
    println!(
        "40 s out of memory and swap: {} kills, {alive} hogs left, {} allocation failures, host {host:?}",
        m.vmstat.get(Counter::OomKill),
        m.vmstat.get(Counter::AllocFail)
    );
    assert!(m.vmstat.get(Counter::OomKill) >= 1);
    assert!((1..4).contains(&alive));
    assert!(host.as_secs() < 30, "{host:?}");
}

/// With no task to kill (memory held by a Python-API owner), the request fails with
/// -ENOMEM, and the kernel's last words are printed once.
#[test]
fn with_nothing_to_kill_the_request_fails() {
    let mut m = machine(128, 0, Placement::Balanced);
    let app = m.owners.intern("app").unwrap();
    let mut n = 0;
    while m
        .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
        .is_ok()
    {
        n += 1;
    }
    assert!(m
        .alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
        .is_err());
    println!("{n} pages before -ENOMEM");
    assert_eq!(m.vmstat.get(Counter::OomKill), 0);
    let none: Vec<_> = m
        .dmesg
        .lines
        .iter()
        .filter(|l| l.contains("no killable processes"))
        .collect();
    assert_eq!(none.len(), 1);
    m.check_invariants().unwrap();
}

/// `cma_alloc`'s migration targets are `__GFP_RETRY_MAYFAIL`: under full memory it fails
/// with -ENOMEM and kills nobody.
#[test]
fn a_cma_alloc_under_full_memory_fails_without_killing() {
    let mut m = machine(256, 64, Placement::Balanced);
    let id = m.start_workload(hog("hog", 64_000, 100_000.0)).unwrap();
    m.run_until(2 * S);
    let kills = m.vmstat.get(Counter::OomKill);
    let cam = m.owners.intern("camera").unwrap();
    let job = m.cma_alloc(0, 16_384, 8, cam, false).unwrap();
    run_job(&mut m, job, 20 * S);
    let j = &m.jobs[job as usize];
    println!(
        "whole-area cma_alloc under a full hog: {:?}, oom kills {kills}",
        j.errno
    );
    assert!(j.pfn.is_none());
    assert_eq!(
        m.vmstat.get(Counter::OomKill),
        kills,
        "no kill for a migration target"
    );
    let _ = id;
    m.check_invariants().unwrap();
}
