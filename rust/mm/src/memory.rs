//! User memory on behalf of owners (`mm/memory.c`, `mm/filemap.c`): allocating pages into
//! an owner's mapping, touching them (faults, refaults, swap-ins, cleancache hits), dirtying
//! and freeing them. Background workloads and the Python API both go through here.

use crate::error::{misuse, MmError, MmResult};
use crate::gfp::Gfp;
use crate::owner::{
    pfn_slot, slot_cached_pfn, slot_is_resident, slot_pfn, OwnerId, SLOT_EMPTY, SLOT_EVICTED,
    SLOT_SWAPPED,
};
use crate::page::{pg, Kind};
use crate::page_alloc::AllocRequest;
use crate::pfn::Pfn;
use crate::vmstat::Counter;
use crate::Machine;

/// What an access found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The page was resident.
    Hit,
    /// First touch: a new page (a minor fault, or a first read from storage for file pages).
    Populated,
    /// A file page read again after reclaim dropped it.
    Refault,
    /// An anonymous page read back from swap.
    SwapIn,
    /// A file page found in the gcma cleancache.
    CleancacheHit,
}

impl Machine {
    fn owner_slot(&self, owner: OwnerId, index: u32) -> MmResult<u32> {
        let o = self
            .owners
            .list
            .get(owner as usize)
            .ok_or_else(|| MmError::Misuse(format!("owner #{owner} does not exist")))?;
        match o.map.get(index as usize) {
            Some(&slot) if slot != SLOT_EMPTY => Ok(slot),
            _ => misuse(format!(
                "{} has no page at index {index}: it was never allocated or was freed",
                o.name
            )),
        }
    }

    /// The frame holding `owner`'s page `index`, if resident.
    pub fn owned_pfn(&self, owner: OwnerId, index: u32) -> MmResult<Option<Pfn>> {
        let slot = self.owner_slot(owner, index)?;
        Ok(slot_is_resident(slot).then(|| slot_pfn(slot)))
    }

    /// Allocate a page (block of 2^order pages) for `owner` at a new index of its mapping.
    pub fn alloc_owned(
        &mut self,
        owner: OwnerId,
        gfp: Gfp,
        order: u32,
        kind: Kind,
    ) -> MmResult<u32> {
        if order > crate::config::MAX_PAGE_ORDER {
            return misuse(format!("order {order} is above MAX_PAGE_ORDER (10)"));
        }
        if !matches!(kind, Kind::Anon | Kind::File | Kind::Kernel) {
            return misuse(format!(
                "pages of kind {:?} cannot be allocated directly: use anon, file or kernel",
                kind.name()
            ));
        }
        if kind.is_movable_kind() != (gfp.migratetype == crate::pageblock::Migratetype::Movable)
            && kind != Kind::File
        {
            return misuse(format!(
                "a {} page needs a {} gfp mask",
                kind.name(),
                if kind.is_movable_kind() {
                    "movable (GFP_HIGHUSER_MOVABLE)"
                } else {
                    "non-movable (GFP_KERNEL)"
                }
            ));
        }
        let index = self.owners.list[owner as usize].map.len() as u32;
        let pfn = self.alloc_for_slot(owner, gfp, order, kind, index)?;
        self.owners.list[owner as usize].map.push(pfn_slot(pfn));
        Ok(index)
    }

    /// `alloc_owned` called from outside the event loop (the Python API): the call takes no
    /// virtual time, so what it would charge its caller (direct reclaim) is dropped.
    pub fn alloc_owned_uncharged(
        &mut self,
        owner: OwnerId,
        gfp: Gfp,
        order: u32,
        kind: Kind,
    ) -> MmResult<u32> {
        let index = self.alloc_owned(owner, gfp, order, kind);
        self.take_charge();
        index
    }

    /// `free_owned` called from outside the event loop: its charge is dropped.
    pub fn free_owned_uncharged(&mut self, owner: OwnerId, index: u32) -> MmResult<()> {
        let freed = self.free_owned(owner, index);
        self.take_charge();
        freed
    }

