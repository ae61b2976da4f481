//! Trace events in ftrace's text format (`/sys/kernel/tracing/trace`), with the kernel's
//! tracepoint names and `TP_printk` layouts, and the kernel log (`dmesg`).
//!
//! Reproduced (Linux 6.1, `kernel/trace/trace_output.c` `trace_print_context` and
//! `trace.c` `print_func_help_header_irq`): each line is `%16s-%-7d [%03d] ..... %5lu.%06lu: `
//! (task name cut at 15 characters, `TASK_COMM_LEN` 16 with its NUL; pid; CPU; the five
//! latency flags, which the model leaves at `.`; seconds and microseconds), then
//! `event: fields`. [`Trace::header`] is the header the `trace` file starts with. The events
//! and their bodies follow 6.1's `include/trace/events/{cma,migrate,kmem,page_isolation,
//! vmscan}.h`; where mainline differs the board's `kernel_version` chooses
//! (`config::KernelVersion`).
//!
//! Which events are recorded is `set_event` in miniature ([`TraceEvents`]): by default every
//! event but the per-page `kmem:mm_page_alloc` and `kmem:mm_page_free`, whose volume is one
//! line per page allocated or freed. Those two are tested at their call sites with one
//! boolean load ([`Trace::page_alloc_on`]) before anything is formatted, so leaving them off
//! costs the allocator nothing measurable.

use std::collections::VecDeque;

use crate::config::KernelVersion;
use crate::error::{MmError, MmResult};
use crate::gfp::Gfp;
use crate::owner::OwnerId;
use crate::page::Kind;
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;
use crate::Machine;

/// A `struct page *` as `%p` prints it with `no_hash_pointers`: the vmemmap base of x86-64
/// plus 64 bytes a frame. Only for familiarity; nothing dereferences it.
pub fn page_ptr(pfn: Pfn) -> String {
    format!("{:016x}", 0xffff_ea00_0000_0000u64 + pfn.0 as u64 * 64)
}

/// `TASK_COMM_LEN` is 16 with the terminating NUL: a task name holds 15 characters.
pub const TASK_COMM_CHARS: usize = 15;

/// Every event the engine can emit, as `(system, event)`.
pub const EVENTS: [(&str, &str); 12] = [
    ("cma", "cma_alloc_start"),
    ("cma", "cma_alloc_busy_retry"),
    ("cma", "cma_alloc_finish"),
    ("cma", "cma_release"),
    ("page_isolation", "test_pages_isolated"),
    ("migrate", "mm_migrate_pages_start"),
    ("migrate", "mm_migrate_pages"),
    ("kmem", "mm_page_alloc"),
    ("kmem", "mm_page_free"),
    ("kmem", "mm_alloc_contig_migrate_range_info"),
    ("vmscan", "mm_vmscan_kswapd_wake"),
    ("vmscan", "mm_vmscan_kswapd_sleep"),
];

const MM_PAGE_ALLOC: u32 = 1 << 7;
const MM_PAGE_FREE: u32 = 1 << 8;

/// The enabled events, one bit per entry of [`EVENTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEvents(pub u32);

impl TraceEvents {
    pub const ALL: TraceEvents = TraceEvents((1 << EVENTS.len()) - 1);
    /// Everything but the per-page allocator events.
    pub const DEFAULT: TraceEvents = TraceEvents(Self::ALL.0 & !(MM_PAGE_ALLOC | MM_PAGE_FREE));

    /// The events a machine's `trace_events` names (None: [`TraceEvents::DEFAULT`]).
    pub fn of(names: &Option<Vec<String>>) -> MmResult<TraceEvents> {
        names
            .as_deref()
            .map_or(Ok(TraceEvents::DEFAULT), Self::parse)
    }

