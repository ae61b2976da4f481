/* cmadev guest agent: device requests, through the CMA dma-heap or the CMA debugfs files.
 *
 * One thread per device, running its steps in order at their times, so that devices acting
 * at once have their cma_alloc calls in flight together and queue on the kernel's cma_mutex
 * (mm/cma.c, 6.1: one global mutex around alloc_contig_range), as the model's devices do.
 * An action allocates its buffers one after the other (a driver's REQBUFS loop); a failure
 * stops the action and releases the buffers it got, as cmadev's Device does.
 *
 * Paths:
 * - dma_heap: ioctl(DMA_HEAP_IOCTL_ALLOC) on /dev/dma_heap/<area>. cma_heap_allocate
 *   (drivers/dma-buf/heaps/cma_heap.c, 6.1) asks cma_alloc for min(get_order(size),
 *   CONFIG_CMA_ALIGNMENT) alignment and clears every page before returning, so the measured
 *   latency includes the clearing; closing the dma-buf fd releases the buffer (cma_release).
 *   On any cma_alloc failure the ioctl returns -ENOMEM.
 * - debugfs: a page count written to /sys/kernel/debug/cma/<area>/alloc (mm/cma_debug.c):
 *   cma_alloc(cma, count, 0, false), alignment 0, no clearing; -ENOMEM on failure. "free"
 *   releases from one LIFO list per area, so with several devices on one area the pages
 *   released are the most recent allocations, not necessarily this device's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dma-heap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agent.h"

#define CONFIG_CMA_ALIGNMENT 8 /* the Kconfig default, and ours */

struct held_buf {
	int fd;         /* dma-buf fd (dma_heap), or -1 */
	uint64_t pages; /* for debugfs */
};

struct devstate {
	struct device *d;
	pthread_t thread;
	int heap_fd;
	/* debugfs: the area's alloc and free files, opened once. A driver calls cma_alloc
	 * from the kernel; a path lookup and an open per request would be the agent's time in
	 * the latency (simple_attr_write takes any number of writes on one open file). */
	int dfs_alloc_fd, dfs_free_fd;
	int nheld;
	struct held_buf held[MAX_BUFFERS];
	int started;
};

static struct devstate states[MAX_DEVICES];

static unsigned get_order(uint64_t pages)
{
	unsigned o = 0;
	while ((1ULL << o) < pages)
		o++;
	return o;
}

/* One cma_alloc through the device's path: 0 or -errno; *fd gets the dma-buf. */
static int alloc_one(struct devstate *s, uint64_t pages, int *fd)
{
	*fd = -1;
	if (strcmp(s->d->via, "debugfs") == 0)
		return write_u64_fd(s->dfs_alloc_fd, pages);
	struct dma_heap_allocation_data data = {
		.len = pages * PAGE_SZ,
		.fd_flags = O_RDWR | O_CLOEXEC,
	};
	if (ioctl(s->heap_fd, DMA_HEAP_IOCTL_ALLOC, &data) != 0)
		return -errno;
	*fd = (int)data.fd;
	return 0;
}

static void release_one(struct devstate *s, struct held_buf *b)
{
	if (b->fd >= 0) {
		close(b->fd); /* the last reference to the dma-buf: cma_heap_dma_buf_release */
	} else {
		write_u64_fd(s->dfs_free_fd, b->pages);
	}
}

static void release_all(struct devstate *s, const struct step *st)
{
	uint64_t t = now_ns(), pages = 0;
	int n = s->nheld;
	while (s->nheld > 0) {
		struct held_buf *b = &s->held[--s->nheld];
		pages += b->pages;
		release_one(s, b);
	}
	char attrs[256];
	snprintf(attrs, sizeof attrs, "device=%s seq=%d buffers=%d pages=%" PRIu64, s->d->name,
		 st->seq, n, pages);
	results_recordf("release", attrs, "issue_ns=%" PRIu64 "\ndone_ns=%" PRIu64 "\n",
			since_t0(t), since_t0(now_ns()));
}

/* Say once per step when the path cannot honour the alignment the scenario asks for. */
static void check_alignment(const struct devstate *s, const struct step *st, int i)
{
	unsigned want = st->buf[i].align;
	unsigned got = strcmp(s->d->via, "debugfs") == 0 ? 0 : get_order(st->buf[i].pages);
	if (strcmp(s->d->via, "debugfs") != 0 && got > CONFIG_CMA_ALIGNMENT)
		got = CONFIG_CMA_ALIGNMENT;
	if (want != got)
		results_note("device %s step %d buffer %d: align order %u asked, the %s path "
			     "uses %u (%s)",
			     s->d->name, st->seq, i, want, s->d->via, got,
			     strcmp(s->d->via, "debugfs") == 0
				     ? "mm/cma_debug.c calls cma_alloc(cma, count, 0, false)"
				     : "cma_heap_allocate: min(get_order(size), CONFIG_CMA_ALIGNMENT)");
}

