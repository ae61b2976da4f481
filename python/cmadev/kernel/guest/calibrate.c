/* cmadev guest agent: micro-measurements for a board's cost model.
 *
 * The memory measurements run the same code in the guest and on the host (the agent binary
 * run with --host-calibrate), so their ratio says how much slower the guest is than the
 * machine it runs on (TCG: an order of magnitude). The CMA measurements run in the guest
 * only: the fixed per-call cost of a small cma_alloc on an idle area, through debugfs (no
 * clearing) and the dma-heap (clears every page), the cost of larger ones, and the same
 * with memory filled by an anonymous process so that cma_alloc has pages to migrate; with
 * the trace on, the same idle debugfs sweep again, traced, so that the host can time each
 * call's phases (isolation, drain, lru_cache_disable, the walks); with a data disk, storage
 * latency (O_DIRECT) and reclaim (kswapd's CPU time per page scanned).
 * Figures are raw: the host fits them (cmadev/kernel/calibrate.py; medians of repeats, ns).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dma-heap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define REPS 7

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_u64);
	return v[n / 2];
}

static void barrier(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static char *mapped(uint64_t pages)
{
	char *p = mmap(NULL, pages * PAGE_SZ, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, pages * PAGE_SZ, MADV_NOHUGEPAGE);
	return p;
}

void calibrate_memory(void (*emit)(const char *, double))
{
	const uint64_t pages = 8192; /* 32 MiB: larger than the caches, as a migration's copy */
	char *src = mapped(pages), *dst = mapped(pages);
	if (!src || !dst) {
		emit("memory_error_errno", errno);
		return;
	}
	memset(src, 1, pages * PAGE_SZ);
	memset(dst, 2, pages * PAGE_SZ);
	uint64_t copy[REPS], zero[REPS], fault[REPS], unmap[REPS], popul[REPS], cow[REPS];
	int npop = 0, ncow = 0;
	volatile uint64_t *shared = mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	for (int r = 0; r < REPS; r++) {
		uint64_t t = now_ns();
		for (uint64_t i = 0; i < pages; i++) {
			memcpy(dst + i * PAGE_SZ, src + i * PAGE_SZ, PAGE_SZ);
			barrier(dst);
		}
		copy[r] = (now_ns() - t) / pages;
		t = now_ns();
		for (uint64_t i = 0; i < pages; i++) {
			memset(dst + i * PAGE_SZ, 0, PAGE_SZ);
			barrier(dst);
		}
		zero[r] = (now_ns() - t) / pages;
		/* an anonymous write fault: allocation, clear_page, page-table update */
		char *f = mapped(pages);
		if (!f) {
			emit("fault_error_errno", errno);
			return;
		}
		t = now_ns();
		for (uint64_t i = 0; i < pages; i++)
			f[i * PAGE_SZ] = 1;
		fault[r] = (now_ns() - t) / pages;
		/* a copy-on-write fault: a child writes the pages it shares with its parent, and
		 * the kernel copies each one (wp_page_copy: copy_user_highpage) */
		if (shared != MAP_FAILED) {
			shared[0] = 0;
			pid_t pid = fork();
			if (pid == 0) {
				uint64_t t1 = now_ns();
				for (uint64_t i = 0; i < pages; i++)
					f[i * PAGE_SZ] = 2;
				shared[0] = (now_ns() - t1) / pages;
				_exit(0);
			}
			if (pid > 0 && waitpid(pid, NULL, 0) == pid && shared[0])
				cow[ncow++] = shared[0];
		}
		t = now_ns();
		munmap(f, pages * PAGE_SZ);
		unmap[r] = (now_ns() - t) / pages;
		/* the allocation and clearing of an anonymous fault without the trap:
		 * MADV_POPULATE_WRITE (5.14) faults the range in from the kernel */
		char *q = mapped(pages);
		if (q) {
			t = now_ns();
			if (madvise(q, pages * PAGE_SZ, 23 /* MADV_POPULATE_WRITE */) == 0)
				popul[npop++] = (now_ns() - t) / pages;
			munmap(q, pages * PAGE_SZ);
		}
	}
	double c = (double)median(copy, REPS), z = (double)median(zero, REPS);
	emit("memcpy_page_ns", c);
	emit("memcpy_page_ns_min", (double)copy[0]);
	emit("memcpy_gb_per_s", (double)PAGE_SZ / c);
	emit("zero_page_ns", z);
	emit("zero_page_ns_min", (double)zero[0]);
	emit("anon_fault_ns", (double)median(fault, REPS));
	emit("anon_unmap_page_ns", (double)median(unmap, REPS));
	if (ncow)
		emit("cow_fault_ns", (double)median(cow, ncow));
	if (npop)
		emit("populate_page_ns", (double)median(popul, npop));
	if (shared != MAP_FAILED)
		munmap((void *)shared, PAGE_SZ);
	munmap(src, pages * PAGE_SZ);
	munmap(dst, pages * PAGE_SZ);
}

