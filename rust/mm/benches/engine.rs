//! Engine benchmarks for the figures of SPEC §6 (benchmarks, not timed tests).
//!
//! ```text
//! cargo bench -p cmadev-mm --bench engine            # everything: a few seconds after the build
//! cargo bench -p cmadev-mm --bench engine -- pair    # only benchmarks whose id contains "pair"
//! CMADEV_BENCH_QUICK=1 ...                           # 10x fewer iterations (for callgrind)
//! ```
//!
//! A small harness instead of criterion: each benchmark runs a warm-up, then timed samples
//! (15 for the order-0 figures, 9 fresh runs for the contiguous ones); the table shows the
//! median (and the spread, min..max) of the per-operation time, and the same figures go to
//! `target/bench-engine.json`. Medians and ratios, not means: this runs on shared machines.
//! `benches/callgrind_order0.sh` gives instruction counts for the order-0 figures.
//!
//! What is measured:
//! - `order0_pair_fast`: `alloc_page_order0(GFP_KERNEL)` + `free_page_order0`, the buddy and
//!   per-CPU list fast path with `prep_new_page`, nothing else;
//! - `order0_pair_owned`: `alloc_owned(GFP_HIGHUSER_MOVABLE, anon)` + `free_owned`, the public
//!   path a workload uses (owner mapping, LRU add and delete on top of the fast path);
//! - `order0_batch_owned`: 1024 `alloc_owned` then 1024 `free_owned`, per pair: the per-CPU
//!   lists refill from and spill to the buddy lists, blocks split and merge;
//! - `contig_256m_full`: `cma_alloc` of a whole 256 MiB CMA area whose pages are all
//!   in use by movable (anon) pages, run to completion through the event loop: wall time,
//!   and wall time per migrated page;
//! - `contig_16m_full` / `contig_16m_free`: a fixed 16 MiB `cma_alloc` (ZONE_CMA placement, so
//!   movable pages fill the area first whatever the board size), with the area full of
//!   anon pages or free;
//! - `cma_walk_referenced`: `cma_alloc` of a 4K camera buffer (3,038 pages, align 0) over a
//!   128 MiB area whose every page holds a `get_page` reference, so that every window fails
//!   and the walk tries every position (29,731 busy retries) before -EBUSY: wall time for the
//!   whole walk, and per retry (issue 14: retries stay linear);
//! - `boot`: `Machine::new` of a 256 MiB and a 64 GiB board (the frame array, the free lists,
//!   watermarks; the top-order free blocks deferred, `mm_init.rs`);
//!
//! each on boards from 256 MiB to 64 GiB, with the ratio of the 64 GiB board's cost to the
//! 256 MiB board's (SPEC: "cost per operation flat").

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use cmadev_mm::config::{CmaAreaConfig, MachineConfig, Placement};
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::Kind;
use cmadev_mm::{Machine, Pfn};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A movable mask that neither reclaims nor wakes kswapd: filling memory stops at the min
/// watermark instead of scanning an LRU that cannot shrink (no swap).
const FILL: Gfp = Gfp {
    direct_reclaim: false,
    kswapd_reclaim: false,
    ..Gfp::HIGHUSER_MOVABLE
};

struct Board {
    label: &'static str,
    ram: u64,
    cma: u64,
    placement: Placement,
    min_free_kbytes: Option<u64>,
}

impl Board {
    fn config(&self) -> MachineConfig {
        let mut cfg = MachineConfig::with_ram(self.ram);
        if self.cma > 0 {
            cfg.cma_areas = vec![CmaAreaConfig {
                name: "cma".into(),
                size: self.cma,
                order_per_bit: 0,
            }];
        }
        cfg.policy.placement = self.placement;
        cfg.min_free_kbytes = self.min_free_kbytes;
        cfg.seed = 1;
        cfg
    }

    fn boot(&self) -> Machine {
        Machine::new(self.config()).expect("bench board is valid")
    }
}

