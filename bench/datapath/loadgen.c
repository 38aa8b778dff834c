// Load tool of the datapath benchmark, the same binary for every variant. Written in C
// so that the tool itself costs little CPU per operation: with a Node client the
// client's own event loop (about 170 µs per connection) dwarfed the datapath being
// measured and its jitter decided the ratios.
//   loadgen http <ip> <port> <connections> <seconds>     keep-alive GET /, requests/s
//   loadgen http-close <ip> <port> <connections> <seconds>  one GET per new connection
//                                                        (Connection: close): connections/s
//   loadgen connect <ip> <port> <parallel> <seconds>     full TCP connections/s (the
//                                                        server closes first)
//   loadgen serve-close <port>                           accepts and closes at once
// Prints one JSON line (ops, errors, errorKinds, seconds, rate, p50Ms, p99Ms,
// cpuUsPerOp). Every connection has a 5 s timeout.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S 5.0
#define MAX_CONNS 256
#define BUF 4096

enum { E_CONNECT, E_TIMEOUT, E_RESET, E_STATUS, E_PARSE, E_KINDS };
static const char *kind_names[E_KINDS] = { "connect", "timeout", "reset", "http-status", "parse" };
static long kinds[E_KINDS];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static double *lat;
static long nlat, caplat;

static void record(double ms)
{
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 65536;
		lat = realloc(lat, caplat * sizeof(*lat));
		if (!lat) {
			perror("realloc");
			exit(2);
		}
	}
	lat[nlat++] = ms;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(double seconds, double cpu)
{
	long errors = 0;
	qsort(lat, nlat, sizeof(*lat), cmp);
	for (int i = 0; i < E_KINDS; i++)
		errors += kinds[i];
	printf("{\"ops\":%ld,\"errors\":%ld,\"errorKinds\":{", nlat, errors);
	for (int i = 0, first = 1; i < E_KINDS; i++) {
		if (!kinds[i])
			continue;
		printf("%s\"%s\":%ld", first ? "" : ",", kind_names[i], kinds[i]);
		first = 0;
	}
	printf("},\"seconds\":%.4f,\"rate\":%.2f,\"p50Ms\":%.4f,\"p99Ms\":%.4f,\"cpuUsPerOp\":%.2f}\n", seconds,
	       nlat / seconds, nlat ? lat[(long)(0.5 * nlat)] : 0, nlat ? lat[(long)(0.99 * nlat)] : 0,
	       nlat ? cpu * 1e6 / nlat : 0);
}

struct conn {
	int fd;
	int connected;
	double t0;    /* start of the current operation */
	double since; /* start of the current wait, for the timeout */
	size_t have;
	char buf[BUF];
};

static struct sockaddr_in target;
static int ep;
static const char *mode;
static char req[256];
static size_t reqlen;
static int http_mode, close_mode; /* http or http-close; close: one request per connection */