/* ---------------------------------------------------------------- CMA */

static char dfs_alloc[160], dfs_free[160];
static int heap_fd = -1;

/* One debugfs cma_alloc + release: the allocation's latency, or 0 when it failed. */
static uint64_t debugfs_once(uint64_t pages, uint64_t *free_ns)
{
	uint64_t t = now_ns();
	int e = write_u64_file(dfs_alloc, pages);
	uint64_t dt = now_ns() - t;
	if (e)
		return 0;
	t = now_ns();
	write_u64_file(dfs_free, pages);
	*free_ns = now_ns() - t;
	return dt;
}

static uint64_t heap_once(uint64_t pages, uint64_t *free_ns)
{
	struct dma_heap_allocation_data d = { .len = pages * PAGE_SZ,
					      .fd_flags = O_RDWR | O_CLOEXEC };
	uint64_t t = now_ns();
	int r = ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &d);
	uint64_t dt = now_ns() - t;
	if (r != 0)
		return 0;
	t = now_ns();
	close((int)d.fd);
	*free_ns = now_ns() - t;
	return dt;
}

typedef uint64_t (*alloc_fn)(uint64_t pages, uint64_t *free_ns);

/* The pause before each call of the paused sweep (ns). */
static uint64_t pause_ns = 250000000;

/* One debugfs cma_alloc + release after the guest has idled for `pause_ns`, as a device's
 * request comes after a quiet spell: lru_cache_disable's expedited grace period and drain
 * then wake CPUs from idle, which a call right after another does not. */
static uint64_t debugfs_after_pause(uint64_t pages, uint64_t *free_ns)
{
	sleep_ns(pause_ns);
	return debugfs_once(pages, free_ns);
}

/* Median latency of `reps` allocations of `pages` (and of their release); how many failed
 * and how many pages were migrated in all. */
static void measure(const char *path, alloc_fn fn, uint64_t pages, int reps,
		    void (*emit)(const char *, double))
{
	uint64_t lat[64], rel[64];
	int ok = 0, failed = 0;
	uint64_t mig0 = vmstat_value("pgmigrate_success");
	for (int r = 0; r < reps && r < 64; r++) {
		uint64_t f = 0, dt = fn(pages, &f);
		if (!dt) {
			failed++;
			continue;
		}
		lat[ok] = dt;
		rel[ok] = f;
		ok++;
	}
	char key[96];
	if (ok) {
		snprintf(key, sizeof key, "%s_alloc_%" PRIu64 "_ns", path, pages);
		emit(key, (double)median(lat, ok));
		snprintf(key, sizeof key, "%s_alloc_%" PRIu64 "_ns_min", path, pages);
		emit(key, (double)lat[0]);
		snprintf(key, sizeof key, "%s_release_%" PRIu64 "_ns", path, pages);
		emit(key, (double)median(rel, ok));
	}
	snprintf(key, sizeof key, "%s_alloc_%" PRIu64 "_failed", path, pages);
	emit(key, failed);
	snprintf(key, sizeof key, "%s_alloc_%" PRIu64 "_migrated", path, pages);
	emit(key, (double)(vmstat_value("pgmigrate_success") - mig0));
}

static const uint64_t sizes[] = { 1, 16, 256, 1024, 4096, 16384, 65536 };

/* Each size through both paths: `small_reps` times for 1 and 16 pages, `big_reps` for the
 * others. Under fill, one call per size: a call migrates the pages of its range, and the next
 * call (first fit again, a larger range) finds those already free and migrates the rest, so
 * each call's latency goes with its own `_migrated` count. */
static void sweep(const char *tag, void (*emit)(const char *, double), int small_reps,
		  int big_reps, int with_heap)
{
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		if (sizes[i] > g.cma.count / 2)
			break;
		int reps = sizes[i] <= 16 ? small_reps : big_reps;
		char path[64];
		snprintf(path, sizeof path, "%sdebugfs", tag);
		measure(path, debugfs_once, sizes[i], reps, emit);
		if (heap_fd >= 0 && with_heap) {
			snprintf(path, sizeof path, "%sdma_heap", tag);
			measure(path, heap_once, sizes[i], reps, emit);
		}
	}
}

/* A process holding `pages` of anonymous memory; returns its pid once it is all faulted in
 * (or -1). The parent kills it when done. */
static pid_t filler(uint64_t pages)
{
	volatile int *ready = mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ready == MAP_FAILED)
		return -1;
	*ready = 0;
	pid_t pid = fork();
	if (pid == 0) {
		char *p = mapped(pages);
		for (uint64_t i = 0; p && i < pages; i++)
			p[i * PAGE_SZ] = 1;
		*ready = 1;
		for (;;)
			pause();
	}
	while (pid > 0 && !*ready)
		sleep_ns(10000000);
	return pid;
}

