/* cmadev guest agent: the model's background workloads, on the real kernel.
 *
 * Each workload runs in a process of its own, forked before the run starts:
 * - the OOM killer never picks PID 1 (oom_unkillable_task), so a workload that fills memory
 *   must not be the agent, or the kernel panics with "no killable processes";
 * - stopping a workload is its process exiting, which frees its pages and drops its pins and
 *   references the way the model's stop does;
 * - its counters go back through a page of shared memory (struct wstats).
 *
 * Pacing: a workload aims at its rate (per program second; guest time runs time_scale times
 * slower). Operations missed while the task was stalled (a page-cache miss, direct reclaim,
 * a fault, fsync) are not made up beyond a short backlog, as in the model
 * (rust/mm/src/workload.rs: "missed operations are not made up later"); they are counted in
 * `skipped`, so a TCG guest that cannot keep up says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define MAX_SLEEP_NS 20000000ULL  /* look at the stop flag at least this often */
#define MIN_SLEEP_NS 1000000ULL   /* batch operations rather than sleep below a millisecond */
#define BACKLOG_NS 20000000ULL    /* operations owed for longer than this are dropped */

/* ---------------------------------------------------------------- shared helpers */

static int should_stop(uint64_t stop_mono)
{
	return *g.stop_all || now_ns() >= stop_mono;
}

static void note(struct wstats *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct wstats *st, const char *fmt, ...)
{
	size_t used = strlen(st->note);
	if (used + 2 >= sizeof st->note)
		return;
	if (used)
		st->note[used++] = ' ';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->note + used, sizeof st->note - used, fmt, ap);
	va_end(ap);
}

struct pacer {
	double per_ns;      /* operations per guest ns */
	uint64_t t_start;   /* guest CLOCK_MONOTONIC */
	uint64_t counted;   /* done + skipped */
	uint64_t *skipped;
};

static void pacer_init(struct pacer *p, double rate_per_s, uint64_t start, uint64_t *skipped)
{
	p->per_ns = rate_per_s / 1e9 / g.time_scale;
	p->t_start = start;
	p->counted = 0;
	p->skipped = skipped;
}

/* Operations due now: those owed since the start, less a backlog older than BACKLOG_NS. */
static uint64_t pacer_due(struct pacer *p, uint64_t now)
{
	if (p->per_ns <= 0 || now <= p->t_start)
		return 0;
	uint64_t expected = (uint64_t)((double)(now - p->t_start) * p->per_ns);
	if (expected <= p->counted)
		return 0;
	uint64_t due = expected - p->counted;
	uint64_t keep = (uint64_t)((double)BACKLOG_NS * p->per_ns) + 1;
	if (due > keep) {
		*p->skipped += due - keep;
		p->counted += due - keep;
		due = keep;
	}
	p->counted += due;
	return due;
}

/* When the next operation is owed (guest CLOCK_MONOTONIC); UINT64_MAX for a zero rate. */
static uint64_t pacer_next(const struct pacer *p)
{
	if (p->per_ns <= 0)
		return UINT64_MAX;
	return p->t_start + (uint64_t)((double)(p->counted + 1) / p->per_ns);
}

static void nap_until(uint64_t t, uint64_t stop_mono)
{
	uint64_t now = now_ns();
	uint64_t lo = now + MIN_SLEEP_NS, hi = now + MAX_SLEEP_NS;
	if (t < lo)
		t = lo;
	if (t > hi)
		t = hi;
	if (t > stop_mono)
		t = stop_mono;
	sleep_until_ns(t);
}

