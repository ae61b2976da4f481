//! What one frame holds, as `dump_page` (`mm/debug.c`) prints it: kind, order, owner,
//! index, flags, migratetype, zone, reference and pin counts.

use crate::error::{misuse, MmResult};
use crate::pfn::Pfn;
use crate::Machine;

/// One frame, described (`Machine::page_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageInfo {
    pub pfn: Pfn,
    /// `Kind::name`: `free`, `buddy`, `pcp`, `tail`, `anon`, `file`, ...
    pub kind: &'static str,
    /// Order of a buddy or compound head (0 otherwise).
    pub order: u32,
    pub owner: String,
    /// `page->index`: the slot in the owner's mapping (a tail's head pfn).
    pub index: u32,
    /// The PG_ flags set (`Page::flag_names`).
    pub flags: Vec<&'static str>,
    /// The pageblock's migratetype (`Migratetype::name`).
    pub migratetype: &'static str,
    /// The zone spanning the frame (`ZoneId::name`).
    pub zone: &'static str,
    /// `page_ref_count`: 0 for a free frame; else 1 (the owner's mapping) plus one per
    /// `get_page` and `GUP_PIN_COUNTING_BIAS` per pin (`gup.rs`).
    pub refcount: u32,
    /// Pins (FOLL_PIN, FOLL_LONGTERM) on the frame.
    pub pincount: u32,
}

impl Machine {
    /// `dump_page` of frame `pfn`; a misuse beyond the end of memory.
    pub fn page_info(&self, pfn: Pfn) -> MmResult<PageInfo> {
        if pfn >= self.end_pfn() {
            return misuse(format!("pfn {pfn:#x} is beyond the end of memory"));
        }
        let page = &self.frame(pfn);
        let refcount = if page.kind().is_free() {
            0
        } else {
            1 + self.holds.extra_refcount(pfn)
        };
        Ok(PageInfo {
            pfn,
            kind: page.kind().name(),
            order: page.order(),
            owner: self.owners.name(page.owner).to_string(),
            index: page.index,
            flags: page.flag_names(),
            migratetype: self.pageblocks.get(pfn).name(),
            zone: self.zones[self.zone_idx(pfn)].id.name(),
            refcount,
            pincount: self.pin_count(pfn),
        })
    }
}
