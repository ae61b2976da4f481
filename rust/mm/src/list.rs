//! Intrusive doubly linked lists threaded through the frames' `next`/`prev` (the kernel's
//! `list_head` in `struct page`). A frame is on at most one list at a time: a buddy free
//! list, a per-CPU list or an LRU list. Adding at the head and taking from the tail gives
//! the kernel's LRU order; free lists add at the head and take from the head. The frames
//! store their links plus one (`page::Link`); the list's own head and tail are pfns.

use crate::page::{Link, Page, NIL};
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
        p.prev = Link::NONE;
        p.next = Link::to(self.head);
        if self.head != NIL {
            pages[self.head].prev = Link::to(pfn);
        } else {
            self.tail = pfn;
        }
        self.head = pfn;
        self.len += 1;
    }

    #[inline]
    pub fn push_tail(&mut self, pages: &mut [Page], pfn: Pfn) {
        let p = &mut pages[pfn];
        p.next = Link::NONE;
        p.prev = Link::to(self.tail);
        if self.tail != NIL {
            pages[self.tail].next = Link::to(pfn);
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
            (p.next.pfn(), p.prev.pfn())
        };
        if prev != NIL {
            pages[prev].next = Link::to(next);
        } else {
            self.head = next;
        }
        if next != NIL {
            pages[next].prev = Link::to(prev);
        } else {
            self.tail = prev;
        }
        let p = &mut pages[pfn];
        p.next = Link::NONE;
        p.prev = Link::NONE;
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
        self.cur = self.pages[pfn].next.pfn();
        Some(pfn)
    }
}