static void *map_anon(uint64_t pages, int thp)
{
	void *p = mmap(NULL, pages * PAGE_SZ, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* The model has 4 KiB pages only: keep THP out unless the program asks for it. */
	if (!thp)
		madvise(p, pages * PAGE_SZ, MADV_NOHUGEPAGE);
	return p;
}

/* First touch of every page: a write, or a read fault would map the shared zero page. */
static void populate(char *p, uint64_t pages, uint64_t stop_mono)
{
	for (uint64_t i = 0; i < pages && !should_stop(stop_mono); i++)
		p[i * PAGE_SZ] = (char)(i | 1);
}

/* Held objects released at a time: pipes holding vmsplice'd user pages or pipe buffers. */
struct held {
	uint64_t t;
	int rfd, wfd;
	uint32_t pages;
};

struct heap {
	struct held *a;
	size_t n, cap;
	uint64_t pages;
};

static int heap_push(struct heap *h, struct held x)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		struct held *a = realloc(h->a, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		h->a = a;
		h->cap = cap;
	}
	size_t i = h->n++;
	while (i && h->a[(i - 1) / 2].t > x.t) {
		h->a[i] = h->a[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->a[i] = x;
	h->pages += x.pages;
	return 0;
}

static struct held heap_pop(struct heap *h)
{
	struct held top = h->a[0], last = h->a[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->a[c + 1].t < h->a[c].t)
			c++;
		if (h->a[c].t >= last.t)
			break;
		h->a[i] = h->a[c];
		i = c;
	}
	if (h->n)
		h->a[i] = last;
	h->pages -= top.pages;
	return top;
}

/* Close the pipes whose time has come (all of them with `all`); count the releases. */
static uint64_t heap_release(struct heap *h, uint64_t now, int all)
{
	uint64_t n = 0;
	while (h->n && (all || h->a[0].t <= now)) {
		struct held x = heap_pop(h);
		close(x.rfd);
		close(x.wfd);
		n++;
	}
	return n;
}

/* A pipe able to hold `pages` buffers: each pipe buffer is one page (fs/pipe.c). Root may
 * exceed /proc/sys/fs/pipe-max-size (pipe_set_size: CAP_SYS_RESOURCE). */
static int pipe_for(uint32_t pages, int fds[2])
{
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
		return -errno;
	if (pages > 16) {
		uint64_t bytes = PAGE_SZ;
		while (bytes < pages * PAGE_SZ)
			bytes <<= 1;
		if (fcntl(fds[1], F_SETPIPE_SZ, (int)bytes) < 0) {
			int e = errno;
			close(fds[0]);
			close(fds[1]);
			return -e;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- anon_hog */

/* v[0] pages faulted in, v[1] re-touches, v[2] of them writes, v[3] when the hog reached
 * its size (ns since t0, 0: never), v[4] of its pages in the CMA area when it stopped, v[5]
 * the errno of mlock2 (with mlock=1: MLOCK_ONFAULT, each page locked, Unevictable, as it is
 * faulted in). */
static void run_anon_hog(const struct line *l, struct wstats *st, uint64_t start,
			 uint64_t stop)
{
	uint64_t target = kv_u64(l, "target_pages", 0);
	double growth = kv_f64(l, "growth_pages_per_s", 0);
	double touch = kv_f64(l, "touch_rate_pages_per_s", 0);
	double wfrac = kv_f64(l, "write_fraction", 0);
	char *p = map_anon(target, (int)kv_u64(l, "thp", 0));
	if (!p) {
		st->failures++;
		st->last_errno = (uint64_t)errno;
		note(st, "mmap of %" PRIu64 " pages failed: %s", target, errno_name(errno));
		return;
	}
	if (kv_u64(l, "mlock", 0) && mlock2(p, target * PAGE_SZ, MLOCK_ONFAULT) != 0) {
		st->v[5] = (uint64_t)errno;
		st->failures++;
		st->last_errno = (uint64_t)errno;
		note(st, "mlock2(MLOCK_ONFAULT) of %" PRIu64 " pages failed: %s", target,
		     errno_name(errno));
	}
	struct rng r;
	rng_seed(&r, g.seed * 1000003 + kv_u64(l, "id", 0));
	uint64_t skipped = 0;
	struct pacer pg, pt;
	pacer_init(&pg, growth, start, &skipped);
	uint64_t grown = 0;
	volatile char sink = 0;
	int touching = 0;
	while (!should_stop(stop)) {
		uint64_t now = now_ns();
		for (uint64_t n = pacer_due(&pg, now); n && grown < target; n--) {
			p[grown * PAGE_SZ] = (char)(grown | 1);
			grown++;
		}
		/* The model skips growth it owes when stalled; growth pages are not lost, only
		 * later: keep growing until the target is reached. */
		if (grown >= target && !st->v[3])
			st->v[3] = since_t0(now_ns());
		if (!touching && grown > 0 && touch > 0) {
			pacer_init(&pt, touch, now, &skipped);
			touching = 1;
		}
		if (touching) {
			for (uint64_t n = pacer_due(&pt, now); n; n--) {
				uint64_t i = rng_below(&r, grown) * PAGE_SZ + 64;
				if (rng_unit(&r) < wfrac) {
					p[i]++;
					st->v[2]++;
				} else {
					sink = (char)(sink + p[i]);
				}
				st->v[1]++;
			}
		}
		st->v[0] = grown;
		st->ops = grown + st->v[1];
		st->skipped = skipped;
		uint64_t next = touching ? pacer_next(&pt) : UINT64_MAX;
		if (grown < target && pacer_next(&pg) < next)
			next = pacer_next(&pg);
		nap_until(next, stop);
	}
	st->v[4] = (uint64_t)pages_in_cma(p, grown);
	(void)sink;
}

/* ---------------------------------------------------------------- page_cache_reader */

static char io_page[PAGE_SZ] __attribute__((aligned(4096)));

static int open_in_data(const char *name, int flags, struct wstats *st)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", g.data_dir, name);
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		st->failures++;
		st->last_errno = (uint64_t)errno;
		note(st, "open %s: %s", path, errno_name(errno));
	}
	return fd;
}

/* The workload's data file (`file`) on the data disk. */
static int open_data(const struct line *l, int flags, struct wstats *st)
{
	return open_in_data(kv_str(l, "file", "missing"), flags, st);
}

/* v[0] reads, v[1] total read time (ns), v[2] longest read (ns), v[3] read errors */
static void run_reader(const struct line *l, struct wstats *st, uint64_t start, uint64_t stop)
{
	uint64_t n = kv_u64(l, "file_pages", 1);
	int seq = (int)kv_u64(l, "sequential", 0);
	double s = kv_f64(l, "zipf_s", 0);
	int fd = open_data(l, O_RDONLY, st);
	if (fd < 0)
		return;
	/* The model has no readahead for random reads (one storage request per miss, as with
	 * POSIX_FADV_RANDOM); a sequential reader keeps the kernel's readahead. */
	if (!seq)
		posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	struct rng r;
	rng_seed(&r, g.seed * 1000003 + kv_u64(l, "id", 0));
	struct zipf z;
	if (s > 0)
		zipf_init(&z, n, s);
	uint64_t skipped = 0, cursor = 0;
	struct pacer p;
	pacer_init(&p, kv_f64(l, "rate_pages_per_s", 0), start, &skipped);
	while (!should_stop(stop)) {
		for (uint64_t k = pacer_due(&p, now_ns()); k && !should_stop(stop); k--) {
			uint64_t idx = seq ? cursor++ % n : s > 0 ? zipf_sample(&z, &r) - 1
							     : rng_below(&r, n);
			uint64_t t = now_ns();
			if (pread(fd, io_page, PAGE_SZ, (off_t)(idx * PAGE_SZ)) < 0) {
				st->v[3]++;
				st->last_errno = (uint64_t)errno;
			}
			uint64_t dt = now_ns() - t;
			st->v[0]++;
			st->v[1] += dt;
			if (dt > st->v[2])
				st->v[2] = dt;
		}
		st->ops = st->v[0];
		st->skipped = skipped;
		nap_until(pacer_next(&p), stop);
	}
	close(fd);
}

/* ---------------------------------------------------------------- writer */

/* v[0] pages written, v[1] fsyncs, v[2] total fsync time (ns), v[3] longest fsync (ns) */
static void run_writer(const struct line *l, struct wstats *st, uint64_t start, uint64_t stop)
{
	uint64_t n = kv_u64(l, "file_pages", 1);
	uint64_t every = kv_u64(l, "fsync_every_pages", 0);
	int fd = open_data(l, O_WRONLY, st);
	if (fd < 0)
		return;
	memset(io_page, 0x5a, sizeof io_page);
	uint64_t skipped = 0, cursor = 0, since = 0;
	struct pacer p;
	pacer_init(&p, kv_f64(l, "rate_pages_per_s", 0), start, &skipped);
	while (!should_stop(stop)) {
		for (uint64_t k = pacer_due(&p, now_ns()); k && !should_stop(stop); k--) {
			/* a whole page overwritten: no read first, as in the model */
			if (pwrite(fd, io_page, PAGE_SZ, (off_t)(cursor * PAGE_SZ)) < 0) {
				st->failures++;
				st->last_errno = (uint64_t)errno;
			}
			cursor = (cursor + 1) % n;
			st->v[0]++;
			if (every && ++since >= every) {
				uint64_t t = now_ns();
				fsync(fd);
				uint64_t dt = now_ns() - t;
				since = 0;
				st->v[1]++;
				st->v[2] += dt;
				if (dt > st->v[3])
					st->v[3] = dt;
			}
		}
		st->ops = st->v[0];
		st->skipped = skipped;
		nap_until(pacer_next(&p), stop);
	}
	close(fd);
}

/* ---------------------------------------------------------------- direct_io */

static uint64_t pin_time(struct rng *r, const struct line *l)
{
	double mean = (double)kv_u64(l, "pin_mean_ns", 1000000) * g.time_scale;
	const char *dist = kv_str(l, "pin_distribution", "exponential");
	double t = strcmp(dist, "fixed") == 0 ? mean : rng_exp(r, mean);
	return t < 1 ? 1 : (uint64_t)t;
}

/* hold=pin: O_DIRECT reads through io_uring from a virtio disk whose QEMU backend answers
 * after a fixed latency (null-co latency-ns = pin_mean_ns): the buffer pages are held by the
 * block layer for the time the request is in flight, the real direct-I/O path.
 * v[0] submitted, v[1] completed, v[2] ring full (dropped), v[3] I/O errors,
 * v[4] total in-flight time seen (ns), v[5] longest (ns), v[6] most in flight at once */
static void dio_uring(const struct line *l, struct wstats *st, char *buf, uint64_t start,
		      uint64_t stop)
{
	uint64_t bpages = kv_u64(l, "buffer_pages", 1), per = kv_u64(l, "pages_per_io", 1);
	char serial[64], dev[64];
	snprintf(serial, sizeof serial, "cmadev-dio%" PRIu64, kv_u64(l, "id", 0));
	if (find_disk(serial, dev, sizeof dev) != 0) {
		note(st, "no disk %s for the direct I/O: nothing done", serial);
		st->failures++;
		return;
	}
	int fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	uint64_t disk = 0;
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &disk) != 0 || disk < per * PAGE_SZ) {
		note(st, "cannot use %s for O_DIRECT: %s", dev, errno_name(errno));
		st->failures++;
		return;
	}
	struct uring u;
	int e = uring_init(&u, 256);
	if (e) {
		note(st, "io_uring_setup: %s", errno_name(e));
		st->failures++;
		close(fd);
		return;
	}
	struct rng r;
	rng_seed(&r, g.seed * 1000003 + kv_u64(l, "id", 0));
	double mean_gap = 1e9 / kv_f64(l, "ios_per_s", 1) * g.time_scale;
	uint64_t next = start + (uint64_t)rng_exp(&r, mean_gap), inflight = 0;
	uint64_t dpages = disk / PAGE_SZ;
	while (!should_stop(stop) || inflight) {
		uint64_t now = now_ns();
		while (next <= now && !should_stop(stop)) {
			uint64_t first = rng_below(&r, bpages - per + 1);
			uint64_t at = rng_below(&r, dpages - per + 1) * PAGE_SZ;
			if (uring_prep_read(&u, fd, buf + first * PAGE_SZ, (unsigned)(per * PAGE_SZ), at,
					    now) == 0) {
				st->v[0]++;
				inflight++;
			} else {
				st->v[2]++;
			}
			next += (uint64_t)rng_exp(&r, mean_gap) + 1;
		}
		if (uring_submit(&u) < 0)
			st->v[3]++;
		if (inflight > st->v[6])
			st->v[6] = inflight;
		uint64_t user;
		int res;
		while (uring_reap(&u, &user, &res, 0) == 1) {
			uint64_t dt = now_ns() - user;
			inflight--;
			st->v[1]++;
			st->v[4] += dt;
			if (dt > st->v[5])
				st->v[5] = dt;
			if (res < 0) {
				st->v[3]++;
				st->last_errno = (uint64_t)-res;
			}
		}
		st->ops = st->v[1];
		/* while I/Os are in flight, look again in a millisecond to time their completion */
		nap_until(inflight ? now_ns() : next, should_stop(stop) ? UINT64_MAX : stop);
	}
	uring_exit(&u);
	close(fd);
}

