//! Property tests (issue 2, item 5): random sequences of operations on small boards, with
//! `check_invariants()` after every step, and determinism (same operations and seed, same
//! trace and counters).
//!
//! ```text
//! cargo test -p cmadev-mm --test properties                     # the default case counts
//! PROPTEST_CASES=2000 cargo test -p cmadev-mm --test properties # a longer hunt
//! ```
//!
//! An operation names pages, holds, requests and ranges by position in what the test has
//! created so far (`pick % len`), so every generated sequence is valid to replay and shrinks
//! well. Operations that must fail (double free, release of a released hold, requests larger
//! than their area, ...) must fail with a `Misuse`, `Cma` or `OutOfMemory` error and change
//! nothing that `check_invariants` can see; `MmError::Bug` never.

use cmadev_mm::config::{CmaAreaConfig, CmaLock, MachineConfig, Placement};
use cmadev_mm::gfp::Gfp;
use cmadev_mm::gup::HoldKind;
use cmadev_mm::page::Kind;
use cmadev_mm::pageblock::Migratetype;
use cmadev_mm::{Machine, MmError, MmResult, Pfn};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const MIB: u64 = 1 << 20;
const OWNERS: [&str; 3] = ["app", "browser", "kworker"];
/// Virtual time a `cma_alloc` that is waited for may take before the test calls it stuck.
const JOB_LIMIT_NS: u64 = 3_600_000_000_000;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ----- boards ----------------------------------------------------------------------------

/// A small board: 128 MiB with 32 MiB of CMA (one area or two), any placement, some fixes.
#[derive(Clone, Debug)]
struct BoardChoice {
    placement: Placement,
    two_areas: bool,
    order_per_bit: u32,
    cpus: u32,
    swap: bool,
    reserved: bool,
    longterm_fix: bool,
    pin_fix: bool,
    first_dirty_fix: bool,
    warn_pins: bool,
    per_area_lock: bool,
    vendor_retry: bool,
    seed: u64,
    /// Boot without `CONFIG_DEFERRED_STRUCT_PAGE_INIT` (`mm_init.rs`).
    eager_init: bool,
}

impl BoardChoice {
    fn config(&self) -> MachineConfig {
        let mut cfg = MachineConfig::with_ram(128 * MIB);
        let area = |name: &str, mib: u64| CmaAreaConfig {
            name: name.into(),
            size: mib * MIB,
            order_per_bit: self.order_per_bit,
        };
        cfg.cma_areas = if self.two_areas {
            vec![area("video", 16), area("camera", 16)]
        } else {
            vec![area("cma", 32)]
        };
        cfg.cpus = self.cpus;
        cfg.swap = if self.swap { 16 * MIB } else { 0 };
        cfg.reserved = if self.reserved { 4 * MIB } else { 0 };
        cfg.seed = self.seed;
        cfg.deferred_struct_page_init = !self.eager_init;
        let p = &mut cfg.policy;
        p.placement = self.placement;
        p.migrate_on_longterm_pin = self.longterm_fix;
        p.migrate_on_pin = self.pin_fix;
        p.migrate_on_first_dirty = self.first_dirty_fix;
        p.warn_cma_pins = self.warn_pins;
        p.pin_duration_warn_ns = self.warn_pins.then_some(50_000_000);
        p.cma_lock = if self.per_area_lock {
            CmaLock::PerArea
        } else {
            CmaLock::Global
        };
        p.vendor_retry_passes = if self.vendor_retry { 2 } else { 0 };
        p.vendor_retry_sleep_ns = 10_000_000;
        if p.validate().is_err() {
            // A fix that cannot act under this placement (gcma) is refused: leave them off.
            p.migrate_on_longterm_pin = false;
            p.migrate_on_pin = false;
            p.migrate_on_first_dirty = false;
            p.warn_cma_pins = false;
            p.pin_duration_warn_ns = None;
        }
        cfg
    }
}

const PLACEMENTS: [Placement; 6] = [
    Placement::Legacy,
    Placement::Legacy2014,
    Placement::Balanced,
    Placement::ZoneCma,
    Placement::MovableZone,
    Placement::Gcma,
];

fn placement() -> impl Strategy<Value = Placement> {
    prop::sample::select(&PLACEMENTS[..])
}

