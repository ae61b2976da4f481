/* cmadev guest agent: micro-measurements for a board's cost model.
 *
 * The memory measurements run the same code in the guest and on the host (the agent binary
 * run with --host-calibrate), so their ratio says how much slower the guest is than the
 * machine it runs on (TCG: an order of magnitude). The CMA measurements run in the guest
 * only: the fixed per-call cost of a small cma_alloc on an idle area, through debugfs (no
 * clearing) and the dma-heap (clears every page), the cost of larger ones, and the same
 * with memory filled by an anonymous process so that cma_alloc has pages to migrate.
 * Figures are raw: the host fits them (medians of repeats, in ns).
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
	uint64_t copy[REPS], zero[REPS], fault[REPS], unmap[REPS];
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
		t = now_ns();
		munmap(f, pages * PAGE_SZ);
		unmap[r] = (now_ns() - t) / pages;
	}
	double c = (double)median(copy, REPS), z = (double)median(zero, REPS);
	emit("memcpy_page_ns", c);
	emit("memcpy_page_ns_min", (double)copy[0]);
	emit("memcpy_gb_per_s", (double)PAGE_SZ / c);
	emit("zero_page_ns", z);
	emit("zero_page_ns_min", (double)zero[0]);
	emit("anon_fault_ns", (double)median(fault, REPS));
	emit("anon_unmap_page_ns", (double)median(unmap, REPS));
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

static uint64_t vmstat(const char *name)
{
	char *s = read_file("/proc/vmstat", NULL);
	if (!s)
		return 0;
	size_t n = strlen(name);
	uint64_t v = 0;
	for (char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ') {
			v = strtoull(p + n + 1, NULL, 10);
			break;
		}
	free(s);
	return v;
}

typedef uint64_t (*alloc_fn)(uint64_t pages, uint64_t *free_ns);

/* Median latency of `reps` allocations of `pages` (and of their release); how many failed
 * and how many pages were migrated in all. */
static void measure(const char *path, alloc_fn fn, uint64_t pages, int reps,
		    void (*emit)(const char *, double))
{
	uint64_t lat[64], rel[64];
	int ok = 0, failed = 0;
	uint64_t mig0 = vmstat("pgmigrate_success");
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
	emit(key, (double)(vmstat("pgmigrate_success") - mig0));
}

static const uint64_t sizes[] = { 1, 16, 256, 1024, 4096, 16384, 65536 };

/* Each size through both paths: `small_reps` times for 1 and 16 pages, `big_reps` for the
 * others. Under fill, one call per size: a call migrates the pages of its range, and the next
 * call (first fit again, a larger range) finds those already free and migrates the rest, so
 * each call's latency goes with its own `_migrated` count. */
static void sweep(const char *tag, void (*emit)(const char *, double), int small_reps,
		  int big_reps)
{
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		if (sizes[i] > g.cma.count / 2)
			break;
		int reps = sizes[i] <= 16 ? small_reps : big_reps;
		char path[64];
		snprintf(path, sizeof path, "%sdebugfs", tag);
		measure(path, debugfs_once, sizes[i], reps, emit);
		if (heap_fd >= 0) {
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
	sweep("idle_", emit, (int)kv_u64(cfg, "small_reps", 31), 5);
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
		sweep("fill_", emit, 1, 1);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (heap_fd >= 0)
		close(heap_fd);
}
