/* cmadev guest agent: the kernel's own views, sampled; ftrace events, streamed.
 *
 * Each sample copies the files as the kernel prints them, byte for byte, into "file"
 * records (t= the sample's time in guest ns since t0, k= its index): the host parses them,
 * and they are the layout references for cmadev's own views.
 *
 * 6.1 specifics: /sys/kernel/mm/cma/<area>/ has only alloc_pages_success and
 * alloc_pages_fail (mm/cma_sysfs.c; release_pages_success, total_pages and available_pages
 * came later); debugfs cma/<area>/ has used, maxchunk, count, base_pfn, order_per_bit and
 * bitmap (mm/cma_debug.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define TRACING "/sys/kernel/tracing"

static const char *const proc_files[] = {
	"/proc/meminfo", "/proc/vmstat", "/proc/buddyinfo", "/proc/pagetypeinfo", "/proc/zoneinfo",
};
static const char *const cma_sysfs[] = { "alloc_pages_success", "alloc_pages_fail" };
static const char *const cma_debugfs[] = { "used", "maxchunk" };

static void copy_file(const char *path, uint64_t t, uint64_t k)
{
	size_t n = 0;
	char *text = read_file(path, &n);
	char attrs[256];
	if (!text) {
		snprintf(attrs, sizeof attrs, "t=%" PRIu64 " k=%" PRIu64 " path=%s errno=%s", t, k,
			 path, errno_name(errno));
		results_record("file", attrs, "", 0);
		return;
	}
	snprintf(attrs, sizeof attrs, "t=%" PRIu64 " k=%" PRIu64 " path=%s", t, k, path);
	results_record("file", attrs, text, n);
	free(text);
}

void sample_once(uint64_t k, int with_bitmap)
{
	uint64_t t = since_t0(now_ns());
	char path[200];
	for (size_t i = 0; i < sizeof proc_files / sizeof proc_files[0]; i++)
		copy_file(proc_files[i], t, k);
	if (g.cma.present) {
		for (size_t i = 0; i < sizeof cma_sysfs / sizeof cma_sysfs[0]; i++) {
			snprintf(path, sizeof path, "/sys/kernel/mm/cma/%s/%s", g.cma.name,
				 cma_sysfs[i]);
			copy_file(path, t, k);
		}
		for (size_t i = 0; i < sizeof cma_debugfs / sizeof cma_debugfs[0]; i++) {
			snprintf(path, sizeof path, "/sys/kernel/debug/cma/%s/%s", g.cma.name,
				 cma_debugfs[i]);
			copy_file(path, t, k);
		}
		if (with_bitmap) {
			/* the first and final samples: the area's layout and its allocation bitmap */
			static const char *const layout[] = { "bitmap", "base_pfn", "count",
							      "order_per_bit" };
			for (size_t i = 0; i < sizeof layout / sizeof layout[0]; i++) {
				snprintf(path, sizeof path, "/sys/kernel/debug/cma/%s/%s",
					 g.cma.name, layout[i]);
				copy_file(path, t, k);
			}
		}
	}
	char attrs[96];
	snprintf(attrs, sizeof attrs, "t=%" PRIu64 " k=%" PRIu64, t, k);
	results_recordf("sample", attrs, "took_ns=%" PRIu64 "\n", since_t0(now_ns()) - t);
}

/* ---------------------------------------------------------------- the sampler thread */

static pthread_t sampler;
static volatile int sampler_quit;
static uint64_t samples_taken;

static void *sampler_main(void *arg)
{
	(void)arg;
	uint64_t interval = (uint64_t)((double)g.sample_interval_ns * g.time_scale);
	for (uint64_t k = 1; !sampler_quit; k++) {
		uint64_t due = g.t0 + k * interval;
		if (due >= guest_time(g.duration_ns))
			break;
		/* a sample that took longer than the interval: skip to the next one due */
		if (now_ns() > due + interval) {
			k = (now_ns() - g.t0) / interval;
			continue;
		}
		sleep_until_ns(due);
		if (sampler_quit)
			break;
		sample_once(k, 0);
		samples_taken++;
	}
	return NULL;
}

int sampler_start(void)
{
	if (!g.sample_interval_ns)
		return 0;
	return pthread_create(&sampler, NULL, sampler_main, NULL) ? -errno : 0;
}

void sampler_stop(void)
{
	if (!g.sample_interval_ns)
		return;
	sampler_quit = 1;
	pthread_join(sampler, NULL);
}

/* ---------------------------------------------------------------- ftrace */

static pthread_t tracer;
static volatile int tracer_quit;
static int trace_fd = -1;
static uint64_t trace_limit, trace_bytes;
static int trace_truncated;

static int trace_write(const char *file, const char *text)
{
	char path[200];
	snprintf(path, sizeof path, TRACING "/%s", file);
	return write_file(path, text);
}

/* kmem:mm_page_alloc and mm_page_free fire for every page: keep those in the CMA area's pfn
 * range unless the program asks for all (trace_kmem=all) or none (off). */
static void kmem_event(const char *event, const char *mode)
{
	char file[128], filter[128];
	if (strcmp(mode, "off") == 0)
		return;
	snprintf(file, sizeof file, "events/kmem/%s/enable", event);
	if (strcmp(mode, "cma") == 0 && g.cma.present) {
		char ffile[128];
		snprintf(ffile, sizeof ffile, "events/kmem/%s/filter", event);
		snprintf(filter, sizeof filter, "pfn >= %" PRIu64 " && pfn < %" PRIu64, g.cma.base_pfn,
			 g.cma.base_pfn + g.cma.count);
		int e = trace_write(ffile, filter);
		if (e)
			results_note("trace: filter %s on kmem:%s: %s", filter, event, errno_name(e));
	}
	int e = trace_write(file, "1");
	if (e)
		results_note("trace: cannot enable kmem:%s: %s", event, errno_name(e));
}

