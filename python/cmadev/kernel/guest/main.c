/* cmadev guest agent: PID 1 of the guest.
 *
 * Boot: mount the pseudo filesystems, find the disks by the serial numbers QEMU gave them,
 * mount the ext4 data disk, enable swap, apply the program's sysctls, find the CMA area.
 * Run: fork the workload processes, start the device threads, the sampler and the trace
 * reader, wait for the program's duration, take a final sample, stop everything, write the
 * dmesg and the "end" record, flush the results disk and reboot (QEMU runs with -no-reboot,
 * so it exits). Any failure of the agent itself is an "error" record; a crash of PID 1 is a
 * kernel panic that the host reports with the console's last lines.
 *
 * Run on the host as `agent --host-calibrate`, it prints the memory micro-measurements.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent.h"

#define MAX_LINES (MAX_WORKLOADS + MAX_DEVICES + MAX_STEPS + MAX_SYSCTLS + 16)

struct ctx g = { .time_scale = 1.0 };
static uint64_t agent_start_ns; /* CLOCK_MONOTONIC when PID 1 began: the boot's length */

static struct line lines[MAX_LINES];
static int nlines;
static struct workload workloads[MAX_WORKLOADS];
static int nworkloads;
static struct device devices[MAX_DEVICES];
static int ndevices;
static struct step steps[MAX_STEPS];
static int nsteps;
static const struct line *cfg; /* the "run" line */
static const struct line empty_line = { .verb = "run" };

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	/* progress on the console, for a human watching; the host never parses it */
	va_list ap;
	va_start(ap, fmt);
	fputs("cmadev-agent: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static void power_off(void)
{
	sync();
	/* reboot, not power-off: the guest has no power-off device it can count on, and QEMU
	 * runs with -no-reboot, so a reset ends it either way */
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	say("fatal: %s", text);
	results_record("error", "", text, strlen(text));
	results_close();
	power_off();
	for (;;)
		pause();
}

/* ---------------------------------------------------------------- the program */

static void tokenize(char *text)
{
	for (char *save, *row = strtok_r(text, "\n", &save); row && nlines < MAX_LINES;
	     row = strtok_r(NULL, "\n", &save)) {
		if (row[0] == '#' || row[0] == 0)
			continue;
		struct line *l = &lines[nlines++];
		char *tsave, *tok = strtok_r(row, " ", &tsave);
		l->verb = tok;
		while ((tok = strtok_r(NULL, " ", &tsave)) != NULL && l->n < MAX_KV) {
			char *eq = strchr(tok, '=');
			if (!eq)
				continue;
			*eq = 0;
			l->key[l->n] = tok;
			l->val[l->n] = eq + 1;
			l->n++;
		}
	}
}

/* "buffers=pages:align,pages:align" */
static int parse_buffers(struct step *st, const char *spec)
{
	const char *p = spec;
	while (p && *p && st->nbuf < MAX_BUFFERS) {
		char *end;
		uint64_t pages = strtoull(p, &end, 10);
		unsigned align = 0;
		if (*end == ':')
			align = (unsigned)strtoul(end + 1, &end, 10);
		if (!pages)
			return -EINVAL;
		st->buf[st->nbuf++] = (struct buffer_req){ pages, align };
		p = *end == ',' ? end + 1 : NULL;
	}
	return 0;
}

static struct device *device_by_name(const char *name)
{
	for (int i = 0; i < ndevices; i++)
		if (strcmp(devices[i].name, name) == 0)
			return &devices[i];
	return NULL;
}

static void load_program(const char *path)
{
	char *text = read_file(path, NULL);
	if (!text)
		fatal("cannot read the program %s: %s", path, errno_name(errno));
	tokenize(text); /* `text` stays allocated: lines point into it */
	if (nlines == 0 || strcmp(lines[0].verb, "cmadev-program") != 0 ||
	    kv_u64(&lines[0], "version", 0) != 1)
		fatal("%s is not a cmadev program of version 1", path);
	cfg = &empty_line;
	for (int i = 1; i < nlines; i++) {
		struct line *l = &lines[i];
		if (strcmp(l->verb, "run") == 0) {
			cfg = l;
		} else if (strcmp(l->verb, "workload") == 0 && nworkloads < MAX_WORKLOADS) {
			struct workload *w = &workloads[nworkloads++];
			w->spec = l;
			w->id = (int)kv_u64(l, "id", (uint64_t)nworkloads - 1);
			w->kind = kv_str(l, "kind", "?");
			w->name = kv_str(l, "name", "?");
			w->start_ns = kv_u64(l, "start_ns", 0);
			w->stop_ns = kv_u64(l, "stop_ns", 0);
		} else if (strcmp(l->verb, "device") == 0 && ndevices < MAX_DEVICES) {
			struct device *d = &devices[ndevices++];
			d->id = ndevices - 1;
			d->name = kv_str(l, "name", "?");
			d->via = kv_str(l, "via", "dma_heap");
			d->heap = kv_str(l, "heap", "reserved");
		} else if (strcmp(l->verb, "step") == 0 && nsteps < MAX_STEPS) {
			struct device *d = device_by_name(kv_str(l, "device", ""));
			if (!d)
				fatal("program line %d: step for an undeclared device", i + 1);
			struct step *st = &steps[nsteps++];
			st->seq = (int)kv_u64(l, "seq", (uint64_t)nsteps - 1);
			st->t_ns = kv_u64(l, "t_ns", 0);
			st->action = kv_str(l, "action", "start");
			st->mode = kv_str(l, "mode", "-");
			if (parse_buffers(st, kv_str(l, "buffers", "")) != 0)
				fatal("program line %d: bad buffers= list", i + 1);
			if (d->nsteps < MAX_STEPS)
				d->steps[d->nsteps++] = st;
		} else if (strcmp(l->verb, "sysctl") == 0 || strcmp(l->verb, "end") == 0) {
			/* applied in setup / the end marker */
		} else {
			results_note("program line %d: unknown verb %s: ignored", i + 1, l->verb);
		}
	}
	g.duration_ns = kv_u64(cfg, "duration_ns", 0);
	g.sample_interval_ns = kv_u64(cfg, "sample_interval_ns", 0);
	g.time_scale = kv_f64(cfg, "time_scale", 1.0);
	g.seed = kv_u64(cfg, "seed", 1);
	if (g.time_scale <= 0)
		g.time_scale = 1.0;
}

/* ---------------------------------------------------------------- setup */

static void mount_or_note(const char *src, const char *dir, const char *type)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, 0, NULL) != 0 && errno != EBUSY)
		say("mount %s on %s: %s", type, dir, strerror(errno));
}

