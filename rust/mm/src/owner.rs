//! Owners: who a page belongs to (a workload, a device, a name given from Python), and each
//! owner's mapping from its own page indices (file offsets, virtual pages) to frames: the
//! role of `page->mapping` + `page->index` and of the page tables/page cache xarray.
//!
//! A slot holds a pfn while the page is resident; otherwise a marker saying why it is not,
//! which is how refaults and swap-ins are recognised (the kernel's shadow entries and swap
//! entries).

use rustc_hash::FxHashMap;

use crate::error::{misuse, MmResult};
use crate::pfn::Pfn;

/// Slot never populated, or freed.
pub const SLOT_EMPTY: u32 = u32::MAX;
/// A file page that was reclaimed: reading it again is a refault (a shadow entry).
pub const SLOT_EVICTED: u32 = u32::MAX - 1;
/// An anonymous page that was swapped out (a swap entry).
pub const SLOT_SWAPPED: u32 = u32::MAX - 2;
/// Bit 31 set and below the markers above: the page is kept in the gcma cleancache at the
/// pfn in the low bits.
pub const SLOT_CACHED: u32 = 1 << 31;

/// Whether the slot holds a resident page (its pfn).
#[inline]
pub fn slot_is_resident(slot: u32) -> bool {
    slot & SLOT_CACHED == 0
}

/// The frame of a resident page's slot (`slot_is_resident`).
#[inline(always)]
pub fn slot_pfn(slot: u32) -> Pfn {
    debug_assert!(slot_is_resident(slot));
    Pfn(slot)
}

/// The slot of a page resident at `pfn`.
#[inline(always)]
pub fn pfn_slot(pfn: Pfn) -> u32 {
    pfn.0
}

/// The slot of a page whose only copy is the gcma cache page at `pfn`.
#[inline]
pub fn cached_slot(pfn: Pfn) -> u32 {
    SLOT_CACHED | pfn.0
}

/// The gcma cache page a slot points at, if it is a cached slot.
#[inline]
pub fn slot_cached_pfn(slot: u32) -> Option<Pfn> {
    (slot & SLOT_CACHED != 0 && slot < SLOT_SWAPPED).then_some(Pfn(slot & !SLOT_CACHED))
}

pub type OwnerId = u16;
/// Owner 0 is "nobody" (free pages); owner 1 is the kernel itself (boot memory).
pub const OWNER_NONE: OwnerId = 0;
pub const OWNER_KERNEL: OwnerId = 1;

#[derive(Clone, Debug)]
pub struct Owner {
    pub name: String,
    /// The CPU the owner runs on: its per-CPU lists and its trace lines.
    pub cpu: u32,
    pub map: Vec<u32>,
    /// `VM_LOCKED` on the owner's whole mapping (`mlock.rs`): its user pages are mlocked
    /// and unevictable.
    pub vm_locked: bool,
    /// The mapping is a shmem/tmpfs file (`shmem.rs`): its swapped-out pages come back as
    /// shmem pages. An owner is a tmpfs file or an address space, not both.
    pub shmem: bool,
}

#[derive(Clone, Debug)]
pub struct Owners {
    pub list: Vec<Owner>,
    by_name: FxHashMap<String, OwnerId>,
    cpus: u32,
}

impl Owners {
    pub fn new(cpus: u32) -> Self {
        let mut owners = Owners {
            list: Vec::new(),
            by_name: FxHashMap::default(),
            cpus,
        };
        owners.intern("-").expect("first owner");
        owners.intern("kernel").expect("second owner");
        owners
    }

    /// The id of `name`, registering it on first use.
    pub fn intern(&mut self, name: &str) -> MmResult<OwnerId> {
        if let Some(&id) = self.by_name.get(name) {
            return Ok(id);
        }
        if name.is_empty() {
            return misuse("an owner name must not be empty");
        }
        if self.list.len() >= u16::MAX as usize {
            return misuse("too many owners (65535): reuse owner names");
        }
        let id = self.list.len() as OwnerId;
        // Spread owners over the CPUs, the kernel task itself on CPU 0.
        let cpu = (id as u32).saturating_sub(1) % self.cpus;
        self.list.push(Owner {
            name: name.to_string(),
            cpu,
            map: Vec::new(),
            vm_locked: false,
            shmem: false,
        });
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    /// `id`, if it names an owner: the binding checks every id it is given.
    pub fn check(&self, id: OwnerId) -> MmResult<OwnerId> {
        if (id as usize) < self.list.len() {
            Ok(id)
        } else {
            misuse(format!(
                "owner #{id} does not exist: get an id from owner(name)"
            ))
        }
    }

    pub fn lookup(&self, name: &str) -> MmResult<OwnerId> {
        match self.by_name.get(name) {
            Some(&id) => Ok(id),
            None => misuse(format!("no owner named {name:?} has allocated anything")),
        }
    }

    #[inline]
    pub fn name(&self, id: OwnerId) -> &str {
        &self.list[id as usize].name
    }

    #[inline]
    pub fn cpu(&self, id: OwnerId) -> u32 {
        self.list[id as usize].cpu
    }

    /// Pid shown in trace lines: stable per owner.
    pub fn pid(&self, id: OwnerId) -> u32 {
        if id <= OWNER_KERNEL {
            0
        } else {
            1000 + id as u32
        }
    }
}
