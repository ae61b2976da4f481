//! References and pins (`mm/gup.c`, `include/linux/mm.h`): `get_page`/`put_page`,
//! `pin_user_pages` (FOLL_PIN) and FOLL_LONGTERM pins.
//!
//! A page's reference count is 1 (its owner's mapping) plus one per `get_page` plus
//! `GUP_PIN_COUNTING_BIAS` per pin, as in the kernel, so pins are distinguishable from
//! plain references (`folio_maybe_dma_pinned`). Each reference and pin is a *hold* in a
//! side table, with its holder and start time, so a report can name what blocked a device;
//! the frame itself only carries `PG_extra` (the kernel keeps no such attribution: this is
//! the instrumentation the seed's discussion asks for).
//!
//! Fixes reproduced here (SPEC §3): `migrate_on_longterm_pin` (`check_and_migrate_movable_pages`,
//! 5.13: unpin, migrate out of CMA/ZONE_MOVABLE with `memalloc_pin_save` gfp, re-pin; the
//! pin fails with -ENOMEM if migration fails), `migrate_on_pin` (Mel Gorman's proposal: the
//! same on every FOLL_PIN pin, as a best effort; `get_page` is not a pin and never
//! migrates), `warn_cma_pins` (a warning when `get_page` takes a CMA page;
//! `get_page_short`, Peter Zijlstra's annotated variant, is exempt) and `pin_duration_warn`
//! (Dave Hansen's proposal: `put_page` warns when a hold lasted past a threshold).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::error::{misuse, MmError, MmResult};
use crate::event::EventKind;
use crate::gfp::Gfp;
use crate::migrate::MigrateMode;
use crate::owner::OwnerId;
use crate::page::{pg, Kind};
use crate::pageblock::Migratetype;
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::zone::ZoneId;
use crate::Machine;

pub const GUP_PIN_COUNTING_BIAS: u32 = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// `get_page`: a plain reference (I/O in flight, a driver holding the page).
    Ref,
    /// `get_page_short`: a reference annotated as brief (exempt from `warn_cma_pins`).
    RefShort,
    /// `pin_user_pages` (FOLL_PIN): direct I/O and other short DMA.
    Pin,
    /// `pin_user_pages(FOLL_LONGTERM)`: RDMA, vfio, io_uring fixed buffers.
    LongtermPin,
}

impl HoldKind {
    pub fn name(self) -> &'static str {
        match self {
            HoldKind::Ref => "get_page",
            HoldKind::RefShort => "get_page_short",
            HoldKind::Pin => "FOLL_PIN",
            HoldKind::LongtermPin => "FOLL_LONGTERM",
        }
    }

    pub fn parse(s: &str) -> MmResult<HoldKind> {
        match s {
            "get_page" | "ref" => Ok(HoldKind::Ref),
            "get_page_short" | "ref_short" => Ok(HoldKind::RefShort),
            "pin" | "FOLL_PIN" => Ok(HoldKind::Pin),
            "longterm" | "FOLL_LONGTERM" => Ok(HoldKind::LongtermPin),
            _ => misuse(format!(
                "unknown hold kind {s:?}: use get_page, get_page_short, pin or longterm"
            )),
        }
    }

    pub fn is_pin(self) -> bool {
        matches!(self, HoldKind::Pin | HoldKind::LongtermPin)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    pub pfn: Pfn,
    pub holder: OwnerId,
    pub kind: HoldKind,
    pub since: u64,
}

/// One hold as a report shows it (`Machine::holds_on`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldInfo {
    pub id: u64,
    /// The holder's owner name.
    pub holder: String,
    /// `HoldKind::name`: `get_page`, `get_page_short`, `FOLL_PIN`, `FOLL_LONGTERM`.
    pub kind: &'static str,
    pub since_ns: u64,
}

