//! The trace (`trace.rs`), the debugfs files (`cma_debug.rs`), `/proc/zoneinfo`
//! (`zoneinfo.rs`) and the area maps (`cma_map.rs`).

mod common;

use cmadev_mm::config::{KernelVersion, Placement};
use cmadev_mm::gfp::Gfp;
use cmadev_mm::trace::{TraceEvents, EVENTS};
use cmadev_mm::zoneinfo::stat_threshold;
use cmadev_mm::Machine;
use common::{board, machine, run_job, MS};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn set_event_syntax_and_its_errors() {
    let all = TraceEvents::parse(&names(&["all"])).unwrap();
    assert_eq!(all, TraceEvents::ALL);
    let kmem_alloc = TraceEvents::parse(&names(&["kmem:mm_page_alloc"])).unwrap();
    assert_eq!(kmem_alloc.0.count_ones(), 1);
    let no_kmem = TraceEvents::parse(&names(&["all", "!kmem"])).unwrap();
    let kmem = EVENTS.iter().filter(|(s, _)| *s == "kmem").count() as u32;
    assert_eq!(no_kmem.0.count_ones(), EVENTS.len() as u32 - kmem);
    let err = TraceEvents::parse(&names(&["kmemm"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown event \"kmemm\"") && err.contains("kmem:mm_page_alloc"));
}

#[test]
fn per_page_events_are_off_by_default_and_on_when_asked() {
    let mut m = machine(256, 64, Placement::Balanced);
    let pfn = m.alloc_page_order0(Gfp::KERNEL, 0).unwrap();
    m.free_page_order0(pfn).unwrap();
    assert_eq!(m.trace.emitted(), 0);
    let mut cfg = board(256, 64, Placement::Balanced);
    cfg.trace_events = Some(names(&["kmem"]));
    let mut m = Machine::new(cfg).unwrap();
    let pfn = m.alloc_page_order0(Gfp::KERNEL, 0).unwrap();
    m.free_page_order0(pfn).unwrap();
    let lines = m.trace.lines_since(0);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("          <idle>-0       [000] ....."));
    assert!(lines[0].contains(&format!(
        "mm_page_alloc: page=ffffea{:010x} pfn=0x{:x} order=0 migratetype=0 gfp_flags=GFP_KERNEL",
        pfn.0 as u64 * 64,
        pfn.0
    )));
    assert!(lines[1].ends_with(&format!(
        "mm_page_free: page=ffffea{:010x} pfn=0x{:x} order=0",
        pfn.0 as u64 * 64,
        pfn.0
    )));
}

#[test]
fn comm_is_cut_at_15_and_the_header_counts_lines() {
    let mut m = machine(256, 64, Placement::Balanced);
    let owner = m.owners.intern("sixteen_chars_xy").unwrap();
    let id = m.cma_alloc(0, 16, 0, owner, false).unwrap();
    run_job(&mut m, id, 100 * MS);
    let first = &m.trace.lines_since(0)[0];
    assert_eq!(&first[..17], " sixteen_chars_x-");
    let header = m.trace.header(4);
    let n = m.trace.emitted();
    assert!(header.starts_with(&format!(
        "# tracer: nop\n#\n# entries-in-buffer/entries-written: {n}/{n}   #P:4\n#\n"
    )));
    assert_eq!(header.lines().count(), 12);
}

#[test]
fn cma_alloc_start_and_finish_per_kernel_version() {
    for (version, start, finish_tail) in [
        (
            KernelVersion::V6_1,
            "name=cma count=16 align=0",
            "count=16 align=0",
        ),
        (
            KernelVersion::Mainline,
            "name=cma request_count=16 available_count=16384 total_count=16384 align=0",
            "count=16 align=0 errorno=0",
        ),
    ] {
        let mut cfg = board(256, 64, Placement::Balanced);
        cfg.kernel_version = version;
        let mut m = Machine::new(cfg).unwrap();
        let owner = m.owners.intern("cam").unwrap();
        let id = m.cma_alloc(0, 16, 0, owner, false).unwrap();
        run_job(&mut m, id, 100 * MS);
        let lines = m.trace.lines_since(0);
        assert!(
            lines[0].ends_with(&format!("cma_alloc_start: {start}")),
            "{}",
            lines[0]
        );
        let finish = lines
            .iter()
            .find(|l| l.contains("cma_alloc_finish"))
            .unwrap();
        assert!(finish.ends_with(finish_tail), "{finish}");
        let info = lines
            .iter()
            .any(|l| l.contains("mm_alloc_contig_migrate_range_info"));
        assert_eq!(info, version == KernelVersion::Mainline);
    }
}