int trace_setup(const struct line *cfg)
{
	if (!kv_u64(cfg, "trace", 1))
		return 0;
	trace_limit = kv_u64(cfg, "trace_limit_bytes", 64ULL << 20);
	char kb[32];
	snprintf(kb, sizeof kb, "%" PRIu64, kv_u64(cfg, "trace_buffer_kb", 4096));
	trace_write("tracing_on", "0");
	trace_write("trace", "");
	trace_write("buffer_size_kb", kb);
	/* timestamps on CLOCK_MONOTONIC, the clock the agent's records use */
	int e = trace_write("trace_clock", "mono");
	if (e)
		results_note("trace: trace_clock mono: %s", errno_name(e));
	static const char *const systems[] = { "cma", "migrate", "page_isolation" };
	for (size_t i = 0; i < sizeof systems / sizeof systems[0]; i++) {
		char file[96];
		snprintf(file, sizeof file, "events/%s/enable", systems[i]);
		e = trace_write(file, "1");
		if (e)
			results_note("trace: cannot enable %s:*: %s", systems[i], errno_name(e));
	}
	const char *mode = kv_str(cfg, "trace_kmem", "cma");
	kmem_event("mm_page_alloc", mode);
	kmem_event("mm_page_free", mode);
	/* pageblock steals (the fallback's "change_ownership"), always: they are rare */
	e = trace_write("events/kmem/mm_page_alloc_extfrag/enable", "1");
	if (e)
		results_note("trace: cannot enable kmem:mm_page_alloc_extfrag: %s", errno_name(e));
	/* trace_extra: more events, "system:event,system:event" (the calibration times the
	 * phases of cma_alloc with kmem:mm_page_pcpu_drain and the workqueue events); with a
	 * leading '-', an event of the systems above turned off (the per-page ones of a
	 * migration, "-migrate:set_migration_pte", for a run that should be disturbed less) */
	const char *extra = kv_str(cfg, "trace_extra", "");
	while (extra && *extra) {
		const char *comma = strchr(extra, ',');
		size_t n = comma ? (size_t)(comma - extra) : strlen(extra);
		char name[96], file[160];
		int on = 1;
		if (n && *extra == '-') {
			on = 0;
			extra++;
			n--;
		}
		if (n && n < sizeof name) {
			memcpy(name, extra, n);
			name[n] = 0;
			char *colon = strchr(name, ':');
			if (colon)
				*colon = '/';
			snprintf(file, sizeof file, "events/%s/enable", name);
			e = trace_write(file, on ? "1" : "0");
			if (e)
				results_note("trace: cannot enable %.*s: %s", (int)n, extra,
					     errno_name(e));
		}
		extra = comma ? comma + 1 : NULL;
	}
	trace_fd = open(TRACING "/trace_pipe", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (trace_fd < 0)
		return -errno;
	char *events = read_file(TRACING "/set_event", NULL);
	if (events) {
		results_record("trace_events", "", events, strlen(events));
		free(events);
	}
	return 0;
}

static int trace_pump(void)
{
	static char chunk[65536];
	ssize_t n = read(trace_fd, chunk, sizeof chunk);
	if (n <= 0)
		return 0;
	if (trace_bytes + (uint64_t)n > trace_limit) {
		if (!trace_truncated)
			results_note("trace: stopped after %" PRIu64 " bytes (trace_limit_bytes)",
				     trace_bytes);
		trace_truncated = 1;
		return 1;
	}
	trace_bytes += (uint64_t)n;
	results_record("trace", "", chunk, (size_t)n);
	return 1;
}

static void *tracer_main(void *arg)
{
	(void)arg;
	while (!tracer_quit) {
		if (!trace_pump())
			sleep_ns(20000000);
	}
	return NULL;
}

void trace_start(void)
{
	if (trace_fd < 0)
		return;
	trace_write("tracing_on", "1");
	if (pthread_create(&tracer, NULL, tracer_main, NULL) != 0) {
		results_note("trace: no reader thread: %s", errno_name(errno));
		close(trace_fd);
		trace_fd = -1;
	}
}

void trace_stop_and_drain(void)
{
	if (trace_fd < 0)
		return;
	trace_write("tracing_on", "0");
	tracer_quit = 1;
	pthread_join(tracer, NULL);
	while (trace_pump())
		;
	/* each CPU's ring-buffer statistics: "overrun" and "dropped events" say whether the
	 * reader kept up (a non-zero overrun means events were overwritten before being read) */
	char attrs[96];
	snprintf(attrs, sizeof attrs, "bytes=%" PRIu64 " truncated=%d", trace_bytes,
		 trace_truncated);
	for (int cpu = 0; cpu < 256; cpu++) {
		char path[96], cpuattrs[128];
		snprintf(path, sizeof path, TRACING "/per_cpu/cpu%d/stats", cpu);
		char *stats = read_file(path, NULL);
		if (!stats)
			break;
		snprintf(cpuattrs, sizeof cpuattrs, "%s cpu=%d", attrs, cpu);
		results_record("trace_stats", cpuattrs, stats, strlen(stats));
		free(stats);
	}
	close(trace_fd);
	trace_fd = -1;
}