const FLAT_256M: Board = Board {
    label: "256MiB",
    ram: 256 * MIB,
    cma: 0,
    placement: Placement::Balanced,
    min_free_kbytes: None,
};
const TV_1G: Board = Board {
    label: "1GiB+256MiB CMA",
    ram: GIB,
    cma: 256 * MIB,
    placement: Placement::Balanced,
    min_free_kbytes: None,
};
const FLAT_64G: Board = Board {
    label: "64GiB",
    ram: 64 * GIB,
    cma: 0,
    placement: Placement::Balanced,
    min_free_kbytes: None,
};
/// The 256 MiB contiguous allocation: `vm.min_free_kbytes` at the kernel's floor (128) so that
/// filling memory leaves the area all but full (the default leaves ~1% of it free).
const CONTIG_1G: Board = Board {
    label: "1GiB+256MiB CMA",
    ram: GIB,
    cma: 256 * MIB,
    placement: Placement::Balanced,
    min_free_kbytes: Some(128),
};
const ZCMA_256M: Board = Board {
    label: "256MiB+16MiB ZONE_CMA",
    ram: 256 * MIB,
    cma: 16 * MIB,
    placement: Placement::ZoneCma,
    min_free_kbytes: None,
};
const ZCMA_64G: Board = Board {
    label: "64GiB+16MiB ZONE_CMA",
    ram: 64 * GIB,
    cma: 16 * MIB,
    placement: Placement::ZoneCma,
    min_free_kbytes: None,
};

/// The walk: the camera_512m board's shape (512 MiB, one 128 MiB area), memory filled to the
/// brim so the area is all in use.
const WALK_512M: Board = Board {
    label: "512MiB+128MiB CMA",
    ram: 512 * MIB,
    cma: 128 * MIB,
    placement: Placement::Balanced,
    min_free_kbytes: Some(128),
};

#[derive(Clone, Debug)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
    samples: usize,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Stats {
        median,
        min: v[0],
        max: v[n - 1],
        samples: n,
    }
}

struct Bench {
    filter: Option<String>,
    rows: Vec<Value>,
}