fn board() -> impl Strategy<Value = BoardChoice> {
    (
        placement(),
        any::<bool>(),
        0u32..=2,
        1u32..=4,
        any::<bool>(),
        any::<bool>(),
        any::<[bool; 6]>(),
        0u64..1000,
    )
        .prop_map(
            |(placement, two_areas, order_per_bit, cpus, swap, reserved, f, seed)| BoardChoice {
                placement,
                two_areas,
                order_per_bit,
                cpus,
                swap,
                reserved,
                longterm_fix: f[0],
                pin_fix: f[1],
                first_dirty_fix: f[2],
                warn_pins: f[3],
                per_area_lock: f[4],
                vendor_retry: f[5],
                seed,
                eager_init: false,
            },
        )
}

// ----- operations ------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Misuse {
    DoubleFree,
    ReleaseTwice,
    FreeHeld,
    CmaTooLarge,
    CmaBadAlign,
    CmaReleaseTwice,
    CmaReleaseOutside,
    OrderTooHigh,
    KernelPageMovableGfp,
    AnonPageKernelGfp,
    ContigEmpty,
    ContigBeyondEnd,
    FreeContigNotDevice,
    WritebackClean,
    UnknownOwner,
    HoldFreePfn,
    HoldBeyondEnd,
}

#[derive(Clone, Debug)]
enum Op {
    /// `alloc_owned` of one page (block) of a random order, mask and kind.
    Alloc {
        owner: usize,
        order: u32,
        gfp: usize,
        kind: Kind,
    },
    /// Up to `n` order-0 pages, stopping at the first failure: builds memory pressure.
    AllocMany {
        owner: usize,
        n: u32,
        file: bool,
    },
    Free {
        pick: usize,
    },
    Hold {
        pick: usize,
        holder: usize,
        kind: HoldKind,
        duration_us: Option<u32>,
    },
    Release {
        pick: usize,
    },
    Access {
        pick: usize,
        write: bool,
    },
    Writeback {
        pick: usize,
    },
    /// `cma_alloc`; with `wait`, run the clock until it is done.
    CmaAlloc {
        area: usize,
        count: u32,
        align: u32,
        zero: bool,
        wait: bool,
    },
    CmaRelease {
        pick: usize,
    },
    /// `alloc_contig_range` over `[start, start + len)`, `start` as a fraction of memory.
    Contig {
        start_permille: u32,
        len: u32,
        cma: bool,
    },
    FreeContig {
        pick: usize,
    },
    RunFor {
        us: u32,
    },
    Drain,
    Misuse(Misuse),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Anon), Just(Kind::File), Just(Kind::Kernel)]
}

fn hold_kind() -> impl Strategy<Value = HoldKind> {
    prop_oneof![
        Just(HoldKind::Ref),
        Just(HoldKind::RefShort),
        Just(HoldKind::Pin),
        Just(HoldKind::LongtermPin),
    ]
}

fn misuse() -> impl Strategy<Value = Misuse> {
    use Misuse::*;
    prop_oneof![
        Just(DoubleFree),
        Just(ReleaseTwice),
        Just(FreeHeld),
        Just(CmaTooLarge),
        Just(CmaBadAlign),
        Just(CmaReleaseTwice),
        Just(CmaReleaseOutside),
        Just(OrderTooHigh),
        Just(KernelPageMovableGfp),
        Just(AnonPageKernelGfp),
        Just(ContigEmpty),
        Just(ContigBeyondEnd),
        Just(FreeContigNotDevice),
        Just(WritebackClean),
        Just(UnknownOwner),
        Just(HoldFreePfn),
        Just(HoldBeyondEnd),
    ]
}

/// A mask that suits the kind most of the time (index into `Gfp::NAMES`), any mask now and
/// then (a misuse for anon and kernel pages).
fn alloc_op() -> impl Strategy<Value = Op> {
    let order = prop_oneof![6 => 0u32..=2, 2 => 3u32..=5, 1 => 6u32..=10];
    (
        0..OWNERS.len(),
        order,
        kind(),
        0usize..7,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(owner, order, kind, any_gfp, wild)| {
            // NAMES: KERNEL, KERNEL_RECLAIMABLE, NOWAIT, ATOMIC, USER, HIGHUSER_MOVABLE,
            // USER_MOVABLE.
            let gfp = if wild {
                any_gfp
            } else {
                match kind {
                    Kind::Kernel => any_gfp % 5,
                    Kind::File => any_gfp,
                    _ => 5 + any_gfp % 2,
                }
            };
            Op::Alloc {
                owner,
                order,
                gfp,
                kind,
            }
        })
}

