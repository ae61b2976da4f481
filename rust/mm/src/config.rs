//! The machine description the engine is built from.
//!
//! Python's pydantic models (`cmadev.models`) validate user input and serialise it to this
//! JSON shape; the engine trusts nothing and re-checks what could break its invariants
//! (`MachineConfig::validate`). All sizes are in bytes, all times in nanoseconds.

use serde::{Deserialize, Serialize};

use crate::cost::CostModel;
use crate::error::{MmError, MmResult};

/// One reserved CMA area (`cma_declare_contiguous` at boot).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CmaAreaConfig {
    pub name: String,
    pub size: u64,
    /// Each bitmap bit stands for 2^order_per_bit pages (`cma->order_per_bit`).
    #[serde(default)]
    pub order_per_bit: u32,
}

/// Where movable requests may take CMA pages (SPEC §3).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Mainline in 2015: CMA only once the movable free lists are empty.
    Legacy,
    /// Mainline before 4.1 (2014: 3.x up to 4.0): MIGRATE_CMA first in
    /// `fallbacks[MIGRATE_MOVABLE]`, taken largest block first by `__rmqueue_fallback`.
    #[serde(rename = "legacy_2014")]
    Legacy2014,
    /// Mainline since 5.x (Roman Gushchin, 2020): CMA first when it holds over half the
    /// zone's free pages.
    Balanced,
    /// Joonsoo Kim's ZONE_CMA: the CMA areas form their own zone.
    ZoneCma,
    /// CMA memory managed as ZONE_MOVABLE (4.17 rework, reverted).
    MovableZone,
    /// SeongJae Park's guaranteed CMA: the area holds only discardable pages.
    Gcma,
}

impl Placement {
    /// The name the policy files use.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Legacy => "legacy",
            Placement::Legacy2014 => "legacy_2014",
            Placement::Balanced => "balanced",
            Placement::ZoneCma => "zone_cma",
            Placement::MovableZone => "movable_zone",
            Placement::Gcma => "gcma",
        }
    }
}

/// Serialisation of concurrent `cma_alloc` calls.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CmaLock {
    /// `cma_mutex`: one lock for every area (mainline until 2025).
    Global,
    /// `cma->alloc_mutex`: one lock per area (mainline since 2025).
    PerArea,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub placement: Placement,
    #[serde(default)]
    pub migrate_on_longterm_pin: bool,
    #[serde(default)]
    pub migrate_on_pin: bool,
    #[serde(default)]
    pub migrate_on_first_dirty: bool,
    #[serde(default)]
    pub warn_cma_pins: bool,
    /// `pin_duration_warn`: warn in `put_page`/unpin when a pin lasted longer than this.
    #[serde(default)]
    pub pin_duration_warn_ns: Option<u64>,
    #[serde(default)]
    pub fs_superblock_unmovable: bool,
    #[serde(default = "default_lock")]
    pub cma_lock: CmaLock,
    /// Vendor kernels: when one walk over the bitmap fails with -EBUSY, sleep and walk
    /// again, up to this many extra passes (Android: 5 passes, `msleep(100)`).
    #[serde(default)]
    pub vendor_retry_passes: u32,
    #[serde(default = "default_vendor_sleep")]
    pub vendor_retry_sleep_ns: u64,
}

fn default_lock() -> CmaLock {
    CmaLock::Global
}

fn default_vendor_sleep() -> u64 {
    100_000_000
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            placement: Placement::Balanced,
            migrate_on_longterm_pin: false,
            migrate_on_pin: false,
            migrate_on_first_dirty: false,
            warn_cma_pins: false,
            pin_duration_warn_ns: None,
            fs_superblock_unmovable: false,
            cma_lock: CmaLock::Global,
            vendor_retry_passes: 0,
            vendor_retry_sleep_ns: default_vendor_sleep(),
        }
    }
}

