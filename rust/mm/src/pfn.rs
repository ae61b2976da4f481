//! Page frame numbers: the kernel's `unsigned long pfn`, frame `n` of memory (`n * 4 KiB`).
//!
//! `Pfn` is a newtype over `u32` (the model has at most 2^26 frames, `MAX_FRAMES`), so that a
//! page count, an order or a slot index cannot be passed where a frame is meant. It costs
//! nothing at run time (`repr(transparent)`, every operation inlined). The frames index
//! `[Page]` directly (`pages[pfn]`, in `page.rs`); arithmetic is what frames support: a frame plus or minus
//! a number of pages is a frame, two frames differ by a number of pages, and the buddy and
//! alignment operations of the buddy allocator. Ranges are written `[start, end)`
//! (`Pfn::range`). Printed, a frame is its number (`{:#x}` in the kernel's messages), and it
//! serialises as a plain integer.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::Serialize;

#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
#[repr(transparent)]
pub struct Pfn(pub u32);

impl Pfn {
    /// "No frame": the end of a list, an unmapped link (`u32::MAX`, never a real frame).
    pub const NIL: Pfn = Pfn(u32::MAX);

    /// The frame as an index into the frame array.
    #[inline(always)]
    pub const fn idx(self) -> usize {
        self.0 as usize
    }

    /// The frames `[start, end)` in order.
    #[inline]
    pub fn range(
        start: Pfn,
        end: Pfn,
    ) -> impl DoubleEndedIterator<Item = Pfn> + ExactSizeIterator + Clone {
        (start.0..end.0).map(Pfn)
    }

    /// Every `step`-th frame of `[start, end)`, from `start` (pageblock or block heads).
    #[inline]
    pub fn range_step(start: Pfn, end: Pfn, step: u32) -> impl Iterator<Item = Pfn> + Clone {
        (start.0..end.0).step_by(step as usize).map(Pfn)
    }

    /// The buddy of the order-`order` block at this frame (`__find_buddy_pfn`).
    #[inline(always)]
    pub const fn buddy(self, order: u32) -> Pfn {
        Pfn(self.0 ^ (1 << order))
    }

    /// The start of the naturally aligned block of 2^`order` frames holding this one.
    #[inline(always)]
    pub const fn align_down(self, order: u32) -> Pfn {
        Pfn(self.0 & !((1u32 << order) - 1))
    }

    /// Whether this frame starts a naturally aligned block of 2^`order` frames.
    #[inline(always)]
    pub const fn is_aligned(self, order: u32) -> bool {
        self.0 & ((1u32 << order) - 1) == 0
    }
}

/// A frame `n` pages further on.
impl Add<u32> for Pfn {
    type Output = Pfn;
    #[inline(always)]
    fn add(self, pages: u32) -> Pfn {
        Pfn(self.0 + pages)
    }
}

impl AddAssign<u32> for Pfn {
    #[inline(always)]
    fn add_assign(&mut self, pages: u32) {
        self.0 += pages;
    }
}

/// A frame `n` pages before.
impl Sub<u32> for Pfn {
    type Output = Pfn;
    #[inline(always)]
    fn sub(self, pages: u32) -> Pfn {
        Pfn(self.0 - pages)
    }
}

impl SubAssign<u32> for Pfn {
    #[inline(always)]
    fn sub_assign(&mut self, pages: u32) {
        self.0 -= pages;
    }
}

/// The pages from `other` up to this frame.
impl Sub<Pfn> for Pfn {
    type Output = u32;
    #[inline(always)]
    fn sub(self, other: Pfn) -> u32 {
        self.0 - other.0
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pfn({:#x})", self.0)
    }
}

/// The frame number, as the kernel prints it with `%lu`.
impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// `{:#x}`: the frame number in hexadecimal, as the kernel's messages print a pfn.
impl fmt::LowerHex for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfn_is_a_u32_and_prints_like_one() {
        assert_eq!(std::mem::size_of::<Pfn>(), 4);
        assert_eq!(std::mem::size_of::<Option<Pfn>>(), 8);
        let p = Pfn(0x1234);
        assert_eq!(format!("{p:#x} {p:x} {p}"), "0x1234 1234 4660");
        assert_eq!(format!("{p:?}"), "Pfn(0x1234)");
        assert_eq!(serde_json::to_string(&p).unwrap(), "4660");
        assert_eq!(p + 4 - p, 4);
        assert_eq!((p - 4).0, 0x1230);
        assert_eq!(Pfn(12).buddy(2), Pfn(8));
        assert_eq!(Pfn(13).align_down(2), Pfn(12));
        assert!(Pfn(12).is_aligned(2) && !Pfn(13).is_aligned(1));
        let r: Vec<Pfn> = Pfn::range(Pfn(3), Pfn(6)).collect();
        assert_eq!(r, [Pfn(3), Pfn(4), Pfn(5)]);
        let s: Vec<Pfn> = Pfn::range_step(Pfn(0), Pfn(10), 4).collect();
        assert_eq!(s, [Pfn(0), Pfn(4), Pfn(8)]);
    }
}