static void mount_pseudo(void)
{
	mount_or_note("proc", "/proc", "proc");
	mount_or_note("sysfs", "/sys", "sysfs");
	mount_or_note("devtmpfs", "/dev", "devtmpfs");
	mount_or_note("debugfs", "/sys/kernel/debug", "debugfs");
	mount_or_note("tracefs", "/sys/kernel/tracing", "tracefs");
}

static void raise_limits(void)
{
	struct rlimit inf = { RLIM_INFINITY, RLIM_INFINITY };
	setrlimit(RLIMIT_MEMLOCK, &inf);
	/* kernel_alloc and vmsplice holds keep two fds per held pipe */
	struct rlimit files = { 1 << 20, 1 << 20 };
	setrlimit(RLIMIT_NOFILE, &files);
}

static void find_cma(void)
{
	const char *want = kv_str(cfg, "area", "reserved");
	char path[200];
	snprintf(path, sizeof path, "/sys/kernel/debug/cma/%s", want);
	struct stat sb;
	if (stat(path, &sb) != 0) {
		results_note("the guest has no CMA area %s (debugfs %s: %s)", want, path,
			     errno_name(errno));
		return;
	}
	snprintf(g.cma.name, sizeof g.cma.name, "%s", want);
	snprintf(path, sizeof path, "/sys/kernel/debug/cma/%s/base_pfn", want);
	read_u64_file(path, &g.cma.base_pfn);
	snprintf(path, sizeof path, "/sys/kernel/debug/cma/%s/count", want);
	read_u64_file(path, &g.cma.count);
	snprintf(path, sizeof path, "/sys/kernel/debug/cma/%s/order_per_bit", want);
	read_u64_file(path, &g.cma.order_per_bit);
	g.cma.present = 1;
}