fn op() -> impl Strategy<Value = Op> {
    let pick = any::<usize>();
    prop_oneof![
        10 => alloc_op(),
        4 => (0..OWNERS.len(), prop_oneof![1u32..2000, 2000u32..14000], any::<bool>())
            .prop_map(|(owner, n, file)| Op::AllocMany { owner, n, file }),
        6 => pick.prop_map(|pick| Op::Free { pick }),
        4 => (pick, 0..OWNERS.len(), hold_kind(), prop::option::weighted(0.4, 1u32..200_000))
            .prop_map(|(pick, holder, kind, duration_us)| Op::Hold {
                pick,
                holder,
                kind,
                duration_us
            }),
        3 => pick.prop_map(|pick| Op::Release { pick }),
        4 => (pick, any::<bool>()).prop_map(|(pick, write)| Op::Access { pick, write }),
        2 => pick.prop_map(|pick| Op::Writeback { pick }),
        3 => (
            0usize..2,
            prop_oneof![3 => 1u32..=512, 1 => 1u32..=8192],
            prop_oneof![3 => 0u32..=4, 1 => 5u32..=10],
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.7)
        )
            .prop_map(|(area, count, align, zero, wait)| Op::CmaAlloc {
                area,
                count,
                align,
                zero,
                wait
            }),
        2 => pick.prop_map(|pick| Op::CmaRelease { pick }),
        2 => (0u32..1000, 1u32..=2048, any::<bool>())
            .prop_map(|(start_permille, len, cma)| Op::Contig { start_permille, len, cma }),
        1 => pick.prop_map(|pick| Op::FreeContig { pick }),
        3 => prop_oneof![1u32..1_000, 1_000u32..2_000_000, 5_000_000u32..40_000_000]
            .prop_map(|us| Op::RunFor { us }),
        1 => Just(Op::Drain),
        2 => misuse().prop_map(Op::Misuse),
    ]
}

// ----- the world the operations act on ------------------------------------------------------

struct World {
    m: Machine,
    owners: Vec<u16>,
    /// Live pages: (owner, index).
    pages: Vec<(u16, u32)>,
    /// Pages freed: freeing them again is a misuse.
    freed: Vec<(u16, u32)>,
    holds: Vec<u64>,
    released: Vec<u64>,
    /// `cma_alloc` requests, and whether their buffer was released.
    jobs: Vec<(u32, bool)>,
    contig: Vec<(Pfn, u32)>,
}

fn nth<T: Copy>(v: &[T], pick: usize) -> Option<(usize, T)> {
    (!v.is_empty()).then(|| {
        let i = pick % v.len();
        (i, v[i])
    })
}

/// An expected error is any but `Bug`.
fn allowed<T>(r: MmResult<T>) -> Result<Option<T>, TestCaseError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(MmError::Bug(msg)) => Err(TestCaseError::fail(format!("engine bug: {msg}"))),
        Err(_) => Ok(None),
    }
}

/// A misuse must be refused as one (or as a CMA error), never accepted.
fn refused<T: std::fmt::Debug>(what: &str, r: MmResult<T>) -> Result<(), TestCaseError> {
    match r {
        Err(MmError::Misuse(_) | MmError::Cma(_)) => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "{what}: expected a misuse error, got {other:?}"
        ))),
    }
}

impl World {
    fn new(b: &BoardChoice) -> World {
        let mut m = Machine::new(b.config()).expect("valid board");
        let owners = OWNERS
            .iter()
            .map(|n| m.owners.intern(n).expect("owner"))
            .collect();
        World {
            m,
            owners,
            pages: Vec::new(),
            freed: Vec::new(),
            holds: Vec::new(),
            released: Vec::new(),
            jobs: Vec::new(),
            contig: Vec::new(),
        }
    }