impl PolicyConfig {
    /// Reject the fixes that cannot do anything under the chosen placement, saying why.
    /// `migrate_on_longterm_pin` makes sense everywhere but gcma: mainline has it for CMA and
    /// ZONE_MOVABLE alike.
    pub fn validate(&self) -> MmResult<()> {
        let p = self.placement;
        let mut pointless: Vec<(&str, &str)> = Vec::new();
        if p == Placement::Gcma {
            const NOTHING_TO_MOVE: &str = "a gcma area holds only discardable cache pages, never \
                 a movable page that could be pinned or dirtied, so there is nothing to \
                 migrate out of it";
            const NOTHING_TO_WARN: &str = "no page of a gcma area can be referenced or pinned, \
                 so the warning could never fire";
            if self.migrate_on_longterm_pin {
                pointless.push(("migrate_on_longterm_pin", NOTHING_TO_MOVE));
            }
            if self.migrate_on_pin {
                pointless.push(("migrate_on_pin", NOTHING_TO_MOVE));
            }
            if self.migrate_on_first_dirty {
                pointless.push(("migrate_on_first_dirty", NOTHING_TO_MOVE));
            }
            if self.warn_cma_pins {
                pointless.push(("warn_cma_pins", NOTHING_TO_WARN));
            }
            if self.pin_duration_warn_ns.is_some() {
                pointless.push(("pin_duration_warn", NOTHING_TO_WARN));
            }
        }
        if self.fs_superblock_unmovable
            && matches!(
                p,
                Placement::ZoneCma | Placement::MovableZone | Placement::Gcma
            )
        {
            pointless.push((
                "fs_superblock_unmovable",
                "superblock buffers come from the block device's page cache \
                 (GFP_USER | __GFP_MOVABLE, no __GFP_HIGHMEM), which this placement never \
                 puts in CMA memory, so there is nothing for the fix to keep out",
            ));
        }
        if pointless.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = pointless.iter().map(|(f, _)| *f).collect();
        let why: Vec<String> = pointless.iter().map(|(f, w)| format!("{f}: {w}")).collect();
        Err(MmError::InvalidConfig(format!(
            "{} make{} no sense with placement {:?} ({}); remove {} or choose another placement",
            names.join(", "),
            if names.len() == 1 { "s" } else { "" },
            p.name(),
            why.join("; "),
            if names.len() == 1 { "it" } else { "them" },
        )))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    pub ram: u64,
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Memory the kernel keeps for itself at boot (image, memmap): never managed by buddy.
    #[serde(default)]
    pub reserved: u64,
    #[serde(default = "default_pageblock_order")]
    pub pageblock_order: u32,
    /// `vm.min_free_kbytes`; None computes the kernel's default from lowmem size.
    #[serde(default)]
    pub min_free_kbytes: Option<u64>,
    #[serde(default = "default_wsf")]
    pub watermark_scale_factor: u64,
    #[serde(default)]
    pub cma_areas: Vec<CmaAreaConfig>,
    #[serde(default)]
    pub swap: u64,
    /// `vm.dirty_expire_centisecs`, in ns.
    #[serde(default = "default_dirty_expire")]
    pub dirty_expire_ns: u64,
    /// `vm.dirty_ratio`, percent of available memory.
    #[serde(default = "default_dirty_ratio")]
    pub dirty_ratio: u32,
    /// The storage's `read_ahead_kb` (`/sys/block/<dev>/queue/read_ahead_kb`, the bdi's
    /// `ra_pages`): the largest readahead window of a sequential reader (`readahead.rs`); 0
    /// turns readahead off.
    #[serde(default = "default_read_ahead_kb")]
    pub read_ahead_kb: u32,
    #[serde(default)]
    pub cost: CostModel,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub seed: u64,
    /// Keep at most this many trace lines (oldest dropped first); 0 disables tracing.
    #[serde(default = "default_trace_limit")]
    pub trace_limit: usize,
    /// The most events the machine may run (`Machine::run_slice`): a run that would pass it
    /// stops with `MmError::Budget` instead of running for hours.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// The trace events enabled (`set_event` syntax: `cma`, `kmem:mm_page_alloc`, `all`);
    /// None: every event but the per-page `kmem:mm_page_alloc`/`mm_page_free` (`trace.rs`).
    #[serde(default)]
    pub trace_events: Option<Vec<String>>,
    /// Which kernel's formats the views and trace lines follow where they differ.
    #[serde(default)]
    pub kernel_version: KernelVersion,
    /// `CONFIG_CMA_DEBUG`: a failed `cma_alloc` also logs the area's free ranges
    /// (`cma_debug_show_areas`).
    #[serde(default)]
    pub cma_debug: bool,
    /// `CONFIG_DEFERRED_STRUCT_PAGE_INIT`: boot leaves the top-order free blocks' frames
    /// unwritten until they are needed (`mm_init.rs`). What is simulated is the same either
    /// way; off, boot writes every free block's head frame (for comparison, in tests).
    #[serde(default = "default_true")]
    pub deferred_struct_page_init: bool,
}

fn default_true() -> bool {
    true
}

/// The kernel whose formats the engine prints, where they differ (`trace.rs`, `procfs.rs`):
///
/// | | 6.1 (the reference: the kernel backend's guest) | mainline (6.12 and later) |
/// | --- | --- | --- |
/// | `cma_alloc_start` | `name= count= align=` | `name= request_count= available_count= total_count= align=` |
/// | `cma_alloc_finish` | `name= pfn= page= count= align=` | the same, then `errorno=` |
/// | `mm_alloc_contig_migrate_range_info` | (no such event) | `start= end= migratetype=%d nr_migrated= nr_reclaimed= nr_mapped=` (6.7 to 6.16) |
/// | `/sys/kernel/mm/cma/<area>/` | `alloc_pages_success`, `alloc_pages_fail` | also `release_pages_success`, `total_pages`, `available_pages` (2024) |
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum KernelVersion {
    #[default]
    #[serde(rename = "6.1")]
    V6_1,
    #[serde(rename = "mainline")]
    Mainline,
}

impl KernelVersion {
    pub fn name(self) -> &'static str {
        match self {
            KernelVersion::V6_1 => "6.1",
            KernelVersion::Mainline => "mainline",
        }
    }
}

