//! `check_invariants`: every frame accounted for exactly once, and every counter equal to
//! what it counts. Tests call it after every step; it is O(frames). One function per
//! structure (free lists, per-CPU lists, frames, pageblocks, CMA areas, gcma, holds), each
//! named after what it checks; `check_invariants` runs them all.

use crate::allocation::Source;
use crate::config::MAX_PAGE_ORDER;
use crate::error::{MmError, MmResult};
use crate::owner::{cached_slot, pfn_slot, slot_cached_pfn, SLOT_SWAPPED};
use crate::page::{pg, Kind, Page, NIL};
use crate::pageblock::{Migratetype, MIGRATE_PCPTYPES};
use crate::pfn::Pfn;
use crate::Machine;

/// Where a frame was found while walking the lists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    Not,
    Buddy,
    Pcp,
}

/// A broken invariant: a bug in the engine.
fn bug<T>(msg: String) -> MmResult<T> {
    Err(MmError::Bug(msg))
}

impl Machine {
    /// Check every structure against the others, one function per structure, in this order:
    /// each zone's buddy free lists and free counters, then its per-CPU lists (both mark the
    /// frames they hold in `seen`); the frames (kind, owner, flags, LRU and dirty
    /// counters); the pageblocks' buddy counts; the CMA areas' pageblock types; the gcma backend; the hold table. The first
    /// broken invariant is returned as `MmError::Bug`. A check for another structure goes
    /// here as a function of its own.
    pub fn check_invariants(&self) -> MmResult<()> {
        let mut seen = vec![Seen::Not; self.pages.len()];
        for zi in 0..self.zones.len() {
            self.check_free_lists(zi, &mut seen)?;
            self.check_pcp_lists(zi, &mut seen)?;
        }
        self.check_frames(&seen)?;
        self.check_pageblock_buddies()?;
        self.check_cma_areas()?;
        self.check_gcma()?;
        self.check_holds()?;
        self.check_allocations()?;
        self.check_mlock()?;
        self.check_node_stat()?;
        Ok(())
    }

    /// Zone `zi`'s buddy free lists: well linked, each block a buddy head of its list's
    /// order, aligned, inside the zone, on the list of its pageblocks' type, its other frames
    /// free and in no other block; list lengths, `nr_free`, `NR_FREE_PAGES` and
    /// `NR_FREE_CMA_PAGES` equal to what the lists hold. Marks the blocks' frames `Buddy`.
    fn check_free_lists(&self, zi: usize, seen: &mut [Seen]) -> MmResult<()> {
        let z = &self.zones[zi];
        let pb_order = self.pageblocks.order;
        let (mut free, mut free_cma) = (0u64, 0u64);
        for order in 0..=MAX_PAGE_ORDER {
            let area = &z.free_area[order as usize];
            let mut count = 0;
            for mt in Migratetype::ALL {
                let list = &area.lists[mt.index()];
                let mut len = 0;
                let mut prev = NIL;
                for head in list.iter(&self.pages) {
                    len += 1;
                    let page = &self.pages[head];
                    if page.prev != prev {
                        return bug(format!("free list broken at pfn {head:#x}"));
                    }
                    prev = head;
                    if page.kind() != Kind::Buddy || page.order() != order {
                        return bug(format!(
                            "pfn {head:#x} on order-{order} list is not a buddy of that order"
                        ));
                    }
                    if !head.is_aligned(order)
                        || !z.contains(head)
                        || !z.contains(head + (1 << order) - 1)
                    {
                        return bug(format!(
                            "buddy {head:#x} order {order} misaligned or outside zone"
                        ));
                    }
                    for pb in Pfn::range_step(head, head + (1 << order), 1 << pb_order.min(order)) {
                        if self.pageblocks.get(pb) != mt {
                            return bug(format!(
                                "buddy {head:#x} on the {} list covers a {} pageblock",
                                mt.name(),
                                self.pageblocks.get(pb).name()
                            ));
                        }
                    }
                    for p in Pfn::range(head, head + (1 << order)) {
                        if seen[p.idx()] != Seen::Not {
                            return bug(format!("pfn {p:#x} is in two free blocks"));
                        }
                        seen[p.idx()] = Seen::Buddy;
                        if p != head && self.pages[p].kind() != Kind::Free {
                            return bug(format!(
                                "pfn {p:#x} inside free block {head:#x} is not free"
                            ));
                        }
                    }
                    if mt != Migratetype::Isolate {
                        free += 1 << order;
                    }
                    if mt == Migratetype::Cma {
                        free_cma += 1 << order;
                    }
                }
                if len != list.len {
                    return bug(format!("list length {} != counted {len}", list.len));
                }
                count += len as u64;
                if z.deferred.follow(order, mt) {
                    let pages = self.check_deferred_blocks(zi, seen)?;
                    count += z.deferred.len() as u64;
                    free += pages;
                }
            }
            if count != area.nr_free {
                return bug(format!(
                    "zone {} order {order}: nr_free {} != {count}",
                    z.id.name(),
                    area.nr_free
                ));
            }
        }
        if free != z.nr_free_pages || free_cma != z.nr_free_cma {
            return bug(format!(
                "zone {}: NR_FREE_PAGES {} (lists {free}), NR_FREE_CMA_PAGES {} (lists {free_cma})",
                z.id.name(),
                z.nr_free_pages,
                z.nr_free_cma
            ));
        }
        Ok(())
    }