/* hold=get_page / get_page_short: vmsplice() of the buffer's pages into a pipe. In 6.1,
 * vmsplice_to_pipe -> iter_to_pipe takes each page with iov_iter_get_pages2 (a plain
 * reference, FOLL_GET) and the pipe buffer keeps it until the pipe is drained or closed
 * (user_page_pipe_buf_ops): a get_page()-style reference of exactly the drawn duration.
 * v[0] holds taken, v[1] released, v[2] holds that failed, v[3] most pages held at once */
static void dio_vmsplice(const struct line *l, struct wstats *st, char *buf, uint64_t start,
			 uint64_t stop)
{
	uint64_t bpages = kv_u64(l, "buffer_pages", 1), per = kv_u64(l, "pages_per_io", 1);
	struct rng r;
	rng_seed(&r, g.seed * 1000003 + kv_u64(l, "id", 0));
	double mean_gap = 1e9 / kv_f64(l, "ios_per_s", 1) * g.time_scale;
	uint64_t next = start + (uint64_t)rng_exp(&r, mean_gap);
	struct heap h = { 0 };
	while (!should_stop(stop)) {
		uint64_t now = now_ns();
		st->v[1] += heap_release(&h, now, 0);
		while (next <= now) {
			int fds[2];
			uint64_t first = rng_below(&r, bpages - per + 1);
			struct iovec iov = { buf + first * PAGE_SZ, per * PAGE_SZ };
			int e = pipe_for((uint32_t)per, fds);
			ssize_t n = e ? -1 : vmsplice(fds[1], &iov, 1, SPLICE_F_NONBLOCK);
			if (n < (ssize_t)(per * PAGE_SZ)) {
				st->v[2]++;
				st->last_errno = (uint64_t)(e ? -e : errno);
			}
			if (n > 0) {
				struct held x = { now + pin_time(&r, l), fds[0], fds[1],
						  (uint32_t)((uint64_t)n / PAGE_SZ) };
				if (heap_push(&h, x) == 0)
					st->v[0]++;
			} else if (!e) {
				close(fds[0]);
				close(fds[1]);
			}
			next += (uint64_t)rng_exp(&r, mean_gap) + 1;
		}
		if (h.pages > st->v[3])
			st->v[3] = h.pages;
		st->ops = st->v[0];
		uint64_t wake = next;
		if (h.n && h.a[0].t < wake)
			wake = h.a[0].t;
		nap_until(wake, stop);
	}
	st->v[1] += heap_release(&h, 0, 1);
	free(h.a);
}

