//! Readahead (`mm/readahead.c`, and `filemap_get_pages` in `mm/filemap.c`), as Linux 6.1
//! runs it for a file read with `read()` on a filesystem without large folios (ext4 in 6.1).
//!
//! Reproduced (6.1):
//! - a read that misses in the page cache starts synchronous readahead
//!   (`page_cache_sync_ra` -> `ondemand_readahead`): at the start of the file, or right after
//!   the previous read (`index - prev_index <= 1`), an initial window of
//!   `get_init_ra_size(1, ra_pages)` pages (4 for a 4 KiB read and the default 128 KiB
//!   `ra_pages`), of which `async_size` (all but the page asked for) lie ahead; otherwise
//!   (a random read with no cached history before it: `try_context_readahead`) only the page
//!   itself;
//! - the window's pages not in the page cache are allocated (`__GFP_NORETRY`: readahead
//!   gives up rather than reclaim hard) and read in one request per run of missing pages
//!   (`page_cache_ra_unbounded` submits the batch when it meets a cached page), and
//!   PG_readahead marks the page `async_size` pages before the window's end;
//! - the reader waits for the request holding its page; a later read that finds its page
//!   still being read waits for that request (`filemap_update_page`);
//! - reading the marked page starts asynchronous readahead (`page_cache_async_ra`): the
//!   window moves on by its size and grows (`get_next_ra_size`: x4 while under
//!   `ra_pages / 16`, x2 up to `ra_pages / 2`, then `ra_pages`), marked at its first page, so
//!   one window is always being read while the reader consumes the one before: a sequential
//!   reader issues requests of up to `ra_pages` and reaches the storage's sequential
//!   bandwidth instead of its per-request latency;
//! - a page brought back by readahead after reclaim dropped it is a refault
//!   (`workingset_refault_file`), without a major fault (`read()` does not fault).
//!
//! Not reproduced: large folios (`page_cache_ra_order`, not used by ext4 in 6.1), the
//! request size cap of the device (`max_sectors_kb`), `bdi->io_pages` for reads larger than
//! the window, pages being read being locked (reclaim or migration may take a page whose
//! read has not completed; the reader then reads it again), mmap readahead
//! (`do_sync_mmap_readahead`), swap readahead. Random readers read with
//! `POSIX_FADV_RANDOM` semantics (as the guest does): one page per miss, no readahead.

use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::memory::Access;
use crate::owner::{pfn_slot, slot_cached_pfn, slot_is_resident, slot_pfn, OwnerId, SLOT_EVICTED};
use crate::page::Kind;
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::Machine;

pub use crate::config::VM_READAHEAD_KB;

/// `struct file_ra_state`, plus the reads in flight (the pages' PG_locked).
#[derive(Clone, Debug, Default)]
pub struct FileRaState {
    /// Where the current window starts.
    pub start: u32,
    /// Pages in the current window.
    pub size: u32,
    /// The window's pages ahead of the marker.
    pub async_size: u32,
    /// `ra_pages`: the largest window.
    pub ra_pages: u32,
    /// The file's first slot in its owner's mapping: page `index` of the file is slot
    /// `base + index` (a reader's one file starts at 0; a build's source files follow each
    /// other in its mapping).
    base: u32,
    /// `prev_pos >> PAGE_SHIFT`: the page after the last one read (`None`: nothing read).
    prev_index: Option<u32>,
    /// The page carrying PG_readahead, if any.
    marker: Option<u32>,
    /// Read requests in flight: `[start, end)` of the file, done at the time.
    inflight: Vec<(u32, u32, u64)>,
}

/// What `filemap_read` of one page did.
#[derive(Clone, Copy, Debug)]
pub struct RaRead {
    pub pfn: Pfn,
    /// What the read found for its own page.
    pub access: Access,
    /// Other pages readahead added to the page cache: first reads and refaults.
    pub populated: u32,
    pub refaulted: u32,
}

/// `get_init_ra_size`.
pub fn get_init_ra_size(size: u32, max: u32) -> u32 {
    let newsize = size.next_power_of_two();
    if newsize <= max / 32 {
        newsize * 4
    } else if newsize <= max / 4 {
        newsize * 2
    } else {
        max
    }
}

/// `get_next_ra_size`.
pub fn get_next_ra_size(cur: u32, max: u32) -> u32 {
    if cur < max / 16 {
        4 * cur
    } else if cur <= max / 2 {
        2 * cur
    } else {
        max
    }
}

impl FileRaState {
    /// `file_ra_state_init` with the board's `read_ahead_kb`, for a file at the start of its
    /// owner's mapping.
    pub fn new(read_ahead_kb: u32) -> Self {
        Self::for_file_at(read_ahead_kb, 0)
    }

    /// `file_ra_state_init` for a file opened afresh (`do_dentry_open`: every `struct file`
    /// starts with its own state, nothing read yet) whose pages are the slots from `base`.
    pub fn for_file_at(read_ahead_kb: u32, base: u32) -> Self {
        FileRaState {
            ra_pages: read_ahead_kb / 4,
            base,
            ..Default::default()
        }
    }

