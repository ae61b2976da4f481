//! `writer`: `write()` of whole pages, cycling through the file in order.
//!
//! Reproduced: pages are dirtied (`folio_mark_dirty`, throttled by `balance_dirty_pages`)
//! and cleaned by the flusher, by reclaim or by the writer's own `fsync`
//! (`file_write_and_wait_range`: write back its dirty pages and wait, charged). Overwriting
//! a whole page needs no read, so a rewritten evicted page is not a refault.

use serde::{Deserialize, Serialize};

use super::spec::Check;
use super::task::{interval_ns, Cx};
use super::Task;
use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::owner::{slot_is_resident, slot_pfn, OwnerId, SLOT_EMPTY};
use crate::page::{pg, Kind};
use crate::Machine;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writer {
    pub name: String,
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub stop_ns: Option<u64>,
    pub file_pages: u32,
    pub rate_pages_per_s: f64,
    /// `fsync` after this many pages written (None: leave it to the flusher).
    #[serde(default)]
    pub fsync_every_pages: Option<u32>,
    #[serde(skip)]
    state: WriterState,
}

/// A writer's progress.
#[derive(Clone, Debug, Default)]
struct WriterState {
    next: u64,
    interval: u64,
    cursor: u32,
    /// Indices written since the last fsync.
    unsynced: Vec<u32>,
}

impl Writer {
    /// `fsync`: write back the pages dirtied since the last one and wait (charged).
    fn fsync(&mut self, cx: &mut Cx<'_>) {
        let m = &mut *cx.m;
        let mut indices = std::mem::take(&mut self.state.unsynced);
        indices.sort_unstable();
        indices.dedup();
        let map = &m.owners.list[cx.owner as usize].map;
        let mut wait_until = m.now;
        let mut dirty = Vec::with_capacity(indices.len());
        for &i in &indices {
            let slot = map[i as usize];
            if slot == SLOT_EMPTY || !slot_is_resident(slot) {
                continue;
            }
            let pfn = slot_pfn(slot);
            let page = &m.pages[pfn];
            if page.test(pg::DIRTY) && !page.test(pg::WRITEBACK) {
                dirty.push(pfn);
            } else if page.test(pg::WRITEBACK) {
                // Already being written (flusher, reclaim): wait for that write.
                let end = m.writeback_end.get(&pfn).copied().unwrap_or(m.now);
                wait_until = wait_until.max(end);
            }
        }
        if !dirty.is_empty() {
            wait_until = wait_until.max(m.writeback_pages(&dirty));
        }
        m.charge += wait_until - m.now;
    }
}

impl Task for Writer {
    const KIND: &'static str = "writer";
    type Op = ();

    fn name(&self) -> &str {
        &self.name
    }

    fn window(&self) -> (u64, Option<u64>) {
        (self.start_ns, self.stop_ns)
    }

    fn validate(&self, check: &Check) -> MmResult<()> {
        check.positive("file_pages", self.file_pages as u64)?;
        check.rate("rate_pages_per_s", self.rate_pages_per_s, false)?;
        if let Some(n) = self.fsync_every_pages {
            check.positive("fsync_every_pages", n as u64)?;
        }
        Ok(())
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, start: u64) {
        m.reserve_slots(owner, self.file_pages);
        self.state = WriterState {
            next: start,
            interval: interval_ns(self.rate_pages_per_s),
            cursor: 0,
            unsynced: Vec::new(),
        };
    }

    #[inline]
    fn next_op(&self, free_at: u64) -> Option<(u64, ())> {
        Some((free_at.max(self.state.next), ()))
    }

    /// A whole-page `write()`: dirty the page in the page cache, then maybe fsync.
    fn run(&mut self, _: (), cx: &mut Cx<'_>) {
        let s = &mut self.state;
        let owner = cx.owner;
        s.next = cx.m.now + s.interval;
        let index = s.cursor;
        s.cursor = (s.cursor + 1) % self.file_pages;
        let slot = cx.m.owners.list[owner as usize].map[index as usize];
        if slot != SLOT_EMPTY && !slot_is_resident(slot) {
            // A whole-page overwrite does not read the old contents: forget the shadow.
            let _ = cx.m.free_owned(owner, index);
        }
        let r =
            cx.m.touch_slot(owner, index, Gfp::HIGHUSER_MOVABLE, Kind::File, true);
        if cx.record(r).is_none() {
            return;
        }
        cx.stats.pages_written += 1;
        self.state.unsynced.push(index);
        if self
            .fsync_every_pages
            .is_some_and(|n| self.state.unsynced.len() >= n as usize)
        {
            self.fsync(cx);
        }
    }
}