fn default_cpus() -> u32 {
    4
}
fn default_pageblock_order() -> u32 {
    9
}
fn default_wsf() -> u64 {
    10
}
fn default_dirty_expire() -> u64 {
    30_000_000_000
}
fn default_dirty_ratio() -> u32 {
    20
}
/// `VM_READAHEAD_PAGES`: the default readahead window, 128 KiB (`readahead.rs`).
pub const VM_READAHEAD_KB: u32 = 128;

fn default_read_ahead_kb() -> u32 {
    VM_READAHEAD_KB
}
fn default_trace_limit() -> usize {
    200_000
}
/// A billion events: a few minutes of host time at the engine's speed, and a thousand times
/// what the shipped TV evening needs.
pub const DEFAULT_MAX_EVENTS: u64 = 1_000_000_000;
fn default_max_events() -> u64 {
    DEFAULT_MAX_EVENTS
}

pub const PAGE_SIZE: u64 = 4096;
/// Orders 0..=MAX_PAGE_ORDER (10), as x86-64 before 6.4 calls MAX_ORDER 11.
pub const MAX_PAGE_ORDER: u32 = 10;
/// Frame numbers must fit the mapping encoding (high bit marks a non-resident slot), and a
/// board's frames the host's memory: 2^26 frames (256 GiB) cost about 1.3 GiB of host
/// memory at 16 bytes a frame plus the owners' mappings. (The Python specs say the same.)
pub const MAX_FRAMES: u64 = 1 << 26;

impl MachineConfig {
    /// A board with `ram` bytes and default everything else (tests and benches).
    pub fn with_ram(ram: u64) -> Self {
        serde_json::from_value(serde_json::json!({ "ram": ram })).expect("defaults are valid")
    }

    pub fn validate(&self) -> MmResult<()> {
        let bad = |msg: String| Err(MmError::InvalidConfig(msg));
        if self.ram % (PAGE_SIZE << MAX_PAGE_ORDER) != 0 || self.ram == 0 {
            return bad(format!(
                "ram = {} bytes is not a positive multiple of 4 MiB (the largest buddy block): \
                 round it to a whole number of MiB divisible by 4",
                self.ram
            ));
        }
        if !(1..=10).contains(&self.pageblock_order) {
            return bad(format!(
                "pageblock_order = {} is outside 1..=10 (the kernel uses 9: 2 MiB pageblocks)",
                self.pageblock_order
            ));
        }
        let block = PAGE_SIZE << MAX_PAGE_ORDER;
        if self.ram < 16 * block {
            return bad(format!(
                "ram = {} bytes is too small: a board needs at least 64 MiB",
                self.ram
            ));
        }
        if self.ram / PAGE_SIZE > MAX_FRAMES {
            return bad(format!(
                "ram = {} bytes exceeds the 256 GiB the engine models: model a part of the \
                 machine",
                self.ram
            ));
        }
        if self.cpus == 0 || self.cpus > 256 {
            return bad(format!("cpus = {} is outside 1..=256", self.cpus));
        }
        if self.dirty_ratio == 0 || self.dirty_ratio > 100 {
            return bad(format!(
                "dirty_ratio = {} is outside 1..=100",
                self.dirty_ratio
            ));
        }
        if self.read_ahead_kb % 4 != 0 || self.read_ahead_kb > 65_536 {
            return bad(format!(
                "read_ahead_kb = {} is not a multiple of 4 (a page) up to 65536 (64 MiB; the \
                 kernel's default is 128)",
                self.read_ahead_kb
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut cma_total = 0u64;
        for area in &self.cma_areas {
            if area.name.is_empty() || !names.insert(area.name.as_str()) {
                return bad(format!(
                    "CMA area name {:?} is empty or used twice: give every area its own name",
                    area.name
                ));
            }
            if area.size == 0 || area.size % block != 0 {
                return bad(format!(
                    "CMA area {:?}: size {} is not a positive multiple of 4 MiB (the CMA \
                     alignment, MAX_ORDER_NR_PAGES pages)",
                    area.name, area.size
                ));
            }
            if area.order_per_bit > MAX_PAGE_ORDER {
                return bad(format!(
                    "CMA area {:?}: order_per_bit {} is above {}",
                    area.name, area.order_per_bit, MAX_PAGE_ORDER
                ));
            }
            cma_total += area.size;
        }
        if self.reserved % PAGE_SIZE != 0 {
            return bad(format!(
                "reserved = {} is not a multiple of 4 KiB",
                self.reserved
            ));
        }
        if cma_total + self.reserved + 8 * block > self.ram {
            return bad(format!(
                "CMA areas ({} bytes) and reserved memory ({} bytes) leave less than 32 MiB of \
                 ram ({} bytes) for the rest of the system: shrink the areas",
                cma_total, self.reserved, self.ram
            ));
        }
        self.policy.validate()?;
        self.cost.validate()
    }
}