    /// Allocate and prepare a page for `owner`'s slot `index`, putting user memory on the
    /// LRU. Does not touch the mapping.
    pub(crate) fn alloc_for_slot(
        &mut self,
        owner: OwnerId,
        gfp: Gfp,
        order: u32,
        kind: Kind,
        index: u32,
    ) -> MmResult<Pfn> {
        let cpu = self.owners.cpu(owner);
        let req = AllocRequest {
            order,
            gfp,
            owner,
            cpu,
        };
        let pfn = self.alloc_prepared(&req, kind, index).map_err(|_| {
            MmError::OutOfMemory(format!(
                "order-{order} allocation for {} failed (-ENOMEM) even after reclaim",
                self.owners.name(owner)
            ))
        })?;
        if kind.is_movable_kind() {
            self.lru_add(pfn);
            self.account_page_mapped(pfn, kind, order);
        }
        Ok(pfn)
    }

    /// Free `owner`'s page `index`. A pinned, referenced or under-writeback page cannot be
    /// freed: release the holds or wait for writeback first.
    pub fn free_owned(&mut self, owner: OwnerId, index: u32) -> MmResult<()> {
        let slot = self.owner_slot(owner, index)?;
        if !slot_is_resident(slot) {
            if let Some(cache_pfn) = slot_cached_pfn(slot) {
                // A frontswap copy shadows a swap slot, which is freed with it.
                if self.cleancache_invalidate(cache_pfn) {
                    self.writeback.swap_used -= 1;
                }
            }
            if slot == SLOT_SWAPPED {
                self.writeback.swap_used -= 1;
            }
            self.owners.list[owner as usize].map[index as usize] = SLOT_EMPTY;
            return Ok(());
        }
        let pfn = slot_pfn(slot);
        let page = self.pages[pfn];
        if page.test(pg::EXTRA) {
            let holders: Vec<String> = self
                .holds
                .on_page(pfn)
                .map(|h| format!("{} ({})", self.owners.name(h.holder), h.kind.name()))
                .collect();
            return misuse(format!(
                "{}'s page {index} (pfn {pfn:#x}) is still held by {}: release it first",
                self.owners.name(owner),
                holders.join(", ")
            ));
        }
        if page.test(pg::WRITEBACK) {
            return misuse(format!(
                "{}'s page {index} (pfn {pfn:#x}) is under writeback: run the machine until \
                 it completes",
                self.owners.name(owner)
            ));
        }
        self.account_page_unmapped(pfn);
        if page.test(pg::LRU) {
            self.lru_del(pfn);
        }
        self.clear_dirty_accounting(pfn);
        self.owners.list[owner as usize].map[index as usize] = SLOT_EMPTY;
        let cpu = self.owners.cpu(owner);
        self.free_pages(pfn, page.order(), cpu);
        Ok(())
    }

    /// Access `owner`'s page `index` (reading, or writing with `write`), faulting it back
    /// in when it was reclaimed. Storage time is charged to `self.charge`.
    pub fn access_owned(
        &mut self,
        owner: OwnerId,
        index: u32,
        write: bool,
    ) -> MmResult<(Pfn, Access)> {
        let slot = self.owner_slot(owner, index)?;
        let (pfn, how) = if slot_is_resident(slot) {
            let pfn = slot_pfn(slot);
            self.mark_page_accessed(pfn);
            (pfn, Access::Hit)
        } else {
            self.fault_in(owner, index, slot)?
        };
        let pfn = if write { self.set_page_dirty(pfn) } else { pfn };
        Ok((pfn, how))
    }

    /// `access_owned` called from outside the event loop: the frame, what the access found
    /// and the virtual time it cost the caller (ns: storage reads, migration on first dirty).
    pub fn access_owned_timed(
        &mut self,
        owner: OwnerId,
        index: u32,
        write: bool,
    ) -> MmResult<(Pfn, Access, u64)> {
        let (pfn, how) = self.access_owned(owner, index, write)?;
        Ok((pfn, how, self.take_charge()))
    }