    /// Zone `zi`'s deferred blocks (`mm_init.rs`): whole aligned top-order blocks inside the
    /// zone, in MOVABLE pageblocks, every frame still zero bits. Marks them `Buddy`; returns
    /// their pages.
    fn check_deferred_blocks(&self, zi: usize, seen: &mut [Seen]) -> MmResult<u64> {
        let z = &self.zones[zi];
        let d = z.deferred;
        if !d.next.is_aligned(MAX_PAGE_ORDER)
            || !d.end.is_aligned(MAX_PAGE_ORDER)
            || !z.contains(d.next)
            || d.end > z.end_pfn
        {
            return bug(format!(
                "zone {}: deferred blocks [{:#x}, {:#x}) misaligned or outside the zone",
                z.id.name(),
                d.next,
                d.end
            ));
        }
        let step = self.pageblocks.nr_pages();
        if let Some(pb) = Pfn::range_step(d.next, d.end, step)
            .find(|&pb| self.pageblocks.get(pb) != Migratetype::Movable)
        {
            return bug(format!("deferred pageblock {pb:#x} is not Movable"));
        }
        for p in Pfn::range(d.next, d.end) {
            if seen[p.idx()] != Seen::Not || self.pages[p] != Page::FREE {
                return bug(format!("deferred pfn {p:#x} was written or is on a list"));
            }
            seen[p.idx()] = Seen::Buddy;
        }
        Ok((d.end - d.next) as u64)
    }

    /// Zone `zi`'s per-CPU lists: every frame on them is `Pcp`, inside the zone and on no
    /// other list; each CPU's `count` is what its lists hold. Marks the frames `Pcp`.
    fn check_pcp_lists(&self, zi: usize, seen: &mut [Seen]) -> MmResult<()> {
        let z = &self.zones[zi];
        for cpu in 0..self.cfg.cpus as usize {
            let pcp = &self.pcp[zi * self.cfg.cpus as usize + cpu];
            let mut count = 0;
            for mt in 0..MIGRATE_PCPTYPES {
                for pfn in pcp.lists[mt].iter(&self.pages) {
                    count += 1;
                    if seen[pfn.idx()] != Seen::Not || self.pages[pfn].kind() != Kind::Pcp {
                        return bug(format!("pcp page {pfn:#x} is also elsewhere or not Pcp"));
                    }
                    if !z.contains(pfn) {
                        return bug(format!("pcp page {pfn:#x} outside its zone"));
                    }
                    seen[pfn.idx()] = Seen::Pcp;
                }
            }
            if count != pcp.count {
                return bug(format!("pcp count {} != {count}", pcp.count));
            }
        }
        Ok(())
    }