impl Bench {
    fn wants(&self, id: &str) -> bool {
        match &self.filter {
            Some(f) => id.contains(f.as_str()),
            None => true,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        id: &str,
        board: &str,
        unit: &str,
        s: &Stats,
        target: Option<f64>,
        extra: Value,
    ) {
        let pass = target.map(|t| s.median <= t);
        let verdict = match (target, pass) {
            (Some(t), Some(true)) => format!("<= {t} ok"),
            (Some(t), Some(false)) => format!("<= {t} MISSED"),
            _ => String::new(),
        };
        println!(
            "  {id:<22} {board:<24} {:>12} {unit:<14} [{} .. {}] {verdict}",
            fmt(s.median),
            fmt(s.min),
            fmt(s.max)
        );
        self.rows.push(json!({
            "id": id,
            "board": board,
            "unit": unit,
            "median": s.median,
            "min": s.min,
            "max": s.max,
            "samples": s.samples,
            "target": target,
            "pass": pass,
            "extra": extra,
        }));
    }
}

fn fmt(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

// ----- order-0 allocation + free ---------------------------------------------------------

/// Iterations a sample and samples a benchmark; `CMADEV_BENCH_QUICK=1` shrinks them (for
/// `valgrind --tool=callgrind`, see `benches/README.md`).
#[derive(Clone, Copy)]
struct Scale {
    iters: u32,
    samples: usize,
}

impl Scale {
    fn from_env() -> Scale {
        if std::env::var_os("CMADEV_BENCH_QUICK").is_some() {
            Scale {
                iters: 20_480,
                samples: 3,
            }
        } else {
            Scale {
                iters: 200_704,
                samples: 15,
            }
        }
    }
}

/// `alloc_page_order0` + `free_page_order0`, `sc.iters` times a sample; ns per pair.
#[inline(never)]
fn pair_fast(m: &mut Machine, sc: Scale) -> Stats {
    let owner = m.owners.intern("bench").expect("owner");
    let one = |m: &mut Machine| {
        let t = Instant::now();
        for _ in 0..sc.iters {
            let pfn = m
                .alloc_page_order0(black_box(Gfp::KERNEL), owner)
                .expect("alloc");
            m.free_page_order0(black_box(pfn)).expect("free");
        }
        m.take_charge();
        t.elapsed().as_nanos() as f64 / sc.iters as f64
    };
    one(m);
    stats((0..sc.samples).map(|_| one(m)).collect())
}

/// `alloc_owned` + `free_owned` of an anon page; ns per pair. Each sample uses a new owner:
/// an owner's mapping only grows (slots are not reused).
#[inline(never)]
fn pair_owned(m: &mut Machine, sc: Scale) -> Stats {
    let mut n = 0;
    let mut one = |m: &mut Machine| {
        n += 1;
        let owner = m.owners.intern(&format!("bench{n}")).expect("owner");
        let t = Instant::now();
        for _ in 0..sc.iters {
            let i = m
                .alloc_owned(owner, black_box(Gfp::HIGHUSER_MOVABLE), 0, Kind::Anon)
                .expect("alloc");
            m.free_owned(owner, black_box(i)).expect("free");
        }
        m.take_charge();
        t.elapsed().as_nanos() as f64 / sc.iters as f64
    };
    one(m);
    stats((0..sc.samples).map(|_| one(m)).collect())
}

/// 1024 `alloc_owned`, then the 1024 `free_owned`; ns per pair.
#[inline(never)]
fn batch_owned(m: &mut Machine, sc: Scale) -> Stats {
    const BATCH: u32 = 1024;
    let rounds = sc.iters / BATCH;
    let mut n = 0;
    let mut one = |m: &mut Machine| {
        n += 1;
        let owner = m.owners.intern(&format!("batch{n}")).expect("owner");
        let t = Instant::now();
        for r in 0..rounds {
            for _ in 0..BATCH {
                m.alloc_owned(owner, Gfp::HIGHUSER_MOVABLE, 0, Kind::Anon)
                    .expect("alloc");
            }
            for i in r * BATCH..(r + 1) * BATCH {
                m.free_owned(owner, black_box(i)).expect("free");
            }
        }
        m.take_charge();
        t.elapsed().as_nanos() as f64 / (rounds * BATCH) as f64
    };
    one(m);
    stats((0..sc.samples).map(|_| one(m)).collect())
}

// ----- contiguous allocations ------------------------------------------------------------

/// Fill memory with anon pages for `owner` (no reclaim: stop at the min watermark), then
/// free those outside `[keep_start, keep_end)` and drain the per-CPU lists. Returns the
/// indices kept.
fn fill_range(m: &mut Machine, owner: u16, keep_start: Pfn, keep_end: Pfn) -> Vec<u32> {
    let mut kept = Vec::new();
    let mut outside = Vec::new();
    while let Ok(i) = m.alloc_owned(owner, FILL, 0, Kind::Anon) {
        let pfn = m.owned_pfn(owner, i).expect("page").expect("resident");
        if (keep_start..keep_end).contains(&pfn) {
            kept.push(i);
        } else {
            outside.push(i);
        }
    }
    for i in outside {
        m.free_owned(owner, i).expect("free");
    }
    for zi in 0..m.zones.len() {
        m.drain_all_pages(zi);
    }
    m.take_charge();
    kept
}

/// Allocate anon pages until one lands outside `[start, end)` (ZONE_CMA fills first), so
/// the area is full up to its zone's watermark. Returns how many landed inside.
fn fill_zone_cma(m: &mut Machine, owner: u16, start: Pfn, end: Pfn) -> u32 {
    let mut inside = 0;
    while let Ok(i) = m.alloc_owned(owner, FILL, 0, Kind::Anon) {
        let pfn = m.owned_pfn(owner, i).expect("page").expect("resident");
        if !(start..end).contains(&pfn) {
            break;
        }
        inside += 1;
    }
    m.take_charge();
    inside
}

/// Run `cma_alloc(area 0, count)` to completion; (wall ns, pages migrated, virtual ns, pfn).
fn timed_cma_alloc(m: &mut Machine, count: u32, owner: u16) -> (f64, u64, u64, Pfn) {
    let t = Instant::now();
    let id = m.cma_alloc(0, count, 0, owner, false).expect("cma_alloc");
    let done = m.run_while(u64::MAX, |m| m.jobs[id as usize].is_done());
    let wall = t.elapsed().as_nanos() as f64;
    assert!(done);
    let job = &m.jobs[id as usize];
    let pfn = job.pfn.unwrap_or_else(|| {
        panic!(
            "cma_alloc of {count} pages failed: {:?}, blockers {:?}",
            job.errno,
            job.blockers.iter().take(3).collect::<Vec<_>>()
        )
    });
    (
        wall,
        job.pages_migrated,
        job.latency_ns().expect("done"),
        pfn,
    )
}

/// The 256 MiB area of a 1 GiB board, full of anon pages: a fresh board a sample.
fn contig_256m_full(samples: usize) -> (Stats, Stats, Value) {
    let (mut walls, mut per_page) = (Vec::new(), Vec::new());
    let (mut migrated, mut occupied, mut virt) = (0, 0, 0);
    for _ in 0..samples {
        let mut m = CONTIG_1G.boot();
        let (base, count) = (m.cma[0].base_pfn, m.cma[0].count);
        let app = m.owners.intern("app").expect("owner");
        let dev = m.owners.intern("decoder").expect("owner");
        occupied = fill_range(&mut m, app, base, base + count).len() as u32;
        let (wall, nr, v, _) = timed_cma_alloc(&mut m, count, dev);
        walls.push(wall / 1e6);
        per_page.push(wall / nr.max(1) as f64);
        migrated = nr;
        virt = v;
    }
    let extra = json!({
        "area_pages": 65536,
        "pages_occupied": occupied,
        "pages_migrated": migrated,
        "virtual_latency_ns": virt,
    });
    (stats(walls), stats(per_page), extra)
}

/// A fixed 16 MiB `cma_alloc` on a ZONE_CMA board, area full of anon pages (or free, with
/// `full == false`); the board is booted once and reused. (ns per op, ns per migrated page).
fn contig_16m(board: &Board, full: bool, samples: usize) -> (Stats, Option<Stats>, Value) {
    let mut m = board.boot();
    let (base, count) = (m.cma[0].base_pfn, m.cma[0].count);
    let dev = m.owners.intern("camera").expect("owner");
    let (mut per_op, mut per_page) = (Vec::new(), Vec::new());
    let (mut migrated, mut inside) = (0, 0);
    for s in 0..=samples {
        let app = m.owners.intern(&format!("app{s}")).expect("owner");
        if full {
            inside = fill_zone_cma(&mut m, app, base, base + count);
        }
        let (wall, nr, _, pfn) = timed_cma_alloc(&mut m, count, dev);
        m.cma_release(0, pfn, count, dev).expect("release");
        let n = m.owners.list[app as usize].map.len() as u32;
        for i in 0..n {
            m.free_owned(app, i).expect("free");
        }
        for zi in 0..m.zones.len() {
            m.drain_all_pages(zi);
        }
        m.take_charge();
        if s == 0 {
            continue; // warm-up
        }
        per_op.push(wall);
        if full {
            per_page.push(wall / nr.max(1) as f64);
        }
        migrated = nr;
    }
    m.check_invariants().expect("invariants after the bench");
    let extra =
        json!({ "area_pages": count, "pages_occupied": inside, "pages_migrated": migrated });
    (stats(per_op), full.then(|| stats(per_page)), extra)
}

/// A 4K camera buffer (3,038 pages), align 0, over a 128 MiB area whose every in-use page
/// holds a `get_page` reference: every window fails, the walk tries each position. A fresh
/// board a sample. (ms per walk, us per busy retry, extra).
fn cma_walk_referenced(samples: usize) -> (Stats, Stats, Value) {
    const COUNT: u32 = 3038;
    let (mut walls, mut per_retry) = (Vec::new(), Vec::new());
    let mut extra = json!({});
    for _ in 0..samples {
        let mut m = WALK_512M.boot();
        let (base, count) = (m.cma[0].base_pfn, m.cma[0].count);
        let app = m.owners.intern("app").expect("owner");
        let io = m.owners.intern("io").expect("owner");
        let dev = m.owners.intern("camera").expect("owner");
        let kept = fill_range(&mut m, app, base, base + count);
        for &i in &kept {
            let pfn = m.owned_pfn(app, i).expect("page").expect("resident");
            m.take_hold(pfn, io, HoldKind::Ref, None).expect("get_page");
        }
        m.take_charge();
        let t = Instant::now();
        let id = walk(&mut m, COUNT, dev);
        let wall = t.elapsed().as_nanos() as f64;
        let job = &m.jobs[id as usize];
        assert!(job.pfn.is_none(), "every window holds a referenced page");
        walls.push(wall / 1e6);
        per_retry.push(wall / 1e3 / job.busy_retries.max(1) as f64);
        extra = json!({
            "area_pages": count,
            "pages_referenced": kept.len(),
            "count": COUNT,
            "busy_retries": job.busy_retries,
            "blockers": job.blockers.len(),
            "virtual_ns": job.latency_ns(),
        });
    }
    (stats(walls), stats(per_retry), extra)
}

/// `cma_alloc(area 0, count, align 0)` run to completion (the part `cma_walk_referenced`
/// times; `benches/callgrind_walk.sh` counts its instructions). Returns the job.
#[inline(never)]
fn walk(m: &mut Machine, count: u32, owner: u16) -> u32 {
    let id = m.cma_alloc(0, count, 0, owner, false).expect("cma_alloc");
    assert!(m.run_while(u64::MAX, |m| m.jobs[id as usize].is_done()));
    id
}

/// `Machine::new` of `board`, `samples` times; ms per boot.
fn boot_time(board: &Board, samples: usize) -> Stats {
    let one = || {
        let t = Instant::now();
        let m = black_box(board.boot());
        let wall = t.elapsed().as_nanos() as f64 / 1e6;
        drop(m);
        wall
    };
    one();
    stats((0..samples).map(|_| one()).collect())
}

fn target_dir() -> PathBuf {
    // target/<profile>/deps/engine-<hash>: three levels up is the target directory, wherever
    // CARGO_TARGET_DIR put it.
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let mut b = Bench {
        filter,
        rows: Vec::new(),
    };
    let sc = Scale::from_env();
    let started = Instant::now();
    println!(
        "cmadev-mm engine benchmarks: median, [min .. max] over the samples, SPEC §6 target\n"
    );
    println!(
        "  {:<22} {:<24} {:>12} {:<14} spread / target",
        "benchmark", "board", "median", "unit"
    );

    let mut pair_ratio: Vec<(&str, f64, f64)> = Vec::new();
    for board in [&FLAT_256M, &TV_1G, &FLAT_64G] {
        if ![
            "order0_pair_fast",
            "order0_pair_owned",
            "order0_batch_owned",
        ]
        .iter()
        .any(|id| b.wants(id))
        {
            break;
        }
        let mut m = board.boot();
        for (id, f) in [
            (
                "order0_pair_fast",
                pair_fast as fn(&mut Machine, Scale) -> Stats,
            ),
            ("order0_pair_owned", pair_owned),
            ("order0_batch_owned", batch_owned),
        ] {
            if !b.wants(id) {
                continue;
            }
            let s = f(&mut m, sc);
            let target = (id != "order0_batch_owned").then_some(40.0);
            b.record(id, board.label, "ns/pair", &s, target, json!({}));
            pair_ratio.push((id, board.ram as f64, s.median));
        }
        m.check_invariants().expect("invariants after the bench");
    }

    if b.wants("contig_256m_full") {
        let (wall, per_page, extra) = contig_256m_full(sc.samples.min(9));
        b.record(
            "contig_256m_full",
            CONTIG_1G.label,
            "ms wall",
            &wall,
            Some(10.0),
            extra.clone(),
        );
        b.record(
            "contig_256m_full",
            CONTIG_1G.label,
            "ns/migrated pg",
            &per_page,
            Some(150.0),
            extra,
        );
    }

    let mut contig_ratio: Vec<(&str, f64, f64)> = Vec::new();
    for board in [&ZCMA_256M, &ZCMA_64G] {
        for (id, full) in [("contig_16m_full", true), ("contig_16m_free", false)] {
            if !b.wants(id) {
                continue;
            }
            let (op, page, extra) = contig_16m(board, full, sc.samples.min(9));
            b.record(
                id,
                board.label,
                "us/op",
                &scale(&op, 1e-3),
                None,
                extra.clone(),
            );
            contig_ratio.push((id, board.ram as f64, op.median));
            if let Some(page) = page {
                b.record(id, board.label, "ns/migrated pg", &page, None, extra);
            }
        }
    }

    if b.wants("cma_walk_referenced") {
        let (wall, retry, extra) = cma_walk_referenced((sc.samples / 5).max(1));
        b.record(
            "cma_walk_referenced",
            WALK_512M.label,
            "ms wall",
            &wall,
            Some(1000.0),
            extra.clone(),
        );
        b.record(
            "cma_walk_referenced",
            WALK_512M.label,
            "us/busy retry",
            &retry,
            None,
            extra,
        );
    }

    for board in [&FLAT_256M, &FLAT_64G] {
        if !b.wants("boot") {
            break;
        }
        let s = boot_time(board, sc.samples.min(9));
        let target = (board.ram == 64 * GIB).then_some(20.0);
        b.record("boot", board.label, "ms wall", &s, target, json!({}));
    }

    // Flatness: cost on the 64 GiB board over cost on the 256 MiB board.
    let mut ratios = Vec::new();
    println!("\ncost per operation, 64 GiB board / 256 MiB board (SPEC: flat):");
    for series in [&pair_ratio, &contig_ratio] {
        let ids: Vec<&str> = series.iter().map(|r| r.0).collect();
        for id in ids
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
        {
            let small = series
                .iter()
                .find(|r| r.0 == id && r.1 == (256 * MIB) as f64);
            let big = series
                .iter()
                .find(|r| r.0 == id && r.1 == (64 * GIB) as f64);
            if let (Some(s), Some(l)) = (small, big) {
                let ratio = l.2 / s.2;
                println!("  {id:<22} {ratio:>6.2}x");
                ratios.push(json!({ "id": id, "ratio_64g_over_256m": ratio }));
            }
        }
    }

    let out = json!({
        "bench": "cmadev-mm engine",
        "command": "cargo bench -p cmadev-mm --bench engine",
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "iters_per_sample": sc.iters,
        "samples": sc.samples,
        "results": b.rows,
        "ratios": ratios,
        "wall_s": started.elapsed().as_secs_f64(),
    });
    let name = if sc.samples < 15 {
        "bench-engine-quick.json" // a quick (callgrind) run never replaces the real figures
    } else {
        "bench-engine.json"
    };
    let path = target_dir().join(name);
    match std::fs::write(&path, serde_json::to_string_pretty(&out).expect("json")) {
        Ok(()) => println!("\nwrote {}", path.display()),
        Err(e) => eprintln!("\ncould not write {}: {e}", path.display()),
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}

fn scale(s: &Stats, k: f64) -> Stats {
    Stats {
        median: s.median * k,
        min: s.min * k,
        max: s.max * k,
        samples: s.samples,
    }
}