    /// `set_event` syntax: `all`, a system (`cma`, `kmem`), or `system:event`; an entry
    /// starting with `!` disables what it names.
    pub fn parse(names: &[String]) -> MmResult<TraceEvents> {
        let mut mask = 0u32;
        for raw in names {
            let (off, name) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, raw.as_str()),
            };
            let bits = Self::bits_of(name).ok_or_else(|| {
                let systems: Vec<&str> = {
                    let mut s: Vec<&str> = EVENTS.iter().map(|(sys, _)| *sys).collect();
                    s.dedup();
                    s
                };
                MmError::InvalidConfig(format!(
                    "trace_events: unknown event {raw:?}; use all, a system ({}), or \
                     system:event (e.g. kmem:mm_page_alloc)",
                    systems.join(", ")
                ))
            })?;
            if off {
                mask &= !bits;
            } else {
                mask |= bits;
            }
        }
        Ok(TraceEvents(mask))
    }

    fn bits_of(name: &str) -> Option<u32> {
        if name == "all" || name == "*" || name == "*:*" {
            return Some(Self::ALL.0);
        }
        let (sys, ev) = match name.split_once(':') {
            Some((s, e)) => (s, Some(e)),
            None => (name, None),
        };
        let mut bits = 0;
        for (i, (s, e)) in EVENTS.iter().enumerate() {
            let hit = match ev {
                None | Some("*") => *s == sys || (ev.is_none() && *e == sys),
                Some(ev) => (*s == sys || sys == "*") && *e == ev,
            };
            if hit {
                bits |= 1 << i;
            }
        }
        (bits != 0).then_some(bits)
    }

    fn bit(event: &str) -> u32 {
        EVENTS
            .iter()
            .position(|(_, e)| *e == event)
            .map_or(0, |i| 1 << i)
    }
}

#[derive(Clone, Debug)]
pub struct Trace {
    limit: usize,
    lines: VecDeque<String>,
    /// Lines ever emitted, so readers can ask for "what is new since line N".
    emitted: u64,
    events: TraceEvents,
    /// `kmem:mm_page_alloc` is on: tested by the allocator before it formats anything.
    page_alloc_on: bool,
    /// `kmem:mm_page_free` is on.
    page_free_on: bool,
    /// The allocation being traced is a migration target (`migrate.rs` sets it around
    /// `prep_new_page` when `kmem:mm_page_alloc` is on).
    pub(crate) migration_target: bool,
}

impl Trace {
    pub fn new(limit: usize) -> Self {
        Self::with_events(limit, TraceEvents::DEFAULT)
    }

    pub fn with_events(limit: usize, events: TraceEvents) -> Self {
        let on = limit > 0;
        Trace {
            limit,
            lines: VecDeque::new(),
            emitted: 0,
            events,
            page_alloc_on: on && events.0 & MM_PAGE_ALLOC != 0,
            page_free_on: on && events.0 & MM_PAGE_FREE != 0,
            migration_target: false,
        }
    }

    /// Some event is recorded.
    pub fn enabled(&self) -> bool {
        self.limit > 0 && self.events.0 != 0
    }

    /// `kmem:mm_page_alloc` is recorded.
    #[inline(always)]
    pub fn page_alloc_on(&self) -> bool {
        self.page_alloc_on
    }

    /// `kmem:mm_page_free` is recorded.
    #[inline(always)]
    pub fn page_free_on(&self) -> bool {
        self.page_free_on
    }

    /// Whether `event` is recorded.
    pub fn on(&self, event: &str) -> bool {
        self.limit > 0 && self.events.0 & TraceEvents::bit(event) != 0
    }