    /// Every frame, after the lists have marked the free ones in `seen`: a free frame is on
    /// exactly the list its kind says and an in-use one on none; a tail points at its head;
    /// only user pages are on the LRU, never both on it and isolated; `PG_extra` agrees with
    /// the hold table; a user page on the LRU is mapped by its owner; the LRU lengths,
    /// `nr_dirty` and `nr_writeback` equal the frames' flags.
    fn check_frames(&self, seen: &[Seen]) -> MmResult<()> {
        let mut on_lru = 0u64;
        let (mut dirty, mut writeback) = (0u64, 0u64);
        for pfn in Pfn::range(Pfn(0), self.end_pfn()) {
            let page = &self.pages[pfn];
            let kind = page.kind();
            match (kind, seen[pfn.idx()]) {
                (Kind::Free | Kind::Buddy, Seen::Buddy) | (Kind::Pcp, Seen::Pcp) => continue,
                (Kind::Free | Kind::Buddy | Kind::Pcp, _) => {
                    return bug(format!(
                        "free pfn {pfn:#x} ({}) is on no free list",
                        kind.name()
                    ))
                }
                (_, Seen::Not) => {}
                _ => return bug(format!("in-use pfn {pfn:#x} is on a free list")),
            }
            if kind == Kind::Tail {
                let head = &self.pages[page.head()];
                if page.head() >= pfn
                    || pfn - page.head() >= 1 << head.order()
                    || head.kind() == Kind::Tail
                {
                    return bug(format!(
                        "tail {pfn:#x} points at bad head {:#x}",
                        page.index
                    ));
                }
                continue;
            }
            if page.test(pg::LRU) {
                if !kind.is_movable_kind() {
                    return bug(format!("non-user page {pfn:#x} on the LRU"));
                }
                on_lru += 1;
            }
            if page.test(pg::LRU) && page.test(pg::ISOLATED) {
                return bug(format!("pfn {pfn:#x} both on the LRU and isolated"));
            }
            dirty += page.test(pg::DIRTY) as u64;
            writeback += page.test(pg::WRITEBACK) as u64;
            if page.test(pg::EXTRA) != self.holds.by_pfn.contains_key(&pfn) {
                return bug(format!(
                    "pfn {pfn:#x}: PG_extra disagrees with the hold table"
                ));
            }
            if kind.is_movable_kind() && page.test(pg::LRU) {
                let owner = &self.owners.list[page.owner as usize];
                if owner.map.get(page.index as usize) != Some(&pfn_slot(pfn)) {
                    return bug(format!(
                        "pfn {pfn:#x} is not mapped by its owner {}",
                        owner.name
                    ));
                }
            }
        }
        let lru_total: u64 = self.lru_sizes().iter().sum::<u64>() + self.lru.nr_unevictable;
        if lru_total != on_lru {
            return bug(format!(
                "LRU lists hold {lru_total} pages, {on_lru} frames have PG_lru"
            ));
        }
        if dirty != self.writeback.nr_dirty || writeback != self.writeback.nr_writeback {
            return bug(format!(
                "nr_dirty {} (frames {dirty}), nr_writeback {} (frames {writeback})",
                self.writeback.nr_dirty, self.writeback.nr_writeback
            ));
        }
        Ok(())
    }

    /// The CMA areas' pageblocks: every pageblock of an area is CMA (or isolated by a
    /// contiguous allocation in progress), and no CMA pageblock lies outside the areas.
    fn check_cma_areas(&self) -> MmResult<()> {
        let pb_order = self.pageblocks.order;
        for area in &self.cma {
            for pfn in Pfn::range_step(area.base_pfn, area.end_pfn(), 1 << pb_order) {
                let mt = self.pageblocks.get(pfn);
                if mt != Migratetype::Cma && mt != Migratetype::Isolate {
                    return bug(format!(
                        "CMA area {} pageblock {pfn:#x} is {}",
                        area.name,
                        mt.name()
                    ));
                }
            }
        }
        for pb in Pfn::range_step(Pfn(0), self.end_pfn(), 1 << pb_order) {
            if self.pageblocks.get(pb) == Migratetype::Cma && !self.in_cma_area(pb) {
                return bug(format!("pageblock {pb:#x} is CMA outside every CMA area"));
            }
        }
        Ok(())
    }

