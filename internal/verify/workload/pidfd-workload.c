/*
 * pidfd-workload: holds the file descriptors criu-forge's verify and doctor
 * check, and reports them on request.
 *
 *   pidfd-workload CTLDIR CASE...
 *
 * CASE is one of:
 *   live         a pidfd of a child that keeps running
 *   dead         a pidfd of a child that has exited and been reaped
 *   outside:PID  a pidfd of PID (a process outside this tree)
 *   thread       a pidfd opened with PIDFD_THREAD (of this thread)
 *   uring        an io_uring instance
 *
 * On start and on every SIGUSR1 it writes CTLDIR/report (through a rename,
 * so a reader never sees half a report): "pid P" and one line per case:
 *   fd N case=C target=T link=L fdpid=F flags=O signal=ok|ERRNO
 * It closes every inherited descriptor above 2 first, so nothing of the
 * harness ends up in a checkpoint.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

#define MAXCASES 16

struct held {
	const char *name;
	int fd;
	int target; /* pid the fd was opened for, 0 when none */
};

static struct held held[MAXCASES];
static int nheld;
static const char *ctldir;
static volatile sig_atomic_t want_report;

static void on_usr1(int sig) { (void)sig; want_report = 1; }

static void die(const char *what)
{
	fprintf(stderr, "pidfd-workload: %s: %s\n", what, strerror(errno));
	exit(2);
}

static pid_t child_that_waits(void)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return pid;
}

static void field(FILE *out, int fd, const char *key, const char *label)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(out, " %s=?", label);
		return;
	}
	size_t n = strlen(key);
	const char *val = "none";
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, n) == 0) {
			char *v = line + n;
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = 0;
			val = v;
			break;
		}
	}
	fprintf(out, " %s=%s", label, val);
	fclose(f);
}

static void report(void)
{
	char tmp[4096], dst[4096], path[64], link[256];
	snprintf(tmp, sizeof(tmp), "%s/report.tmp", ctldir);
	snprintf(dst, sizeof(dst), "%s/report", ctldir);
	FILE *out = fopen(tmp, "w");
	if (!out)
		die("open report");
	fprintf(out, "pid %d\n", (int)getpid());
	for (int i = 0; i < nheld; i++) {
		struct held *h = &held[i];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", h->fd);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		link[n < 0 ? 0 : n] = 0;
		fprintf(out, "fd %d case=%s target=%d link=%s", h->fd, h->name, h->target, n < 0 ? "?" : link);
		field(out, h->fd, "Pid:", "fdpid");
		field(out, h->fd, "flags:", "flags");
		if (strcmp(h->name, "uring") == 0) {
			fprintf(out, " signal=none\n");
			continue;
		}
		if (syscall(SYS_pidfd_send_signal, h->fd, 0, NULL, 0) == 0)
			fprintf(out, " signal=ok\n");
		else
			fprintf(out, " signal=%s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "error");
	}
	if (fclose(out) != 0 || rename(tmp, dst) != 0)
		die("write report");
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: pidfd-workload CTLDIR live|dead|outside:PID|thread|uring...\n");
		return 2;
	}
	syscall(SYS_close_range, 3, ~0U, 0);
	ctldir = argv[1];

	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);

	for (int i = 2; i < argc && nheld < MAXCASES; i++) {
		struct held *h = &held[nheld];
		const char *c = argv[i];
		if (strcmp(c, "live") == 0) {
			h->target = child_that_waits();
			h->fd = syscall(SYS_pidfd_open, h->target, 0);
		} else if (strcmp(c, "dead") == 0) {
			h->target = fork();
			if (h->target < 0)
				die("fork");
			if (h->target == 0)
				_exit(0);
			h->fd = syscall(SYS_pidfd_open, h->target, 0);
			if (h->fd >= 0 && waitpid(h->target, NULL, 0) != h->target)
				die("waitpid");
		} else if (strncmp(c, "outside:", 8) == 0) {
			h->target = atoi(c + 8);
			h->fd = syscall(SYS_pidfd_open, h->target, 0);
		} else if (strcmp(c, "thread") == 0) {
			h->target = getpid();
			h->fd = syscall(SYS_pidfd_open, h->target, PIDFD_THREAD);
		} else if (strcmp(c, "uring") == 0) {
			unsigned char params[120] = {0}; /* struct io_uring_params */
			h->fd = syscall(SYS_io_uring_setup, 4, params);
		} else {
			fprintf(stderr, "pidfd-workload: unknown case %s\n", c);
			return 2;
		}
		if (h->fd < 0)
			die(c);
		h->name = strncmp(c, "outside:", 8) == 0 ? "outside" : c;
		nheld++;
	}
	report();
	for (;;) {
		sigsuspend(&old);
		if (want_report) {
			want_report = 0;
			report();
		}
	}
}