/// The holds by id. Ids are handed out in order (1, 2, ...) and most holds live a few
/// milliseconds (a pin-heavy load takes and drops tens of thousands a second), so the recent
/// ones sit in a window indexed by id: taking and dropping a hold is a push and a store, no
/// hashing. A hold still live when the window has grown well past the live holds behind it
/// (a mount's superblock buffers, a long-term pin) moves to a map of its own, so the window
/// stays a few times the live holds long. Whatever lists holds lists them in id order, oldest
/// first, as an ordered map would (`iter`, `keys`, `values`).
#[derive(Clone, Debug, Default)]
pub struct HoldTable {
    /// Holds `base..base + recent.len()` (with their ids) by `id - base`; `None` once
    /// released.
    recent: VecDeque<Option<(u64, Hold)>>,
    base: u64,
    /// The live holds in `recent`.
    recent_live: usize,
    /// Live holds older than `base`.
    old: FxHashMap<u64, Hold>,
}

impl HoldTable {
    /// The window may be this many times the live holds in it (plus `WINDOW_SLACK`).
    const WINDOW_PER_LIVE: usize = 4;
    const WINDOW_SLACK: usize = 64;

    /// Add hold `id`, the next id after the last one added.
    #[inline]
    fn insert(&mut self, id: u64, hold: Hold) {
        if self.recent.is_empty() {
            self.base = id;
        }
        debug_assert_eq!(id, self.base + self.recent.len() as u64);
        self.recent.push_back(Some((id, hold)));
        self.recent_live += 1;
        self.trim();
    }

    #[inline]
    fn remove(&mut self, id: u64) -> Option<Hold> {
        if id < self.base {
            return self.old.remove(&id);
        }
        let (_, hold) = self.recent.get_mut((id - self.base) as usize)?.take()?;
        self.recent_live -= 1;
        self.trim();
        Some(hold)
    }

    /// Drop released holds from the front of the window, and move live ones to `old` while
    /// the window is too long for the holds it keeps.
    #[inline]
    fn trim(&mut self) {
        while let Some(front) = self.recent.front() {
            match front {
                None => {}
                Some((id, hold)) => {
                    let bound = Self::WINDOW_PER_LIVE * self.recent_live + Self::WINDOW_SLACK;
                    if self.recent.len() <= bound {
                        return;
                    }
                    self.old.insert(*id, *hold);
                    self.recent_live -= 1;
                }
            }
            self.recent.pop_front();
            self.base += 1;
        }
    }

    #[inline]
    pub fn get(&self, id: &u64) -> Option<&Hold> {
        if *id < self.base {
            return self.old.get(id);
        }
        self.recent
            .get((id - self.base) as usize)?
            .as_ref()
            .map(|(_, h)| h)
    }

