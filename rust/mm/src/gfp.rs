//! GFP masks (`include/linux/gfp_types.h`), reduced to what placement needs: the
//! migratetype a request maps to (`gfp_migratetype`), the highest zone it may use
//! (`gfp_zone`), and how hard it may try (direct reclaim, waking kswapd).

use crate::error::{misuse, MmResult};
use crate::pageblock::Migratetype;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gfp {
    pub migratetype: Migratetype,
    /// `__GFP_HIGHMEM` with `__GFP_MOVABLE`: may use ZONE_MOVABLE / ZONE_CMA.
    pub highmem: bool,
    /// `__GFP_DIRECT_RECLAIM`.
    pub direct_reclaim: bool,
    /// `__GFP_KSWAPD_RECLAIM`.
    pub kswapd_reclaim: bool,
    /// `PF_MEMALLOC_PIN` in effect (`memalloc_pin_save`): no CMA, no ZONE_MOVABLE. The
    /// kernel achieves this by clearing `__GFP_MOVABLE` in `current_gfp_context`.
    pub pin: bool,
    /// `__GFP_RETRY_MAYFAIL`: retry reclaim as usual, but fail rather than invoke the OOM
    /// killer (migration targets of `alloc_contig_range` and memory offlining).
    pub retry_mayfail: bool,
    /// `__GFP_NORETRY`: one round of direct reclaim, then fail (readahead pages).
    pub noretry: bool,
}

impl Gfp {
    const fn new(migratetype: Migratetype, highmem: bool, direct: bool, kswapd: bool) -> Self {
        Gfp {
            migratetype,
            highmem,
            direct_reclaim: direct,
            kswapd_reclaim: kswapd,
            pin: false,
            retry_mayfail: false,
            noretry: false,
        }
    }

    /// Kernel allocations: slab, page tables, driver memory.
    pub const KERNEL: Gfp = Gfp::new(Migratetype::Unmovable, false, true, true);
    /// `GFP_KERNEL | __GFP_RECLAIMABLE`: reclaimable slab (dentries, inodes).
    pub const KERNEL_RECLAIMABLE: Gfp = Gfp::new(Migratetype::Reclaimable, false, true, true);
    /// May not sleep: wakes kswapd but never reclaims directly.
    pub const NOWAIT: Gfp = Gfp::new(Migratetype::Unmovable, false, false, true);
    /// `GFP_ATOMIC`.
    pub const ATOMIC: Gfp = Gfp::new(Migratetype::Unmovable, false, false, true);
    /// `GFP_USER`: user memory the kernel must be able to reach; not movable.
    pub const USER: Gfp = Gfp::new(Migratetype::Unmovable, false, true, true);
    /// `GFP_HIGHUSER_MOVABLE`: anonymous memory and mapped page cache.
    pub const HIGHUSER_MOVABLE: Gfp = Gfp::new(Migratetype::Movable, true, true, true);
    /// `GFP_USER | __GFP_MOVABLE` without `__GFP_HIGHMEM`: the block-device page cache
    /// (`sb_bread` -> `__bread_gfp(..., __GFP_MOVABLE)`), where ext4 superblock and group
    /// descriptor buffers live. Movable, but not allowed in ZONE_MOVABLE/ZONE_CMA.
    pub const USER_MOVABLE: Gfp = Gfp::new(Migratetype::Movable, false, true, true);

    pub const NAMES: [(&'static str, Gfp); 7] = [
        ("GFP_KERNEL", Gfp::KERNEL),
        ("GFP_KERNEL_RECLAIMABLE", Gfp::KERNEL_RECLAIMABLE),
        ("GFP_NOWAIT", Gfp::NOWAIT),
        ("GFP_ATOMIC", Gfp::ATOMIC),
        ("GFP_USER", Gfp::USER),
        ("GFP_HIGHUSER_MOVABLE", Gfp::HIGHUSER_MOVABLE),
        ("GFP_USER_MOVABLE", Gfp::USER_MOVABLE),
    ];

    pub fn parse(name: &str) -> MmResult<Gfp> {
        match Gfp::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, gfp)) => Ok(*gfp),
            None => misuse(format!(
                "unknown gfp mask {name:?}: use one of {}",
                Gfp::NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The gfp of a migration target for a long-term pin (`memalloc_pin_save` scope).
    pub fn pinned(self) -> Gfp {
        Gfp {
            migratetype: Migratetype::Unmovable,
            highmem: false,
            pin: true,
            ..self
        }
    }

    /// The same mask with `__GFP_RETRY_MAYFAIL`.
    pub const fn retry_mayfail(self) -> Gfp {
        Gfp {
            retry_mayfail: true,
            ..self
        }
    }

    /// The same mask with `__GFP_NORETRY`.
    pub const fn noretry(self) -> Gfp {
        Gfp {
            noretry: true,
            ..self
        }
    }

    /// The mask's bits as the kernel prints them (`%#x(%pGg)`), for the OOM report: the
    /// class's `GFP_*` value and name, with `__GFP_RETRY_MAYFAIL`/`__GFP_NORETRY` added, and
    /// `__GFP_COMP` for user memory (6.1 allocates it as folios: `vma_alloc_folio`,
    /// `filemap_alloc_folio`). An anonymous fault's `__GFP_ZERO` is not shown: the mask does
    /// not say whether the page is zeroed.
    pub fn kernel_mask(self) -> (u32, String) {
        const IO_FS_RECLAIM: u32 = 0x40 | 0x80 | 0x400 | 0x800;
        const HARDWALL: u32 = 0x10_0000;
        let (mut bits, mut name) = match (self.migratetype, self.highmem) {
            (Migratetype::Movable, true) => (
                IO_FS_RECLAIM | HARDWALL | 0x02 | 0x08,
                "GFP_HIGHUSER_MOVABLE".to_string(),
            ),
            (Migratetype::Movable, false) => (
                IO_FS_RECLAIM | HARDWALL | 0x08,
                "GFP_USER|__GFP_MOVABLE".to_string(),
            ),
            (Migratetype::Reclaimable, _) => (
                IO_FS_RECLAIM | 0x10,
                "GFP_KERNEL|__GFP_RECLAIMABLE".to_string(),
            ),
            _ if !self.direct_reclaim => (0x20 | 0x200 | 0x800, "GFP_ATOMIC".to_string()),
            _ => (IO_FS_RECLAIM, "GFP_KERNEL".to_string()),
        };
        if self.migratetype == Migratetype::Movable {
            bits |= 0x4_0000;
            name.push_str("|__GFP_COMP");
        }
        if self.retry_mayfail {
            bits |= 0x4000;
            name.push_str("|__GFP_RETRY_MAYFAIL");
        }
        if self.noretry {
            bits |= 0x1_0000;
            name.push_str("|__GFP_NORETRY");
        }
        (bits, name)
    }

    /// `gfp_to_alloc_flags_cma`: movable requests may use CMA pageblocks unless pinning.
    pub fn alloc_cma(self) -> bool {
        self.migratetype == Migratetype::Movable && !self.pin
    }
}