static void run_direct_io(const struct line *l, struct wstats *st, uint64_t start,
			  uint64_t stop)
{
	uint64_t bpages = kv_u64(l, "buffer_pages", 1);
	char *buf = map_anon(bpages, 0);
	if (!buf) {
		note(st, "mmap of the %" PRIu64 "-page buffer failed: %s", bpages, errno_name(errno));
		st->failures++;
		return;
	}
	sleep_until_ns(start);
	populate(buf, bpages, stop); /* the model populates the buffer before its first I/O */
	st->v[7] = (uint64_t)pages_in_cma(buf, bpages);
	const char *hold = kv_str(l, "hold", "pin");
	if (strcmp(hold, "pin") == 0)
		dio_uring(l, st, buf, now_ns(), stop);
	else
		dio_vmsplice(l, st, buf, now_ns(), stop);
}

/* ---------------------------------------------------------------- longterm_pinner */

/* v[0] time IORING_REGISTER_BUFFERS took (ns), v[1] its errno (0: pinned), v[2] pages
 * pinned, v[3] when the pins were released (ns since t0, 0: at exit), v[4] pages of the
 * buffer in CMA just before the registration, v[5] just after it */
static void run_longterm(const struct line *l, struct wstats *st, uint64_t start, uint64_t stop)
{
	uint64_t pages = kv_u64(l, "pages", 1);
	uint64_t hold = kv_u64(l, "hold_ns", 0);
	char *buf = map_anon(pages, 0);
	if (!buf) {
		note(st, "mmap of %" PRIu64 " pages failed: %s", pages, errno_name(errno));
		st->failures++;
		return;
	}
	sleep_until_ns(start);
	if (kv_u64(l, "populate_first", 0))
		populate(buf, pages, stop);
	struct uring u;
	int e = uring_init(&u, 1);
	if (e) {
		note(st, "io_uring_setup: %s", errno_name(e));
		st->failures++;
		return;
	}
	st->v[4] = (uint64_t)pages_in_cma(buf, pages);
	uint64_t t = now_ns();
	e = uring_register_buffers(u.fd, buf, pages * PAGE_SZ);
	st->v[0] = now_ns() - t;
	st->v[5] = (uint64_t)pages_in_cma(buf, pages);
	st->v[1] = (uint64_t)-e;
	st->ops = 1;
	if (e) {
		st->failures++;
		st->last_errno = (uint64_t)-e;
		note(st, "IORING_REGISTER_BUFFERS of %" PRIu64 " pages failed: %s", pages,
		     errno_name(e));
	} else {
		st->v[2] = pages;
	}
	uint64_t until = hold ? now_ns() + (uint64_t)((double)hold * g.time_scale) : stop;
	while (!should_stop(stop) && now_ns() < until)
		nap_until(until, stop);
	if (!e && hold && !should_stop(stop)) {
		uring_unregister_buffers(u.fd);
		st->v[3] = since_t0(now_ns());
		while (!should_stop(stop))
			nap_until(stop, stop);
	}
	uring_exit(&u);
}