static void start(struct conn *c, double t)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		perror("socket");
		exit(2);
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->connected = 0;
	c->have = 0;
	c->t0 = c->since = t;
	if (connect(c->fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS) {
		kinds[E_CONNECT]++;
		close(c->fd);
		c->fd = -1;
		return;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void stop(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also removes it from the epoll set */
	c->fd = -1;
}

static void send_request(struct conn *c, double t)
{
	/* In close mode an op spans the whole connection: t0 stays at connect. */
	if (!close_mode)
		c->t0 = t;
	c->since = t;
	c->have = 0;
	if (write(c->fd, req, reqlen) != (ssize_t)reqlen) {
		kinds[E_RESET]++;
		stop(c);
	}
}

/* Returns 1 once a whole response sits in the buffer, -1 on a malformed one. */
static int http_complete(struct conn *c)
{
	char *end, *cl;
	long len;

	c->buf[c->have] = 0;
	end = strstr(c->buf, "\r\n\r\n");
	if (!end)
		return c->have >= BUF - 1 ? -1 : 0;
	cl = strcasestr(c->buf, "\r\ncontent-length:");
	if (!cl || cl > end)
		return -1;
	len = strtol(cl + 17, NULL, 10);
	if ((size_t)(end + 4 - c->buf + len) > c->have)
		return 0;
	if (strncmp(c->buf, "HTTP/1.1 200 ", 13) != 0)
		kinds[E_STATUS]++;
	else
		return 1;
	return 2; /* complete, but not a success */
}

static void on_event(struct conn *c, unsigned events, double t)
{
	if (!c->connected) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			kinds[E_CONNECT]++;
			stop(c);
			return;
		}
		c->connected = 1;
		{
			struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
		if (http_mode)
			send_request(c, t);
		return;
	}
	if (!http_mode) {
		char b[64];
		ssize_t n = read(c->fd, b, sizeof(b));

		if (n == 0) {
			record((t - c->t0) * 1e3);
			stop(c);
		} else if (n < 0 && errno != EAGAIN) {
			kinds[E_RESET]++;
			stop(c);
		}
		return;
	}
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->have, BUF - 1 - c->have);
		int done;

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			kinds[E_RESET]++;
			stop(c);
			return;
		}
		c->have += n;
		done = http_complete(c);
		if (done < 0) {
			kinds[E_PARSE]++;
			stop(c);
			return;
		}
		if (done) {
			if (done == 1)
				record((t - c->t0) * 1e3);
			if (close_mode)
				stop(c); /* the main loop opens the next connection */
			else
				send_request(c, t);
			return;
		}
	}
}

static int serve_close(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4096) < 0) {
		perror("serve-close: bind/listen");
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c >= 0)
			close(c);
	}
}

int main(int argc, char **argv)
{
	struct conn *conns;
	struct epoll_event evs[MAX_CONNS];
	double t0, end, cpu0, t;
	int n;

	if (argc == 3 && !strcmp(argv[1], "serve-close"))
		return serve_close(atoi(argv[2]));
	if (argc != 6 || (strcmp(argv[1], "http") && strcmp(argv[1], "http-close") && strcmp(argv[1], "connect"))) {
		fprintf(stderr, "usage: loadgen http|http-close|connect <ip> <port> <connections> <seconds> | serve-close <port>\n");
		return 2;
	}
	mode = argv[1];
	http_mode = !strncmp(mode, "http", 4);
	close_mode = !strcmp(mode, "http-close");
	target.sin_family = AF_INET;
	target.sin_port = htons(atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
		fprintf(stderr, "loadgen: bad IPv4 address %s\n", argv[2]);
		return 2;
	}
	n = atoi(argv[4]);
	if (n < 1 || n > MAX_CONNS) {
		fprintf(stderr, "loadgen: connections must be 1..%d\n", MAX_CONNS);
		return 2;
	}
	reqlen = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s:%s\r\n%s\r\n", argv[2], argv[3],
			  close_mode ? "Connection: close\r\n" : "");
	ep = epoll_create1(0);
	conns = calloc(n, sizeof(*conns));
	cpu0 = cpu_s();
	t0 = now();
	end = t0 + atof(argv[5]);
	for (int i = 0; i < n; i++)
		start(&conns[i], t0);
	while ((t = now()) < end) {
		int k = epoll_wait(ep, evs, MAX_CONNS, 100);

		t = now();
		for (int i = 0; i < k; i++)
			on_event(evs[i].data.ptr, evs[i].events, t);
		for (int i = 0; i < n; i++) {
			if (conns[i].fd >= 0 && t - conns[i].since > TIMEOUT_S) {
				kinds[E_TIMEOUT]++;
				stop(&conns[i]);
			}
			if (conns[i].fd < 0 && t < end)
				start(&conns[i], t);
		}
	}
	t = now();
	report(t - t0, cpu_s() - cpu0);
	return 0;
}
