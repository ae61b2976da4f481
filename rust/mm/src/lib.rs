//! cmadev-mm: a model of the Linux kernel's physical memory management and the Contiguous
//! Memory Allocator, run in virtual time. Pure Rust: the Python bindings live in
//! `rust/py`. Each kernel mechanism lives in the file named after the kernel's:
//!
//! | file | kernel | what |
//! | --- | --- | --- |
//! | `machine.rs`, `config.rs` | — | the machine, its boot and event loop; its description |
//! | `pfn.rs` | `unsigned long pfn` | the `Pfn` frame number newtype |
//! | `page.rs`, `list.rs` | `include/linux/mm_types.h` | the 16-byte `struct page`, `list_head` |
//! | `pageblock.rs` | `include/linux/pageblock-flags.h` | pageblocks and migratetypes |
//! | `zone.rs` | `include/linux/mmzone.h` | zones, free areas, watermarks |
//! | `mm_init.rs` | `mm/page_alloc.c` (6.1), `mm/mm_init.c` | deferred init of the frames |
//! | `gfp.rs` | `include/linux/gfp_types.h` | allocation masks |
//! | `page_alloc.rs` | `mm/page_alloc.c` | buddy allocator, fallback, per-CPU lists |
//! | `placement.rs` | (policy seam) | where movable requests take CMA pages |
//! | `vmscan.rs` | `mm/vmscan.c` | LRU, reclaim, kswapd |
//! | `swap.rs` | `mm/swap.c` | per-CPU LRU batches, `lru_cache_disable` |
//! | `mlock.rs` | `mm/mlock.c` | mlock and the unevictable LRU |
//! | `shmem.rs` | `mm/shmem.c` | shmem/tmpfs pages: swap-backed page cache |
//! | `readahead.rs` | `mm/readahead.c` | readahead of a sequential reader |
//! | `oom_kill.rs` | `mm/oom_kill.c` | the OOM killer, and the allocator's retries before it |
//! | `meminfo.rs` | `fs/proc/meminfo.c`, `si_mem_available` | node page counters, meminfo values |
//! | `writeback.rs` | `mm/page-writeback.c` | dirty pages, writeback, swap, storage |
//! | `memory.rs` | `mm/memory.c`, `mm/filemap.c` | faults, refaults, owners' pages |
//! | `owner.rs` | `page->mapping`, page tables | owners and their mappings (slots) |
//! | `gup.rs` | `mm/gup.c` | references and pins |
//! | `migrate.rs` | `mm/migrate.c` | page migration |
//! | `page_isolation.rs` | `mm/page_isolation.c` | pageblock isolation |
//! | `alloc_contig.rs` | `mm/page_alloc.c` | `alloc_contig_range` in virtual time |
//! | `cma.rs` | `mm/cma.c` | CMA areas, `cma_alloc`, `cma_release` |
//! | `allocation.rs` | — | the contiguous allocations handed out, and their owners |
//! | `dma_heap.rs` | `drivers/dma-buf/heaps/cma_heap.c` | a device's buffers, one request |
//! | `gcma.rs` | (guaranteed CMA) | cleancache in a CMA area |
//! | `memory_hotplug.rs` | `mm/memory_hotplug.c` | offlining and onlining memory |
//! | `sched.rs` | `kernel/sched/fair.c` | CPU contention: CFS share, work-item flushes |
//! | `workload/` | — | background workloads: the step loop, one file per kind |
//! | `event.rs`, `cost.rs`, `rng.rs` | — | event queue, cost model, seeded random numbers |
//! | `vmstat.rs`, `trace.rs`, `procfs.rs` | `mm/vmstat.c`, tracepoints | counters and views |
//! | `zoneinfo.rs` | `mm/vmstat.c` | `/proc/zoneinfo` |
//! | `cma_debug.rs` | `mm/cma_debug.c` | `/sys/kernel/debug/cma/<area>/` |
//! | `cma_map.rs` | — | the CMA areas' pages by state, sampled over time |
//! | `series.rs` | — | time series sampled in virtual time |
//! | `error.rs` | `-EBUSY`, `-ENOMEM` | engine errors and errnos |
//! | `check.rs` | — | `check_invariants` |
//! | `debug.rs` | `mm/debug.c` | `dump_page`: what one frame holds |
//! | `prefetch.rs` | `prefetch()` | cache hints for workloads that draw ahead |

pub mod alloc_contig;
pub mod allocation;
pub mod check;
pub mod cma;
pub mod cma_debug;
pub mod cma_map;
pub mod config;
pub mod cost;
pub mod debug;
pub mod dma_heap;
pub mod error;
pub mod event;
pub mod gcma;
pub mod gfp;
pub mod gup;
pub mod list;
pub mod machine;
pub mod meminfo;
pub mod memory;
pub mod memory_hotplug;
pub mod migrate;
pub mod mlock;
pub mod mm_init;
pub mod oom_kill;
pub mod owner;
pub mod page;
pub mod page_alloc;
pub mod page_isolation;
pub mod pageblock;
pub mod pfn;
pub mod placement;
pub mod prefetch;
pub mod procfs;
pub mod readahead;
pub mod rng;
pub mod sched;
pub mod series;
pub mod shmem;
pub mod swap;
pub mod trace;
pub mod vmscan;
pub mod vmstat;
pub mod workload;
pub mod writeback;
pub mod zone;
pub mod zoneinfo;

pub use config::{MachineConfig, Placement, PolicyConfig};
pub use error::{Errno, MmError, MmResult};
pub use machine::Machine;
pub use pfn::Pfn;