static void allocate(struct devstate *s, const struct step *st)
{
	uint64_t issue = now_ns();
	/* time this action spent reading /proc/vmstat (hundreds of microseconds under TCG):
	 * the agent's measuring, not the kernel's allocating; each request says how much of it
	 * came before its call (probe_ns), and the results leave it out of the latency */
	uint64_t probe = 0;
	int ok = 1, done = 0;
	for (int i = 0; i < st->nbuf; i++) {
		check_alignment(s, st, i);
		int fd;
		/* pages migrated system-wide over the call, outside the timed window (the trace
		 * says it per call too, but a run may go without the trace) */
		uint64_t p0 = now_ns();
		uint64_t mig = vmstat_value("pgmigrate_success");
		uint64_t t = now_ns();
		probe += t - p0;
		int r = alloc_one(s, st->buf[i].pages, &fd);
		uint64_t t2 = now_ns();
		mig = vmstat_value("pgmigrate_success") - mig;
		uint64_t before = probe;
		probe += now_ns() - t2;
		char attrs[256];
		snprintf(attrs, sizeof attrs, "device=%s seq=%d buffer=%d", s->d->name, st->seq, i);
		results_recordf("request", attrs,
				"via=%s\nheap=%s\npages=%" PRIu64 "\nalign=%u\nissue_ns=%" PRIu64
				"\ndone_ns=%" PRIu64 "\nlatency_ns=%" PRIu64
				"\nresult=%d\nerrno=%s\nmigrated=%" PRIu64 "\nprobe_ns=%" PRIu64 "\n",
				s->d->via, s->d->heap, st->buf[i].pages, st->buf[i].align,
				since_t0(t), since_t0(t2), t2 - t, r, errno_name(r), mig, before);
		if (r != 0) {
			ok = 0;
			break;
		}
		if (s->nheld < MAX_BUFFERS)
			s->held[s->nheld++] = (struct held_buf){ fd, st->buf[i].pages };
		done++;
	}
	uint64_t end = now_ns();
	char attrs[256];
	snprintf(attrs, sizeof attrs, "device=%s seq=%d action=%s mode=%s", s->d->name, st->seq,
		 st->action, st->mode);
	results_recordf("action", attrs,
			"issue_ns=%" PRIu64 "\ndone_ns=%" PRIu64 "\nlatency_ns=%" PRIu64
			"\nscheduled_ns=%" PRIu64 "\nbuffers=%d\nallocated=%d\nok=%d\n",
			since_t0(issue), since_t0(end), end - issue,
			since_t0(guest_time(st->t_ns)), st->nbuf, done, ok);
	if (!ok) /* a device that cannot get all its buffers does not start */
		release_all(s, st);
}

static void *device_thread(void *arg)
{
	struct devstate *s = arg;
	for (int i = 0; i < s->d->nsteps && !*g.stop_all; i++) {
		const struct step *st = s->d->steps[i];
		sleep_until_ns(guest_time(st->t_ns));
		if (*g.stop_all)
			break;
		if (strcmp(st->action, "stop") == 0) {
			release_all(s, st);
		} else if (strcmp(st->action, "change_resolution") == 0) {
			release_all(s, st);
			allocate(s, st);
		} else {
			allocate(s, st);
		}
	}
	return NULL;
}

/* The area's debugfs alloc and free files; a note and -1 when one cannot be opened. */
static int open_debugfs(struct devstate *s)
{
	const char *names[2] = { "alloc", "free" };
	int *fds[2] = { &s->dfs_alloc_fd, &s->dfs_free_fd };
	for (int k = 0; k < 2; k++) {
		char path[160];
		snprintf(path, sizeof path, "/sys/kernel/debug/cma/%s/%s", s->d->heap, names[k]);
		*fds[k] = open(path, O_WRONLY | O_CLOEXEC);
		if (*fds[k] < 0) {
			results_note("device %s: open %s: %s: its requests are not made",
				     s->d->name, path, errno_name(errno));
			return -1;
		}
	}
	return 0;
}

int devices_start(struct device *d, int n)
{
	for (int i = 0; i < n; i++) {
		struct devstate *s = &states[i];
		s->d = &d[i];
		s->heap_fd = s->dfs_alloc_fd = s->dfs_free_fd = -1;
		if (strcmp(d[i].via, "debugfs") == 0 && open_debugfs(s) != 0)
			continue;
		if (strcmp(d[i].via, "dma_heap") == 0) {
			char path[160];
			snprintf(path, sizeof path, "/dev/dma_heap/%s", d[i].heap);
			s->heap_fd = open(path, O_RDONLY | O_CLOEXEC);
			if (s->heap_fd < 0) {
				results_note("device %s: open %s: %s: its requests are not made",
					     d[i].name, path, errno_name(errno));
				continue;
			}
		} else if (strcmp(d[i].via, "debugfs") != 0) {
			results_note("device %s: path %s is neither dma_heap nor debugfs: not run",
				     d[i].name, d[i].via);
			continue;
		}
		if (pthread_create(&s->thread, NULL, device_thread, s) != 0)
			return -errno;
		s->started = 1;
	}
	return 0;
}

/* Wait for the devices' threads until `deadline_mono`; a device still in cma_alloc then is
 * reported and left (the guest powers off after the final records). */
void devices_join(struct device *d, int n, uint64_t deadline_mono)
{
	for (int i = 0; i < n; i++) {
		struct devstate *s = &states[i];
		if (!s->started)
			continue;
		for (;;) {
			if (pthread_tryjoin_np(s->thread, NULL) == 0)
				break;
			if (now_ns() >= deadline_mono) {
				results_note("device %s: still in a request at the end of the run "
					     "(left running)",
					     d[i].name);
				break;
			}
			sleep_ns(5000000);
		}
	}
}
