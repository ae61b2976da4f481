//! The CMA areas' pages by state over time: the picture a user reaches for when an
//! allocation fails (pfn on one axis, time on the other). Off unless asked for
//! (`set_area_maps`); then each time series sample also records every area as bins of
//! `bin_pages` pages, each bin one [`State`], run-length encoded.
//!
//! A bin takes the state most of its pages are in, except that a bin holding a pinned or
//! referenced page is `Pinned` (a pin is what blocks a range, and one page in a bin must
//! still show). The walk reads each frame once (16 bytes a page, no side table), so a
//! sample of a 128 MiB area costs about as much as 32,768 sequential loads.

use serde::Serialize;

use crate::page::{pg, Kind};
use crate::pfn::Pfn;
use crate::Machine;

/// A page's state in the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[repr(u8)]
pub enum State {
    Free = 0,
    Movable = 1,
    Pinned = 2,
    Device = 3,
    Discardable = 4,
    Unmovable = 5,
}

pub const STATES: [&str; 6] = [
    "free",
    "movable",
    "pinned",
    "device",
    "discardable",
    "unmovable",
];

/// One area's bins in one sample: `(state, bins)` runs, in pfn order.
pub type Runs = Vec<(u8, u32)>;

#[derive(Clone, Debug, Default, Serialize)]
pub struct AreaMaps {
    /// Largest number of bins an area is cut into (0: not recording).
    pub max_bins: u32,
    /// Record every `every`-th time-series sample (1: each one).
    pub every: u32,
    #[serde(skip)]
    countdown: u32,
    /// Pages a bin covers, per area.
    pub bin_pages: Vec<u32>,
    pub t_ns: Vec<u64>,
    /// `[sample][area]`.
    pub samples: Vec<Vec<Runs>>,
}

impl Machine {
    /// Record the areas' pages by state at every `every`-th time-series sample from now on
    /// (the first one included), each area cut into at most `max_bins` bins (0 stops).
    pub fn set_area_maps(&mut self, max_bins: u32, every: u32) {
        self.area_maps.max_bins = max_bins;
        self.area_maps.every = every.max(1);
        self.area_maps.countdown = 0;
        self.area_maps.bin_pages = self
            .cma
            .iter()
            .map(|a| a.count.div_ceil(max_bins.max(1)).max(1))
            .collect();
    }

    /// The state of one frame of a CMA area (`Tail` frames take their head's).
    fn map_state(&self, pfn: Pfn) -> State {
        let page = &self.pages[pfn];
        let page = if page.kind() == Kind::Tail {
            &self.pages[page.head()]
        } else {
            page
        };
        match page.kind() {
            Kind::Free | Kind::Buddy | Kind::Pcp => State::Free,
            Kind::Anon | Kind::File if page.test(pg::EXTRA) => State::Pinned,
            Kind::Anon | Kind::File => State::Movable,
            Kind::Device => State::Device,
            Kind::Cache => State::Discardable,
            _ => State::Unmovable,
        }
    }

    /// Area `area` now, as runs of bins (see the module comment).
    pub fn area_map_now(&self, area: usize, bin_pages: u32) -> Runs {
        let a = &self.cma[area];
        let mut runs: Runs = Vec::new();
        let mut start = a.base_pfn;
        while start < a.end_pfn() {
            let end = (start + bin_pages).min(a.end_pfn());
            let mut counts = [0u32; 6];
            for p in Pfn::range(start, end) {
                counts[self.map_state(p) as usize] += 1;
            }
            let state = if counts[State::Pinned as usize] > 0 {
                State::Pinned as u8
            } else {
                (0..6)
                    .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
                    .unwrap_or(0) as u8
            };
            match runs.last_mut() {
                Some((s, n)) if *s == state => *n += 1,
                _ => runs.push((state, 1)),
            }
            start = end;
        }
        runs
    }

    /// Called with each time-series sample.
    pub(crate) fn sample_area_maps(&mut self) {
        if self.area_maps.max_bins == 0 {
            return;
        }
        if self.area_maps.countdown > 0 {
            self.area_maps.countdown -= 1;
            return;
        }
        self.area_maps.countdown = self.area_maps.every - 1;
        let sample: Vec<Runs> = (0..self.cma.len())
            .map(|i| self.area_map_now(i, self.area_maps.bin_pages[i]))
            .collect();
        self.area_maps.t_ns.push(self.now);
        self.area_maps.samples.push(sample);
    }
}