    pub fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }

    /// The holds, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Hold)> {
        let mut old: Vec<(&u64, &Hold)> = self.old.iter().collect();
        old.sort_unstable_by_key(|(id, _)| **id);
        let recent = self
            .recent
            .iter()
            .filter_map(|e| e.as_ref().map(|(id, h)| (id, h)));
        old.into_iter().chain(recent)
    }

    /// The ids, in order.
    pub fn keys(&self) -> impl Iterator<Item = &u64> {
        self.iter().map(|(id, _)| id)
    }

    /// The holds, in id order.
    pub fn values(&self) -> impl Iterator<Item = &Hold> {
        self.iter().map(|(_, h)| h)
    }

    pub fn len(&self) -> usize {
        self.recent_live + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::ops::Index<&u64> for HoldTable {
    type Output = Hold;
    #[inline]
    fn index(&self, id: &u64) -> &Hold {
        self.get(id).expect("no hold with this id")
    }
}

/// `Holds::by_pfn`'s value for a page held more than once: its first hold's id has this bit,
/// and the others are in `Holds::more`.
const MORE: u64 = 1 << 63;

/// `Holds::remove` on a page held more than once (`first` is its `by_pfn` entry, `more` the
/// table of the other holds).
#[cold]
fn remove_shared(more: &mut FxHashMap<Pfn, Vec<u64>>, pfn: Pfn, first: &mut u64, id: u64) {
    let rest = more.get_mut(&pfn).expect("a page held more than once");
    if *first & !MORE == id {
        *first = rest.remove(0) | MORE;
    } else {
        rest.retain(|&i| i != id);
    }
    if rest.is_empty() {
        more.remove(&pfn);
        *first &= !MORE;
    }
}

#[derive(Clone, Debug, Default)]
pub struct Holds {
    pub by_id: HoldTable,
    /// The held pages (exactly the pages with `PG_extra`), each with the id of its oldest
    /// hold; with `MORE` set, the page has more, in `more` (oldest first). Nearly every held
    /// page is held once: an entry is then a pfn and an id.
    pub by_pfn: FxHashMap<Pfn, u64>,
    more: FxHashMap<Pfn, Vec<u64>>,
    next_id: u64,
    /// Holds released together by one event.
    groups: FxHashMap<u64, Vec<u64>>,
    next_group: u64,
}

impl Holds {
    #[inline]
    fn add(&mut self, hold: Hold) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.by_id.insert(id, hold);
        match self.by_pfn.entry(hold.pfn) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                *e.get_mut() |= MORE;
                self.more.entry(hold.pfn).or_default().push(id);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
        }
        id
    }

    fn add_group(&mut self, ids: Vec<u64>) -> u64 {
        self.next_group += 1;
        self.groups.insert(self.next_group, ids);
        self.next_group
    }

    fn take_group(&mut self, group: u64) -> Vec<u64> {
        self.groups.remove(&group).unwrap_or_default()
    }

    /// Drop hold `id`: the hold, and whether its page is still held by others.
    #[inline]
    fn remove(&mut self, id: u64) -> Option<(Hold, bool)> {
        let hold = self.by_id.remove(id)?;
        let std::collections::hash_map::Entry::Occupied(mut first) = self.by_pfn.entry(hold.pfn)
        else {
            unreachable!("hold {id} is not indexed by its pfn");
        };
        if *first.get() == id {
            first.remove();
            return Some((hold, false));
        }
        remove_shared(&mut self.more, hold.pfn, first.get_mut(), id);
        Some((hold, true))
    }

    /// The ids of the holds on a page, oldest first.
    pub fn ids_on(&self, pfn: Pfn) -> impl Iterator<Item = u64> + '_ {
        let first = self.by_pfn.get(&pfn).copied();
        let rest = first
            .filter(|f| f & MORE != 0)
            .and_then(|_| self.more.get(&pfn))
            .into_iter()
            .flatten()
            .copied();
        first.map(|f| f & !MORE).into_iter().chain(rest)
    }

    /// The holds on a page, oldest first.
    pub fn on_page(&self, pfn: Pfn) -> impl Iterator<Item = &Hold> {
        self.ids_on(pfn).map(move |id| &self.by_id[&id])
    }

    /// `page_ref_count` less the owner's own reference.
    pub fn extra_refcount(&self, pfn: Pfn) -> u32 {
        self.on_page(pfn)
            .map(|h| {
                if h.kind.is_pin() {
                    GUP_PIN_COUNTING_BIAS
                } else {
                    1
                }
            })
            .sum()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl Machine {
    /// The head of the compound page holding `pfn`, which must be in use.
    pub(crate) fn in_use_head(&self, pfn: Pfn) -> MmResult<Pfn> {
        let Some(page) = self.pages.get(pfn.idx()) else {
            return misuse(format!("pfn {pfn:#x} is beyond the end of memory"));
        };
        match page.kind() {
            Kind::Tail => Ok(page.head()),
            k if k.is_free() => misuse(format!("pfn {pfn:#x} is free: it cannot be referenced")),
            Kind::Reserved => misuse(format!("pfn {pfn:#x} is reserved boot memory")),
            _ => Ok(pfn),
        }
    }

    pub(crate) fn in_cma_pageblock(&self, pfn: Pfn) -> bool {
        self.pageblocks.get(pfn) == Migratetype::Cma || self.cma.iter().any(|a| a.contains(pfn))
    }

    /// Take a hold on `pfn` for `holder`; with `duration`, drop it automatically then.
    /// Pins may first migrate the page out of CMA (the policy's fixes), in which case the
    /// returned pfn differs from the one asked for.
    pub fn take_hold(
        &mut self,
        pfn: Pfn,
        holder: OwnerId,
        kind: HoldKind,
        duration: Option<u64>,
    ) -> MmResult<(u64, Pfn)> {
        let mut head = self.in_use_head(pfn)?;
        if self.pages[head].kind() == Kind::Cache {
            return misuse(format!(
                "pfn {head:#x} is a gcma cache page: only the cleancache backend touches it"
            ));
        }
        if kind.is_pin() {
            head = self.migrate_before_pin(head, holder, kind)?;
        }
        if matches!(kind, HoldKind::Ref)
            && self.cfg.policy.warn_cma_pins
            && self.in_cma_pageblock(head)
        {
            let msg = format!(
                "cma: get_page() on CMA page pfn {:#x} by {} (owner {}): use get_page_short() \
                 for brief references",
                head,
                self.owners.name(holder),
                self.owners.name(self.pages[head].owner)
            );
            self.dmesg.printk(self.now, &msg);
        }
        let id = self.holds.add(crate::gup::Hold {
            pfn: head,
            holder,
            kind,
            since: self.now,
        });
        self.pages[head].set(pg::EXTRA);
        if kind.is_pin() {
            self.vmstat.inc(Counter::NrFollPinAcquired);
        }
        if let Some(d) = duration {
            self.events
                .schedule(self.now + d, EventKind::ReleaseHold(id));
        }
        Ok((id, head))
    }

    /// The fixes that move a page out before a pin (SPEC §3). Returns where the page is
    /// pinned.
    ///
    /// `migrate_on_longterm_pin` reproduces `check_and_migrate_movable_folios` (6.x): a
    /// FOLL_LONGTERM pin of a folio in CMA or ZONE_MOVABLE (`folio_is_longterm_pinnable`)
    /// unpins, migrates it with `GFP_USER` in a `memalloc_pin_save` scope (no CMA, no
    /// ZONE_MOVABLE) in MIGRATE_SYNC mode, and pins again; if `migrate_pages` fails the pin
    /// fails with -ENOMEM. The time (copy, waiting for writeback) is the pinner's.
    /// Simplified: one synchronous attempt instead of `migrate_pages`' ten passes (a page
    /// with extra references does not lose them within the passes' microseconds).
    ///
    /// `migrate_on_pin` (Mel Gorman, LSFMM 2015) does the same for every FOLL_PIN pin of a
    /// CMA page, long-term or not, but as a best effort: a short pin (direct I/O) whose page
    /// cannot move is taken in place rather than failing the I/O.
    ///
    /// A folio that is isolated right now (a contiguous allocation is migrating it) cannot be
    /// isolated again (`folio_isolate_lru` fails), so the kernel pins it in place: so do we.
    fn migrate_before_pin(&mut self, head: Pfn, holder: OwnerId, kind: HoldKind) -> MmResult<Pfn> {
        let policy = &self.cfg.policy;
        let fix_applies = policy.migrate_on_pin
            || (kind == HoldKind::LongtermPin && policy.migrate_on_longterm_pin);
        if !fix_applies {
            // Neither fix applies to this pin: nothing to look up.
            return Ok(head);
        }
        let page = self.pages[head];
        if !page.kind().is_movable_kind() || page.test(pg::ISOLATED) {
            return Ok(head);
        }
        let in_movable_zone = self.zones[self.zone_idx(head)].id != ZoneId::Normal;
        let in_cma = self.in_cma_pageblock(head);
        let longterm_fix = kind == HoldKind::LongtermPin
            && policy.migrate_on_longterm_pin
            && (in_cma || in_movable_zone);
        let every_pin_fix = policy.migrate_on_pin && in_cma;
        if !longterm_fix && !every_pin_fix {
            return Ok(head);
        }
        let cpu = self.owners.cpu(holder);
        let gfp = Gfp::HIGHUSER_MOVABLE.pinned();
        // MIGRATE_SYNC waits for writeback; `migrate_folio` charges the wait.
        match self.migrate_folio(head, MigrateMode::Sync, gfp, cpu, true) {
            Ok(new) => {
                self.vmstat.inc(Counter::PinMigrations);
                Ok(new)
            }
            Err(e) => {
                self.vmstat.inc(Counter::PinMigrationFail);
                if !longterm_fix {
                    return Ok(head);
                }
                Err(MmError::OutOfMemory(format!(
                    "FOLL_LONGTERM pin of pfn {head:#x} by {} failed with -ENOMEM: the page \
                     could not be migrated out of CMA/ZONE_MOVABLE ({e:?})",
                    self.owners.name(holder)
                )))
            }
        }
    }

    /// Drop a hold (`put_page` / `unpin_user_page`). With `pin_duration_warn`, a hold that
    /// lasted past the threshold on a CMA page is reported with its holder.
    pub fn release_hold(&mut self, id: u64) -> MmResult<Hold> {
        match self.unhold(id) {
            Some(hold) => Ok(hold),
            None => misuse(format!(
                "hold {id} is not held: it was already released (put_page/unpin twice?)"
            )),
        }
    }

    /// `release_hold`, for the event loop: the hold is not returned (so nothing is built
    /// for it), and a hold released early by hand has nothing left to release.
    #[inline(always)]
    fn unhold(&mut self, id: u64) -> Option<Hold> {
        let (hold, still_held) = self.holds.remove(id)?;
        if !still_held {
            self.pages[hold.pfn].clear(pg::EXTRA);
        }
        if hold.kind.is_pin() {
            self.vmstat.inc(Counter::NrFollPinReleased);
        }
        if let Some(threshold) = self.cfg.policy.pin_duration_warn_ns {
            self.warn_long_hold(&hold, threshold);
        }
        Some(hold)
    }

    /// `pin_duration_warn`: report a hold on a CMA page that lasted past `threshold`.
    fn warn_long_hold(&mut self, hold: &Hold, threshold: u64) {
        let held = self.now - hold.since;
        if held > threshold && self.in_cma_pageblock(hold.pfn) {
            let msg = format!(
                "cma: {} held CMA page pfn {:#x} ({}'s) for {} ms (> {} ms) via {}",
                self.owners.name(hold.holder),
                hold.pfn,
                self.owners.name(self.pages[hold.pfn].owner),
                held / 1_000_000,
                threshold / 1_000_000,
                hold.kind.name()
            );
            self.dmesg.printk(self.now, &msg);
        }
    }

    pub(crate) fn release_hold_event(&mut self, id: u64) {
        // A hold released early by hand has nothing left to release.
        self.unhold(id);
    }

    /// Release `ids` together at `at`: one event for all the pages of an I/O, as a bio's
    /// completion unpins all its pages (`bio_release_pages`).
    pub fn release_holds_at(&mut self, ids: Vec<u64>, at: u64) {
        let group = self.holds.add_group(ids);
        self.events.schedule(at, EventKind::ReleaseHolds(group));
    }

    pub(crate) fn release_hold_group(&mut self, group: u64) {
        for id in self.holds.take_group(group) {
            self.release_hold_event(id);
        }
    }

    /// The holds on `pfn` (a head page), oldest first, with their holders' names; none for
    /// a frame nobody holds (or beyond the end of memory).
    pub fn holds_on(&self, pfn: Pfn) -> Vec<HoldInfo> {
        let ids = self.holds.ids_on(pfn);
        ids.map(|id| {
            let h = &self.holds.by_id[&id];
            HoldInfo {
                id,
                holder: self.owners.name(h.holder).to_string(),
                kind: h.kind.name(),
                since_ns: h.since,
            }
        })
        .collect()
    }

    /// `take_hold` called from outside the event loop (the Python API): the hold, the pfn
    /// held (a fix may have migrated the page first) and the virtual time the caller was
    /// charged for it (ns). The charge is taken whether or not the hold succeeds.
    pub fn take_hold_timed(
        &mut self,
        pfn: Pfn,
        holder: OwnerId,
        kind: HoldKind,
        duration: Option<u64>,
    ) -> MmResult<(u64, Pfn, u64)> {
        let held = self.take_hold(pfn, holder, kind, duration);
        let cost = self.take_charge();
        held.map(|(id, pfn)| (id, pfn, cost))
    }

    /// Total pins (not plain references) on `pfn`.
    pub fn pin_count(&self, pfn: Pfn) -> u32 {
        self.holds.on_page(pfn).filter(|h| h.kind.is_pin()).count() as u32
    }
}
