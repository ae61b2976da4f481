//! Readahead (`readahead.rs`): a sequential reader's windows grow from 4 pages to
//! `read_ahead_kb`, one window ahead of it, so it reads at the storage's sequential
//! bandwidth; a random reader reads one page per miss.

mod common;

use cmadev_mm::config::Placement;
use cmadev_mm::readahead::{get_init_ra_size, get_next_ra_size};
use cmadev_mm::vmstat::Counter;
use cmadev_mm::Machine;
use common::*;
use serde_json::json;

const S: u64 = 1_000_000_000;

#[test]
fn window_sizes_are_the_kernels() {
    // 128 KiB: 32 pages.
    assert_eq!(get_init_ra_size(1, 32), 4);
    assert_eq!(get_init_ra_size(16, 32), 32);
    let mut size = 4;
    let mut seen = vec![size];
    while size < 32 {
        size = get_next_ra_size(size, 32);
        seen.push(size);
    }
    assert_eq!(seen, [4, 8, 16, 32]);
    assert_eq!(get_next_ra_size(1, 32), 4);
    assert_eq!(get_next_ra_size(32, 32), 32);
}

/// MiB/s read by a reader asking for 400 MiB/s over a 400 MiB file on the eMMC defaults.
fn throughput(sequential: bool, read_ahead_kb: u32) -> (f64, u64) {
    let mut cfg = board(1024, 0, Placement::Balanced);
    cfg.read_ahead_kb = read_ahead_kb;
    let mut m = Machine::new(cfg).unwrap();
    let id = m
        .start_workload(spec(json!({"kind": "page_cache_reader", "name": "reader",
            "file_pages": 102_400, "rate_pages_per_s": 102_400.0, "sequential": sequential})))
        .unwrap();
    m.run_until(2 * S);
    m.check_invariants().unwrap();
    let st = m.workload_stats(id).unwrap();
    let mib_s = st.pages_read as f64 * 4096.0 / (1 << 20) as f64 / 2.0;
    (mib_s, m.vmstat.get(Counter::Pgpgin) / 4)
}

#[test]
fn a_sequential_reader_reaches_the_sequential_bandwidth() {
    let (seq, seq_in) = throughput(true, 128);
    let (rnd, rnd_in) = throughput(false, 128);
    let (off, _) = throughput(true, 0);
    println!(
        "eMMC defaults: sequential {seq:.1} MiB/s ({seq_in} pages in), random {rnd:.1} MiB/s \
         ({rnd_in}), sequential without readahead {off:.1} MiB/s"
    );
    // 32 pages a request: 150 us + 32 x 16 us = 662 us for 128 KiB, ~189 MiB/s.
    assert!((150.0..200.0).contains(&seq), "{seq}");
    // One page a request: 166 us, ~23.5 MiB/s.
    assert!((20.0..26.0).contains(&rnd), "{rnd}");
    assert!((20.0..26.0).contains(&off), "{off}");
    assert!(seq > 6.0 * rnd);
}

/// A reader slower than the storage gets its rate, and its reads wait for nothing once the
/// window is ahead of it.
#[test]
fn a_slow_sequential_reader_gets_its_rate() {
    let mut m = machine(512, 0, Placement::Balanced);
    let id = m
        .start_workload(spec(json!({"kind": "page_cache_reader", "name": "reader",
            "file_pages": 50_000, "rate_pages_per_s": 6_144.0, "sequential": true})))
        .unwrap();
    m.run_until(4 * S);
    let st = m.workload_stats(id).unwrap();
    println!("{st:?}");
    let mib_s = st.pages_read as f64 * 4096.0 / (1 << 20) as f64 / 4.0;
    assert!((23.0..24.5).contains(&mib_s), "{mib_s} MiB/s");
    // Only the first read misses; readahead brought every other page before it was read.
    assert_eq!(st.hits + 1, st.pages_read, "{st:?}");
    assert!(st.populated >= st.pages_read, "{st:?}");
}