    fn pfn_of(&self, pick: usize) -> Option<Pfn> {
        let (_, (owner, index)) = nth(&self.pages, pick)?;
        self.m.owned_pfn(owner, index).ok().flatten()
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Alloc {
                owner,
                order,
                gfp,
                kind,
            } => {
                let owner = self.owners[owner];
                let gfp = Gfp::NAMES[gfp].1;
                if let Some(i) = allowed(self.m.alloc_owned(owner, gfp, order, kind))? {
                    self.pages.push((owner, i));
                }
            }
            Op::AllocMany { owner, n, file } => {
                let owner = self.owners[owner];
                let kind = if file { Kind::File } else { Kind::Anon };
                for _ in 0..n {
                    match allowed(self.m.alloc_owned(owner, Gfp::HIGHUSER_MOVABLE, 0, kind))? {
                        Some(i) => self.pages.push((owner, i)),
                        None => break,
                    }
                }
            }
            Op::Free { pick } => {
                if let Some((i, (owner, index))) = nth(&self.pages, pick) {
                    if allowed(self.m.free_owned(owner, index))?.is_some() {
                        self.pages.swap_remove(i);
                        self.freed.push((owner, index));
                    }
                }
            }
            Op::Hold {
                pick,
                holder,
                kind,
                duration_us,
            } => {
                if let Some(pfn) = self.pfn_of(pick) {
                    let holder = self.owners[holder];
                    let d = duration_us.map(|us| us as u64 * 1000);
                    if let Some((id, _)) = allowed(self.m.take_hold(pfn, holder, kind, d))? {
                        self.holds.push(id);
                    }
                }
            }
            Op::Release { pick } => {
                if let Some((i, id)) = nth(&self.holds, pick) {
                    // A hold taken for a duration may have been released by its event.
                    allowed(self.m.release_hold(id))?;
                    self.holds.swap_remove(i);
                    self.released.push(id);
                }
            }
            Op::Access { pick, write } => {
                if let Some((_, (owner, index))) = nth(&self.pages, pick) {
                    allowed(self.m.access_owned(owner, index, write))?;
                    self.m.take_charge();
                }
            }
            Op::Writeback { pick } => {
                if let Some((_, (owner, index))) = nth(&self.pages, pick) {
                    allowed(self.m.writeback_owned(owner, index))?;
                }
            }
            Op::CmaAlloc {
                area,
                count,
                align,
                zero,
                wait,
            } => {
                let area = area % self.m.cma.len();
                let owner = self.owners[2];
                if let Some(id) = allowed(self.m.cma_alloc(area, count, align, owner, zero))? {
                    self.jobs.push((id, false));
                    if wait {
                        let limit = self.m.now + JOB_LIMIT_NS;
                        let done = self.m.run_while(limit, |m| m.jobs[id as usize].is_done());
                        prop_assert!(done, "cma_alloc #{id} not done after an hour");
                    }
                }
            }
            Op::CmaRelease { pick } => {
                let ready: Vec<usize> = (0..self.jobs.len())
                    .filter(|&i| {
                        let (id, released) = self.jobs[i];
                        let job = &self.m.jobs[id as usize];
                        !released && job.is_done() && job.pfn.is_some()
                    })
                    .collect();
                if let Some((_, i)) = nth(&ready, pick) {
                    let job = self.m.jobs[self.jobs[i].0 as usize].clone();
                    let pfn = job.pfn.expect("ready");
                    self.m
                        .cma_release(job.area, pfn, job.count, job.owner)
                        .map_err(|e| TestCaseError::fail(format!("cma_release: {e}")))?;
                    self.jobs[i].1 = true;
                }
            }
            Op::Contig {
                start_permille,
                len,
                cma,
            } => {
                let n = self.m.nr_pages();
                let start = Pfn((n as u64 * start_permille as u64 / 1000) as u32);
                let end = (start + len).min(self.m.end_pfn());
                let mt = if cma {
                    Migratetype::Cma
                } else {
                    Migratetype::Movable
                };
                let owner = self.owners[2];
                if let Some((res, _)) = allowed(self.m.alloc_contig_range(start, end, mt, owner))? {
                    if res.is_ok() {
                        self.contig.push((start, end - start));
                    }
                }
            }
            Op::FreeContig { pick } => {
                if let Some((i, (start, count))) = nth(&self.contig, pick) {
                    self.m
                        .free_contig_range(start, count, self.owners[2])
                        .map_err(|e| TestCaseError::fail(format!("free_contig_range: {e}")))?;
                    self.contig.swap_remove(i);
                }
            }
            Op::RunFor { us } => {
                let t = self.m.now + us as u64 * 1000;
                self.m.run_until(t);
            }
            Op::Drain => {
                for zi in 0..self.m.zones.len() {
                    self.m.drain_all_pages(zi);
                }
                self.m.take_charge();
            }
            Op::Misuse(what) => self.misuse(what)?,
        }
        Ok(())
    }

    fn misuse(&mut self, what: Misuse) -> Result<(), TestCaseError> {
        let app = self.owners[0];
        let name = format!("{what:?}");
        let m = &mut self.m;
        match what {
            Misuse::DoubleFree => {
                if let Some((_, (owner, index))) = nth(&self.freed, 0) {
                    refused(&name, m.free_owned(owner, index))?;
                }
            }
            Misuse::ReleaseTwice => {
                let id = self.released.first().copied().unwrap_or(u64::MAX);
                refused(&name, m.release_hold(id))?;
            }
            Misuse::FreeHeld => {
                // A page with a hold on it (taken by hand and still listed) cannot be freed.
                for &id in &self.holds {
                    if let Some(h) = m.holds.by_id.get(&id).copied() {
                        let page = m.pages[h.pfn];
                        if page.kind().is_movable_kind() || page.kind() == Kind::Kernel {
                            if let Some(&(owner, index)) = self
                                .pages
                                .iter()
                                .find(|&&(o, i)| m.owned_pfn(o, i).ok().flatten() == Some(h.pfn))
                            {
                                refused(&name, m.free_owned(owner, index))?;
                                break;
                            }
                        }
                    }
                }
            }
            Misuse::CmaTooLarge => {
                let count = m.cma[0].count + 1;
                refused(&name, m.cma_alloc(0, count, 0, app, false))?;
                refused(&name, m.cma_alloc(0, 0, 0, app, false))?;
                refused(&name, m.cma_alloc(7, 1, 0, app, false))?;
            }
            Misuse::CmaBadAlign => refused(&name, m.cma_alloc(0, 1, 11, app, false))?,
            Misuse::CmaReleaseTwice => {
                // Released, and not handed out again since (then releasing it is legitimate).
                let again = |job: &cmadev_mm::cma::CmaJob| {
                    let pfn = job.pfn.expect("released");
                    Pfn::range(pfn, pfn + job.count).any(|p| m.pages[p].kind() == Kind::Device)
                };
                if let Some(&(id, true)) = self
                    .jobs
                    .iter()
                    .find(|j| j.1 && !again(&m.jobs[j.0 as usize]))
                {
                    let job = m.jobs[id as usize].clone();
                    refused(
                        &name,
                        m.cma_release(job.area, job.pfn.expect("released"), job.count, job.owner),
                    )?;
                }
            }
            Misuse::CmaReleaseOutside => {
                let a = &m.cma[0];
                let (base, count) = (a.base_pfn, a.count);
                refused(&name, m.cma_release(0, base - 1, 1, app))?;
                refused(&name, m.cma_release(0, base + count, 1, app))?;
                refused(&name, m.cma_release(0, base, 0, app))?;
            }
            Misuse::OrderTooHigh => {
                refused(&name, m.alloc_owned(app, Gfp::KERNEL, 11, Kind::Kernel))?
            }
            Misuse::KernelPageMovableGfp => refused(
                &name,
                m.alloc_owned(app, Gfp::HIGHUSER_MOVABLE, 0, Kind::Kernel),
            )?,
            Misuse::AnonPageKernelGfp => {
                refused(&name, m.alloc_owned(app, Gfp::KERNEL, 0, Kind::Anon))?;
                refused(&name, m.alloc_owned(app, Gfp::KERNEL, 0, Kind::Device))?;
            }
            Misuse::ContigEmpty => refused(
                &name,
                m.alloc_contig_range(Pfn(5), Pfn(5), Migratetype::Movable, app),
            )?,
            Misuse::ContigBeyondEnd => {
                let n = m.end_pfn();
                refused(
                    &name,
                    m.alloc_contig_range(n - 1, n + 1, Migratetype::Movable, app),
                )?;
            }
            Misuse::FreeContigNotDevice => {
                let n = m.end_pfn();
                refused(&name, m.free_contig_range(n - 10, 20, app))?;
                if let Some(pfn) =
                    Pfn::range(Pfn(0), n).find(|&p| m.pages[p].kind() != Kind::Device)
                {
                    refused(&name, m.free_contig_range(pfn, 1, app))?;
                }
            }
            Misuse::WritebackClean => {
                if let Some(&(owner, index)) = self.pages.iter().find(|&&(o, i)| {
                    matches!(m.owned_pfn(o, i), Ok(Some(p)) if m.pages[p].flags
                        & cmadev_mm::page::pg::DIRTY == 0)
                }) {
                    refused(&name, m.writeback_owned(owner, index))?;
                }
            }
            Misuse::UnknownOwner => {
                refused(&name, m.free_owned(999, 0))?;
                refused(&name, m.access_owned(999, 0, false))?;
                refused(&name, m.free_owned(app, u32::MAX - 5))?;
            }
            Misuse::HoldFreePfn => {
                let n = m.end_pfn();
                if let Some(pfn) = Pfn::range(Pfn(0), n).find(|&p| m.pages[p].kind().is_free()) {
                    refused(&name, m.take_hold(pfn, app, HoldKind::Pin, None))?;
                }
            }
            Misuse::HoldBeyondEnd => {
                let n = m.end_pfn();
                refused(&name, m.take_hold(n, app, HoldKind::Ref, None))?;
            }
        }
        Ok(())
    }
}

