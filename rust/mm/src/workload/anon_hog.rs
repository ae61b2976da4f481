//! `anon_hog`: anonymous memory (`GFP_HIGHUSER_MOVABLE`) growing to a target at a rate by
//! first-touch faults, and re-touched at random (a share of the touches write): swapped-out
//! pages come back as swap-ins. The touches are drawn a few ahead from the hog's own random
//! stream and prefetched (`ahead.rs`). With `mlock`, the whole buffer is locked before its
//! first fault (`mlock2(MLOCK_ONFAULT)`): each page is mlocked and unevictable as it is
//! faulted in (`mlock.rs`), never reclaimed or swapped, still migratable.

use serde::{Deserialize, Serialize};

use super::ahead::{scale_draw, READ_AHEAD};
use super::spec::Check;
use super::task::{interval_ns, Cx};
use super::Task;
use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::owner::OwnerId;
use crate::page::Kind;
use crate::rng::Rng;
use crate::Machine;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonHog {
    pub name: String,
    #[serde(default)]
    pub start_ns: u64,
    #[serde(default)]
    pub stop_ns: Option<u64>,
    pub target_pages: u32,
    pub growth_pages_per_s: f64,
    /// Random re-touches of the pages it has (0: none).
    #[serde(default)]
    pub touch_rate_pages_per_s: f64,
    /// Share of re-touches that write.
    #[serde(default)]
    pub write_fraction: f64,
    /// Lock the buffer (`mlock2(MLOCK_ONFAULT)` over all of it).
    #[serde(default)]
    pub mlock: bool,
    #[serde(skip)]
    state: HogState,
}

/// A hog's progress.
#[derive(Clone, Debug)]
struct HogState {
    grow_next: u64,
    grow_interval: u64,
    touch_next: u64,
    touch_interval: Option<u64>,
    populated: u32,
    /// Its own random stream, for the touches (drawn ahead, as a reader's pages).
    rng: Rng,
    /// Raw draws for the next touches: a draw picks a page uniformly among those
    /// populated when the touch happens (`scale_draw`), so growth in between counts.
    ahead: [u64; READ_AHEAD],
}

impl Default for HogState {
    /// Not started: `start` draws the stream's seed from the machine's.
    fn default() -> Self {
        HogState {
            grow_next: 0,
            grow_interval: 0,
            touch_next: 0,
            touch_interval: None,
            populated: 0,
            rng: Rng::new(0),
            ahead: [0; READ_AHEAD],
        }
    }
}

/// What a hog does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HogOp {
    /// A first-touch fault on the next page.
    Grow,
    /// A random re-touch of a page it has.
    Touch,
}

impl AnonHog {
    /// A first-touch fault growing the anonymous hog.
    fn grow(&mut self, cx: &mut Cx<'_>) {
        let s = &mut self.state;
        s.grow_next = cx.m.now + s.grow_interval;
        let index = s.populated;
        let r =
            cx.m.touch_slot(cx.owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, true);
        if cx.record(r).is_some() {
            s.populated += 1;
        }
    }

    /// A random re-touch of one of the hog's pages (a share of them writes).
    #[inline]
    fn touch(&mut self, cx: &mut Cx<'_>) {
        let s = &mut self.state;
        s.touch_next = cx.m.now + s.touch_interval.unwrap_or(u64::MAX / 4);
        let n = s.populated;
        let drawn = s.rng.next_u64();
        let [this, next_touch, after] = s.ahead;
        s.ahead = [next_touch, after, drawn];
        let write = self.write_fraction > 0.0 && s.rng.unit() < self.write_fraction;
        let index = scale_draw(this, n);
        let r =
            cx.m.touch_slot(cx.owner, index, Gfp::HIGHUSER_MOVABLE, Kind::Anon, write);
        cx.record(r);
        cx.m.prefetch_access(cx.owner, scale_draw(after, n), scale_draw(drawn, n));
    }
}

impl Task for AnonHog {
    const KIND: &'static str = "anon_hog";
    type Op = HogOp;

    fn name(&self) -> &str {
        &self.name
    }

    fn window(&self) -> (u64, Option<u64>) {
        (self.start_ns, self.stop_ns)
    }

    fn validate(&self, check: &Check) -> MmResult<()> {
        check.positive("target_pages", self.target_pages as u64)?;
        check.rate("growth_pages_per_s", self.growth_pages_per_s, false)?;
        check.rate("touch_rate_pages_per_s", self.touch_rate_pages_per_s, true)?;
        let write_fraction = self.write_fraction;
        if !(0.0..=1.0).contains(&write_fraction) {
            return check.bad(format!(
                "write_fraction = {write_fraction} must be between 0 and 1"
            ));
        }
        Ok(())
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, start: u64) {
        m.reserve_slots(owner, self.target_pages);
        if self.mlock {
            let locked = m.mlock_owner(owner, true);
            debug_assert!(locked.is_ok(), "{locked:?}");
        }
        let touch_rate = self.touch_rate_pages_per_s;
        self.state = HogState {
            grow_next: start,
            grow_interval: interval_ns(self.growth_pages_per_s),
            touch_next: start,
            touch_interval: (touch_rate > 0.0).then(|| interval_ns(touch_rate)),
            populated: 0,
            rng: Rng::new(m.rng.next_u64()),
            ahead: [0; READ_AHEAD],
        };
        let s = &mut self.state;
        s.ahead = [(); READ_AHEAD].map(|_| s.rng.next_u64());
    }

    /// The earlier of growing and touching (growing first at equal times).
    #[inline]
    fn next_op(&self, free_at: u64) -> Option<(u64, HogOp)> {
        let s = &self.state;
        let grow =
            (s.populated < self.target_pages).then(|| (free_at.max(s.grow_next), HogOp::Grow));
        let touch = (s.touch_interval.is_some() && s.populated > 0)
            .then(|| (free_at.max(s.touch_next), HogOp::Touch));
        match (grow, touch) {
            (Some(g), Some(tc)) => Some(if tc.0 < g.0 { tc } else { g }),
            (g, tc) => g.or(tc),
        }
    }

    #[inline]
    fn run(&mut self, op: HogOp, cx: &mut Cx<'_>) {
        match op {
            HogOp::Grow => self.grow(cx),
            HogOp::Touch => self.touch(cx),
        }
    }
}