    /// The slot of the file's page `index` in its owner's mapping.
    fn slot_index(&self, index: u32) -> usize {
        (self.base + index) as usize
    }

    /// When page `index` can be read: the completion of the request reading it, if any.
    fn ready_at(&self, index: u32) -> Option<u64> {
        self.inflight
            .iter()
            .filter(|&&(s, e, _)| (s..e).contains(&index))
            .map(|&(_, _, done)| done)
            .max()
    }
}

/// What `page_cache_ra_unbounded` allocated.
#[derive(Default)]
struct RaBatch {
    populated: u32,
    refaulted: u32,
}

impl Machine {
    /// `filemap_read` of page `index` of `owner`'s file of `file_pages` pages (its slots from
    /// `ra`'s base on), with
    /// readahead: the page, what the read found, and the pages readahead brought in. The
    /// wait for storage is charged to the reader.
    pub(crate) fn filemap_read(
        &mut self,
        owner: OwnerId,
        index: u32,
        ra: &mut FileRaState,
        file_pages: u32,
    ) -> MmResult<RaRead> {
        let now = self.now;
        ra.inflight.retain(|&(_, _, done)| done > now);
        let slot = self.owners.list[owner as usize].map[ra.slot_index(index)];
        let mut batch = RaBatch::default();
        let before = slot;
        if !slot_is_resident(slot) {
            // `page_cache_sync_readahead`: the marker, if it was on this page, went with it.
            if ra.marker == Some(index) {
                ra.marker = None;
            }
            self.page_cache_sync_ra(owner, ra, index, file_pages, &mut batch);
        } else if ra.marker == Some(index) {
            // `filemap_readahead` -> `page_cache_async_ra`, before waiting for the page.
            ra.marker = None;
            self.ondemand_readahead(owner, ra, index, true, file_pages, &mut batch);
        }
        let slot = self.owners.list[owner as usize].map[ra.slot_index(index)];
        let (pfn, access) = if slot_is_resident(slot) {
            let pfn = slot_pfn(slot);
            let access = if before == slot {
                self.mark_page_accessed(pfn);
                Access::Hit
            } else if before == SLOT_EVICTED {
                batch.refaulted -= 1;
                Access::Refault
            } else if slot_cached_pfn(before).is_some() {
                Access::CleancacheHit
            } else {
                batch.populated -= 1;
                Access::Populated
            };
            (pfn, access)
        } else {
            // Readahead could not bring it (no memory for it, or a cleancache copy): read it
            // on its own (`filemap_create_folio`, the mapping's gfp).
            let at = ra.slot_index(index) as u32;
            self.touch_slot(owner, at, Gfp::HIGHUSER_MOVABLE, Kind::File, false)?
        };
        if let Some(done) = ra.ready_at(index) {
            self.charge += done.saturating_sub(self.now);
        }
        ra.prev_index = Some(index + 1);
        Ok(RaRead {
            pfn,
            access,
            populated: batch.populated,
            refaulted: batch.refaulted,
        })
    }

    /// `page_cache_sync_ra` for a read of one page.
    fn page_cache_sync_ra(
        &mut self,
        owner: OwnerId,
        ra: &mut FileRaState,
        index: u32,
        file_pages: u32,
        batch: &mut RaBatch,
    ) {
        if ra.ra_pages == 0 {
            // `force_page_cache_ra` of the one page.
            self.do_page_cache_ra(owner, ra, index, 1, 0, file_pages, batch);
            return;
        }
        self.ondemand_readahead(owner, ra, index, false, file_pages, batch);
    }

    /// `ondemand_readahead` for a read of one page at `index`; `hit_marker` when called for
    /// the page carrying PG_readahead.
    fn ondemand_readahead(
        &mut self,
        owner: OwnerId,
        ra: &mut FileRaState,
        index: u32,
        hit_marker: bool,
        file_pages: u32,
        batch: &mut RaBatch,
    ) {
        let max = ra.ra_pages;
        if max == 0 {
            return;
        }
        let req_size = 1;
        let initial = |ra: &mut FileRaState| {
            ra.start = index;
            ra.size = get_init_ra_size(req_size, max);
            ra.async_size = if ra.size > req_size {
                ra.size - req_size
            } else {
                ra.size
            };
        };
        let expected = (ra.start + ra.size).wrapping_sub(ra.async_size);
        if index == 0 {
            initial(ra);
        } else if ra.size > 0 && (index == expected || index == ra.start + ra.size) {
            // The expected callback: sequential access, ramp up and push the window forward.
            ra.start += ra.size;
            ra.size = ra.size.max(get_next_ra_size(ra.size, max));
            ra.async_size = ra.size;
        } else if hit_marker {
            // A marked page without valid state (interleaved reads): the cached run after
            // it is the old async size.
            let start = self.page_cache_next_miss(owner, ra, index + 1, max, file_pages);
            if start == 0 || start - index > max {
                return;
            }
            ra.start = start;
            ra.size = get_next_ra_size(start - index + req_size, max);
            ra.async_size = ra.size;
        } else if ra
            .prev_index
            .is_some_and(|prev| index.wrapping_sub(prev) <= 1)
        {
            // A sequential cache miss.
            initial(ra);
        } else {
            // `try_context_readahead`: the pages cached just before this one are the trace
            // of a sequential stream.
            let history = self.count_history_pages(owner, ra, index, max);
            if history <= req_size {
                // A standalone random read: read it as is, leave the state alone.
                self.do_page_cache_ra(owner, ra, index, req_size, 0, file_pages, batch);
                return;
            }
            let size = if history >= index {
                2 * history
            } else {
                history
            };
            ra.start = index;
            ra.size = (size + req_size).min(max);
            ra.async_size = 1;
        }
        // readit: will this read hit the marker this window sets? Then merge the next window.
        if index == ra.start && ra.size == ra.async_size {
            let add = get_next_ra_size(ra.size, max);
            if ra.size + add <= max {
                ra.async_size = add;
                ra.size += add;
            } else {
                ra.size = max;
                ra.async_size = max >> 1;
            }
        }
        let (start, size, async_size) = (ra.start, ra.size, ra.async_size);
        self.do_page_cache_ra(owner, ra, start, size, async_size, file_pages, batch);
    }

