//! `tmpfs_file`: a file on tmpfs (shmem, `shmem.rs`) written in order at a rate until it has
//! its size, and accessed at random meanwhile and after (`read()`s, a share of them
//! `write()`s) over what is written. Its pages are page cache that only swap can take:
//! `Shmem` and `Cached` in `/proc/meminfo`, on the anonymous LRU lists. Stopping it deletes
//! the file (its pages are freed). The accesses are drawn from its own random stream.

use serde::{Deserialize, Serialize};

use super::ahead::scale_draw;
use super::spec::Check;
use super::task::{interval_ns, Cx};
use super::Task;
use crate::error::MmResult;
use crate::owner::OwnerId;
use crate::rng::Rng;
use crate::Machine;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsFile {
    pub name: String,
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub stop_ns: Option<u64>,
    /// Pages in the file once written.
    pub file_pages: u32,
    /// Pages written per second until the file has its size.
    pub rate_pages_per_s: f64,
    /// Random accesses per second over the pages written so far (0: none).
    #[serde(default)]
    pub access_rate_pages_per_s: f64,
    /// Share of the accesses that write.
    #[serde(default)]
    pub write_fraction: f64,
    #[serde(skip)]
    state: TmpfsState,
}

/// A tmpfs file's progress.
#[derive(Clone, Debug)]
struct TmpfsState {
    write_next: u64,
    write_interval: u64,
    access_next: u64,
    access_interval: Option<u64>,
    written: u32,
    rng: Rng,
}

impl Default for TmpfsState {
    /// Not started: `start` draws the stream's seed from the machine's.
    fn default() -> Self {
        TmpfsState {
            write_next: 0,
            write_interval: 0,
            access_next: 0,
            access_interval: None,
            written: 0,
            rng: Rng::new(0),
        }
    }
}

/// What a tmpfs file's writer does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TmpfsOp {
    /// `write()` of the next page of the file.
    Extend,
    /// A random `read()` or `write()` of a page written already.
    Access,
}

impl TmpfsFile {
    fn extend(&mut self, cx: &mut Cx<'_>) {
        let s = &mut self.state;
        s.write_next = cx.m.now + s.write_interval;
        let r = cx.m.shmem_write(cx.owner, s.written);
        if cx.record(r).is_some() {
            s.written += 1;
            cx.stats.pages_written += 1;
        }
    }

    fn access(&mut self, cx: &mut Cx<'_>) {
        let s = &mut self.state;
        s.access_next = cx.m.now + s.access_interval.unwrap_or(u64::MAX / 4);
        let index = scale_draw(s.rng.next_u64(), s.written);
        let write = self.write_fraction > 0.0 && s.rng.unit() < self.write_fraction;
        if write {
            let r = cx.m.shmem_write(cx.owner, index);
            if cx.record(r).is_some() {
                cx.stats.pages_written += 1;
            }
        } else {
            match cx.m.shmem_read(cx.owner, index) {
                Ok(Some(read)) => {
                    cx.record(Ok(read));
                    cx.stats.pages_read += 1;
                }
                // A hole (its write failed for lack of memory): zeros, no page.
                Ok(None) => cx.stats.pages_read += 1,
                Err(e) => {
                    cx.record(Err(e));
                }
            }
        }
    }
}

impl Task for TmpfsFile {
    const KIND: &'static str = "tmpfs_file";
    type Op = TmpfsOp;

    fn name(&self) -> &str {
        &self.name
    }

    fn window(&self) -> (u64, Option<u64>) {
        (self.start_ns, self.stop_ns)
    }

    fn validate(&self, check: &Check) -> MmResult<()> {
        check.positive("file_pages", self.file_pages as u64)?;
        check.rate("rate_pages_per_s", self.rate_pages_per_s, false)?;
        check.rate(
            "access_rate_pages_per_s",
            self.access_rate_pages_per_s,
            true,
        )?;
        let write_fraction = self.write_fraction;
        if !(0.0..=1.0).contains(&write_fraction) {
            return check.bad(format!(
                "write_fraction = {write_fraction} must be between 0 and 1"
            ));
        }
        Ok(())
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, start: u64) {
        m.shmem_file_setup(owner, self.file_pages);
        let access_rate = self.access_rate_pages_per_s;
        self.state = TmpfsState {
            write_next: start,
            write_interval: interval_ns(self.rate_pages_per_s),
            access_next: start,
            access_interval: (access_rate > 0.0).then(|| interval_ns(access_rate)),
            written: 0,
            rng: Rng::new(m.rng.next_u64()),
        };
    }

    /// The earlier of writing on and accessing (writing first at equal times).
    fn next_op(&self, free_at: u64) -> Option<(u64, TmpfsOp)> {
        let s = &self.state;
        let extend =
            (s.written < self.file_pages).then(|| (free_at.max(s.write_next), TmpfsOp::Extend));
        let access = (s.access_interval.is_some() && s.written > 0)
            .then(|| (free_at.max(s.access_next), TmpfsOp::Access));
        match (extend, access) {
            (Some(e), Some(a)) => Some(if a.0 < e.0 { a } else { e }),
            (e, a) => e.or(a),
        }
    }

    fn run(&mut self, op: TmpfsOp, cx: &mut Cx<'_>) {
        match op {
            TmpfsOp::Extend => self.extend(cx),
            TmpfsOp::Access => self.access(cx),
        }
    }
}
