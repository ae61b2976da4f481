//! shmem/tmpfs pages (`mm/shmem.c`), as Linux 6.1 has them.
//!
//! Reproduced (6.1):
//! - a tmpfs file's pages are page cache (`shmem_add_to_page_cache`: `NR_FILE_PAGES` and
//!   `NR_SHMEM`, so `Cached` and `Shmem` in `/proc/meminfo`), allocated on the first write
//!   (`shmem_get_folio(SGP_WRITE)`) with the mapping's `GFP_HIGHUSER_MOVABLE`, so they may sit
//!   in CMA pageblocks;
//! - they are swap-backed (`folio_set_swapbacked`): on the anonymous LRU lists (`Active(anon)`,
//!   `Inactive(anon)`), reclaimed only by writing them to swap (`shmem_writepage`), never
//!   while swap is full or absent, and not counted in `MemAvailable` (which counts the file
//!   LRU); a swapped-out page comes back when read or written again (`shmem_swapin_folio`:
//!   `pswpin`, `workingset_refault_anon`, no page fault);
//! - PG_dirty without dirty accounting (`noop_dirty_folio`: `Dirty` does not count them, the
//!   flusher never writes them);
//! - migratable (`shmem_aops.migrate_folio = migrate_folio`): a contiguous allocation moves
//!   them like anonymous pages;
//! - a read of a hole (a page never written) allocates nothing and reads zeros (`SGP_READ`).
//!
//! Not reproduced: the file's size limit (`size=` of the mount: the workload's spec bounds
//! it), huge pages (`shmem_enabled`), swap readahead, `SHM_LOCK`, mmap of the file (no
//! `Mapped`, no `shmem-rss`: a tmpfs file read and written through syscalls belongs to no
//! process, so the OOM killer never chooses it, and killing a process does not free it).

use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::memory::Access;
use crate::owner::{pfn_slot, OwnerId, SLOT_EMPTY};
use crate::page::Kind;
use crate::pfn::Pfn;
use crate::Machine;

impl Machine {
    /// Make `owner`'s mapping a tmpfs file of `pages` pages (no page allocated yet).
    pub(crate) fn shmem_file_setup(&mut self, owner: OwnerId, pages: u32) {
        self.owners.list[owner as usize].shmem = true;
        self.reserve_slots(owner, pages);
    }

    /// `write()` of page `index` of a tmpfs file: `shmem_get_folio(SGP_WRITE)`, allocating
    /// the page on first write (a whole page is written: nothing to clear or read), then
    /// dirtying it.
    pub(crate) fn shmem_write(&mut self, owner: OwnerId, index: u32) -> MmResult<(Pfn, Access)> {
        let slot = self.owners.list[owner as usize].map[index as usize];
        if slot != SLOT_EMPTY {
            return self.access_owned(owner, index, true);
        }
        let pfn = self.alloc_for_slot(owner, Gfp::HIGHUSER_MOVABLE, 0, Kind::Shmem, index)?;
        self.owners.list[owner as usize].map[index as usize] = pfn_slot(pfn);
        let pfn = self.set_page_dirty(pfn);
        Ok((pfn, Access::Populated))
    }

    /// `read()` of page `index` of a tmpfs file (`shmem_file_read_iter`): `None` for a hole,
    /// which reads as zeros without a page.
    pub(crate) fn shmem_read(
        &mut self,
        owner: OwnerId,
        index: u32,
    ) -> MmResult<Option<(Pfn, Access)>> {
        let slot = self.owners.list[owner as usize].map[index as usize];
        if slot == SLOT_EMPTY {
            return Ok(None);
        }
        self.access_owned(owner, index, false).map(Some)
    }
}