/* ---------------------------------------------------------------- fs_mount */

/* v[0] mount time (ns), v[1] mount errno, v[2] unmount errno */
static void run_fs_mount(const struct line *l, struct wstats *st, uint64_t start, uint64_t stop)
{
	char serial[64], dev[64], dir[128];
	snprintf(serial, sizeof serial, "cmadev-mnt%" PRIu64, kv_u64(l, "id", 0));
	snprintf(dir, sizeof dir, "/mnt/%s", kv_str(l, "name", "fs"));
	const char *fstype = kv_str(l, "fstype", "ext4");
	if (find_disk(serial, dev, sizeof dev) != 0) {
		note(st, "no disk %s to mount", serial);
		st->failures++;
		return;
	}
	mkdir("/mnt", 0755);
	mkdir(dir, 0755);
	sleep_until_ns(start);
	uint64_t t = now_ns();
	int e = mount(dev, dir, fstype, MS_NOATIME, NULL) == 0 ? 0 : errno;
	st->v[0] = now_ns() - t;
	st->v[1] = (uint64_t)e;
	st->ops = 1;
	if (e) {
		st->failures++;
		st->last_errno = (uint64_t)e;
		note(st, "mount -t %s %s %s: %s", fstype, dev, dir, errno_name(e));
		return;
	}
	while (!should_stop(stop))
		nap_until(stop, stop);
	st->v[2] = umount2(dir, 0) == 0 ? 0 : (uint64_t)errno;
}

/* ---------------------------------------------------------------- kernel_alloc */

/* Unmovable kernel memory: pages written into a pipe. pipe_write allocates each buffer page
 * with alloc_page(GFP_HIGHUSER | __GFP_ACCOUNT) (fs/pipe.c, 6.1): no __GFP_MOVABLE, so an
 * UNMOVABLE allocation that may not use CMA and may steal pageblocks. An order-n allocation
 * is 2^n such order-0 pages (said in the note).
 * v[0] allocations, v[1] frees, v[2] most pages live at once */
static void run_kernel_alloc(const struct line *l, struct wstats *st, uint64_t start,
			     uint64_t stop)
{
	uint32_t order = (uint32_t)kv_u64(l, "order", 0);
	uint32_t pages = 1u << order;
	if (order)
		note(st, "order-%u allocations are made of %u order-0 pipe pages: user space "
			 "cannot make the kernel allocate one high-order unmovable block",
		     order, pages);
	static char chunk[16 * PAGE_SZ];
	memset(chunk, 0x6b, sizeof chunk);
	struct rng r;
	rng_seed(&r, g.seed * 1000003 + kv_u64(l, "id", 0));
	double mean_gap = 1e9 / kv_f64(l, "rate_allocs_per_s", 1) * g.time_scale;
	double life = (double)kv_u64(l, "lifetime_mean_ns", 1000000000) * g.time_scale;
	uint64_t next = start + (uint64_t)rng_exp(&r, mean_gap);
	struct heap h = { 0 };
	sleep_until_ns(start);
	while (!should_stop(stop)) {
		uint64_t now = now_ns();
		st->v[1] += heap_release(&h, now, 0);
		while (next <= now) {
			int fds[2];
			int e = pipe_for(pages, fds);
			uint64_t written = 0;
			while (!e && written < pages * PAGE_SZ) {
				size_t k = pages * PAGE_SZ - written;
				ssize_t w = write(fds[1], chunk, k < sizeof chunk ? k : sizeof chunk);
				if (w <= 0) {
					e = errno ? errno : EAGAIN;
					break;
				}
				written += (uint64_t)w;
			}
			if (e) {
				st->failures++;
				st->last_errno = (uint64_t)(e < 0 ? -e : e);
			}
			if (written) {
				struct held x = { now + (uint64_t)rng_exp(&r, life), fds[0], fds[1],
						  (uint32_t)(written / PAGE_SZ) };
				if (heap_push(&h, x) == 0)
					st->v[0]++;
			} else if (e > 0) {
				close(fds[0]);
				close(fds[1]);
			}
			next += (uint64_t)rng_exp(&r, mean_gap) + 1;
		}
		if (h.pages > st->v[2])
			st->v[2] = h.pages;
		st->ops = st->v[0];
		uint64_t wake = next;
		if (h.n && h.a[0].t < wake)
			wake = h.a[0].t;
		nap_until(wake, stop);
	}
	st->v[1] += heap_release(&h, 0, 1);
	free(h.a);
}

/* ---------------------------------------------------------------- tmpfs_file */

static char shm_page[PAGE_SZ] __attribute__((aligned(4096)));

/* A file on a tmpfs of its own (shmem pages: Shmem and Cached, on the anon LRU), written in
 * order at its rate until it has its size, and read (a share rewritten) at random over what
 * is written, meanwhile and after; deleted and unmounted at the end.
 * v[0] pages written in order, v[1] random accesses, v[2] of them writes, v[3] when the
 * file was whole (ns since t0, 0: never), v[4] writes that failed */