static void setup_disks(void)
{
	char dev[64];
	if (find_disk("cmadev-data", dev, sizeof dev) == 0) {
		mkdir("/data", 0755);
		if (mount(dev, "/data", "ext4", MS_NOATIME, NULL) != 0)
			results_note("mount %s on /data: %s: readers and writers will fail", dev,
				     errno_name(errno));
		snprintf(g.data_dir, sizeof g.data_dir, "/data");
	}
	if (find_disk("cmadev-swap", dev, sizeof dev) == 0) {
		if (swapon(dev, 0) != 0)
			results_note("swapon %s: %s: the run has no swap", dev, errno_name(errno));
	}
}

static void apply_sysctls(void)
{
	for (int i = 0; i < nlines; i++) {
		const struct line *l = &lines[i];
		if (strcmp(l->verb, "sysctl") != 0)
			continue;
		char path[200];
		const char *name = kv_str(l, "name", "");
		const char *value = kv_str(l, "value", "");
		snprintf(path, sizeof path, "/proc/sys/%s", name);
		for (char *p = path + 10; *p; p++)
			if (*p == '.')
				*p = '/';
		int e = write_file(path, value);
		if (e)
			results_note("sysctl %s=%s: %s", name, value, errno_name(e));
	}
	const char *thp = kv_str(cfg, "thp", NULL);
	if (thp) {
		int e = write_file("/sys/kernel/mm/transparent_hugepage/enabled", thp);
		if (e)
			results_note("transparent_hugepage=%s: %s", thp, errno_name(e));
	}
}

static void record_meta(void)
{
	struct utsname u;
	uname(&u);
	char *cmdline = read_file("/proc/cmdline", NULL);
	if (cmdline)
		cmdline[strcspn(cmdline, "\n")] = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	results_recordf("meta", "",
			"uname_r=%s\nuname_v=%s\nmachine=%s\ncmdline=%s\ncpus=%ld\n"
			"cma_area=%s\ncma_base_pfn=%" PRIu64 "\ncma_count=%" PRIu64
			"\ncma_order_per_bit=%" PRIu64 "\ntime_scale=%g\nt0_mono_ns=%" PRIu64
			"\nduration_ns=%" PRIu64 "\nsample_interval_ns=%" PRIu64
			"\nagent_start_ns=%" PRIu64 "\n",
			u.release, u.version, u.machine, cmdline ? cmdline : "", cpus,
			g.cma.present ? g.cma.name : "", g.cma.base_pfn, g.cma.count,
			g.cma.order_per_bit, g.time_scale, g.t0, g.duration_ns,
			g.sample_interval_ns, agent_start_ns);
	free(cmdline);
}

static void record_dmesg(void)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	if (size <= 0)
		size = 1 << 20;
	char *buf = malloc((size_t)size + 1);
	if (!buf)
		return;
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
	if (n < 0) {
		results_note("dmesg: %s", errno_name(errno));
		free(buf);
		return;
	}
	/* as `dmesg` prints it: without the "<level>" prefix of each line */
	char *out = malloc((size_t)n + 1);
	size_t k = 0;
	for (int i = 0; out && i < n;) {
		if (buf[i] == '<') {
			int j = i + 1;
			while (j < n && buf[j] >= '0' && buf[j] <= '9')
				j++;
			if (j < n && buf[j] == '>')
				i = j + 1;
		}
		while (i < n && buf[i] != '\n')
			out[k++] = buf[i++];
		if (i < n)
			out[k++] = buf[i++];
	}
	if (out)
		results_record("dmesg", "", out, k);
	free(out);
	free(buf);
}

