//! Trace events in ftrace's text format (`/sys/kernel/tracing/trace`), with the kernel's
//! tracepoint names and `TP_printk` layouts (`include/trace/events/cma.h`,
//! `include/trace/events/migrate.h`, `include/trace/events/vmscan.h`), and the kernel log
//! (`dmesg`) for warnings.

use crate::pfn::Pfn;

use std::collections::VecDeque;

/// A `struct page *` as `%p` would print it: the vmemmap base of x86-64 plus 64 bytes a
/// frame. Only for familiarity; nothing dereferences it.
pub fn page_ptr(pfn: Pfn) -> String {
    format!("{:016x}", 0xffff_ea00_0000_0000u64 + pfn.0 as u64 * 64)
}

#[derive(Clone, Debug)]
pub struct Trace {
    limit: usize,
    lines: VecDeque<String>,
    /// Lines ever emitted, so readers can ask for "what is new since line N".
    emitted: u64,
}

impl Trace {
    pub fn new(limit: usize) -> Self {
        Trace {
            limit,
            lines: VecDeque::new(),
            emitted: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// One line: `comm-pid [cpu] ..... secs.usecs: event: fields`.
    pub fn emit(&mut self, now_ns: u64, comm: &str, pid: u32, cpu: u32, event: &str, fields: &str) {
        if self.limit == 0 {
            return;
        }
        let comm: String = comm.chars().take(16).collect();
        let line = format!(
            "{:>16}-{:<7} [{:03}] ..... {:>5}.{:06}: {}: {}",
            comm,
            pid,
            cpu,
            now_ns / 1_000_000_000,
            (now_ns % 1_000_000_000) / 1_000,
            event,
            fields
        );
        if self.lines.len() == self.limit {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        self.emitted += 1;
    }

    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Lines emitted after the first `since` lines that are still kept.
    pub fn lines_since(&self, since: u64) -> Vec<String> {
        let first_kept = self.emitted - self.lines.len() as u64;
        let skip = since.saturating_sub(first_kept) as usize;
        self.lines.iter().skip(skip).cloned().collect()
    }
}

/// The kernel log: `[    5.123456] message`.
#[derive(Clone, Debug, Default)]
pub struct Dmesg {
    pub lines: Vec<String>,
}

impl Dmesg {
    pub fn printk(&mut self, now_ns: u64, msg: &str) {
        self.lines.push(format!(
            "[{:>5}.{:06}] {}",
            now_ns / 1_000_000_000,
            (now_ns % 1_000_000_000) / 1_000,
            msg
        ));
    }
}