static void run_tmpfs_file(const struct line *l, struct wstats *st, uint64_t start,
			   uint64_t stop)
{
	uint64_t n = kv_u64(l, "file_pages", 1);
	double wfrac = kv_f64(l, "write_fraction", 0);
	char dir[128], path[160], opts[64];
	snprintf(dir, sizeof dir, "/mnt/%s", kv_str(l, "name", "tmpfs"));
	snprintf(path, sizeof path, "%s/file", dir);
	/* room for the file (tmpfs' default limit is half of the memory) */
	snprintf(opts, sizeof opts, "size=%" PRIu64 "k", (n + 16) * (PAGE_SZ / 1024));
	mkdir("/mnt", 0755);
	mkdir(dir, 0755);
	if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
		st->failures++;
		st->last_errno = (uint64_t)errno;
		note(st, "mount -t tmpfs -o %s %s: %s", opts, dir, errno_name(errno));
		return;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		st->failures++;
		st->last_errno = (uint64_t)errno;
		note(st, "open %s: %s", path, errno_name(errno));
		umount2(dir, 0);
		return;
	}
	memset(shm_page, 0x3c, sizeof shm_page);
	struct rng r;
	rng_seed(&r, g.seed * 1000003 + kv_u64(l, "id", 0));
	uint64_t skipped = 0, written = 0;
	struct pacer pw, pa;
	pacer_init(&pw, kv_f64(l, "rate_pages_per_s", 0), start, &skipped);
	double access = kv_f64(l, "access_rate_pages_per_s", 0);
	int accessing = 0;
	while (!should_stop(stop)) {
		uint64_t now = now_ns();
		for (uint64_t k = pacer_due(&pw, now); k && written < n; k--) {
			if (pwrite(fd, shm_page, PAGE_SZ, (off_t)(written * PAGE_SZ)) == PAGE_SZ) {
				written++;
			} else {
				st->v[4]++;
				st->last_errno = (uint64_t)errno;
				break;
			}
		}
		if (written >= n && !st->v[3])
			st->v[3] = since_t0(now_ns());
		if (!accessing && written > 0 && access > 0) {
			pacer_init(&pa, access, now, &skipped);
			accessing = 1;
		}
		if (accessing) {
			for (uint64_t k = pacer_due(&pa, now); k; k--) {
				off_t at = (off_t)(rng_below(&r, written) * PAGE_SZ);
				if (rng_unit(&r) < wfrac) {
					if (pwrite(fd, shm_page, PAGE_SZ, at) != PAGE_SZ) {
						st->v[4]++;
						st->last_errno = (uint64_t)errno;
					}
					st->v[2]++;
				} else if (pread(fd, shm_page, PAGE_SZ, at) < 0) {
					st->last_errno = (uint64_t)errno;
				}
				st->v[1]++;
			}
		}
		st->v[0] = written;
		st->ops = written + st->v[1];
		st->skipped = skipped;
		uint64_t next = accessing ? pacer_next(&pa) : UINT64_MAX;
		if (written < n && pacer_next(&pw) < next)
			next = pacer_next(&pw);
		nap_until(next, stop);
	}
	close(fd);
	unlink(path);
	umount2(dir, 0);
}

/* ---------------------------------------------------------------- processes */

/* ---------------------------------------------------------------- build */

/* A parallel build as the model's `build` kind runs it: `jobs` compile processes at a time,
 * each fork()ed by the workload's process, `processes` in all. A process maps its heap and
 * then does, in an order drawn at random in proportion to what is left of each, first-touch
 * faults of its heap, re-touches of it, and reads of the source tree: whole files of
 * `source_file_pages` pages (the folder `tree` on the data disk, a file per source file),
 * each opened afresh and read from its first page to its last, so that it gets the kernel's
 * readahead as a compiler's read() does, the files drawn by a Zipf law; or, without files,
 * single pages of the one file `file` at random under POSIX_FADV_RANDOM. It burns its CPU
 * time (CLOCK_PROCESS_CPUTIME_ID) evenly between its operations, writes its object (the
 * file `output`, written around) and exits. Its kernel memory is what fork() and the
 * process really allocate, not the model's estimate.
 * v[0] processes started, v[1] processes exited, v[2] finished (ns since the program's
 * start), v[3] heap pages faulted, v[4] pages read, v[5] pages written, v[6] read errors */

struct unit_plan {
	uint64_t heap, touches, reads, writes, cpu_per_op, out_at, seed;
};

static uint64_t process_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void burn_cpu(uint64_t ns)
{
	uint64_t end = process_cpu_ns() + ns;
	while (process_cpu_ns() < end)
		;
}

static void count(volatile uint64_t *v)
{
	__atomic_fetch_add(v, 1, __ATOMIC_RELAXED);
}

struct source {
	const struct line *l;
	uint64_t pages, per_file, files;
	double zipf_s;
	struct zipf z;
	int fd;         /* the open file (files) or the whole tree (pages at random) */
	uint64_t pos, left; /* the open file's next page and pages left to read */
};


static void read_source(struct source *src, struct rng *r, struct wstats *st)
{
	uint64_t page;
	if (src->per_file) {
		if (!src->left) {
			if (src->fd >= 0)
				close(src->fd);
			uint64_t n = src->files;
			uint64_t f = src->zipf_s > 0 ? zipf_sample(&src->z, r) - 1 : rng_below(r, n);
			uint64_t first = f * src->per_file;
			src->left = src->pages - first < src->per_file ? src->pages - first
								       : src->per_file;
			src->pos = 0;
			char name[160];
			snprintf(name, sizeof name, "%s/%" PRIu64, kv_str(src->l, "tree", "missing"),
				 f);
			src->fd = open_in_data(name, O_RDONLY, st);
		}
		page = src->pos++;
		src->left--;
	} else {
		page = src->zipf_s > 0 ? zipf_sample(&src->z, r) - 1 : rng_below(r, src->pages);
	}
	if (src->fd < 0 || pread(src->fd, io_page, PAGE_SZ, (off_t)(page * PAGE_SZ)) < 0)
		count(&st->v[6]);
	else
		count(&st->v[4]);
}

