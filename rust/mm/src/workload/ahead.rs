//! Drawing ahead: a random read or touch lands on a random slot of a mapping of up to a few
//! hundred thousand pages and then on a random frame, two cache misses that were a quarter
//! of a scenario's run time. Readers and anonymous hogs therefore draw their pages a few
//! accesses ahead, from a random stream of their own (so that drawing early does not reorder
//! other workloads' draws), and prefetch the slot and the frame of the coming accesses
//! (`prefetch_access`). The pages read are the same as if drawn at the time; only the
//! engine's speed changes.

use crate::owner::{slot_is_resident, slot_pfn, OwnerId};
use crate::prefetch::prefetch;
use crate::Machine;

/// How many accesses ahead an anonymous hog draws its pages: the slot of a page is
/// prefetched three accesses before it, its frame two before. (Its stream also gives each
/// touch its write decision, drawn at the touch: drawing deeper would hand the touches other
/// draws, so the hog keeps this depth.)
pub(super) const READ_AHEAD: usize = 3;

/// How many reads ahead a page-cache reader draws its pages (its stream gives nothing else,
/// so the depth changes nothing but the prefetch distance): the slot of a page is prefetched
/// `READER_AHEAD` reads before it, its frame `READER_FRAME_AHEAD` reads before, when the slot
/// has had time to arrive. A read is a few hundred nanoseconds of host time and a slot that
/// misses the caches takes about as long: at three reads ahead, the slot read that finds the
/// frame to prefetch still waited for memory (`perf`: 5% of `tv_evening`).
pub(super) const READER_AHEAD: usize = 8;
pub(super) const READER_FRAME_AHEAD: usize = 4;

/// A uniform index in `0..n` from a raw 64-bit draw (Lemire's multiply-shift, as
/// `Rng::below`).
#[inline]
pub(super) fn scale_draw(raw: u64, n: u32) -> u32 {
    ((raw as u128 * n as u128) >> 64) as u32
}

impl Machine {
    /// Start loading what the coming accesses of a workload that draws its pages ahead
    /// will look at, while other operations run: the slot of the last page drawn, and the
    /// frame of the one before it (its slot was prefetched by the previous access). A hint
    /// only: the accesses look at both again.
    #[inline]
    pub(super) fn prefetch_access(&self, owner: OwnerId, frame_of: u32, slot_of: u32) {
        let map = &self.owners.list[owner as usize].map;
        prefetch(&map[slot_of as usize]);
        let slot = map[frame_of as usize];
        if slot_is_resident(slot) {
            prefetch(&self.pages[slot_pfn(slot)]);
        }
    }
}
