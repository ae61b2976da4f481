//! Pageblock isolation (`mm/page_isolation.c`): `start_isolate_page_range`,
//! `undo_isolate_page_range`, `test_pages_isolated`.
//!
//! Reproduced: a pageblock already isolated (by a concurrent contiguous allocation) fails
//! at once with -EBUSY; so does one holding an unmovable page (`has_unmovable_pages`),
//! except that CMA pageblocks are not checked when the caller allocates for CMA (the kernel
//! skips the check for them, so pinned pages there are only found later); free pages move
//! to the ISOLATE list and stop counting as free; undoing returns them to the original
//! type and lets them merge again.

use crate::page::Kind;
use crate::page_alloc::next_buddy_head;
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
                Kind::Free | Kind::Pcp | Kind::Anon | Kind::File | Kind::Tail | Kind::Cache => {
                    p += 1
                }
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
    /// type, re-freeing their free blocks so they merge with their buddies
    /// (`unset_migratetype_isolate`).
    pub(crate) fn undo_isolate_page_range(&mut self, start: Pfn, end: Pfn, mt: Migratetype) {
        let (first, last) = (self.pageblocks.start(start), self.pageblocks.align_up(end));
        let step = self.pageblocks.nr_pages();
        let mut pb = first;
        while pb < last {
            if self.pageblocks.get(pb) == Migratetype::Isolate {
                self.move_freepages_block(pb, mt);
                self.remerge_pageblock(pb);
            }
            pb += step;
        }
    }

    /// Take every free block of a pageblock off its list and free it again, so it merges.
    fn remerge_pageblock(&mut self, pb: Pfn) {
        if self.pageblocks.buddies(pb) == 0 {
            return;
        }
        let end = pb + self.pageblocks.nr_pages();
        let mut blocks = Vec::new();
        let mut p = pb;
        loop {
            p = next_buddy_head(&self.pages, p, end);
            if p >= end {
                break;
            }
            let order = self.pages[p].order();
            blocks.push((p, order));
            p += 1 << order;
        }
        for (p, order) in blocks {
            // The block may already have merged into a neighbour freed just before.
            let page = self.pages[p];
            if page.kind() == Kind::Buddy && page.order() == order {
                self.take_free_block(p);
                self.free_one_page(p, order);
            }
        }
    }

    /// `__test_page_isolated_in_pageblock` over `[start, end)`: every frame must be free
    /// in an isolated pageblock. Returns the first busy pfn otherwise.
    pub(crate) fn test_pages_isolated(&self, start: Pfn, end: Pfn) -> Result<(), Pfn> {
        let mut p = start;
        while p < end {
            if self.pageblocks.get(p) != Migratetype::Isolate {
                return Err(p);
            }
            let page = &self.pages[p];
            match page.kind() {
                Kind::Buddy => p += 1 << page.order(),
                Kind::Free => p += 1,
                _ => return Err(p),
            }
        }
        Ok(())
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