static void compile_unit(const struct line *l, const struct unit_plan *u, struct wstats *st)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	struct rng r;
	rng_seed(&r, u->seed);
	struct source src = { .l = l, .pages = kv_u64(l, "source_pages", 1),
			      .per_file = kv_u64(l, "source_file_pages", 0),
			      .zipf_s = kv_f64(l, "source_zipf", 0), .fd = -1 };
	src.files = src.per_file ? (src.pages + src.per_file - 1) / src.per_file : src.pages;
	if (src.zipf_s > 0)
		zipf_init(&src.z, src.files, src.zipf_s);
	if (!src.per_file) {
		src.fd = open_data(l, O_RDONLY, st);
		if (src.fd >= 0)
			posix_fadvise(src.fd, 0, 0, POSIX_FADV_RANDOM);
	}
	char *heap = u->heap ? map_anon(u->heap, 0) : NULL;
	uint64_t grown = 0, touches = u->touches, reads = u->reads;
	volatile char sink = 0;
	for (;;) {
		uint64_t grow = heap ? u->heap - grown : 0, touch = grown ? touches : 0;
		uint64_t total = grow + touch + reads;
		if (!total)
			break;
		uint64_t x = rng_below(&r, total);
		if (x < grow) {
			heap[grown * PAGE_SZ] = (char)(grown | 1);
			grown++;
			count(&st->v[3]);
		} else if (x < grow + touch) {
			touches--;
			uint64_t i = rng_below(&r, grown) * PAGE_SZ + 64;
			if (rng_below(&r, 2))
				heap[i]++;
			else
				sink = (char)(sink + heap[i]);
		} else {
			reads--;
			read_source(&src, &r, st);
		}
		burn_cpu(u->cpu_per_op);
	}
	if (src.fd >= 0)
		close(src.fd);
	uint64_t space = kv_u64(l, "output_space_pages", 0);
	int out = u->writes && space ? open_in_data(kv_str(l, "output", "missing"), O_WRONLY, st)
				     : -1;
	memset(io_page, 0x5a, sizeof io_page);
	for (uint64_t k = 0; out >= 0 && k < u->writes; k++) {
		uint64_t at = (u->out_at + k) % space;
		if (pwrite(out, io_page, PAGE_SZ, (off_t)(at * PAGE_SZ)) == PAGE_SZ)
			count(&st->v[5]);
		burn_cpu(u->cpu_per_op);
	}
	if (out >= 0)
		close(out);
	(void)sink;
	_exit(0);
}

/* What process number `n` of the build does: sizes within +-50% of the means, as the
 * model draws them. */
static struct unit_plan plan_unit(const struct line *l, struct rng *r, uint64_t n)
{
	uint64_t mean_heap = kv_u64(l, "anon_pages", 1), cpu = kv_u64(l, "cpu_ns", 1);
	uint64_t heap = mean_heap / 2 + rng_below(r, mean_heap ? mean_heap : 1);
	uint64_t reads = kv_u64(l, "reads_per_process", 0), writes = kv_u64(l, "output_pages", 0);
	uint64_t touches = (uint64_t)(kv_f64(l, "touches_per_page", 0) * (double)heap + 0.5);
	uint64_t ops = heap + touches + reads + writes;
	uint64_t cpu_ns = (uint64_t)((double)(cpu / 2 + rng_below(r, cpu)) * g.time_scale);
	return (struct unit_plan){ .heap = heap ? heap : 1, .touches = touches, .reads = reads,
				   .writes = writes, .cpu_per_op = cpu_ns / (ops ? ops : 1),
				   .out_at = n * writes, .seed = rng_below(r, UINT64_MAX) };
}

static void run_build(const struct line *l, struct wstats *st, uint64_t start, uint64_t stop)
{
	(void)start;
	uint64_t jobs = kv_u64(l, "jobs", 1), limit = kv_u64(l, "processes", 0);
	pid_t *kids = calloc(jobs, sizeof *kids);
	if (!kids) {
		note(st, "no memory for %" PRIu64 " job slots", jobs);
		return;
	}
	struct rng r;
	rng_seed(&r, g.seed * 1000003 + kv_u64(l, "id", 0));
	uint64_t started = 0, running = 0;
	while (!should_stop(stop)) {
		for (uint64_t j = 0; j < jobs && (!limit || started < limit); j++) {
			if (kids[j] > 0)
				continue;
			struct unit_plan u = plan_unit(l, &r, started);
			pid_t pid = fork();
			if (pid == 0)
				compile_unit(l, &u, st);
			if (pid < 0) {
				st->failures++;
				st->last_errno = (uint64_t)errno;
				break;
			}
			kids[j] = pid;
			started++;
			running++;
			st->v[0] = started;
		}
		if (!running) {
			st->v[2] = since_t0(now_ns());
			break;
		}
		pid_t done = waitpid(-1, NULL, WNOHANG);
		if (done <= 0) {
			sleep_ns(1000000);
			continue;
		}
		for (uint64_t j = 0; j < jobs; j++)
			if (kids[j] == done)
				kids[j] = 0;
		running--;
		st->v[1]++;
		st->ops = st->v[3] + st->v[4] + st->v[5];
	}
	for (uint64_t j = 0; j < jobs; j++)
		if (kids[j] > 0) {
			kill(kids[j], SIGKILL);
			waitpid(kids[j], NULL, 0);
		}
	st->ops = st->v[3] + st->v[4] + st->v[5];
	free(kids);
}

