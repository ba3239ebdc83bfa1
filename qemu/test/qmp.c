// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal QMP client for busybox test systems: connect to QEMU's QMP
 * socket, negotiate, send each COMMAND (a JSON object) and print the
 * reply to it. Asynchronous events are skipped. Exit 1 if a reply is an
 * error.
 *
 *   qmp SOCKET COMMAND...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char buf[1 << 16];
static size_t have;

/* The next line QEMU sent, without its newline; NULL at EOF. */
static char *next_line(int fd)
{
	static char line[sizeof(buf)];
	char *nl;
	ssize_t n;

	while (!(nl = memchr(buf, '\n', have))) {
		if (have == sizeof(buf))
			return NULL;
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n <= 0)
			return NULL;
		have += n;
	}
	*nl = 0;
	strcpy(line, buf);
	have -= nl + 1 - buf;
	memmove(buf, nl + 1, have);
	return line;
}

static char *reply(int fd)
{
	char *l;

	while ((l = next_line(fd)) && strstr(l, "\"event\""))
		;
	return l;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *caps = "{\"execute\":\"qmp_capabilities\"}\n";
	int fd, i, status = 0;
	char *l;

	if (argc < 3) {
		fprintf(stderr, "usage: qmp SOCKET COMMAND...\n");
		return 2;
	}
	strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("qmp: connect");
		return 1;
	}
	if (!next_line(fd) || write(fd, caps, strlen(caps)) < 0 || !reply(fd)) {
		fprintf(stderr, "qmp: no greeting\n");
		return 1;
	}
	for (i = 2; i < argc; i++) {
		if (write(fd, argv[i], strlen(argv[i])) < 0 ||
		    write(fd, "\n", 1) < 0 || !(l = reply(fd))) {
			fprintf(stderr, "qmp: no reply to %s\n", argv[i]);
			return 1;
		}
		printf("%s\n", l);
		if (strstr(l, "\"error\""))
			status = 1;
	}
	close(fd);
	return status;
}