static uint64_t meminfo_kb(const char *key)
{
	char *s = read_file("/proc/meminfo", NULL);
	uint64_t v = 0;
	char *p = s ? strstr(s, key) : NULL;
	if (p)
		v = strtoull(p + strlen(key), NULL, 10);
	free(s);
	return v;
}

/* ---------------------------------------------------------------- storage */

/* O_DIRECT requests on the data disk (a virtio disk backed by a file on the host, QEMU's
 * snapshot overlay taking the writes): the median of 4 KiB requests at random offsets and of
 * 1 MiB ones, read and write. */
static void calibrate_storage(const char *path, uint64_t file_pages,
			      void (*emit)(const char *, double))
{
	int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	void *buf = NULL;
	if (fd < 0 || posix_memalign(&buf, PAGE_SZ, 1 << 20) != 0) {
		emit("storage_error_errno", errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	memset(buf, 5, 1 << 20);
	struct rng r;
	rng_seed(&r, 12345);
	static const struct {
		const char *key;
		size_t len;
		int write, reps;
	} kinds[] = {
		{ "storage_read_4k_ns", PAGE_SZ, 0, 63 },
		{ "storage_read_1m_ns", 1 << 20, 0, 15 },
		{ "storage_write_4k_ns", PAGE_SZ, 1, 63 },
		{ "storage_write_1m_ns", 1 << 20, 1, 15 },
	};
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		uint64_t lat[64];
		int n = 0;
		uint64_t units = file_pages * PAGE_SZ / kinds[k].len;
		for (int i = 0; i < kinds[k].reps && units; i++) {
			off_t off = (off_t)(rng_below(&r, units) * kinds[k].len);
			uint64_t t = now_ns();
			ssize_t got = kinds[k].write ? pwrite(fd, buf, kinds[k].len, off)
						     : pread(fd, buf, kinds[k].len, off);
			uint64_t dt = now_ns() - t;
			if (got == (ssize_t)kinds[k].len)
				lat[n++] = dt;
		}
		if (n)
			emit(kinds[k].key, (double)median(lat, n));
	}
	free(buf);
	close(fd);
}

/* ---------------------------------------------------------------- reclaim */

/* utime + stime of a process, in ns (clock ticks of /proc/<pid>/stat) */
static uint64_t cpu_ns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	char *s = read_file(path, NULL);
	if (!s)
		return 0;
	char *p = strrchr(s, ')');
	unsigned long ut = 0, st = 0;
	/* after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime */
	if (p)
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	free(s);
	long hz = sysconf(_SC_CLK_TCK);
	return (uint64_t)(ut + st) * (1000000000ULL / (uint64_t)(hz > 0 ? hz : 100));
}

static pid_t pid_of(const char *comm)
{
	for (int pid = 2; pid < 4096; pid++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/comm", pid);
		char *s = read_file(path, NULL);
		if (!s)
			continue;
		int same = strncmp(s, comm, strlen(comm)) == 0 && s[strlen(comm)] == '\n';
		free(s);
		if (same)
			return pid;
	}
	return -1;
}

/* Reclaim: the data file read into the page cache (clean pages), then an anonymous process
 * of `frac` of MemAvailable makes kswapd (and direct reclaim) scan and free it. The host
 * divides the CPU time spent reclaiming by the pages scanned. */