    /// One line: `comm-pid [cpu] ..... secs.usecs: event: fields`.
    pub fn emit(&mut self, now_ns: u64, comm: &str, pid: u32, cpu: u32, event: &str, fields: &str) {
        if !self.on(event) {
            return;
        }
        // `trace_find_cmdline`: pid 0 is `<idle>` whatever its name.
        let comm: String = if pid == 0 {
            "<idle>".into()
        } else {
            comm.chars().take(TASK_COMM_CHARS).collect()
        };
        let line = format!(
            "{:>16}-{:<7} [{:03}] ..... {:>5}.{:06}: {}: {}",
            comm,
            pid,
            cpu,
            now_ns / 1_000_000_000,
            (now_ns % 1_000_000_000) / 1_000,
            event,
            fields
        );
        if self.lines.len() == self.limit {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        self.emitted += 1;
    }

    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Lines kept (at most the limit; the oldest go first, as in ftrace's ring buffer).
    pub fn kept(&self) -> u64 {
        self.lines.len() as u64
    }

    /// Lines emitted after the first `since` lines that are still kept.
    pub fn lines_since(&self, since: u64) -> Vec<String> {
        let first_kept = self.emitted - self.lines.len() as u64;
        let skip = since.saturating_sub(first_kept) as usize;
        self.lines.iter().skip(skip).cloned().collect()
    }

    /// The header of `/sys/kernel/tracing/trace` with the nop tracer (6.1 `s_show`,
    /// `print_func_help_header_irq`): the lines kept and emitted, the CPUs.
    pub fn header(&self, cpus: u32) -> String {
        let mut s = String::from("# tracer: nop\n#\n");
        s += &format!(
            "# entries-in-buffer/entries-written: {}/{}   #P:{}\n#\n",
            self.kept(),
            self.emitted,
            cpus
        );
        for line in [
            "#                                _-----=> irqs-off/BH-disabled",
            "#                               / _----=> need-resched",
            "#                              | / _---=> hardirq/softirq",
            "#                              || / _--=> preempt-depth",
            "#                              ||| / _-=> migrate-disable",
            "#                              |||| /     delay",
            "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
            "#              | |         |   |||||     |         |",
        ] {
            s += line;
            s.push('\n');
        }
        s
    }
}

/// `___ratelimit` with the defaults of `pr_*_ratelimited` (`DEFAULT_RATELIMIT_INTERVAL`
/// 5 s, `DEFAULT_RATELIMIT_BURST` 10), for one call site.
#[derive(Clone, Debug, Default)]
pub struct Ratelimit {
    begin_ns: Option<u64>,
    printed: u32,
    missed: u32,
}

const RATELIMIT_INTERVAL_NS: u64 = 5_000_000_000;
const RATELIMIT_BURST: u32 = 10;

/// A CMA area's clear-bit runs `(first bit, bits)`, its `order_per_bit` and its pages: what
/// `cma_debug_show_areas` prints.
pub type FreeRuns<'a> = (&'a [(usize, usize)], u32, u32);

/// The kernel log: `[    5.123456] message`.
#[derive(Clone, Debug, Default)]
pub struct Dmesg {
    pub lines: Vec<String>,
    /// `pr_err_ratelimited` in `cma_alloc`.
    pub cma_alloc_rs: Ratelimit,
}

impl Dmesg {
    pub fn printk(&mut self, now_ns: u64, msg: &str) {
        self.lines.push(format!(
            "[{:>5}.{:06}] {}",
            now_ns / 1_000_000_000,
            (now_ns % 1_000_000_000) / 1_000,
            msg
        ));
    }

    /// What a failed `cma_alloc` logs (6.1 `mm/cma.c`, `pr_fmt` "cma: "): `cma_alloc:
    /// <area>: alloc failed, req-size: N pages, ret: -E`, ratelimited, then with
    /// `CONFIG_CMA_DEBUG` `cma_debug_show_areas` (`number of available pages:
    /// N@bit+...=> N free of M total pages`, one line made of `pr_info` and `pr_cont`).
    /// `free_runs` are the area's clear-bit runs `(first bit, bits)` when `CONFIG_CMA_DEBUG`
    /// is on. `alloc_contig_range: [x, y) PFNs busy` is not printed: 6.1 and mainline no
    /// longer have it (4.x and 5.x kernels printed it, ratelimited, at each busy range).
    pub fn cma_alloc_failed(
        &mut self,
        now_ns: u64,
        area: &str,
        count: u32,
        ret: i32,
        free_runs: Option<FreeRuns<'_>>,
    ) {
        if !self.ratelimit(now_ns, "cma_alloc") {
            return;
        }
        let msg =
            format!("cma: cma_alloc: {area}: alloc failed, req-size: {count} pages, ret: {ret}");
        self.printk(now_ns, &msg);
        if let Some((runs, order_per_bit, total_pages)) = free_runs {
            let mut s = String::from("cma: number of available pages: ");
            let mut total = 0u64;
            for &(bit, nbits) in runs {
                let pages = (nbits as u64) << order_per_bit;
                if total > 0 {
                    s.push('+');
                }
                s += &format!("{pages}@{bit}");
                total += pages;
            }
            s += &format!("=> {total} free of {total_pages} total pages");
            self.printk(now_ns, &s);
        }
    }

