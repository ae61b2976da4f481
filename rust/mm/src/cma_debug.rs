//! The debugfs files of a CMA area, `/sys/kernel/debug/cma/<area>/` (Linux 6.1
//! `mm/cma_debug.c`): `base_pfn`, `count`, `order_per_bit`, `used` and `maxchunk` (pages,
//! `%llu\n`), and `bitmap`, the area's bitmap as `debugfs_create_u32_array` prints it (the
//! `unsigned long` words read as 32-bit elements, `%u` each, separated by spaces, a newline
//! after the last). Mainline from 6.14 keeps one bitmap per range under `ranges/<n>/`; an
//! area of the model is one range, so its files are 6.1's.
//!
//! The `alloc` and `free` files (write-only) are the kernel backend's way in; the model
//! takes `cma_alloc` calls directly.

use crate::cma::CmaArea;
use crate::Machine;

/// `used`: set bits, in pages.
pub fn used_pages(area: &CmaArea) -> u64 {
    (area.used_bits() as u64) << area.order_per_bit
}

/// `maxchunk`: the longest run of clear bits, in pages.
pub fn maxchunk_pages(area: &CmaArea) -> u64 {
    let longest = area.free_runs().iter().map(|r| r.1).max().unwrap_or(0);
    (longest as u64) << area.order_per_bit
}

/// `bitmap`: the bitmap as 32-bit words (bit i of the area is bit i % 32 of word i / 32, as a
/// little-endian `unsigned long` array reads), `DIV_ROUND_UP(bits, 32)` of them.
pub fn bitmap_text(area: &CmaArea) -> String {
    let elements = area.bitmap_maxno().div_ceil(32);
    let words: Vec<String> = area
        .bitmap_words()
        .iter()
        .flat_map(|&w| [w as u32, (w >> 32) as u32])
        .take(elements)
        .map(|w| w.to_string())
        .collect();
    words.join(" ") + "\n"
}

impl Machine {
    /// The files of `/sys/kernel/debug/cma/<area>/`, by name, each as the kernel prints it.
    pub fn cma_debugfs(&self, area: usize) -> Vec<(&'static str, String)> {
        let a = &self.cma[area];
        vec![
            ("base_pfn", format!("{}\n", a.base_pfn.0)),
            ("count", format!("{}\n", a.count)),
            ("order_per_bit", format!("{}\n", a.order_per_bit)),
            ("used", format!("{}\n", used_pages(a))),
            ("maxchunk", format!("{}\n", maxchunk_pages(a))),
            ("bitmap", bitmap_text(a)),
        ]
    }
}