static void calibrate_reclaim(const char *path, uint64_t file_pages, double frac,
			      void (*emit)(const char *, double))
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		emit("reclaim_error_errno", errno);
		return;
	}
	static char chunk[1 << 20];
	uint64_t t = now_ns();
	while (read(fd, chunk, sizeof chunk) > 0)
		;
	close(fd);
	emit("reclaim_file_pages", (double)file_pages);
	emit("reclaim_file_read_ns", (double)(now_ns() - t));
	emit("reclaim_cached_kb", (double)meminfo_kb("Cached:"));
	pid_t kswapd = pid_of("kswapd0");
	static const char *const counters[] = { "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd",
						"pgsteal_direct" };
	uint64_t before[4];
	for (int i = 0; i < 4; i++)
		before[i] = vmstat_value(counters[i]);
	uint64_t k0 = kswapd > 0 ? cpu_ns(kswapd) : 0;
	uint64_t fill = (uint64_t)((double)meminfo_kb("MemAvailable:") * frac) / 4;
	t = now_ns();
	pid_t pid = filler(fill);
	if (pid <= 0) {
		emit("reclaim_error_errno", errno);
		return;
	}
	emit("reclaim_fill_ns", (double)(now_ns() - t));
	emit("reclaim_fill_pages", (double)fill);
	emit("reclaim_filler_cpu_ns", (double)cpu_ns(pid));
	/* kswapd may still be balancing the zone: give it a moment, then read its time */
	sleep_ns(200000000);
	if (kswapd > 0)
		emit("reclaim_kswapd_cpu_ns", (double)(cpu_ns(kswapd) - k0));
	for (int i = 0; i < 4; i++) {
		char key[64];
		snprintf(key, sizeof key, "reclaim_%s", counters[i]);
		emit(key, (double)(vmstat_value(counters[i]) - before[i]));
	}
	emit("reclaim_cached_after_kb", (double)meminfo_kb("Cached:"));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void calibrate_cma(const struct line *cfg, void (*emit)(const char *, double))
{
	if (!g.cma.present) {
		emit("cma_missing", 1);
		return;
	}
	snprintf(dfs_alloc, sizeof dfs_alloc, "/sys/kernel/debug/cma/%s/alloc", g.cma.name);
	snprintf(dfs_free, sizeof dfs_free, "/sys/kernel/debug/cma/%s/free", g.cma.name);
	char heap[160];
	snprintf(heap, sizeof heap, "/dev/dma_heap/%s", g.cma.name);
	heap_fd = open(heap, O_RDONLY | O_CLOEXEC);
	emit("cma_area_pages", (double)g.cma.count);
	emit("dma_heap_present", heap_fd >= 0);
	/* what the kernel and the agent leave of the memory, and the watermark it computed */
	emit("mem_total_kb", (double)meminfo_kb("MemTotal:"));
	emit("mem_free_kb", (double)meminfo_kb("MemFree:"));
	emit("cma_free_kb", (double)meminfo_kb("CmaFree:"));
	uint64_t mfk = 0;
	if (read_u64_file("/proc/sys/vm/min_free_kbytes", &mfk) == 0)
		emit("min_free_kbytes", (double)mfk);
	sweep("idle_", emit, (int)kv_u64(cfg, "small_reps", 31), 5, 1);
	/* One and 256 pages again, each call after a pause (the per-call cost a device sees) */
	pause_ns = kv_u64(cfg, "pause_ns", pause_ns);
	int paused_reps = (int)kv_u64(cfg, "paused_reps", 6);
	measure("paused_debugfs", debugfs_after_pause, 1, paused_reps, emit);
	measure("paused_debugfs", debugfs_after_pause, 256, paused_reps, emit);
	/* The same idle sweep through debugfs, traced: the host times each call's phases from
	 * the events (traced calls are a little slower: their latencies are kept apart). */
	if (kv_u64(cfg, "trace", 0) && trace_setup(cfg) == 0) {
		emit("phase_trace", 1);
		trace_start();
		sweep("phase_", emit, (int)kv_u64(cfg, "phase_reps", 5),
		      (int)kv_u64(cfg, "phase_reps", 5), 0);
		trace_stop_and_drain();
	}
	/* Fill memory so that the area holds movable pages: 6.1 places a movable allocation in
	 * CMA once free CMA pages exceed half the zone's free pages (__rmqueue). */
	double frac = kv_f64(cfg, "fill_fraction", 0.85);
	uint64_t avail = meminfo_kb("MemAvailable:");
	uint64_t fill = (uint64_t)((double)avail * frac) / 4;
	emit("fill_pages", (double)fill);
	pid_t pid = filler(fill);
	if (pid > 0) {
		emit("fill_cma_free_kb", (double)meminfo_kb("CmaFree:"));
		emit("fill_mem_free_kb", (double)meminfo_kb("MemFree:"));
		sweep("fill_", emit, 1, 1, 1);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	/* The filled sweep again through debugfs, each time with a new filler (the previous
	 * sweep moved its pages out of the ranges): a migration's cost is the quickest of the
	 * sweeps, as the host's load only ever adds delay. */
	int reps = (int)kv_u64(cfg, "fill_reps", 2);
	for (int r = 0; r < reps && r < 9; r++) {
		pid = filler(fill);
		if (pid <= 0)
			break;
		char tag[16];
		snprintf(tag, sizeof tag, "fill%d_", r + 1);
		sweep(tag, emit, 1, 1, 0);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (heap_fd >= 0)
		close(heap_fd);
	char data[128];
	struct stat sb;
	snprintf(data, sizeof data, "%s/calib.dat", g.data_dir);
	if (g.data_dir[0] && stat(data, &sb) == 0 && sb.st_size >= (off_t)(4 << 20)) {
		uint64_t file_pages = (uint64_t)sb.st_size / PAGE_SZ;
		calibrate_storage(data, file_pages, emit);
		calibrate_reclaim(data, file_pages, frac, emit);
	}
}