    /// Whether a ratelimited message of `func` may print now; prints `func: N callbacks
    /// suppressed` when a new interval starts after suppressed ones (6.1 `___ratelimit`).
    fn ratelimit(&mut self, now_ns: u64, func: &str) -> bool {
        let mut rs = std::mem::take(&mut self.cma_alloc_rs);
        let begin = *rs.begin_ns.get_or_insert(now_ns);
        if now_ns >= begin + RATELIMIT_INTERVAL_NS {
            if rs.missed > 0 {
                self.printk(
                    now_ns,
                    &format!("{func}: {} callbacks suppressed", rs.missed),
                );
                rs.missed = 0;
            }
            rs.begin_ns = Some(now_ns);
            rs.printed = 0;
        }
        let ok = rs.printed < RATELIMIT_BURST;
        if ok {
            rs.printed += 1;
        } else {
            rs.missed += 1;
        }
        self.cma_alloc_rs = rs;
        ok
    }
}

/// `show_gfp_flags` of the mask the kernel would pass for this allocation (6.1
/// `include/trace/events/mmflags.h`: composite names first, then the remaining bits in the
/// table's order), as the 6.1 guest's full capture (`tests/data/kernel-6.1-full`) prints
/// them. Anonymous faults allocate `GFP_HIGHUSER_MOVABLE | __GFP_ZERO` folios
/// (`vma_alloc_zeroed_movable_folio`, `__GFP_COMP` from `vma_alloc_folio`); page-cache
/// readahead on ext4 `readahead_gfp_mask` of a mapping without `__GFP_FS`
/// (`GFP_NOFS|__GFP_HIGHMEM|...|__GFP_HARDWALL|__GFP_MOVABLE`); the block device's page
/// cache (`grow_dev_page`) `GFP_USER & ~__GFP_FS | __GFP_NOFAIL | __GFP_MOVABLE`. `GFP_USER`
/// and `GFP_KERNEL` differ only in `__GFP_HARDWALL`, which the model does not keep: both print
/// as `GFP_KERNEL`.
pub fn gfp_flags_name(gfp: Gfp, kind: Kind) -> &'static str {
    match gfp.migratetype {
        Migratetype::Movable if gfp.highmem => match kind {
            Kind::Anon => "GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO",
            Kind::File => {
                "GFP_NOFS|__GFP_HIGHMEM|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_HARDWALL|\
                 __GFP_MOVABLE"
            }
            _ => "GFP_HIGHUSER_MOVABLE",
        },
        Migratetype::Movable => "GFP_NOFS|__GFP_NOFAIL|__GFP_COMP|__GFP_HARDWALL|__GFP_MOVABLE",
        Migratetype::Reclaimable => "GFP_KERNEL|__GFP_RECLAIMABLE",
        _ if gfp.pin => "GFP_USER",
        _ if !gfp.direct_reclaim && gfp == Gfp::ATOMIC => "GFP_ATOMIC",
        _ if !gfp.direct_reclaim => "GFP_NOWAIT",
        _ => "GFP_KERNEL",
    }
}

/// The number `migratetype=%d` prints (6.1 `enum migratetype`: UNMOVABLE 0, MOVABLE 1,
/// RECLAIMABLE 2, HIGHATOMIC 3, CMA 4, ISOLATE 5; the model has no HIGHATOMIC).
pub fn kernel_migratetype(mt: Migratetype) -> u32 {
    match mt {
        Migratetype::Unmovable => 0,
        Migratetype::Movable => 1,
        Migratetype::Reclaimable => 2,
        Migratetype::Cma => 4,
        Migratetype::Isolate => 5,
    }
}

/// `MR_*` reasons of `include/trace/events/migrate.h`, as printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateReason {
    MemoryHotplug,
    ContigRange,
}

impl MigrateReason {
    pub fn name(self) -> &'static str {
        match self {
            MigrateReason::MemoryHotplug => "memory_hotplug",
            MigrateReason::ContigRange => "contig_range",
        }
    }
}

impl Machine {
    /// One line by `owner`'s task (its name, pid and CPU).
    fn trace_task(&mut self, owner: OwnerId, event: &str, fields: &str) {
        let (comm, pid, cpu) = (
            self.owners.name(owner),
            self.owners.pid(owner),
            self.owners.cpu(owner),
        );
        let comm = comm.to_string();
        self.trace.emit(self.now, &comm, pid, cpu, event, fields);
    }