/// Run `ops` on a fresh board, checking the invariants after every step.
fn run(b: &BoardChoice, ops: &[Op]) -> Result<World, TestCaseError> {
    let mut w = World::new(b);
    w.m.check_invariants()
        .map_err(|e| TestCaseError::fail(format!("at boot: {e}")))?;
    for (step, op) in ops.iter().enumerate() {
        w.apply(op)?;
        if let Err(e) = w.m.check_invariants() {
            return Err(TestCaseError::fail(format!(
                "after step {step} ({op:?}): {e}"
            )));
        }
    }
    Ok(w)
}

/// Everything a run shows the outside world: trace, vmstat, meminfo, buddyinfo, clock, dmesg.
type Fingerprint = (
    Vec<String>,
    Vec<(String, u64)>,
    String,
    String,
    u64,
    Vec<String>,
);

fn fingerprint(w: &World) -> Fingerprint {
    let m = &w.m;
    (
        m.trace.lines_since(0),
        m.vmstat(),
        m.meminfo_text(),
        m.buddyinfo_text(),
        m.now,
        m.dmesg.lines.clone(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(32),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    /// Any sequence of operations keeps every frame accounted for, under every placement
    /// (the same sequence is run on the board under each).
    #[test]
    fn invariants_hold_after_every_step(
        b in board(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        for placement in PLACEMENTS {
            run(&BoardChoice { placement, ..b.clone() }, &ops)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(16),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    /// The same operations on the same board and seed give byte-identical traces, counters
    /// and views.
    #[test]
    fn same_ops_same_seed_same_trace(
        b in board(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let first = fingerprint(&run(&b, &ops)?);
        let second = fingerprint(&run(&b, &ops)?);
        prop_assert_eq!(first, second);
    }

    /// Deferring the frames' initialisation (`mm_init.rs`) changes nothing simulated: the
    /// same operations on a board booted with and without it give the same traces, counters
    /// and views; once the deferred blocks are written, the same frames and free lists.
    #[test]
    fn deferred_init_changes_nothing_simulated(
        b in board(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let deferred = run(&b, &ops)?;
        let eager = run(&BoardChoice { eager_init: true, ..b }, &ops)?;
        prop_assert_eq!(fingerprint(&deferred), fingerprint(&eager));
        prop_assert_eq!(deferred.m.pagetypeinfo_text(), eager.m.pagetypeinfo_text());
        prop_assert_eq!(deferred.m.zoneinfo_text(), eager.m.zoneinfo_text());
        let mut m = deferred.m;
        m.deferred_init_all();
        prop_assert!(m.pages == eager.m.pages, "the frames differ once all are written");
        for z in &mut m.zones {
            z.deferred = Default::default();
        }
        prop_assert_eq!(format!("{:?}", m.zones), format!("{:?}", eager.m.zones));
    }
}

// ----- regressions: the minimal sequences the properties above found ---------------------------

fn plain(placement: Placement) -> BoardChoice {
    BoardChoice {
        placement,
        two_areas: false,
        order_per_bit: 0,
        cpus: 1,
        swap: false,
        reserved: false,
        longterm_fix: false,
        pin_fix: false,
        first_dirty_fix: false,
        warn_pins: false,
        per_area_lock: false,
        vendor_retry: false,
        seed: 0,
        eager_init: false,
    }
}

/// `alloc_contig_range(0, 1, CMA)` outside every CMA area used to retype pageblock 0 as CMA
/// on undo; now a misuse. MOVABLE over a CMA area fails isolation (-EBUSY), as the kernel's
/// `has_unmovable_pages` does, instead of retyping part of the area MOVABLE.
#[test]
fn contig_range_keeps_pageblock_types() {
    let mut w = run(&plain(Placement::Legacy), &[]).unwrap();
    let app = w.owners[0];
    assert!(matches!(
        w.m.alloc_contig_range(Pfn(0), Pfn(1), Migratetype::Cma, app),
        Err(MmError::Misuse(_))
    ));
    assert!(matches!(
        w.m.alloc_contig_range(Pfn(0), Pfn(1), Migratetype::Isolate, app),
        Err(MmError::Misuse(_))
    ));
    let base = w.m.cma[0].base_pfn;
    let (res, _) =
        w.m.alloc_contig_range(base, base + 16, Migratetype::Movable, app)
            .unwrap();
    assert_eq!(res, Err(cmadev_mm::Errno::Ebusy));
    w.m.check_invariants().unwrap();
    let (res, _) =
        w.m.alloc_contig_range(base, base + 16, Migratetype::Cma, app)
            .unwrap();
    assert_eq!(res, Ok(()));
    w.m.free_contig_range(base, 16, app).unwrap();
    w.m.check_invariants().unwrap();
}

/// An order-10 folio straddling the end of a contiguous range (its first pageblock isolated,
/// its second not) was migrated and freed as one order-10 block onto the ISOLATE list; undoing
/// the isolation then corrupted the free lists (a list length underflow). Freeing now splits a
/// block larger than a pageblock per pageblock (`split_large_buddy`, 6.10).
#[test]
fn large_folio_freed_across_an_isolated_pageblock() {
    let ops = [
        Op::Alloc {
            owner: 0,
            order: 1,
            gfp: 0,
            kind: Kind::File,
        },
        Op::Free { pick: 0 },
        Op::AllocMany {
            owner: 0,
            n: 1,
            file: false,
        },
        Op::Alloc {
            owner: 0,
            order: 10,
            gfp: 0,
            kind: Kind::File,
        },
        Op::Hold {
            pick: 0,
            holder: 0,
            kind: HoldKind::Ref,
            duration_us: None,
        },
        Op::Contig {
            start_permille: 668,
            len: 1664,
            cma: false,
        },
    ];
    run(&plain(Placement::Legacy), &ops).unwrap();
}

/// With `migrate_on_first_dirty`, a write fault on an evicted file page faulted it into CMA,
/// then migrated it out; the target allocation's direct reclaim evicted the very page being
/// migrated, and `set_page_dirty` marked the freed frame dirty (nr_dirty 1, no dirty frame).
/// `migrate_folio` now takes an LRU folio off the LRU while it allocates the target.
#[test]
fn reclaim_for_a_migration_target_spares_the_folio_being_migrated() {
    let b = BoardChoice {
        cpus: 2,
        first_dirty_fix: true,
        ..plain(Placement::Legacy)
    };
    let ops = [
        Op::AllocMany {
            owner: 0,
            n: 13261,
            file: false,
        },
        Op::AllocMany {
            owner: 0,
            n: 4998,
            file: false,
        },
        Op::Alloc {
            owner: 0,
            order: 0,
            gfp: 5,
            kind: Kind::Anon,
        },
        Op::Alloc {
            owner: 0,
            order: 0,
            gfp: 5,
            kind: Kind::Anon,
        },
        Op::Contig {
            start_permille: 750,
            len: 1622,
            cma: true,
        },
        Op::AllocMany {
            owner: 0,
            n: 6776,
            file: true,
        },
        Op::Alloc {
            owner: 0,
            order: 0,
            gfp: 5,
            kind: Kind::Anon,
        },
        Op::AllocMany {
            owner: 1,
            n: 11972,
            file: false,
        },
        Op::Free { pick: 0 },
        Op::AllocMany {
            owner: 0,
            n: 6409,
            file: true,
        },
        Op::Access {
            pick: 887977122837091963,
            write: true,
        },
    ];
    run(&b, &ops).unwrap();
}
