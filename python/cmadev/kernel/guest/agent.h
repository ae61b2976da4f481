/* cmadev guest agent: shared declarations.
 *
 * The agent is PID 1 of a QEMU guest running Linux 6.1. It reads a guest program
 * (/program.txt, a line format written by cmadev.kernel.program), replays its workloads and
 * device requests at the program's times (guest CLOCK_MONOTONIC: a TCG guest is slower than
 * hardware, so the *work* done per second is lower, not the clock), samples the kernel's own
 * views, and writes everything as framed records to a raw virtio disk that the host reads
 * after the guest has powered off. Nothing is parsed from the console.
 *
 * Built on the host with `gcc -static -O2 -Wall -Wextra -Werror -pthread`.
 */
#ifndef CMADEV_AGENT_H
#define CMADEV_AGENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PAGE_SZ 4096UL
#define MAX_KV 48
#define MAX_WORKLOADS 32
#define MAX_DEVICES 32
#define MAX_STEPS 4096
#define MAX_BUFFERS 64
#define MAX_SYSCTLS 32
#define NOTE_LEN 1024

/* ---------------------------------------------------------------- program lines */

/* One line of the program: a verb and key=value tokens (values are %-encoded by the host,
 * so they never hold a space; the agent echoes them back undecoded). */
struct line {
	char *verb;
	int n;
	char *key[MAX_KV];
	char *val[MAX_KV];
};

const char *kv_str(const struct line *l, const char *key, const char *dflt);
uint64_t kv_u64(const struct line *l, const char *key, uint64_t dflt);
int64_t kv_i64(const struct line *l, const char *key, int64_t dflt);
double kv_f64(const struct line *l, const char *key, double dflt);
int kv_has(const struct line *l, const char *key);

/* ---------------------------------------------------------------- time, randomness */

uint64_t now_ns(void);            /* CLOCK_MONOTONIC */
void sleep_until_ns(uint64_t t);  /* absolute CLOCK_MONOTONIC */
void sleep_ns(uint64_t ns);

struct rng {
	uint64_t s[4];
};
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
double rng_unit(struct rng *r);            /* [0, 1) */
uint64_t rng_below(struct rng *r, uint64_t n);
double rng_exp(struct rng *r, double mean); /* exponential with this mean */

/* Zipf ranks in 1..n by rejection-inversion (Hörmann & Derflinger 1996), O(1) memory: the
 * same sampler the model uses (rust/mm/src/workload.rs), so rank k is page k-1 on both. */
struct zipf {
	double n, s, h_x1, h_n, threshold;
};
void zipf_init(struct zipf *z, uint64_t n, double s);
uint64_t zipf_sample(const struct zipf *z, struct rng *r);

/* ---------------------------------------------------------------- files */

/* Read a whole (proc/sys/debugfs) file into a malloc'ed, NUL-terminated buffer; NULL with
 * errno set on failure. *len gets the byte count. */
char *read_file(const char *path, size_t *len);
int write_file(const char *path, const char *text); /* 0, or -errno */
int write_u64_file(const char *path, uint64_t v);   /* 0, or -errno */
int write_u64_fd(int fd, uint64_t v);               /* one write(2) of the number: 0, or -errno */
int read_u64_file(const char *path, uint64_t *v);   /* 0, or -errno */
const char *errno_name(int err);
/* How many of the pages at addr are mapped to frames of the CMA area, from
 * /proc/self/pagemap (PFNs are shown to CAP_SYS_ADMIN: the agent is root); -1 if unknown. */
int64_t pages_in_cma(const void *addr, uint64_t pages);
/* A counter of /proc/vmstat (0 if absent). */
uint64_t vmstat_value(const char *name);

/* ---------------------------------------------------------------- results stream */

/* Records on the results disk: "@@ <tag> <payload length> key=value...\n<payload>\n".
 * The stream starts with the magic line "CMADEV-RESULTS 1\n" and ends with an "end"
 * record. Thread-safe; child processes never write (they report through shared memory). */
