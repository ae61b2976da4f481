//! Pageblock isolation (`mm/page_isolation.c`): `start_isolate_page_range`,
//! `undo_isolate_page_range`, `test_pages_isolated`.
//!
//! Reproduced: a pageblock already isolated (by a concurrent contiguous allocation) fails
//! at once with -EBUSY; so does one holding an unmovable page (`has_unmovable_pages`),
//! except that CMA pageblocks are not checked when the caller allocates for CMA (the kernel
//! skips the check for them, so pinned pages there are only found later); free pages move
//! to the ISOLATE list and stop counting as free; undoing returns them to the original
//! type, at the tails of its free lists, and merges a pageblock-sized free block with its
//! free buddy across the pageblock boundary (`unset_migratetype_isolate`, 6.1).

use crate::page::Kind;
use crate::page_alloc::Fpi;
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;
use crate::Machine;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolateError {
    /// The pageblock starting here is already isolated.
    AlreadyIsolated(Pfn),
    /// This page cannot be moved.
    Unmovable(Pfn),
}

impl Machine {
    /// `has_unmovable_pages`: the first page in the pageblock of `pfn` that migration could
    /// never move.
    fn has_unmovable_pages(&self, pfn: Pfn, mt: Migratetype) -> Option<Pfn> {
        let start = self.pageblocks.start(pfn);
        if self.pageblocks.get(start) == Migratetype::Cma {
            // Only a CMA allocation may isolate a CMA pageblock; for anyone else the block
            // counts as unmovable (the kernel's `is_migrate_cma_page` branch), or its undo
            // would retype part of a CMA area.
            return (mt != Migratetype::Cma).then_some(start);
        }
        let end = start + self.pageblocks.nr_pages();
        let mut p = start;
        while p < end {
            let page = &self.pages[p];
            match page.kind() {
                Kind::Buddy => p += 1 << page.order(),
                Kind::Free
                | Kind::Pcp
                | Kind::Anon
                | Kind::File
                | Kind::Shmem
                | Kind::Tail
                | Kind::Cache => p += 1,
                Kind::Kernel | Kind::Device | Kind::Reserved => return Some(p),
            }
        }
        None
    }

    /// `set_migratetype_isolate` for one pageblock.
    fn set_migratetype_isolate(&mut self, pfn: Pfn, mt: Migratetype) -> Result<(), IsolateError> {
        let start = self.pageblocks.start(pfn);
        if self.pageblocks.get(start) == Migratetype::Isolate {
            return Err(IsolateError::AlreadyIsolated(start));
        }
        if let Some(bad) = self.has_unmovable_pages(start, mt) {
            return Err(IsolateError::Unmovable(bad));
        }
        self.move_freepages_block(start, Migratetype::Isolate);
        Ok(())
    }

    /// `start_isolate_page_range`: isolate every pageblock touching `[start, end)`; on
    /// failure, undo the ones already isolated. Charges the isolation cost.
    pub(crate) fn start_isolate_page_range(
        &mut self,
        start: Pfn,
        end: Pfn,
        mt: Migratetype,
    ) -> Result<(), IsolateError> {
        let (first, last) = (self.pageblocks.start(start), self.pageblocks.align_up(end));
        self.deferred_init_upto(last); // the isolation reads the frames by pfn (`mm_init.rs`)
        let step = self.pageblocks.nr_pages();
        let mut pb = first;
        while pb < last {
            self.charge += self.cfg.cost.isolate_pageblock_ns;
            if let Err(e) = self.set_migratetype_isolate(pb, mt) {
                self.undo_isolate_page_range(first, pb, mt);
                return Err(e);
            }
            pb += step;
        }
        Ok(())
    }

    /// `undo_isolate_page_range`: give isolated pageblocks of `[start, end)` back their
    /// type (`unset_migratetype_isolate`).
    /// Charges each pageblock as its isolation (the zone lock, the walk of its frames).
    pub(crate) fn undo_isolate_page_range(&mut self, start: Pfn, end: Pfn, mt: Migratetype) {
        let (first, last) = (self.pageblocks.start(start), self.pageblocks.align_up(end));
        let step = self.pageblocks.nr_pages();
        let mut pb = first;
        while pb < last {
            if self.pageblocks.get(pb) == Migratetype::Isolate {
                self.charge += self.cfg.cost.isolate_pageblock_ns;
                self.unset_migratetype_isolate(pb, mt);
            }
            pb += step;
        }
    }

