//! CMA areas (`mm/cma.c`): the bitmap, `cma_alloc`, `cma_release`, and the allocation lock.
//!
//! Reproduced: first fit over the area's bitmap (one bit per 2^order_per_bit pages) for a
//! free aligned range (`bitmap_find_next_zero_area_off`); the bits are set under the area
//! spinlock *before* the allocation lock is taken, so concurrent callers pick different
//! ranges; `alloc_contig_range` runs under the lock (`cma_mutex`, global, or per area as in
//! 2025 kernels); on -EBUSY the bits are cleared, `cma_alloc_busy_retry` is traced and the
//! walk goes on at `bitmap_no + mask + 1`; any other error ends it; one walk, then failure
//! (mainline has no retry and no sleep). Vendor kernels' "retry with msleep(100) up to 5
//! passes" is an option. Counters: vmstat `cma_alloc_success`/`cma_alloc_fail` (one per
//! call), sysfs `alloc_pages_success`/`alloc_pages_fail`/`release_pages_success` (pages).
//! The dma-heap's clearing of the buffer (`cma_heap_allocate`) is charged after the lock is
//! released, when asked for.

use std::collections::VecDeque;

use serde::Serialize;

use crate::alloc_contig::{Blocker, ContigRange, ReportedPfns};
use crate::allocation::{Allocation, Source};
use crate::config::CmaLock;
use crate::error::{Errno, MmError, MmResult};
use crate::event::EventKind;
use crate::owner::OwnerId;
use crate::page::Page;
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;
use crate::trace::{cma_alloc_finish_fields, cma_alloc_start_fields, page_ptr};
use crate::vmstat::Counter;
use crate::Machine;

#[derive(Clone, Debug)]
pub struct CmaArea {
    pub id: usize,
    pub name: String,
    pub base_pfn: Pfn,
    pub count: u32,
    pub order_per_bit: u32,
    /// One bit per 2^order_per_bit pages, set while handed out (`cma->bitmap`).
    bitmap: Bitmap,
    pub alloc_pages_success: u64,
    pub alloc_pages_fail: u64,
    pub release_pages_success: u64,
}

impl CmaArea {
    pub fn new(id: usize, name: &str, base_pfn: Pfn, count: u32, order_per_bit: u32) -> Self {
        CmaArea {
            id,
            name: name.to_string(),
            base_pfn,
            count,
            order_per_bit,
            bitmap: Bitmap::new((count >> order_per_bit) as usize),
            alloc_pages_success: 0,
            alloc_pages_fail: 0,
            release_pages_success: 0,
        }
    }

    /// The frame after the area: it spans `[base_pfn, end_pfn())`.
    #[inline]
    pub fn end_pfn(&self) -> Pfn {
        self.base_pfn + self.count
    }

    /// Whether `pfn` lies in the area.
    #[inline]
    pub fn contains(&self, pfn: Pfn) -> bool {
        pfn >= self.base_pfn && pfn < self.end_pfn()
    }

    pub fn bitmap_maxno(&self) -> usize {
        self.bitmap.nbits
    }

    /// Bit `i` of the bitmap: its 2^order_per_bit pages are allocated or being allocated.
    pub fn bit(&self, i: usize) -> bool {
        self.bitmap.get(i)
    }

    /// The bits `[first, first + nr)` that `[pfn, pfn + pages)` of the area covers.
    pub fn bits_of(&self, pfn: Pfn, pages: u32) -> (usize, usize) {
        (
            ((pfn - self.base_pfn) >> self.order_per_bit) as usize,
            self.pages_to_bits(pages),
        )
    }

    /// The bits a job searching this area has claimed, if it holds any.
    pub fn job_claim(&self, job: &CmaJob) -> Option<(usize, usize)> {
        matches!(job.state, JobState::WaitLock | JobState::Running)
            .then(|| (job.bitmap_no, self.pages_to_bits(job.count)))
    }

