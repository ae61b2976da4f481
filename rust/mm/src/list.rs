//! Intrusive doubly linked lists threaded through the frames' `next`/`prev` (the kernel's
//! `list_head` in `struct page`). A frame is on at most one list at a time: a buddy free
//! list, a per-CPU list or an LRU list. Adding at the head and taking from the tail gives
//! the kernel's LRU order; free lists add at the head and take from the head.

use crate::page::{Page, NIL};
use crate::pfn::Pfn;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct List {
    pub head: Pfn,
    pub tail: Pfn,
    pub len: u32,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl List {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn push_head(&mut self, pages: &mut [Page], pfn: Pfn) {
        let p = &mut pages[pfn];
        p.prev = NIL;
        p.next = self.head;
        if self.head != NIL {
            pages[self.head].prev = pfn;
        } else {
            self.tail = pfn;
        }
        self.head = pfn;
        self.len += 1;
    }

    #[inline]
    pub fn push_tail(&mut self, pages: &mut [Page], pfn: Pfn) {
        let p = &mut pages[pfn];
        p.next = NIL;
        p.prev = self.tail;
        if self.tail != NIL {
            pages[self.tail].next = pfn;
        } else {
            self.head = pfn;
        }
        self.tail = pfn;
        self.len += 1;
    }

    #[inline]
    pub fn remove(&mut self, pages: &mut [Page], pfn: Pfn) {
        let (next, prev) = {
            let p = &pages[pfn];
            (p.next, p.prev)
        };
        if prev != NIL {
            pages[prev].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            pages[next].prev = prev;
        } else {
            self.tail = prev;
        }
        let p = &mut pages[pfn];
        p.next = NIL;
        p.prev = NIL;
        self.len -= 1;
    }

    #[inline]
    pub fn pop_head(&mut self, pages: &mut [Page]) -> Option<Pfn> {
        let pfn = self.head;
        if pfn == NIL {
            return None;
        }
        self.remove(pages, pfn);
        Some(pfn)
    }

    #[inline]
    pub fn pop_tail(&mut self, pages: &mut [Page]) -> Option<Pfn> {
        let pfn = self.tail;
        if pfn == NIL {
            return None;
        }
        self.remove(pages, pfn);
        Some(pfn)
    }

    /// The frames on the list, head to tail (for checks and reports, not hot paths).
    pub fn iter<'a>(&self, pages: &'a [Page]) -> ListIter<'a> {
        ListIter {
            pages,
            cur: self.head,
        }
    }
}

pub struct ListIter<'a> {
    pages: &'a [Page],
    cur: Pfn,
}

impl Iterator for ListIter<'_> {
    type Item = Pfn;
    fn next(&mut self) -> Option<Pfn> {
        if self.cur == NIL {
            return None;
        }
        let pfn = self.cur;
        self.cur = self.pages[pfn].next;
        Some(pfn)
    }
}
