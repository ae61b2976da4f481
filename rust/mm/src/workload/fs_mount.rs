//! `fs_mount`: a mounted filesystem's superblock and group-descriptor buffers.
//!
//! Reproduced: block-device page cache read with `sb_bread` (`__GFP_MOVABLE` without
//! `__GFP_HIGHMEM`, so ZONE_MOVABLE and ZONE_CMA are out of reach but CMA pageblocks of
//! ZONE_NORMAL are not), each held by its `buffer_head` reference (`get_page`) for the life
//! of the mount. With `fs_superblock_unmovable` they are allocated unmovable
//! (`sb_bread_unmovable`, ext4 2014). Mounted at `start_ns`, unmounted at `stop_ns`.

use serde::{Deserialize, Serialize};

use super::spec::Check;
use super::task::Cx;
use super::Task;
use crate::error::MmResult;
use crate::gfp::Gfp;
use crate::gup::HoldKind;
use crate::owner::OwnerId;
use crate::page::Kind;
use crate::Machine;

fn default_superblock_pages() -> u32 {
    8
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsMount {
    pub name: String,
    /// When the filesystem is mounted.
    #[serde(default, alias = "mount_ns")]
    pub start_ns: u64,
    /// When it is unmounted (None: never).
    #[serde(default, alias = "unmount_ns")]
    pub stop_ns: Option<u64>,
    /// Superblock + group-descriptor buffers (one page each), read from storage at mount.
    #[serde(default = "default_superblock_pages")]
    pub superblock_pages: u32,
    /// Buffers read so far.
    #[serde(skip)]
    mounted: u32,
}

impl Task for FsMount {
    const KIND: &'static str = "fs_mount";
    type Op = ();

    fn name(&self) -> &str {
        &self.name
    }

    fn window(&self) -> (u64, Option<u64>) {
        (self.start_ns, self.stop_ns)
    }

    fn validate(&self, check: &Check) -> MmResult<()> {
        check.positive("superblock_pages", self.superblock_pages as u64)
    }

    fn start(&mut self, m: &mut Machine, owner: OwnerId, _start: u64) {
        m.reserve_slots(owner, self.superblock_pages);
        self.mounted = 0;
    }

    fn next_op(&self, free_at: u64) -> Option<(u64, ())> {
        (self.mounted < self.superblock_pages).then_some((free_at, ()))
    }

    /// `sb_bread` of the next superblock/group-descriptor block, kept referenced by its
    /// `buffer_head` until unmount.
    fn run(&mut self, _: (), cx: &mut Cx<'_>) {
        let index = self.mounted;
        self.mounted += 1;
        // ext4's fix (`sb_bread_unmovable`): the same read without __GFP_MOVABLE.
        let gfp = if cx.m.cfg.policy.fs_superblock_unmovable {
            Gfp::USER
        } else {
            Gfp::USER_MOVABLE
        };
        let r = cx.m.touch_slot(cx.owner, index, gfp, Kind::File, false);
        let Some(pfn) = cx.record(r) else {
            return;
        };
        cx.stats.pages_read += 1;
        let held = cx.m.take_hold(pfn, cx.owner, HoldKind::Ref, None);
        cx.count_hold(&held);
    }
}