    /// Bring a non-resident page back: a refault, a swap-in or a cleancache hit.
    fn fault_in(&mut self, owner: OwnerId, index: u32, slot: u32) -> MmResult<(Pfn, Access)> {
        let anon = match slot_cached_pfn(slot) {
            Some(cache_pfn) => self.gcma_is_frontswap(cache_pfn),
            None => slot == SLOT_SWAPPED,
        };
        let shmem = self.owners.list[owner as usize].shmem;
        let kind = match (anon, shmem) {
            (true, true) => Kind::Shmem,
            (true, false) => Kind::Anon,
            (false, _) => Kind::File,
        };
        let pfn = self.alloc_for_slot(owner, Gfp::HIGHUSER_MOVABLE, 0, kind, index)?;
        // Reclaim for that allocation may have evicted the cache copy: look again.
        let slot = self.owners.list[owner as usize].map[index as usize];
        let how = if let Some(cache_pfn) = slot_cached_pfn(slot) {
            if anon {
                // frontswap_load: the swap slot is freed as on any swap-in (no pswpin: the
                // page does not come from the device).
                self.writeback.swap_used -= 1;
            }
            self.cleancache_get(cache_pfn);
            Access::CleancacheHit
        } else if anon {
            self.writeback.swap_used -= 1;
            self.vmstat.inc(Counter::Pswpin);
            if !shmem {
                // A shmem page comes back through read()/write() (`shmem_swapin_folio`
                // without a fault), not a page fault.
                self.vmstat.inc(Counter::Pgmajfault);
            }
            self.vmstat.inc(Counter::WorkingsetRefaultAnon);
            self.charge += self.storage_read(1);
            Access::SwapIn
        } else {
            debug_assert_eq!(slot, SLOT_EVICTED);
            self.vmstat.inc(Counter::WorkingsetRefaultFile);
            self.vmstat.inc(Counter::Pgmajfault);
            self.charge += self.storage_read(1);
            Access::Refault
        };
        self.owners.list[owner as usize].map[index as usize] = pfn_slot(pfn);
        Ok((pfn, how))
    }

    /// Make sure the owner's mapping has `len` slots (a file of `len` pages).
    pub(crate) fn reserve_slots(&mut self, owner: OwnerId, len: u32) {
        let map = &mut self.owners.list[owner as usize].map;
        if map.len() < len as usize {
            map.resize(len as usize, SLOT_EMPTY);
        }
    }

    /// Read or write page `index` of a file-like mapping, populating it on first use
    /// (`filemap_read` / a write fault). Used by workloads whose slots start empty.
    pub(crate) fn touch_slot(
        &mut self,
        owner: OwnerId,
        index: u32,
        gfp: Gfp,
        kind: Kind,
        write: bool,
    ) -> MmResult<(Pfn, Access)> {
        let slot = self.owners.list[owner as usize].map[index as usize];
        if slot != SLOT_EMPTY {
            return self.access_owned(owner, index, write);
        }
        let pfn = self.alloc_for_slot(owner, gfp, 0, kind, index)?;
        self.owners.list[owner as usize].map[index as usize] = pfn_slot(pfn);
        if kind == Kind::File && !write {
            self.charge += self.storage_read(1);
        } else {
            self.vmstat.inc(Counter::Pgfault);
        }
        let pfn = if write { self.set_page_dirty(pfn) } else { pfn };
        Ok((pfn, Access::Populated))
    }

    /// Start writeback of `owner`'s dirty page `index` now; returns when it completes.
    pub fn writeback_owned(&mut self, owner: OwnerId, index: u32) -> MmResult<u64> {
        let Some(pfn) = self.owned_pfn(owner, index)? else {
            return misuse(format!(
                "page {index} of {} is not resident",
                self.owners.name(owner)
            ));
        };
        if !self.pages[pfn].test(pg::DIRTY) {
            return misuse(format!(
                "page {index} (pfn {pfn:#x}) is clean: dirty it (access with write) first"
            ));
        }
        Ok(self.writeback_pages(&[pfn]))
    }
}