    /// Whether `pfn` lies in one of the CMA areas.
    fn in_cma_area(&self, pfn: Pfn) -> bool {
        self.cma.iter().any(|a| a.contains(pfn))
    }

    /// The contiguous allocations (`allocation.rs`): they do not overlap; every frame of one
    /// is a device frame of its owner, and every device frame is in one; a `cma_alloc` one
    /// is its job's; each CMA bitmap has exactly the bits of its live allocations and of the
    /// jobs holding a claim. (A stale or foreign release would break one of these.)
    fn check_allocations(&self) -> MmResult<()> {
        let mut prev_end = Pfn(0);
        for a in self.allocations.iter() {
            let what = self.describe_allocation(a);
            if a.start < prev_end {
                return bug(format!(
                    "{what} at {:#x} overlaps the one before it",
                    a.start
                ));
            }
            prev_end = a.end();
            if let Some(p) = Pfn::range(a.start, a.end()).find(|&p| {
                let page = &self.pages[p];
                page.kind() != Kind::Device || page.owner != a.owner
            }) {
                let page = &self.pages[p];
                return bug(format!(
                    "pfn {p:#x} of live {what} of {} is a {} frame of {}",
                    self.owners.name(a.owner),
                    page.kind().name(),
                    self.owners.name(page.owner)
                ));
            }
            if let Source::Cma { job, .. } = a.source {
                let j = &self.jobs[job as usize];
                if j.allocation != Some(a.id) || j.pfn != Some(a.start) {
                    return bug(format!("{what} is not what its job allocated"));
                }
            }
        }
        if let Some(p) = Pfn::range(Pfn(0), self.end_pfn()).find(|&p| {
            self.pages[p].kind() == Kind::Device && self.allocations.holding(p).is_none()
        }) {
            return bug(format!("device frame {p:#x} belongs to no live allocation"));
        }
        for (ai, area) in self.cma.iter().enumerate() {
            let mut expected = vec![false; area.bitmap_maxno()];
            let mut claim = |(first, nr): (usize, usize)| expected[first..first + nr].fill(true);
            for a in self.allocations.iter() {
                if matches!(a.source, Source::Cma { area, .. } if area == ai) {
                    claim(area.bits_of(a.start, a.count));
                }
            }
            for job in self.jobs.iter().filter(|j| j.area == ai) {
                if let Some(bits) = area.job_claim(job) {
                    claim(bits);
                }
            }
            if let Some(i) = (0..expected.len()).find(|&i| expected[i] != area.bit(i)) {
                return bug(format!(
                    "CMA area {} bitmap bit {i} is {} but its allocations and claims say {}",
                    area.name,
                    area.bit(i),
                    expected[i]
                ));
            }
        }
        Ok(())
    }

    /// Each pageblock's count of free buddy heads equals the `Buddy` frames in it.
    fn check_pageblock_buddies(&self) -> MmResult<()> {
        let nr = self.pageblocks.nr_pages();
        for pb in Pfn::range_step(Pfn(0), self.end_pfn(), nr) {
            let end = (pb + nr).min(self.end_pfn());
            let heads = Pfn::range(pb, end)
                .filter(|&p| self.pages[p].kind() == Kind::Buddy)
                .count();
            if heads != self.pageblocks.buddies(pb) as usize {
                return bug(format!(
                    "pageblock {pb:#x}: {heads} buddy heads, counted {}",
                    self.pageblocks.buddies(pb)
                ));
            }
        }
        Ok(())
    }

