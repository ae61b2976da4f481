//! The contiguous allocations handed out (by `cma_alloc` and `alloc_contig_range`), and who
//! owns each one: so that a stale or foreign handle can never free someone else's memory.
//!
//! The kernel trusts its callers: `cma_release` checks only that the pages lie in the area
//! (`cma_pages_valid`), and `free_contig_range` checks nothing. The model's API is used by
//! scripts and tests, where a handle released twice or a range typed by hand is an easy
//! mistake that would free a device's live buffer and corrupt everything after it. So every
//! allocation is recorded with an id that is never reused and its owner, and a release must
//! name exactly one live allocation of the caller; anything else is a misuse that changes
//! nothing. `check_invariants` (`check_allocations`) checks the frames and the CMA bitmaps
//! against this table.

use std::collections::BTreeMap;

use crate::error::{MmError, MmResult};
use crate::owner::OwnerId;
use crate::pfn::Pfn;
use crate::Machine;

/// Where an allocation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `cma_alloc` job `job` of CMA area `area`.
    Cma { area: usize, job: u32 },
    /// `alloc_contig_range` called directly.
    Contig,
}

/// One live contiguous allocation: `[start, start + count)` for `owner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Never reused, so a handle to a released allocation can never name a newer one.
    pub id: u64,
    pub start: Pfn,
    pub count: u32,
    pub owner: OwnerId,
    pub source: Source,
}

impl Allocation {
    pub fn end(&self) -> Pfn {
        self.start + self.count
    }
}

/// The live allocations, by first frame.
#[derive(Clone, Debug, Default)]
pub struct Allocations {
    live: BTreeMap<Pfn, Allocation>,
    next_id: u64,
}

impl Allocations {
    /// Record `[start, start + count)` for `owner`; returns its id.
    pub(crate) fn insert(&mut self, start: Pfn, count: u32, owner: OwnerId, source: Source) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let alloc = Allocation {
            id,
            start,
            count,
            owner,
            source,
        };
        self.live.insert(start, alloc);
        id
    }

    /// The live allocation holding `pfn`, if any.
    pub fn holding(&self, pfn: Pfn) -> Option<&Allocation> {
        let (_, a) = self.live.range(..=pfn).next_back()?;
        (pfn < a.end()).then_some(a)
    }

    /// The live allocation with id `id`, if any.
    pub fn by_id(&self, id: u64, start: Pfn) -> Option<&Allocation> {
        self.live.get(&start).filter(|a| a.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Allocation> {
        self.live.values()
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn remove(&mut self, start: Pfn) {
        self.live.remove(&start);
    }
}

impl Machine {
    /// The live allocation that is exactly `[start, start + count)` and belongs to `caller`,
    /// or a misuse naming what is there instead (and its owner).
    pub(crate) fn exact_allocation(
        &self,
        what: &str,
        start: Pfn,
        count: u32,
        caller: OwnerId,
    ) -> MmResult<Allocation> {
        let found = self.allocations.live.get(&start).copied();
        let Some(a) = found.filter(|a| a.count == count) else {
            return Err(MmError::Misuse(match self.allocations.holding(start) {
                Some(a) => format!(
                    "{what} of pfn {start:#x} + {count} pages: that is not one live allocation; \
                     pfn {start:#x} is in {}, [{:#x}, {:#x}) of {}: release that one, through \
                     its own handle",
                    self.describe_allocation(a),
                    a.start,
                    a.end(),
                    self.owners.name(a.owner)
                ),
                None => format!(
                    "{what} of pfn {start:#x} + {count} pages: no live allocation starts there \
                     (released already, or never allocated)"
                ),
            }));
        };
        self.check_owner(what, &a, caller)?;
        Ok(a)
    }

    /// `caller` owns `a`, or a misuse saying whose it is.
    pub(crate) fn check_owner(&self, what: &str, a: &Allocation, caller: OwnerId) -> MmResult<()> {
        if a.owner == caller {
            return Ok(());
        }
        Err(MmError::Misuse(format!(
            "{what}: {} belongs to {}, not to {}: only its owner may release it",
            self.describe_allocation(a),
            self.owners.name(a.owner),
            self.owners.name(caller)
        )))
    }

    /// "cma_alloc #12 (3072 pages of area tv)" or "alloc_contig_range #4 (512 pages)".
    pub(crate) fn describe_allocation(&self, a: &Allocation) -> String {
        match a.source {
            Source::Cma { area, job } => format!(
                "cma_alloc #{job} ({} pages of area {})",
                a.count, self.cma[area].name
            ),
            Source::Contig => format!("alloc_contig_range #{} ({} pages)", a.id, a.count),
        }
    }

    /// Forget allocation `a` (its frames are being freed by the caller).
    pub(crate) fn forget_allocation(&mut self, a: &Allocation) {
        self.allocations.remove(a.start);
    }
}