int results_open(const char *dev);
void results_record(const char *tag, const char *attrs, const void *payload, size_t len);
void results_recordf(const char *tag, const char *attrs, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void results_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void results_close(void);
uint64_t results_bytes(void);

/* ---------------------------------------------------------------- run context */

struct cma_info {
	char name[64];      /* the guest's area, e.g. "reserved" */
	uint64_t base_pfn;
	uint64_t count;     /* pages */
	uint64_t order_per_bit;
	int present;
};

struct ctx {
	uint64_t t0;            /* CLOCK_MONOTONIC at program time 0 */
	double time_scale;      /* guest ns per program ns */
	uint64_t duration_ns;   /* program time */
	uint64_t sample_interval_ns;
	uint64_t seed;
	struct cma_info cma;
	char data_dir[64];      /* the ext4 data disk's mount point */
	volatile int *stop_all; /* shared with the workload processes */
};
extern struct ctx g;

/* program time (ns) -> absolute guest CLOCK_MONOTONIC */
uint64_t guest_time(uint64_t prog_ns);
/* guest CLOCK_MONOTONIC -> ns since t0 in guest time (what records carry) */
uint64_t since_t0(uint64_t mono);

/* Look a virtio disk up by the serial QEMU gave it ("cmadev-data" ...): "/dev/vdX" in buf,
 * 0 on success, -ENOENT when there is none. */
int find_disk(const char *serial, char *buf, size_t n);

/* ---------------------------------------------------------------- workloads */

/* What a workload process reports back, in memory shared with the agent. */
struct wstats {
	volatile int started, finished;
	volatile uint64_t ops, skipped, failures, last_errno;
	volatile uint64_t v[12];  /* kind-specific counters, named by the kind's table */
	char note[NOTE_LEN];      /* why something could not be done as asked */
};

struct workload {
	struct line *spec;
	int id;
	const char *kind, *name;
	uint64_t start_ns, stop_ns; /* program time; stop 0 = never */
	pid_t pid;
	struct wstats *st;
};

int workloads_prepare(struct workload *w, int n);   /* check specs, fork the processes */
void workloads_finish(struct workload *w, int n, uint64_t grace_ns);
void workloads_report(struct workload *w, int n);

/* ---------------------------------------------------------------- devices */

struct buffer_req {
	uint64_t pages;
	unsigned align; /* order */
};

struct step {
	uint64_t t_ns; /* program time */
	int seq;
	const char *action, *mode;
	int nbuf;
	struct buffer_req buf[MAX_BUFFERS];
};

struct device {
	int id;
	const char *name, *via, *heap;
	int nsteps;
	struct step *steps[MAX_STEPS];
};

int devices_start(struct device *d, int n);
void devices_join(struct device *d, int n, uint64_t deadline_mono);

/* ---------------------------------------------------------------- sampling, tracing */

int trace_setup(const struct line *cfg);
void trace_start(void);
void trace_stop_and_drain(void);
int sampler_start(void);
void sampler_stop(void);
void sample_once(uint64_t index, int with_bitmap);

/* ---------------------------------------------------------------- calibration */

/* Micro-measurements; writes "calib" records (guest) or prints key=value lines (host). */
void calibrate_memory(void (*emit)(const char *key, double value));
void calibrate_cma(const struct line *cfg, void (*emit)(const char *key, double value));

/* ---------------------------------------------------------------- io_uring (raw syscalls) */

struct uring {
	int fd;
	unsigned sq_entries, cq_entries;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	void *sqes, *cqes;
	void *sq_map, *cq_map;
	size_t sq_map_len, cq_map_len, sqes_len;
};

int uring_init(struct uring *u, unsigned entries);
void uring_exit(struct uring *u);
int uring_register_buffers(int fd, void *base, size_t len); /* 0 or -errno */
int uring_unregister_buffers(int fd);
/* queue a read of len bytes at off into buf; 0, or -EBUSY when the ring is full */
int uring_prep_read(struct uring *u, int fd, void *buf, unsigned len, uint64_t off,
		    uint64_t user);
int uring_submit(struct uring *u);                              /* submitted or -errno */
int uring_reap(struct uring *u, uint64_t *user, int *res, int wait); /* 1 got one, 0 none */

#endif