    fn pages_to_bits(&self, pages: u32) -> usize {
        pages.div_ceil(1 << self.order_per_bit) as usize
    }

    /// `cma_bitmap_aligned_mask`.
    fn aligned_mask(&self, align_order: u32) -> usize {
        if align_order <= self.order_per_bit {
            0
        } else {
            (1 << (align_order - self.order_per_bit)) - 1
        }
    }

    /// `cma_bitmap_aligned_offset`.
    fn aligned_offset(&self, align_order: u32) -> usize {
        ((self.base_pfn.0 & ((1 << align_order) - 1)) >> self.order_per_bit) as usize
    }

    /// `bitmap_find_next_zero_area_off`: the first aligned run of `nr` clear bits at or
    /// after `start`, or None.
    fn find_next_zero_area(
        &self,
        start: usize,
        nr: usize,
        mask: usize,
        offset: usize,
    ) -> Option<usize> {
        let size = self.bitmap.nbits;
        let mut start = start;
        loop {
            let first_zero = self.bitmap.find_next(start, size, false)?;
            let index = ((first_zero + offset + mask) & !mask) - offset;
            let end = index + nr;
            if end > size {
                return None;
            }
            match self.bitmap.find_next(index, end, true) {
                Some(busy) => start = busy + 1,
                None => return Some(index),
            }
        }
    }

    fn set_bits(&mut self, start: usize, nr: usize, value: bool) {
        self.bitmap.set_range(start, start + nr, value);
    }

    /// The bitmap as the kernel's `unsigned long` words (bit i is bit i % 64 of word i / 64;
    /// the bits past `bitmap_maxno` are clear), as `cma_debug.rs` prints it.
    pub fn bitmap_words(&self) -> &[u64] {
        &self.bitmap.words
    }

    /// Set bits (`used` in debugfs, in bits).
    pub fn used_bits(&self) -> usize {
        self.bitmap.nbits - self.bitmap.count_zeros()
    }

    /// Runs of clear bits, as `(first bit, bits)`, in bitmap order (`find_next_zero_bit` /
    /// `find_next_bit`, as `cma_debug_show_areas` and `cma_maxchunk_get` walk them).
    pub fn free_runs(&self) -> Vec<(usize, usize)> {
        let n = self.bitmap.nbits;
        let mut runs = Vec::new();
        let mut i = 0;
        while let Some(start) = self.bitmap.find_next(i, n, false) {
            let end = self.bitmap.find_next(start, n, true).unwrap_or(n);
            runs.push((start, end - start));
            i = end;
        }
        runs
    }

    /// Pages not handed out (`available_pages` in sysfs: clear bits).
    pub fn available_pages(&self) -> u64 {
        (self.bitmap.count_zeros() as u64) << self.order_per_bit
    }
}

/// A bitmap in 64-bit words, as the kernel's `unsigned long` bitmaps: searches and range
/// updates a word at a time (`find_next_bit`, `find_next_zero_bit`, `bitmap_set`,
/// `bitmap_clear`).
#[derive(Clone, Debug)]
struct Bitmap {
    words: Vec<u64>,
    nbits: usize,
}

impl Bitmap {
    fn new(nbits: usize) -> Self {
        Bitmap {
            words: vec![0; nbits.div_ceil(64)],
            nbits,
        }
    }

    /// Bit `i`.
    fn get(&self, i: usize) -> bool {
        (self.words[i / 64] >> (i % 64)) & 1 == 1
    }