typedef void (*runner)(const struct line *, struct wstats *, uint64_t, uint64_t);

static const struct {
	const char *kind;
	runner run;
	const char *counters; /* names of v[0..], space separated (reported to the host) */
} kinds[] = {
	{ "anon_hog", run_anon_hog, "pages_faulted touches write_touches full_at_ns pages_in_cma mlock_errno" },
	{ "page_cache_reader", run_reader, "reads read_ns read_max_ns read_errors" },
	{ "writer", run_writer, "pages_written fsyncs fsync_ns fsync_max_ns" },
	{ "direct_io", run_direct_io,
	  "ios_submitted ios_completed ring_full io_errors inflight_ns inflight_max_ns "
	  "max_inflight buffer_in_cma" },
	{ "longterm_pinner", run_longterm,
	  "register_ns register_errno pages_pinned released_at_ns in_cma_before in_cma_after" },
	{ "fs_mount", run_fs_mount, "mount_ns mount_errno umount_errno" },
	{ "kernel_alloc", run_kernel_alloc, "allocs frees max_live_pages" },
	{ "tmpfs_file", run_tmpfs_file,
	  "pages_written accesses write_accesses full_at_ns write_errors" },
	{ "build", run_build,
	  "processes_started processes_exited finished_ns heap_pages pages_read pages_written "
	  "read_errors" },
};

static int kind_index(const char *kind)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return (int)i;
	return -1;
}

/* vmsplice holds name their counters differently from O_DIRECT */
static const char *counter_names(const struct workload *w)
{
	if (strcmp(w->kind, "direct_io") == 0 && strcmp(kv_str(w->spec, "hold", "pin"), "pin"))
		return "holds released hold_failures max_pages_held - - - buffer_in_cma";
	return kinds[kind_index(w->kind)].counters;
}

static void child_main(struct workload *w)
{
	prctl(PR_SET_NAME, w->name, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	uint64_t start = guest_time(w->start_ns);
	uint64_t stop = w->stop_ns ? guest_time(w->stop_ns) : UINT64_MAX;
	sleep_until_ns(start);
	w->st->started = 1;
	kinds[kind_index(w->kind)].run(w->spec, w->st, start, stop);
	w->st->finished = 1;
	_exit(0);
}

int workloads_prepare(struct workload *w, int n)
{
	for (int i = 0; i < n; i++) {
		if (kind_index(w[i].kind) < 0) {
			results_note("workload %s: kind %s is not one the agent knows: not run",
				     w[i].name, w[i].kind);
			w[i].pid = -1;
			continue;
		}
		w[i].st = mmap(NULL, sizeof *w[i].st, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (w[i].st == MAP_FAILED)
			return -errno;
		memset(w[i].st, 0, sizeof *w[i].st);
	}
	for (int i = 0; i < n; i++) {
		if (w[i].pid < 0)
			continue;
		pid_t pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0)
			child_main(&w[i]);
		w[i].pid = pid;
	}
	return 0;
}

/* Ask every workload to stop, give them `grace_ns`, then kill what is left. */
void workloads_finish(struct workload *w, int n, uint64_t grace_ns)
{
	*g.stop_all = 1;
	uint64_t deadline = now_ns() + grace_ns;
	for (int i = 0; i < n; i++) {
		if (w[i].pid <= 0)
			continue;
		int status = 0;
		for (;;) {
			pid_t r = waitpid(w[i].pid, &status, WNOHANG);
			if (r == w[i].pid)
				break;
			if (now_ns() >= deadline) {
				kill(w[i].pid, SIGKILL);
				waitpid(w[i].pid, &status, 0);
				note(w[i].st, "did not stop within the grace time: killed");
				break;
			}
			sleep_ns(5000000);
		}
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && w[i].st->finished == 0)
			note(w[i].st, "killed by SIGKILL before it finished (the OOM killer, if dmesg "
				      "says so)");
		w[i].pid = WIFSIGNALED(status) ? -WTERMSIG(status) : 0;
	}
}

void workloads_report(struct workload *w, int n)
{
	for (int i = 0; i < n; i++) {
		if (!w[i].st || w[i].st == MAP_FAILED)
			continue;
		struct wstats *st = w[i].st;
		char attrs[256];
		snprintf(attrs, sizeof attrs, "id=%d name=%s kind=%s", w[i].id, w[i].name,
			 w[i].kind);
		char text[4096];
		int k = snprintf(text, sizeof text,
				 "started=%d\nfinished=%d\nsignal=%d\nops=%" PRIu64
				 "\nskipped=%" PRIu64 "\nfailures=%" PRIu64 "\nlast_errno=%s\n",
				 st->started, st->finished, w[i].pid < 0 ? -w[i].pid : 0, st->ops,
				 st->skipped, st->failures, errno_name((int)st->last_errno));
		char names[256];
		snprintf(names, sizeof names, "%s", counter_names(&w[i]));
		int j = 0;
		for (char *save, *tok = strtok_r(names, " ", &save); tok && j < 12;
		     tok = strtok_r(NULL, " ", &save), j++)
			if (strcmp(tok, "-") != 0) /* a slot this variant does not use */
				k += snprintf(text + k, sizeof text - (size_t)k, "%s=%" PRIu64 "\n", tok,
				      st->v[j]);
		st->note[sizeof st->note - 1] = 0;
		snprintf(text + k, sizeof text - (size_t)k, "note=%s\n", st->note);
		results_record("workload", attrs, text, strlen(text));
	}
}
