/* cmadev guest agent: the results stream on a raw virtio disk.
 *
 * Why a raw disk: the console carries the kernel's own messages at any time, so framing on
 * it would mean parsing around noise; a disk the host reads after QEMU exits is exact.
 * Why O_DIRECT from one fixed buffer: writing through the block device's page cache would
 * put the agent's results into movable page-cache pages, in and out of the CMA area, and
 * perturb the run being measured. The buffer is allocated once, before the run starts.
 *
 * Layout: "CMADEV-RESULTS 1\n", then records "@@ <tag> <len> <attrs>\n<payload>\n", then
 * zero padding. The host stops at the "end" record, or at the first bad frame.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agent.h"

#define BUF_SIZE (1u << 20)
#define FLUSH_AT (BUF_SIZE / 2)
#define BLOCK 4096u

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int fd = -1;
static char *buf;
static size_t used;           /* bytes in buf; buf[0] is at disk offset `off` */
static uint64_t off, capacity, total;
static uint64_t limit;        /* records must end before this (a reserve kept for the end) */
static uint64_t dropped_records, dropped_bytes;
static int failed;            /* a write to the disk failed: nothing more is written */

int results_open(const char *dev)
{
	fd = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKGETSIZE64, &capacity) != 0)
		return -errno;
	if (capacity < 4 * (uint64_t)BUF_SIZE)
		return -ENOSPC;
	limit = capacity - 2 * (uint64_t)BUF_SIZE;
	if (posix_memalign((void **)&buf, BLOCK, BUF_SIZE) != 0)
		return -ENOMEM;
	memset(buf, 0, BUF_SIZE); /* fault the buffer in now, before the run */
	const char magic[] = "CMADEV-RESULTS 1\n";
	memcpy(buf, magic, sizeof magic - 1);
	used = sizeof magic - 1;
	total = used;
	return 0;
}

/* Write out the whole blocks of the buffer (all of it, padded, when `all`); keep the tail. */
static void flush_locked(int all)
{
	size_t n = all ? (used + BLOCK - 1) / BLOCK * BLOCK : used / BLOCK * BLOCK;
	if (n == 0 || fd < 0)
		return;
	if (all)
		memset(buf + used, 0, n - used);
	if (off + n > capacity) {
		failed = 1;
		return;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t w = pwrite(fd, buf + done, n - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			failed = 1;
			return;
		}
		done += (size_t)w;
	}
	if (all) {
		/* the padded tail block is rewritten by the next flush; keep it in the buffer */
		size_t keep = used % BLOCK;
		size_t whole = used - keep;
		memmove(buf, buf + whole, keep);
		off += whole;
		used = keep;
	} else {
		memmove(buf, buf + n, used - n);
		off += n;
		used -= n;
	}
}

static void append_locked(const void *data, size_t len)
{
	const char *p = data;
	while (len && !failed) {
		size_t room = BUF_SIZE - BLOCK - used; /* keep a block for the padding of a flush */
		size_t k = len < room ? len : room;
		memcpy(buf + used, p, k);
		used += k;
		total += k;
		p += k;
		len -= k;
		if (used >= FLUSH_AT)
			flush_locked(0);
	}
}

/* Whole records only: a record that would not fit before the reserve kept for the end of
 * the run is dropped (and counted), so the stream never holds half a record. */
void results_record(const char *tag, const char *attrs, const void *payload, size_t len)
{
	char head[1024];
	int h = snprintf(head, sizeof head, "@@ %s %zu %s\n", tag, len, attrs ? attrs : "");
	if (h < 0 || (size_t)h >= sizeof head)
		h = snprintf(head, sizeof head, "@@ %s %zu attrs-too-long=1\n", tag, len);
	pthread_mutex_lock(&lock);
	uint64_t need = off + used + (uint64_t)h + len + 1 + 2 * BLOCK;
	if (!buf || failed || need > limit) {
		dropped_records++;
		dropped_bytes += len;
	} else {
		append_locked(head, (size_t)h);
		append_locked(payload, len);
		append_locked("\n", 1);
	}
	pthread_mutex_unlock(&lock);
}

void results_recordf(const char *tag, const char *attrs, const char *fmt, ...)
{
	char text[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof text)
		n = sizeof text - 1;
	results_record(tag, attrs, text, (size_t)n);
}

void results_note(const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof text)
		n = sizeof text - 1;
	results_record("note", "", text, (size_t)n);
}

uint64_t results_bytes(void)
{
	return total;
}

void results_close(void)
{
	pthread_mutex_lock(&lock);
	limit = capacity; /* the reserve is for this */
	pthread_mutex_unlock(&lock);
	if (dropped_records) {
		char attrs[128];
		snprintf(attrs, sizeof attrs, "records=%" PRIu64 " bytes=%" PRIu64, dropped_records,
			 dropped_bytes);
		results_record("truncated", attrs, "", 0);
	}
	pthread_mutex_lock(&lock);
	flush_locked(1);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
		fd = -1;
	}
	pthread_mutex_unlock(&lock);
}
