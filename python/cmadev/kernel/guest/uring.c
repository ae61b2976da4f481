/* cmadev guest agent: the little of io_uring it needs, by raw syscalls (no liburing).
 *
 * Two uses:
 * - IORING_REGISTER_BUFFERS: io_uring's fixed buffers are pinned with
 *   pin_user_pages(FOLL_WRITE | FOLL_LONGTERM) (io_uring/rsrc.c: io_pin_pages in 6.1), and a
 *   FOLL_LONGTERM pin first migrates every page out of CMA and ZONE_MOVABLE
 *   (mm/gup.c: check_and_migrate_movable_pages, since 5.13). That is the long-term pin of the
 *   model's longterm_pinner, with the migrate_on_longterm_pin fix that mainline always has.
 * - IORING_OP_READ on an O_DIRECT file: asynchronous direct I/O. In 6.1 the block layer takes
 *   its pages with iov_iter_get_pages2() (block/bio.c: __bio_iov_iter_get_pages), that is
 *   get_user_pages_fast() *references* (FOLL_GET), not FOLL_PIN: the pin conversion came in
 *   6.3 (iov_iter_extract_pages). Either way the page cannot be migrated while the I/O is in
 *   flight (folio_migrate_mapping sees the extra reference: -EAGAIN).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "agent.h"

#define MAX_IOVEC_LEN (1UL << 30) /* io_buffer_validate: each fixed buffer at most 1 GiB */

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned submit, unsigned min_complete, unsigned flags)
{
	return (int)syscall(__NR_io_uring_enter, fd, submit, min_complete, flags, NULL, 0);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned n)
{
	return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

int uring_init(struct uring *u, unsigned entries)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	memset(u, 0, sizeof *u);
	u->fd = sys_setup(entries, &p);
	if (u->fd < 0)
		return -errno;
	u->sq_entries = p.sq_entries;
	u->cq_entries = p.cq_entries;
	u->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	u->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sq_map = mmap(NULL, u->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 u->fd, IORING_OFF_SQ_RING);
	u->cq_map = mmap(NULL, u->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 u->fd, IORING_OFF_CQ_RING);
	u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       u->fd, IORING_OFF_SQES);
	if (u->sq_map == MAP_FAILED || u->cq_map == MAP_FAILED || u->sqes == MAP_FAILED) {
		int e = errno;
		close(u->fd);
		u->fd = -1;
		return -e;
	}
	char *sq = u->sq_map, *cq = u->cq_map;
	u->sq_head = (unsigned *)(sq + p.sq_off.head);
	u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	u->sq_array = (unsigned *)(sq + p.sq_off.array);
	u->cq_head = (unsigned *)(cq + p.cq_off.head);
	u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	u->cqes = cq + p.cq_off.cqes;
	return 0;
}

void uring_exit(struct uring *u)
{
	if (u->fd < 0)
		return;
	munmap(u->sqes, u->sqes_len);
	munmap(u->cq_map, u->cq_map_len);
	munmap(u->sq_map, u->sq_map_len);
	close(u->fd);
	u->fd = -1;
}

int uring_register_buffers(int fd, void *base, size_t len)
{
	enum { MAX_VEC = 1024 };
	static struct iovec iov[MAX_VEC];
	unsigned n = 0;
	char *p = base;
	while (len && n < MAX_VEC) {
		size_t k = len < MAX_IOVEC_LEN ? len : MAX_IOVEC_LEN;
		iov[n].iov_base = p;
		iov[n].iov_len = k;
		p += k;
		len -= k;
		n++;
	}
	if (len)
		return -E2BIG;
	return sys_register(fd, IORING_REGISTER_BUFFERS, iov, n) < 0 ? -errno : 0;
}

int uring_unregister_buffers(int fd)
{
	return sys_register(fd, IORING_UNREGISTER_BUFFERS, NULL, 0) < 0 ? -errno : 0;
}

int uring_prep_read(struct uring *u, int fd, void *buf, unsigned len, uint64_t off,
		    uint64_t user)
{
	unsigned head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	unsigned tail = *u->sq_tail;
	if (tail - head >= u->sq_entries)
		return -EBUSY;
	unsigned i = tail & *u->sq_mask;
	struct io_uring_sqe *sqe = (struct io_uring_sqe *)u->sqes + i;
	memset(sqe, 0, sizeof *sqe);
	sqe->opcode = IORING_OP_READ;
	sqe->fd = fd;
	sqe->addr = (uint64_t)(uintptr_t)buf;
	sqe->len = len;
	sqe->off = off;
	sqe->user_data = user;
	u->sq_array[i] = i;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	return 0;
}

int uring_submit(struct uring *u)
{
	unsigned pending = *u->sq_tail - __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	if (!pending)
		return 0;
	int r = sys_enter(u->fd, pending, 0, 0);
	return r < 0 ? -errno : r;
}

int uring_reap(struct uring *u, uint64_t *user, int *res, int wait)
{
	for (;;) {
		unsigned head = *u->cq_head;
		unsigned tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
		if (head != tail) {
			struct io_uring_cqe *cqe =
				(struct io_uring_cqe *)u->cqes + (head & *u->cq_mask);
			*user = cqe->user_data;
			*res = cqe->res;
			__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
			return 1;
		}
		if (!wait)
			return 0;
		if (sys_enter(u->fd, 0, 1, IORING_ENTER_GETEVENTS) < 0 && errno != EINTR)
			return -errno;
	}
}