    /// `do_page_cache_ra` + `page_cache_ra_unbounded`: read `[index, index + nr)` (cut at the
    /// end of the file), marking the page `lookahead` before the end, one request per run of
    /// pages not in the page cache.
    #[allow(clippy::too_many_arguments)]
    fn do_page_cache_ra(
        &mut self,
        owner: OwnerId,
        ra: &mut FileRaState,
        index: u32,
        nr: u32,
        lookahead: u32,
        file_pages: u32,
        batch: &mut RaBatch,
    ) {
        if index >= file_pages {
            return;
        }
        let nr = nr.min(file_pages - index);
        let gfp = Gfp::HIGHUSER_MOVABLE.noretry();
        let mut run_start = index;
        let mut run = 0u32;
        for i in 0..nr {
            let at = index + i;
            let slot_at = ra.slot_index(at) as u32;
            let slot = self.owners.list[owner as usize].map[slot_at as usize];
            let cached = slot_cached_pfn(slot).is_some();
            if slot_is_resident(slot) || cached {
                // Already present (or in the gcma cleancache, which fills it without I/O):
                // submit the batch so far.
                self.ra_submit(ra, run_start, run);
                run = 0;
                run_start = at + 1;
                if cached {
                    let _ = self.access_owned(owner, slot_at, false);
                }
                continue;
            }
            let Ok(pfn) = self.alloc_for_slot(owner, gfp, 0, Kind::File, slot_at) else {
                break;
            };
            self.owners.list[owner as usize].map[slot_at as usize] = pfn_slot(pfn);
            if slot == SLOT_EVICTED {
                self.vmstat.inc(Counter::WorkingsetRefaultFile);
                batch.refaulted += 1;
            } else {
                batch.populated += 1;
            }
            // `page_cache_ra_unbounded`: `i == nr_to_read - lookahead_size` in unsigned
            // arithmetic, so a window cut short at the end of the file (by
            // `do_page_cache_ra`) below its lookahead gets no marker.
            if nr.checked_sub(lookahead) == Some(i) {
                ra.marker = Some(at);
            }
            run += 1;
        }
        self.ra_submit(ra, run_start, run);
    }

    /// `read_pages`: one read request for `[start, start + pages)`, queued on the storage.
    fn ra_submit(&mut self, ra: &mut FileRaState, start: u32, pages: u32) {
        if pages == 0 {
            return;
        }
        let cost = self.cfg.cost.storage_read_ns(pages as u64);
        let done = self.storage_submit(cost);
        self.vmstat.add(Counter::Pgpgin, pages as u64 * 4);
        ra.inflight.push((start, start + pages, done));
    }

    /// `page_cache_next_miss`: the first page from `index` on (at most `max` pages ahead) not
    /// in the page cache; 0 if the search runs past the end of the file.
    fn page_cache_next_miss(
        &self,
        owner: OwnerId,
        ra: &FileRaState,
        index: u32,
        max: u32,
        file_pages: u32,
    ) -> u32 {
        let map = &self.owners.list[owner as usize].map;
        for i in index..index.saturating_add(max).min(file_pages) {
            if !slot_is_resident(map[ra.slot_index(i)]) {
                return i;
            }
        }
        let end = index.saturating_add(max);
        if end >= file_pages {
            0
        } else {
            end
        }
    }

    /// `count_history_pages`: pages cached in a row just before `index`, at most `max`.
    fn count_history_pages(&self, owner: OwnerId, ra: &FileRaState, index: u32, max: u32) -> u32 {
        let map = &self.owners.list[owner as usize].map;
        (0..index.min(max))
            .take_while(|&k| slot_is_resident(map[ra.slot_index(index - 1 - k)]))
            .count() as u32
    }
}