    /// The hold table: every hold is on an in-use head page.
    fn check_holds(&self) -> MmResult<()> {
        for id in self.holds.by_id.keys() {
            let h = &self.holds.by_id[id];
            let kind = self.pages[h.pfn].kind();
            if kind.is_free() || kind == Kind::Tail {
                return bug(format!(
                    "hold {id} on pfn {:#x}, which is {}",
                    h.pfn,
                    kind.name()
                ));
            }
        }
        Ok(())
    }

    /// gcma cache pages: only inside the CMA areas of a gcma machine, order 0 with no
    /// page-cache state, each the one copy its owner's slot points at, all on the backend's
    /// list; every cached slot points at such a page; swap slots in use are the swapped-out
    /// slots plus the frontswap copies (write-through: each shadows a swap slot).
    fn check_gcma(&self) -> MmResult<()> {
        let mut cache_frames = 0u64;
        for pfn in Pfn::range(Pfn(0), self.end_pfn()) {
            let page = &self.pages[pfn];
            if page.kind() != Kind::Cache {
                continue;
            }
            cache_frames += 1;
            if !self.gcma_enabled() || !self.in_cma_area(pfn) {
                return bug(format!(
                    "cache page {pfn:#x} outside a gcma area (placement {:?})",
                    self.cfg.policy.placement
                ));
            }
            let state = pg::LRU | pg::DIRTY | pg::WRITEBACK | pg::EXTRA | pg::ISOLATED;
            if page.order() != 0 || page.flags & state != 0 {
                return bug(format!(
                    "cache page {pfn:#x} has order {} or flags {:?}",
                    page.order(),
                    page.flag_names()
                ));
            }
            let owner = &self.owners.list[page.owner as usize];
            if owner.map.get(page.index as usize) != Some(&cached_slot(pfn)) {
                return bug(format!(
                    "cache page {pfn:#x} is not in {}'s slot {}",
                    owner.name, page.index
                ));
            }
        }
        let mut on_list = 0u64;
        let mut prev = NIL;
        for pfn in self.gcma.lru.iter(&self.pages) {
            on_list += 1;
            if self.pages[pfn].kind() != Kind::Cache || self.pages[pfn].prev != prev {
                return bug(format!("gcma list broken at pfn {pfn:#x}"));
            }
            prev = pfn;
        }
        if on_list != cache_frames || on_list != self.gcma.lru.len as u64 {
            return bug(format!(
                "{cache_frames} cache frames, {on_list} on the gcma list (length {})",
                self.gcma.lru.len
            ));
        }
        if let Some(p) = self
            .gcma
            .frontswap
            .iter()
            .find(|&&p| self.pages[p].kind() != Kind::Cache)
        {
            return bug(format!("frontswap copy {p:#x} is not a cache page"));
        }
        let mut swapped = 0u64;
        for owner in &self.owners.list {
            for (index, &slot) in owner.map.iter().enumerate() {
                if slot == SLOT_SWAPPED {
                    swapped += 1;
                }
                if let Some(c) = slot_cached_pfn(slot) {
                    let page = self.pages.get(c.idx());
                    if page.map(|p| p.kind()) != Some(Kind::Cache)
                        || page.map(|p| p.index) != Some(index as u32)
                    {
                        return bug(format!(
                            "{}'s slot {index} points at cache page {c:#x}, which is not its copy",
                            owner.name
                        ));
                    }
                }
            }
        }
        let frontswap = self.gcma.frontswap.len() as u64;
        // A swap-backed page under writeback is being written to its swap slot.
        let writing = self
            .pages
            .iter()
            .filter(|p| p.kind().is_swap_backed() && p.test(pg::WRITEBACK))
            .count() as u64;
        if self.writeback.swap_used != swapped + frontswap + writing {
            return bug(format!(
                "swap_used {} != {swapped} swapped-out slots + {frontswap} frontswap copies + \
                 {writing} swap writes in flight",
                self.writeback.swap_used
            ));
        }
        Ok(())
    }
}