#[test]
fn a_failed_cma_alloc_logs_once_per_call_ratelimited() {
    let mut m = machine(256, 64, Placement::Balanced);
    let owner = m.owners.intern("cam").unwrap();
    let hold = m.cma_alloc(0, 1024, 0, owner, false).unwrap();
    run_job(&mut m, hold, 100 * MS);
    for _ in 0..12 {
        let id = m.cma_alloc(0, 16384, 0, owner, false).unwrap();
        run_job(&mut m, id, 100 * MS);
    }
    let failed = m
        .dmesg
        .lines
        .iter()
        .filter(|l| l.contains("alloc failed"))
        .count();
    assert_eq!(failed, 10, "DEFAULT_RATELIMIT_BURST");
    m.run_until(m.now + 6_000 * MS);
    let id = m.cma_alloc(0, 16384, 0, owner, false).unwrap();
    run_job(&mut m, id, 100 * MS);
    let tail = &m.dmesg.lines[m.dmesg.lines.len() - 2..];
    assert!(
        tail[0].ends_with("] cma_alloc: 2 callbacks suppressed"),
        "{tail:?}"
    );
    assert!(tail[1].ends_with("cma: cma_alloc: cma: alloc failed, req-size: 16384 pages, ret: -12"));
}

#[test]
fn debugfs_files_follow_the_bitmap() {
    let mut m = machine(256, 64, Placement::Balanced);
    let owner = m.owners.intern("cam").unwrap();
    let id = m.cma_alloc(0, 40, 0, owner, false).unwrap();
    run_job(&mut m, id, 100 * MS);
    let files: std::collections::HashMap<_, _> = m.cma_debugfs(0).into_iter().collect();
    assert_eq!(files["used"], "40\n");
    assert_eq!(files["maxchunk"], format!("{}\n", 16384 - 40));
    let words: Vec<&str> = files["bitmap"].trim_end().split(' ').collect();
    assert_eq!(words.len(), 16384 / 32);
    assert_eq!(&words[..3], &["4294967295", "255", "0"]);
    assert!(files["bitmap"].ends_with("0\n"));
}

#[test]
fn zoneinfo_thresholds_match_the_guest() {
    // The 6.1 guest's DMA32 (120889 managed pages) and DMA (3840), 2 CPUs: 12 and 4.
    assert_eq!(stat_threshold(120_889, 2), 12);
    assert_eq!(stat_threshold(3840, 2), 4);
    let m = machine(256, 64, Placement::Balanced);
    let text = m.zoneinfo_text();
    assert!(text.starts_with("Node 0, zone   Normal\n  per-node stats\n      nr_inactive_anon 0\n"));
    assert!(text.ends_with("Node 0, zone  Movable\n  pages free     0\n        boost    0\n        min      0\n        low      0\n        high     0\n        spanned  0\n        present  0\n        managed  0\n        cma      0\n        protection: (0, 0)\n"));
}

#[test]
fn area_maps_mark_device_and_free_bins() {
    let mut m = machine(256, 64, Placement::Balanced);
    m.set_area_maps(16, 1);
    m.set_sampling(10 * MS);
    let owner = m.owners.intern("cam").unwrap();
    let id = m.cma_alloc(0, 4096, 0, owner, false).unwrap();
    run_job(&mut m, id, 100 * MS);
    m.run_until(m.now + 20 * MS);
    let last = m.area_maps.samples.last().unwrap();
    assert_eq!(m.area_maps.bin_pages, vec![1024]);
    assert_eq!(
        last[0],
        vec![(3u8, 4u32), (0, 12)],
        "4 bins of device pages, 12 free"
    );
    assert_eq!(m.area_maps.samples[0][0], vec![(0u8, 16u32)]);
}
