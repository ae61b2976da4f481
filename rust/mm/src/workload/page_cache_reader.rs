//! `page_cache_reader`: `read()` of a file through the page cache (`filemap_read`).
//!
//! Reproduced: a resident page is a hit (`folio_mark_accessed`), a first read populates it
//! from storage, a read after reclaim dropped it is a refault. Random reads follow a Zipf
//! law over the file's pages (`zipf_s = 0`: uniform), or stream through the file in order.
//! The reader draws its pages a few reads ahead from its own random stream and prefetches
//! them (`ahead.rs`): the pages read are the same as if drawn at the time.
//!
//! A sequential reader reads with the kernel's readahead (`readahead.rs`): its misses are
//! windows of up to `read_ahead_kb` read in one request, one window ahead of it, so it reaches
//! the storage's sequential bandwidth. A random reader reads as with `POSIX_FADV_RANDOM`: one
//! storage request per miss.

use serde::{Deserialize, Serialize};

use super::ahead::{READER_AHEAD, READER_FRAME_AHEAD};
use super::spec::Check;
use super::task::{interval_ns, Cx};
use super::zipf::Zipf;
use super::Task;
use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::owner::OwnerId;
use crate::page::Kind;
use crate::readahead::FileRaState;
use crate::rng::Rng;
use crate::Machine;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageCacheReader {
    pub name: String,
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub stop_ns: Option<u64>,
    /// Pages in the file set.
    pub file_pages: u32,
    pub rate_pages_per_s: f64,
    /// Zipf exponent of the access skew over the file's pages (0: uniform).
    #[serde(default)]
    pub zipf_s: f64,
    /// Stream through the file in order instead of reading at random.
    #[serde(default)]
    pub sequential: bool,
    #[serde(skip)]
    state: ReaderState,
}

/// A reader's progress.
#[derive(Clone, Debug)]
struct ReaderState {
    next: u64,
    interval: u64,
    cursor: u32,
    zipf: Option<Zipf>,
    /// The reader's own random stream: it draws its pages ahead of time (`ahead`), so
    /// sharing the machine's would reorder other workloads' draws.
    rng: Rng,
    /// The next pages it will read, drawn ahead so their slots and frames can be
    /// prefetched (`prefetch_access`).
    ahead: [u32; READER_AHEAD],
    /// The open file's readahead state (a sequential reader's).
    ra: FileRaState,
}

impl Default for ReaderState {
    /// Not started: `start` draws the stream's seed from the machine's.
    fn default() -> Self {
        ReaderState {
            next: 0,
            interval: 0,
            cursor: 0,
            zipf: None,
            rng: Rng::new(0),
            ahead: [0; READER_AHEAD],
            ra: FileRaState::default(),
        }
    }
}

impl PageCacheReader {
    /// The page it reads after those it has drawn already: in order, or at random (Zipf or
    /// uniform) from its own stream.
    #[inline]
    fn draw_index(&mut self) -> u32 {
        let s = &mut self.state;
        if self.sequential {
            let i = s.cursor;
            s.cursor = (s.cursor + 1) % self.file_pages;
            i
        } else {
            match &s.zipf {
                Some(z) => z.sample(&mut s.rng) - 1,
                None => s.rng.below(self.file_pages as u64) as u32,
            }
        }
    }
}

impl Task for PageCacheReader {
    const KIND: &'static str = "page_cache_reader";
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
        let zipf_s = self.zipf_s;
        if !zipf_s.is_finite() || !(0.0..=10.0).contains(&zipf_s) {
            return check.bad(format!(
                "zipf_s = {zipf_s} must be between 0 (uniform) and 10 (1 is classic Zipf)"
            ));
        }
        Ok(())
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, start: u64) {
        m.reserve_slots(owner, self.file_pages);
        self.state = ReaderState {
            next: start,
            interval: interval_ns(self.rate_pages_per_s),
            cursor: 0,
            zipf: (!self.sequential && self.zipf_s > 0.0)
                .then(|| Zipf::new(self.file_pages, self.zipf_s)),
            rng: Rng::new(m.rng.next_u64()),
            ahead: [0; READER_AHEAD],
            ra: FileRaState::new(m.cfg.read_ahead_kb),
        };
        self.state.ahead = [(); READER_AHEAD].map(|_| self.draw_index());
    }

    #[inline]
    fn next_op(&self, free_at: u64) -> Option<(u64, ())> {
        Some((free_at.max(self.state.next), ()))
    }

    /// `filemap_read` of one page of the file.
    #[inline]
    fn run(&mut self, _: (), cx: &mut Cx<'_>) {
        let drawn = self.draw_index();
        let s = &mut self.state;
        s.next = cx.m.now + s.interval;
        let index = s.ahead[0];
        s.ahead.copy_within(1.., 0);
        s.ahead[READER_AHEAD - 1] = drawn;
        let frame_of = s.ahead[READER_FRAME_AHEAD - 1];
        let r = if self.sequential {
            cx.filemap_read(index, &mut s.ra, self.file_pages)
                .map(|read| (read.pfn, read.access))
        } else {
            cx.m.touch_slot(cx.owner, index, Gfp::HIGHUSER_MOVABLE, Kind::File, false)
        };
        if cx.record(r).is_some() {
            cx.stats.pages_read += 1;
        }
        cx.m.prefetch_access(cx.owner, frame_of, drawn);
    }
}