    /// `trace_mm_page_alloc` (6.1 `__alloc_pages`): `page=%p pfn=0x%lx order=%d
    /// migratetype=%d gfp_flags=%s`, by the task that allocates. Called with the block
    /// prepared (`prep_new_page`): everything is read back from its head frame, so that the
    /// allocator passes nothing but the pfn (a call with more arguments cost its fast path
    /// 12 instructions a pair with tracing off, spilling them).
    #[cold]
    #[inline(never)]
    pub(crate) fn trace_mm_page_alloc(&mut self, pfn: Pfn) {
        let page = self.pages[pfn];
        let (kind, owner, order) = (page.kind(), page.owner, page.order());
        let gfp = if page.test(crate::page::pg::MOVABLE) {
            Gfp::HIGHUSER_MOVABLE
        } else if self.pageblocks.get(pfn) == Migratetype::Reclaimable {
            Gfp::KERNEL_RECLAIMABLE
        } else {
            Gfp::KERNEL
        };
        // `alloc_migration_target`: `GFP_USER | __GFP_MOVABLE | __GFP_RETRY_MAYFAIL` (a
        // folio, so `__GFP_COMP`), as the guest's capture prints it for contig_range targets.
        let flags = if self.trace.migration_target && gfp.migratetype == Migratetype::Movable {
            "GFP_USER|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_MOVABLE"
        } else {
            gfp_flags_name(gfp, kind)
        };
        let fields = format!(
            "page={} pfn=0x{:x} order={} migratetype={} gfp_flags={}",
            page_ptr(pfn),
            pfn,
            order,
            kernel_migratetype(gfp.migratetype),
            flags
        );
        self.trace_task(owner, "mm_page_alloc", &fields);
    }

    /// `trace_mm_page_free` (6.1 `free_pages_prepare`): `page=%p pfn=0x%lx order=%d`, by the
    /// page's owner (the model does not track which task frees), read before the free.
    #[cold]
    #[inline(never)]
    pub(crate) fn trace_mm_page_free(&mut self, pfn: Pfn, order: u32) {
        let owner = self.pages[pfn].owner;
        let fields = format!("page={} pfn=0x{:x} order={}", page_ptr(pfn), pfn, order);
        self.trace_task(owner, "mm_page_free", &fields);
    }

    /// `trace_mm_migrate_pages_start`: `mode=%s reason=%s`. The model's contiguous-range
    /// and offlining migrations run `MIGRATE_SYNC` (`alloc_contig_range`'s `cc.mode`).
    pub(crate) fn trace_migrate_pages_start(&mut self, owner: OwnerId, reason: MigrateReason) {
        if self.trace.on("mm_migrate_pages_start") {
            let fields = format!("mode=MIGRATE_SYNC reason={}", reason.name());
            self.trace_task(owner, "mm_migrate_pages_start", &fields);
        }
    }

    /// `trace_mm_migrate_pages` at the end of one `migrate_pages` call (6.1: `nr_succeeded=
    /// nr_failed= nr_thp_succeeded= nr_thp_failed= nr_thp_split= mode= reason=`; the model
    /// migrates no THP).
    pub(crate) fn trace_migrate_pages(
        &mut self,
        owner: OwnerId,
        succeeded: u64,
        failed: u64,
        reason: MigrateReason,
    ) {
        if self.trace.on("mm_migrate_pages") {
            let fields = format!(
                "nr_succeeded={} nr_failed={} nr_thp_succeeded=0 nr_thp_failed=0 \
                 nr_thp_split=0 mode=MIGRATE_SYNC reason={}",
                succeeded,
                failed,
                reason.name()
            );
            self.trace_task(owner, "mm_migrate_pages", &fields);
        }
    }
}

/// The body of `cma_alloc_start` for `version`.
pub fn cma_alloc_start_fields(
    version: KernelVersion,
    name: &str,
    count: u32,
    align: u32,
    available: u64,
    total: u32,
) -> String {
    match version {
        KernelVersion::V6_1 => format!("name={name} count={count} align={align}"),
        KernelVersion::Mainline => format!(
            "name={name} request_count={count} available_count={available} \
             total_count={total} align={align}"
        ),
    }
}

/// The body of `cma_alloc_finish`: `pfn` is the range last tried (`-1` if none was) and
/// `page` NULL on failure, as 6.1's `cma_alloc` passes them; mainline adds `errorno`.
pub fn cma_alloc_finish_fields(
    version: KernelVersion,
    name: &str,
    tried: Option<Pfn>,
    ok: bool,
    count: u32,
    align: u32,
    errorno: i32,
) -> String {
    let pfn = tried.map_or(u64::MAX, |p| p.0 as u64);
    let page = match (ok, tried) {
        (true, Some(p)) => page_ptr(p),
        _ => "0000000000000000".into(),
    };
    let head = format!("name={name} pfn=0x{pfn:x} page={page} count={count} align={align}");
    match version {
        KernelVersion::V6_1 => head,
        KernelVersion::Mainline => format!("{head} errorno={errorno}"),
    }
}