    /// `unset_migratetype_isolate` (6.1): free blocks inside the pageblock are merged as far
    /// as the pageblock allows already (frees into an isolated pageblock merge there); what
    /// isolation prevented is a merge across pageblocks. So when the pageblock starts with
    /// a free block of at least pageblock order whose buddy is free outside isolation, the
    /// block is taken off (`__isolate_free_page`) and freed again, merging, to the tail of
    /// its list (`__putback_isolated_page`, `FPI_TO_TAIL`); otherwise the free blocks move
    /// to the tails of the type's lists (`move_freepages_block`). Either way they are the
    /// last to be allocated again ("we didn't actually touch any of the isolated pages").
    fn unset_migratetype_isolate(&mut self, pb: Pfn, mt: Migratetype) {
        let page = self.pages[pb];
        let (pb_order, max) = (self.pageblocks.order, crate::config::MAX_PAGE_ORDER);
        if page.kind() == Kind::Buddy && page.order() >= pb_order && page.order() < max {
            let order = page.order();
            let buddy = pb.buddy(order);
            let zi = self.zone_idx(pb);
            let zone = &self.zones[zi];
            let in_zone = buddy >= zone.start_pfn && buddy + (1 << order) <= zone.end_pfn;
            if in_zone
                && self.pages[buddy].kind() == Kind::Buddy
                && self.pages[buddy].order() == order
                && self.pageblocks.get(buddy) != Migratetype::Isolate
            {
                self.take_free_block(pb);
                for p in Pfn::range_step(pb, pb + (1 << order), self.pageblocks.nr_pages()) {
                    self.pageblocks.set(p, mt);
                }
                self.free_one_page_fpi(pb, order, Fpi::ToTail);
                return;
            }
        }
        self.move_freepages_block(pb, mt);
    }

    /// `__test_page_isolated_in_pageblock` over `[start, end)`: every frame must be free
    /// in an isolated pageblock. Returns the first busy pfn otherwise. Charges the walk up
    /// to there (a free block counts as one frame examined).
    pub(crate) fn test_pages_isolated(&mut self, start: Pfn, end: Pfn) -> Result<(), Pfn> {
        let (mut p, mut examined) = (start, 0u64);
        let verdict = loop {
            if p >= end {
                break Ok(());
            }
            examined += 1;
            if self.pageblocks.get(p) != Migratetype::Isolate {
                break Err(p);
            }
            let page = &self.pages[p];
            match page.kind() {
                Kind::Buddy => p += 1 << page.order(),
                Kind::Free => p += 1,
                _ => break Err(p),
            }
        };
        self.charge += examined * self.cfg.cost.pfn_walk_ns;
        verdict
    }

    /// The head of the free buddy block containing `pfn`, if it is free.
    pub(crate) fn buddy_head_of(&self, pfn: Pfn) -> Option<Pfn> {
        for order in 0..=crate::config::MAX_PAGE_ORDER {
            let head = pfn.align_down(order);
            let page = &self.pages[head];
            if page.kind() == Kind::Buddy && page.order() >= order {
                return Some(head);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{CmaAreaConfig, MachineConfig};
    use crate::page::NIL;
    use crate::pageblock::Migratetype;
    use crate::Machine;

    fn machine() -> Machine {
        let mut cfg = MachineConfig::with_ram(256 << 20);
        cfg.cma_areas = vec![CmaAreaConfig {
            name: "cma".into(),
            size: 64 << 20,
            order_per_bit: 0,
        }];
        Machine::new(cfg).unwrap()
    }

    /// `unset_migratetype_isolate` (6.1): undoing the isolation of one pageblock of a free
    /// MAX_ORDER block merges it again with its buddy, at the tail of the list
    /// (`__putback_isolated_page`): the next allocation takes another block first.
    #[test]
    fn undoing_an_isolation_merges_again_at_the_tail() {
        let mut m = machine();
        let zi = 0;
        let cma = Migratetype::Cma.index();
        let top = m.zones[zi].free_area[10].lists[cma].head;
        assert_eq!(top, m.end_pfn() - 1024, "the area is used from its top");
        let nr_free = m.zones[zi].free_area[10].nr_free;
        m.start_isolate_page_range(top, top + 512, Migratetype::Cma)
            .unwrap();
        assert_eq!(
            m.zones[zi].free_area[10].nr_free,
            nr_free - 1,
            "split for isolation"
        );
        m.undo_isolate_page_range(top, top + 512, Migratetype::Cma);
        let list = m.zones[zi].free_area[10].lists[cma];
        assert_eq!(m.zones[zi].free_area[10].nr_free, nr_free, "merged again");
        assert_eq!(list.tail, top, "put back at the tail");
        assert!(list.head != top && list.head != NIL);
        m.check_invariants().unwrap();
    }
}
