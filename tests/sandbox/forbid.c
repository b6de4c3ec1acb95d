/* Test-only LD_PRELOAD shim (never linked into mote): makes one of mote's
 * threads do what an attacker who took it over would do, exec a program,
 * so that the tests can check that the thread's seccomp filter kills mote.
 *
 *   MOTE_TEST_FORBID=vcpu  on a vCPU thread's first KVM_RUN
 *   MOTE_TEST_FORBID=loop  on the main thread's first epoll_wait (in
 *                          `mote run` that is after vmm_start)
 *   MOTE_TEST_FORBID=api   on the API thread's first accepted connection
 *
 * The program exec'd is /bin/true: if the filter let execve through, mote
 * would be replaced and exit 0, which the tests tell apart from SIGSYS. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *mode = "";
static __thread int is_main;
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);

__attribute__((constructor)) static void init(void)
{
	const char *m = getenv("MOTE_TEST_FORBID");
	mode = m ? m : "";
	is_main = 1;
	real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	real_epoll_wait = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT,
									    "epoll_wait");
	real_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT,
										"accept4");
}

static void forbidden(void)
{
	static char *const argv[] = { "true", NULL };
	static char *const envp[] = { NULL };
	execve("/bin/true", argv, envp);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (req == KVM_RUN && !strcmp(mode, "vcpu"))
		forbidden();
	return real_ioctl(fd, req, arg);
}

int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	if (is_main && !strcmp(mode, "loop"))
		forbidden();
	return real_epoll_wait(epfd, evs, max, timeout);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int r = real_accept4(fd, addr, len, flags);
	if (r >= 0 && !strcmp(mode, "api"))
		forbidden();
	return r;
}
