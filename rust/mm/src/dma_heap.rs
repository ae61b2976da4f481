//! A device's request for its buffers through the CMA dma-heap
//! (`drivers/dma-buf/heaps/cma_heap.c`, Linux 5.6+): one job for a driver's whole allocation
//! loop (`VIDIOC_REQBUFS`, then one `DMA_HEAP_IOCTL_ALLOC` per buffer), so that the engine runs
//! a device's request without coming back to Python between buffers.
//!
//! Reproduced:
//! - buffers are allocated one after the other, each `cma_alloc` starting when the previous one
//!   succeeded (`cma_heap_allocate` → `cma_alloc`, then clearing the pages);
//! - a failed buffer fails the request: the buffers not yet asked for are never asked for, and
//!   those already allocated are released at once (`cma_release`), as a driver unwinding its
//!   `REQBUFS` loop does (`vb2_core_reqbufs` → `__vb2_queue_free` on error);
//! - stopping the device releases what it holds; a request still in flight runs to its end
//!   (a V4L2 `REQBUFS` ioctl holds the queue lock, so `STREAMOFF` or `close` waits for it) and
//!   each buffer it gets from then on is released as soon as it arrives.
//!
//! Not reproduced: the dma-buf file descriptors, mmap and the buffer's use by the device.

use crate::error::{MmError, MmResult};
use crate::owner::OwnerId;
use crate::Machine;

/// One device request: the `cma_alloc` jobs of its buffers, in allocation order.
#[derive(Clone, Debug)]
pub struct DmaHeapRequest {
    pub id: u32,
    pub area: usize,
    pub owner: OwnerId,
    /// The buffers' `cma_alloc` jobs (`Machine::jobs`), one per buffer, issued in turn.
    pub jobs: Vec<u32>,
    /// The device let go of the request (stopped, or changed mode): everything it got is
    /// released, the rest is not asked for.
    pub released: bool,
    /// It let go while the request was still in flight.
    pub cancelled: bool,
    /// When the request stopped holding any buffer: on failure, on release, or when the
    /// buffer in flight at release time came back. None while it holds (or may hold) buffers.
    pub released_ns: Option<u64>,
    /// Buffers allocated and not released yet, by job id.
    held: Vec<u32>,
}

impl DmaHeapRequest {
    /// Pages of the buffers the request holds now.
    pub fn held_pages(&self, m: &Machine) -> u64 {
        self.held
            .iter()
            .map(|&j| m.jobs[j as usize].count as u64)
            .sum()
    }

    /// Every buffer's `cma_alloc` has finished (succeeded, failed or was never asked for).
    pub fn is_done(&self, m: &Machine) -> bool {
        self.jobs.iter().all(|&j| m.jobs[j as usize].is_done())
    }

    /// Every buffer was allocated.
    pub fn ok(&self, m: &Machine) -> bool {
        self.jobs.iter().all(|&j| m.jobs[j as usize].pfn.is_some())
    }
}

impl Machine {
    /// Start a device's allocation loop now: `(pages, align order)` per buffer, from `area`,
    /// for `owner`, each buffer cleared when `zero`. Everything is checked before anything
    /// starts. Returns the request's id.
    pub fn dma_heap_alloc(
        &mut self,
        area: usize,
        buffers: &[(u32, u32)],
        owner: OwnerId,
        zero: bool,
    ) -> MmResult<u32> {
        if buffers.is_empty() {
            return Err(MmError::Cma("a dma-heap request of no buffers".into()));
        }
        let id = self.dma_requests.len() as u32;
        let jobs = self.cma_queue_jobs(area, buffers, owner, zero, Some(id))?;
        let first = jobs[0];
        self.dma_requests.push(DmaHeapRequest {
            id,
            area,
            owner,
            jobs,
            released: false,
            cancelled: false,
            released_ns: None,
            held: Vec::new(),
        });
        self.start_job(first);
        Ok(id)
    }

    /// The device lets go of request `id`: release the buffers it holds now; a buffer still
    /// being allocated is released when its `cma_alloc` returns; later buffers are not asked
    /// for. Releasing twice is a misuse.
    pub fn dma_heap_release(&mut self, id: u32) -> MmResult<()> {
        let req = self.dma_request(id)?;
        if req.released {
            return Err(MmError::Misuse(format!(
                "dma-heap request #{id} of {} was released already",
                self.owners.name(req.owner)
            )));
        }
        let done = req.is_done(self);
        let req = &mut self.dma_requests[id as usize];
        req.released = true;
        req.cancelled = !done;
        let held = std::mem::take(&mut req.held);
        for job in held {
            self.release_job_buffer(job);
        }
        if done && self.dma_requests[id as usize].released_ns.is_none() {
            self.dma_requests[id as usize].released_ns = Some(self.now);
        }
        Ok(())
    }

    pub fn dma_request(&self, id: u32) -> MmResult<&DmaHeapRequest> {
        self.dma_requests
            .get(id as usize)
            .ok_or_else(|| MmError::Misuse(format!("no dma-heap request #{id}")))
    }

    /// Called when a buffer's `cma_alloc` of request `id` has finished: go on with the next
    /// buffer, or unwind after a failure, or release what came back after the device let go.
    pub(crate) fn dma_heap_buffer_done(&mut self, id: u32, job: u32) {
        let ok = self.jobs[job as usize].pfn.is_some();
        if !ok {
            self.cancel_queued_jobs(id);
            let held = std::mem::take(&mut self.dma_requests[id as usize].held);
            for j in held {
                self.release_job_buffer(j);
            }
            self.dma_requests[id as usize].released_ns = Some(self.now);
            return;
        }
        if self.dma_requests[id as usize].released {
            // Let go while in flight: what arrives now goes straight back.
            self.release_job_buffer(job);
        } else {
            self.dma_requests[id as usize].held.push(job);
        }
        let next = self.dma_requests[id as usize]
            .jobs
            .iter()
            .copied()
            .find(|&j| !self.jobs[j as usize].issued());
        match next {
            Some(next) => self.start_job(next),
            None if self.dma_requests[id as usize].released => {
                self.dma_requests[id as usize].released_ns = Some(self.now);
            }
            None => {}
        }
    }

    /// The buffers of request `id` not asked for yet: never asked for.
    fn cancel_queued_jobs(&mut self, id: u32) {
        let now = self.now;
        for &j in &self.dma_requests[id as usize].jobs {
            let job = &mut self.jobs[j as usize];
            if !job.issued() {
                job.cancel(now);
            }
        }
    }

    /// `cma_release` of the buffer job `job` allocated (nothing if it allocated nothing).
    fn release_job_buffer(&mut self, job: u32) {
        self.release_request_buffer(job);
    }
}