/* ---------------------------------------------------------------- modes */

static void emit_calib(const char *key, double value)
{
	char attrs[128];
	snprintf(attrs, sizeof attrs, "key=%s", key);
	results_recordf("calib", attrs, "%.6g", value);
}

static void emit_host(const char *key, double value)
{
	printf("%s=%.6g\n", key, value);
}

static void wait_until_end(void)
{
	uint64_t end = guest_time(g.duration_ns);
	while (now_ns() < end)
		sleep_until_ns(end);
}

static void run_program(void)
{
	volatile int *flag = mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (flag == MAP_FAILED)
		fatal("mmap of the shared stop flag: %s", errno_name(errno));
	*flag = 0;
	g.stop_all = flag;
	if (kv_u64(cfg, "drop_caches", 1))
		write_file("/proc/sys/vm/drop_caches", "3");
	int e = trace_setup(cfg);
	if (e)
		results_note("trace: %s: the run has no trace", errno_name(e));
	/* t0 a little ahead, so the workload processes are forked and waiting when it comes */
	g.t0 = now_ns() + 50000000ULL + (uint64_t)nworkloads * 20000000ULL;
	record_meta();
	sample_once(0, 1);
	e = workloads_prepare(workloads, nworkloads);
	if (e)
		fatal("starting the workload processes: %s", errno_name(e));
	sleep_until_ns(g.t0);
	trace_start();
	if (sampler_start())
		results_note("no sampler thread: %s", errno_name(errno));
	if (devices_start(devices, ndevices))
		results_note("device threads: %s", errno_name(errno));
	say("running: %d workloads, %d devices, %d steps, %.3f s of guest time", nworkloads,
	    ndevices, nsteps, (double)g.duration_ns * g.time_scale / 1e9);
	wait_until_end();
	sampler_stop();
	uint64_t grace = kv_u64(cfg, "request_grace_ns", 120000000000ULL);
	devices_join(devices, ndevices, now_ns() + grace);
	sample_once(UINT32_MAX, 1);
	workloads_finish(workloads, nworkloads, 10000000000ULL);
	trace_stop_and_drain();
	workloads_report(workloads, nworkloads);
}

static void run_calibration(void)
{
	write_file("/proc/sys/vm/drop_caches", "3");
	g.t0 = now_ns();
	record_meta();
	calibrate_memory(emit_calib);
	calibrate_cma(cfg, emit_calib);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--host-calibrate") == 0) {
		calibrate_memory(emit_host);
		return 0;
	}
	agent_start_ns = now_ns();
	if (getpid() != 1) {
		fprintf(stderr, "cmadev-agent runs as PID 1 of a cmadev guest (or with "
				"--host-calibrate on the host)\n");
		return 2;
	}
	mount_pseudo();
	setvbuf(stdout, NULL, _IOLBF, 0);
	char *cmdline = read_file("/proc/cmdline", NULL);
	if (cmdline && strstr(cmdline, "cmadev.shell=1")) {
		/* a debugging shell on the console, for a human */
		execl("/bin/sh", "sh", NULL);
	}
	free(cmdline);
	char dev[64];
	if (find_disk("cmadev-results", dev, sizeof dev) != 0)
		fatal("no results disk (serial cmadev-results)");
	int e = results_open(dev);
	if (e) {
		say("cannot open the results disk %s: %s", dev, strerror(-e));
		power_off();
	}
	load_program("/program.txt");
	raise_limits();
	setup_disks();
	find_cma();
	apply_sysctls();
	const char *mode = kv_str(cfg, "mode", "run");
	if (strcmp(mode, "calibrate") == 0)
		run_calibration();
	else
		run_program();
	record_dmesg();
	char attrs[96];
	snprintf(attrs, sizeof attrs, "bytes=%" PRIu64, results_bytes());
	results_recordf("end", attrs, "uptime_ns=%" PRIu64 "\n", now_ns());
	results_close();
	say("done");
	power_off();
	return 0;
}