    /// The first bit in `[from, end)` equal to `value`.
    fn find_next(&self, from: usize, end: usize, value: bool) -> Option<usize> {
        let end = end.min(self.nbits);
        if from >= end {
            return None;
        }
        let flip = if value { 0 } else { u64::MAX };
        let mut i = from / 64;
        let mut word = (self.words[i] ^ flip) & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                let bit = i * 64 + word.trailing_zeros() as usize;
                return (bit < end).then_some(bit);
            }
            i += 1;
            if i * 64 >= end {
                return None;
            }
            word = self.words[i] ^ flip;
        }
    }

    /// Set `[start, end)` to `value`.
    fn set_range(&mut self, start: usize, end: usize, value: bool) {
        let mut i = start;
        while i < end {
            let (w, lo) = (i / 64, i % 64);
            let n = (64 - lo).min(end - i);
            let mask = (u64::MAX >> (64 - n)) << lo;
            if value {
                self.words[w] |= mask;
            } else {
                self.words[w] &= !mask;
            }
            i += n;
        }
    }

    fn count_zeros(&self) -> usize {
        self.nbits
            - self
                .words
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod bitmap_tests {
    use super::Bitmap;

    /// Word-at-a-time searches and updates agree with a bit-per-byte reference.
    #[test]
    fn bitmap_matches_a_plain_one() {
        let mut rng = crate::rng::Rng::new(3);
        for nbits in [1usize, 63, 64, 65, 200, 1000] {
            let (mut b, mut r) = (Bitmap::new(nbits), vec![false; nbits]);
            for _ in 0..500 {
                let start = rng.below(nbits as u64) as usize;
                let end = (start + rng.below(130) as usize).min(nbits);
                let value = rng.below(2) == 1;
                b.set_range(start, end, value);
                r[start..end].iter_mut().for_each(|x| *x = value);
                let (from, to) = (
                    rng.below(nbits as u64 + 1) as usize,
                    rng.below(nbits as u64 + 1) as usize,
                );
                for v in [false, true] {
                    let want = (from..to.min(nbits)).find(|&i| r[i] == v);
                    assert_eq!(b.find_next(from, to, v), want, "{nbits} {from} {to} {v}");
                }
                assert_eq!(b.count_zeros(), r.iter().filter(|x| !**x).count());
            }
        }
    }
}

/// The allocation locks: slot 0 is `cma_mutex`; with per-area locking, slot i is area i's.
#[derive(Clone, Debug, Default)]
pub struct CmaLocks {
    holder: Vec<Option<u32>>,
    waiters: Vec<VecDeque<u32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for the previous buffer of the same device request (`dma_heap.rs`).
    Queued,
    /// Looking for a free range in the bitmap.
    Search,
    /// Waiting for the allocation lock.
    WaitLock,
    /// `alloc_contig_range` in progress.
    Running,
    /// Vendor retry: sleeping before another pass over the bitmap.
    Sleeping,
    /// Clearing the buffer (dma-heap).
    Zeroing,
    Done,
}

/// One `cma_alloc` call in progress or finished.
#[derive(Clone, Debug)]
pub struct CmaJob {
    pub id: u32,
    pub area: usize,
    pub count: u32,
    pub align: u32,
    pub owner: OwnerId,
    pub zero: bool,
    pub state: JobState,
    pub issued_ns: u64,
    pub completed_ns: Option<u64>,
    pub pfn: Option<Pfn>,
    pub errno: Option<Errno>,
    pub busy_retries: u32,
    pub passes: u32,
    pub pages_migrated: u64,
    pub pages_reclaimed: u64,
    /// gcma cache pages discarded from the range (no copy, no migration).
    pub pages_discarded: u64,
    pub failed_attempts: u64,
    pub lock_wait_ns: u64,
    /// The range last tried (`cma_alloc_finish` prints it), if any was.
    pub tried: Option<Pfn>,
    pub blockers: Vec<Blocker>,
    /// Never attempted: an earlier buffer of the same device request failed, or the device
    /// let go of the request first.
    pub cancelled: bool,
    /// The device request (`dma_heap.rs`) this buffer belongs to, if any.
    pub request: Option<u32>,
    /// The allocation the job made (`allocation.rs`), once it succeeded.
    pub allocation: Option<u64>,
    /// The range being tried: its first bitmap bit, and the contiguous-range state.
    bitmap_no: usize,
    next_start: usize,
    saw_busy: bool,
    lock_wait_since: u64,
    contig: Option<ContigRange>,
    pending: Option<Result<(), Errno>>,
    /// The pages in `blockers`, carried from one attempt's range to the next.
    reported: Option<ReportedPfns>,
}

impl CmaJob {
    fn new(
        id: u32,
        area: usize,
        count: u32,
        align: u32,
        owner: OwnerId,
        zero: bool,
        request: Option<u32>,
    ) -> Self {
        CmaJob {
            id,
            area,
            count,
            align,
            owner,
            zero,
            state: JobState::Queued,
            issued_ns: 0,
            completed_ns: None,
            pfn: None,
            errno: None,
            busy_retries: 0,
            passes: 1,
            pages_migrated: 0,
            pages_reclaimed: 0,
            pages_discarded: 0,
            failed_attempts: 0,
            lock_wait_ns: 0,
            tried: None,
            blockers: Vec::new(),
            cancelled: false,
            request,
            allocation: None,
            bitmap_no: 0,
            next_start: 0,
            saw_busy: false,
            lock_wait_since: 0,
            contig: None,
            pending: None,
            reported: None,
        }
    }

    pub fn latency_ns(&self) -> Option<u64> {
        self.completed_ns.map(|c| c - self.issued_ns)
    }
    pub fn is_done(&self) -> bool {
        self.state == JobState::Done
    }
    /// The call has been made (it is no longer waiting for an earlier buffer).
    pub fn issued(&self) -> bool {
        self.state != JobState::Queued
    }
    /// Never attempted (see `cancelled`).
    pub(crate) fn cancel(&mut self, now: u64) {
        self.state = JobState::Done;
        self.cancelled = true;
        self.issued_ns = now;
        self.completed_ns = Some(now);
    }
}

impl Machine {
    pub fn cma_area_by_name(&self, name: &str) -> MmResult<usize> {
        self.cma.iter().position(|a| a.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.cma.iter().map(|a| a.name.as_str()).collect();
            MmError::Cma(format!(
                "no CMA area named {name:?}; this board has {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })
    }

    /// `cma_alloc` request `id`.
    pub fn job(&self, id: u32) -> MmResult<&CmaJob> {
        self.jobs
            .get(id as usize)
            .ok_or_else(|| MmError::Misuse(format!("no cma_alloc request #{id}")))
    }

    /// Whether request `id` is done (false for a request that does not exist).
    pub fn job_done(&self, id: u32) -> bool {
        self.jobs.get(id as usize).is_some_and(|j| j.is_done())
    }

    /// Run until request `id` is done or the clock reaches `limit_ns`; true if it is done.
    pub fn run_until_job(&mut self, id: u32, limit_ns: u64) -> MmResult<bool> {
        self.job(id)?;
        Ok(self.run_while(limit_ns, |m| m.jobs[id as usize].is_done()))
    }

    fn lock_slot(&self, area: usize) -> usize {
        match self.cfg.policy.cma_lock {
            CmaLock::Global => 0,
            CmaLock::PerArea => area,
        }
    }

    /// Start `cma_alloc(area, count, align)` for `owner` now; the job advances with the
    /// event loop. Returns its id.
    pub fn cma_alloc(
        &mut self,
        area: usize,
        count: u32,
        align: u32,
        owner: OwnerId,
        zero: bool,
    ) -> MmResult<u32> {
        let id = self.cma_queue_jobs(area, &[(count, align)], owner, zero, None)?[0];
        self.start_job(id);
        Ok(id)
    }

    /// Queue one `cma_alloc` job per `(count, align)` (none started), after checking them
    /// all. Returns their ids, in order.
    pub(crate) fn cma_queue_jobs(
        &mut self,
        area: usize,
        buffers: &[(u32, u32)],
        owner: OwnerId,
        zero: bool,
        request: Option<u32>,
    ) -> MmResult<Vec<u32>> {
        for &(count, align) in buffers {
            self.check_cma_request(area, count, align)?;
        }
        let first = self.jobs.len() as u32;
        for (i, &(count, align)) in buffers.iter().enumerate() {
            let id = first + i as u32;
            self.jobs
                .push(CmaJob::new(id, area, count, align, owner, zero, request));
        }
        Ok((first..first + buffers.len() as u32).collect())
    }

    fn check_cma_request(&self, area: usize, count: u32, align: u32) -> MmResult<()> {
        let a = self
            .cma
            .get(area)
            .ok_or_else(|| MmError::Cma(format!("no CMA area #{area}")))?;
        if count == 0 || count > a.count {
            return Err(MmError::Cma(format!(
                "cma_alloc of {count} pages from area {:?} of {} pages: ask for between 1 and \
                 {} pages",
                a.name, a.count, a.count
            )));
        }
        if align > crate::config::MAX_PAGE_ORDER {
            return Err(MmError::Cma(format!(
                "cma_alloc alignment order {align} is above {} (use an order, not a size)",
                crate::config::MAX_PAGE_ORDER
            )));
        }
        Ok(())
    }

    /// Issue a queued job now.
    pub(crate) fn start_job(&mut self, id: u32) {
        let job = &mut self.jobs[id as usize];
        job.state = JobState::Search;
        job.issued_ns = self.now;
        let (area, count, align, owner) = (job.area, job.count, job.align, job.owner);
        if self.trace.enabled() {
            let a = &self.cma[area];
            let (version, avail) = (self.cfg.kernel_version, a.available_pages());
            let fields = cma_alloc_start_fields(version, &a.name, count, align, avail, a.count);
            self.trace_owner(owner, "cma_alloc_start", &fields);
        }
        self.events.schedule(self.now, EventKind::CmaJob(id));
    }

    /// Advance job `id` by one step.
    pub(crate) fn cma_job_step(&mut self, id: u32) {
        let job = &self.jobs[id as usize];
        match job.state {
            JobState::Search | JobState::Sleeping => self.cma_search(id),
            JobState::WaitLock | JobState::Queued => {}
            JobState::Running => self.cma_run_contig(id),
            JobState::Zeroing => self.cma_job_finish(id, Ok(())),
            JobState::Done => {}
        }
    }

    /// Find and claim the next free aligned range in the bitmap, then go for the lock.
    fn cma_search(&mut self, id: u32) {
        let (area, count, align, start) = {
            let j = &self.jobs[id as usize];
            (j.area, j.count, j.align, j.next_start)
        };
        let a = &self.cma[area];
        let nr = a.pages_to_bits(count);
        let found =
            a.find_next_zero_area(start, nr, a.aligned_mask(align), a.aligned_offset(align));
        let Some(bitmap_no) = found else {
            self.cma_walk_exhausted(id);
            return;
        };
        self.cma[area].set_bits(bitmap_no, nr, true);
        let job = &mut self.jobs[id as usize];
        job.bitmap_no = bitmap_no;
        job.state = JobState::WaitLock;
        job.lock_wait_since = self.now;
        let slot = self.lock_slot(area);
        if self.cma_locks.holder.len() <= slot {
            self.cma_locks.holder.resize(slot + 1, None);
            self.cma_locks.waiters.resize(slot + 1, VecDeque::new());
        }
        if self.cma_locks.holder[slot].is_none() {
            self.cma_lock_acquired(id, slot);
        } else {
            self.cma_locks.waiters[slot].push_back(id);
        }
    }

    /// No free range left in this walk: fail, or (vendor option) sleep and walk again.
    fn cma_walk_exhausted(&mut self, id: u32) {
        let policy = &self.cfg.policy;
        let (passes_left, sleep) = (policy.vendor_retry_passes, policy.vendor_retry_sleep_ns);
        let job = &mut self.jobs[id as usize];
        if job.saw_busy && job.passes <= passes_left {
            job.passes += 1;
            job.saw_busy = false;
            job.next_start = 0;
            job.state = JobState::Sleeping;
            self.events
                .schedule(self.now + sleep, EventKind::CmaJob(id));
            return;
        }
        let errno = if job.saw_busy || job.busy_retries > 0 {
            Errno::Ebusy
        } else {
            Errno::Enomem
        };
        self.cma_job_finish(id, Err(errno));
    }

    fn cma_lock_acquired(&mut self, id: u32, slot: usize) {
        self.cma_locks.holder[slot] = Some(id);
        let (area, bitmap_no, count, owner) = {
            let j = &mut self.jobs[id as usize];
            j.lock_wait_ns += self.now - j.lock_wait_since;
            j.state = JobState::Running;
            (j.area, j.bitmap_no, j.count, j.owner)
        };
        let a = &self.cma[area];
        let pfn = a.base_pfn + ((bitmap_no as u32) << a.order_per_bit);
        let cpu = self.owners.cpu(owner);
        let mut cr = ContigRange::new(pfn, pfn + count, Migratetype::Cma, cpu);
        let job = &mut self.jobs[id as usize];
        job.tried = Some(pfn);
        cr.reported = job
            .reported
            .take()
            .unwrap_or_else(|| ReportedPfns::new(a.base_pfn, a.end_pfn()));
        job.contig = Some(cr);
        self.events.schedule(self.now, EventKind::CmaJob(id));
    }

    fn cma_lock_release(&mut self, id: u32) {
        let slot = self.lock_slot(self.jobs[id as usize].area);
        debug_assert_eq!(self.cma_locks.holder[slot], Some(id));
        self.cma_locks.holder[slot] = None;
        if let Some(next) = self.cma_locks.waiters[slot].pop_front() {
            self.cma_lock_acquired(next, slot);
        }
    }

    /// One step of `alloc_contig_range`; its result takes effect when the step's cost has
    /// elapsed (the next event of this job).
    fn cma_run_contig(&mut self, id: u32) {
        if let Some(result) = self.jobs[id as usize].pending.take() {
            self.cma_contig_done(id, result);
            return;
        }
        let mut cr = self.jobs[id as usize]
            .contig
            .take()
            .expect("running job has a range");
        let owner = self.jobs[id as usize].owner;
        let step = self.contig_step(&mut cr, owner);
        if let Some(Ok(())) = step.result {
            // The frames are the caller's from now, while the last step's cost (taking the
            // pages, undoing the isolation) elapses, as they are `alloc_contig_range`'s.
            self.cma_record_allocation(id, cr.start);
        }
        let job = &mut self.jobs[id as usize];
        job.pending = step.result;
        job.contig = Some(cr);
        let next = step.wait_until.unwrap_or(self.now).max(self.now) + step.cost;
        self.events.schedule(next, EventKind::CmaJob(id));
    }

    /// Record job `id`'s allocation of `[start, start + count)`, the range it has taken.
    fn cma_record_allocation(&mut self, id: u32, start: Pfn) {
        let job = &self.jobs[id as usize];
        let (area, count, owner) = (job.area, job.count, job.owner);
        let source = Source::Cma { area, job: id };
        let allocation = self.allocations.insert(start, count, owner, source);
        let job = &mut self.jobs[id as usize];
        job.allocation = Some(allocation);
        job.pfn = Some(start);
    }

    /// `alloc_contig_range` returned: drop the lock, then succeed, retry further on, or fail.
    fn cma_contig_done(&mut self, id: u32, result: Result<(), Errno>) {
        self.cma_lock_release(id);
        let cr = self.jobs[id as usize].contig.take().expect("range");
        let job = &mut self.jobs[id as usize];
        job.pages_migrated += cr.nr_migrated;
        job.pages_reclaimed += cr.nr_reclaimed;
        job.pages_discarded += cr.nr_discarded;
        job.failed_attempts += cr.failed_attempts;
        // Overlapping retries (the walk moves on by the alignment, not the length) meet the
        // same pinned pages again: each page is reported once per call, the range leaving
        // out the pages earlier attempts reported (`reported`).
        job.blockers.extend(cr.blockers);
        job.reported = Some(cr.reported);
        match result {
            Ok(()) => {
                // The allocation was recorded when the range was taken (the buffer is
                // cleared next).
                let job = &mut self.jobs[id as usize];
                if job.zero {
                    job.state = JobState::Zeroing;
                    let cost = self.cfg.cost.zero_page_ns * job.count as u64;
                    self.events.schedule(self.now + cost, EventKind::CmaJob(id));
                } else {
                    self.cma_job_finish(id, Ok(()));
                }
            }
            Err(Errno::Ebusy) => {
                let (area, count, align, bitmap_no) =
                    (job.area, job.count, job.align, job.bitmap_no);
                job.busy_retries += 1;
                job.saw_busy = true;
                let a = &mut self.cma[area];
                let nr = a.pages_to_bits(count);
                a.set_bits(bitmap_no, nr, false);
                let mask = a.aligned_mask(align);
                self.jobs[id as usize].next_start = bitmap_no + mask + 1;
                self.jobs[id as usize].state = JobState::Search;
                if self.trace.enabled() {
                    let a = &self.cma[area];
                    let fields = format!(
                        "name={} pfn=0x{:x} page={} count={} align={}",
                        a.name,
                        cr.start,
                        page_ptr(cr.start),
                        count,
                        align
                    );
                    let owner = self.jobs[id as usize].owner;
                    self.trace_owner(owner, "cma_alloc_busy_retry", &fields);
                }
                self.cma_search(id);
            }
            Err(errno) => {
                let (area, count, bitmap_no) = (job.area, job.count, job.bitmap_no);
                let a = &mut self.cma[area];
                let nr = a.pages_to_bits(count);
                a.set_bits(bitmap_no, nr, false);
                self.cma_job_finish(id, Err(errno));
            }
        }
    }

    fn cma_job_finish(&mut self, id: u32, result: Result<(), Errno>) {
        let now = self.now;
        let job = &mut self.jobs[id as usize];
        job.state = JobState::Done;
        job.completed_ns = Some(now);
        let (area, count, align, owner) = (job.area, job.count, job.align, job.owner);
        let pfn = match result {
            Ok(()) => job.pfn,
            Err(e) => {
                job.errno = Some(e);
                None
            }
        };
        match pfn {
            Some(_) => {
                self.vmstat.inc(Counter::CmaAllocSuccess);
                self.cma[area].alloc_pages_success += count as u64;
            }
            None => {
                self.vmstat.inc(Counter::CmaAllocFail);
                self.cma[area].alloc_pages_fail += count as u64;
            }
        }
        if self.trace.enabled() {
            let (tried, code) = (
                self.jobs[id as usize].tried,
                result.err().map_or(0, |e| e.code()),
            );
            let fields = cma_alloc_finish_fields(
                self.cfg.kernel_version,
                &self.cma[area].name,
                tried,
                pfn.is_some(),
                count,
                align,
                code,
            );
            self.trace_owner(owner, "cma_alloc_finish", &fields);
        }
        if let Err(errno) = result {
            let a = &self.cma[area];
            let runs = self.cfg.cma_debug.then(|| a.free_runs());
            let debug = runs.as_deref().map(|r| (r, a.order_per_bit, a.count));
            let name = a.name.clone();
            self.dmesg
                .cma_alloc_failed(self.now, &name, count, errno.code(), debug);
        }
        if let Some(request) = self.jobs[id as usize].request {
            self.dma_heap_buffer_done(request, id);
        }
    }

    /// `cma_release(area, pfn, count)` by `caller`: free the buffer back to the allocator,
    /// without migration. `[pfn, pfn + count)` must be exactly one live `cma_alloc`
    /// allocation of `caller` in `area` (`allocation.rs`); anything else is a misuse that
    /// changes nothing.
    pub fn cma_release(
        &mut self,
        area: usize,
        pfn: Pfn,
        count: u32,
        caller: OwnerId,
    ) -> MmResult<()> {
        let name = &self
            .cma
            .get(area)
            .ok_or_else(|| MmError::Cma(format!("no CMA area #{area}")))?
            .name;
        let what = format!("cma_release({name})");
        let a = self.exact_allocation(&what, pfn, count, caller)?;
        let Source::Cma { area: got, job } = a.source else {
            return Err(MmError::Misuse(format!(
                "{what} of pfn {pfn:#x}: that is {}, which free_contig_range frees",
                self.describe_allocation(&a)
            )));
        };
        if got != area {
            return Err(MmError::Misuse(format!(
                "{what} of pfn {pfn:#x}: that is {}, not a buffer of area {name}",
                self.describe_allocation(&a)
            )));
        }
        if self.jobs[job as usize].request.is_some() {
            return Err(MmError::Misuse(format!(
                "{what} of pfn {pfn:#x}: that is a buffer of a device request of {}, which \
                 releases its buffers together: stop the device instead",
                self.owners.name(a.owner)
            )));
        }
        self.release_cma_allocation(a, area);
        Ok(())
    }

    /// `cma_release` of the buffer job `id` allocated, by `caller` (the handle's way: a
    /// job's allocation is released once, by its owner).
    pub fn cma_release_job(&mut self, id: u32, caller: OwnerId) -> MmResult<()> {
        let job = self.job(id)?;
        let what = format!("cma_release of cma_alloc #{id}");
        if !job.is_done() {
            return Err(MmError::Misuse(format!(
                "{what}: it is still running; run the machine until it is done"
            )));
        }
        let (Some(pfn), Some(alloc_id)) = (job.pfn, job.allocation) else {
            return Err(MmError::Misuse(format!(
                "{what}: it did not allocate anything (it {}); there is nothing to release",
                if job.is_done() {
                    "failed"
                } else {
                    "is still running"
                }
            )));
        };
        let Some(a) = self.allocations.by_id(alloc_id, pfn).copied() else {
            return Err(MmError::Misuse(format!(
                "{what} of {}: it was released already",
                self.owners.name(job.owner)
            )));
        };
        self.check_owner(&what, &a, caller)?;
        if let Some(request) = job.request {
            return Err(MmError::Misuse(format!(
                "{what}: it is a buffer of {}'s device request #{request}, which releases its \
                 buffers together: stop the device (or change its mode) instead",
                self.owners.name(job.owner)
            )));
        }
        let area = job.area;
        self.release_cma_allocation(a, area);
        Ok(())
    }

    /// `cma_release` of a buffer of a device request (`dma_heap.rs`), by the request.
    pub(crate) fn release_request_buffer(&mut self, id: u32) {
        let job = &self.jobs[id as usize];
        let (area, alloc) = (job.area, job.allocation.zip(job.pfn));
        let live = alloc.and_then(|(aid, pfn)| self.allocations.by_id(aid, pfn).copied());
        if let Some(a) = live {
            self.release_cma_allocation(a, area);
        }
    }

    /// Free allocation `a`, a buffer of CMA area `area`, and clear its bitmap bits.
    fn release_cma_allocation(&mut self, a: Allocation, area: usize) {
        self.forget_allocation(&a);
        let (pfn, count, owner) = (a.start, a.count, a.owner);
        let cpu = self.owners.cpu(owner);
        for p in Pfn::range(pfn, pfn + count) {
            self.pages[p] = Page::FREE;
            self.free_pages(p, 0, cpu);
        }
        let area_ref = &mut self.cma[area];
        let bit = ((pfn - area_ref.base_pfn) >> area_ref.order_per_bit) as usize;
        let nr = area_ref.pages_to_bits(count);
        area_ref.set_bits(bit, nr, false);
        area_ref.release_pages_success += count as u64;
        if self.trace.enabled() {
            let fields = format!(
                "name={} pfn=0x{:x} page={} count={}",
                self.cma[area].name,
                pfn,
                page_ptr(pfn),
                count
            );
            self.trace_owner(owner, "cma_release", &fields);
        }
        self.take_charge();
    }
}
