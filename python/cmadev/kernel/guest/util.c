/* cmadev guest agent: program tokens, clocks, random numbers, small file helpers. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

/* ---------------------------------------------------------------- key=value lookup */

const char *kv_str(const struct line *l, const char *key, const char *dflt)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->key[i], key) == 0)
			return l->val[i];
	return dflt;
}

int kv_has(const struct line *l, const char *key)
{
	return kv_str(l, key, NULL) != NULL;
}

uint64_t kv_u64(const struct line *l, const char *key, uint64_t dflt)
{
	const char *v = kv_str(l, key, NULL);
	return v ? strtoull(v, NULL, 10) : dflt;
}

int64_t kv_i64(const struct line *l, const char *key, int64_t dflt)
{
	const char *v = kv_str(l, key, NULL);
	return v ? strtoll(v, NULL, 10) : dflt;
}

double kv_f64(const struct line *l, const char *key, double dflt)
{
	const char *v = kv_str(l, key, NULL);
	return v ? strtod(v, NULL) : dflt;
}

/* ---------------------------------------------------------------- clocks */

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void sleep_until_ns(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ULL),
			       .tv_nsec = (long)(t % 1000000000ULL) };
	/* EINTR: just go round again until the time has come */
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

void sleep_ns(uint64_t ns)
{
	sleep_until_ns(now_ns() + ns);
}

uint64_t guest_time(uint64_t prog_ns)
{
	return g.t0 + (uint64_t)((double)prog_ns * g.time_scale);
}

uint64_t since_t0(uint64_t mono)
{
	return mono >= g.t0 ? mono - g.t0 : 0;
}

/* ---------------------------------------------------------------- xoshiro256** */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? (uint64_t)(rng_unit(r) * (double)n) % n : 0;
}

double rng_exp(struct rng *r, double mean)
{
	return -mean * log1p(-rng_unit(r));
}

/* ---------------------------------------------------------------- Zipf */

static double helper1(double x) /* log1p(x) / x */
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double helper2(double x) /* expm1(x) / x */
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
}

static double zipf_h(const struct zipf *z, double x)
{
	return exp(-z->s * log(x));
}

static double zipf_hint(const struct zipf *z, double x)
{
	double lx = log(x);
	return helper2((1.0 - z->s) * lx) * lx;
}

static double zipf_hinv(const struct zipf *z, double x)
{
	double t = x * (1.0 - z->s);
	if (t < -1.0)
		t = -1.0;
	return exp(helper1(t) * x);
}

void zipf_init(struct zipf *z, uint64_t n, double s)
{
	z->n = (double)n;
	z->s = s;
	z->h_x1 = zipf_hint(z, 1.5) - 1.0;
	z->h_n = zipf_hint(z, z->n + 0.5);
	z->threshold = 2.0 - zipf_hinv(z, zipf_hint(z, 2.5) - zipf_h(z, 2.0));
}

uint64_t zipf_sample(const struct zipf *z, struct rng *r)
{
	for (;;) {
		double u = z->h_n + rng_unit(r) * (z->h_x1 - z->h_n);
		double x = zipf_hinv(z, u);
		double k = floor(x + 0.5);
		if (k < 1)
			k = 1;
		else if (k > z->n)
			k = z->n;
		if (k - x <= z->threshold || u >= zipf_hint(z, k + 0.5) - zipf_h(z, k))
			return (uint64_t)k;
	}
}

/* ---------------------------------------------------------------- files */

char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			close(fd);
			errno = ENOMEM;
			return NULL;
		}
		if (cap - n < 4096) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger)
				free(buf);
			buf = bigger;
			cap *= 2;
			continue;
		}
		/* procfs and seq_file hand out a page or so per read: loop until EOF */
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int err = w < 0 ? -errno : 0;
	close(fd);
	return err;
}

int write_u64_file(const char *path, uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%" PRIu64, v);
	return write_file(path, buf);
}

int write_u64_fd(int fd, uint64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%" PRIu64, v);
	return write(fd, buf, (size_t)n) < 0 ? -errno : 0;
}

int read_u64_file(const char *path, uint64_t *v)
{
	size_t n;
	char *s = read_file(path, &n);
	if (!s)
		return -errno;
	*v = strtoull(s, NULL, 10);
	free(s);
	return 0;
}

const char *errno_name(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case ENOSPC: return "ENOSPC";
	case EOVERFLOW: return "EOVERFLOW";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ETIMEDOUT: return "ETIMEDOUT";
	default: return "E?";
	}
}

int find_disk(const char *serial, char *buf, size_t n)
{
	DIR *d = opendir("/sys/block");
	if (!d)
		return -errno;
	struct dirent *e;
	int found = -ENOENT;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "vd", 2) != 0)
			continue;
		char path[300];
		snprintf(path, sizeof path, "/sys/block/%s/serial", e->d_name);
		char *s = read_file(path, NULL);
		if (!s)
			continue;
		s[strcspn(s, "\n")] = 0;
		if (strcmp(s, serial) == 0) {
			snprintf(buf, n, "/dev/%s", e->d_name);
			found = 0;
		}
		free(s);
		if (found == 0)
			break;
	}
	closedir(d);
	return found;
}

int64_t pages_in_cma(const void *addr, uint64_t pages)
{
	if (!g.cma.present)
		return -1;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	static uint64_t ent[512];
	uint64_t first = (uint64_t)(uintptr_t)addr / PAGE_SZ, in = 0;
	uint64_t lo = g.cma.base_pfn, hi = g.cma.base_pfn + g.cma.count;
	for (uint64_t done = 0; done < pages;) {
		uint64_t n = pages - done < 512 ? pages - done : 512;
		ssize_t r = pread(fd, ent, n * 8, (off_t)((first + done) * 8));
		if (r <= 0)
			break;
		for (uint64_t i = 0; i < (uint64_t)r / 8; i++) {
			uint64_t pfn = ent[i] & ((1ULL << 55) - 1);
			if ((ent[i] >> 63) && pfn >= lo && pfn < hi)
				in++;
		}
		done += (uint64_t)r / 8;
	}
	close(fd);
	return (int64_t)in;
}

uint64_t vmstat_value(const char *name)
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
