/*
 * sd-activate - hands a program listening sockets the way systemd does for
 * a .socket unit: binds each NAME=tcp://HOST:PORT, puts the sockets on fds
 * 3.., sets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (its own pid, which
 * exec keeps), prints "sd-activate: NAME port PORT" per socket on stderr,
 * then execs the program.
 *
 *   sd-activate http=tcp://127.0.0.1:0 admin=tcp://127.0.0.1:0 -- PROG ARGS
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char names[1024] = "", num[32];
	int n = 0, i;
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char *eq = strchr(argv[i], '=');
		char *colon = strrchr(argv[i], ':');
		if (!eq || strncmp(eq + 1, "tcp://", 6) != 0 || !colon) {
			fprintf(stderr, "sd-activate: bad spec %s\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		*colon = '\0';
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons((uint16_t)atoi(colon + 1))};
		inet_pton(AF_INET, eq + 7, &a.sin_addr);
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
		    listen(fd, 128) != 0) {
			perror("sd-activate: bind");
			return 1;
		}
		socklen_t sl = sizeof a;
		getsockname(fd, (struct sockaddr *)&a, &sl);
		/* systemd passes them without close-on-exec, from fd 3 on */
		if (fd != 3 + n) {
			if (dup2(fd, 3 + n) < 0)
				return 1;
			close(fd);
		}
		fprintf(stderr, "sd-activate: %s port %u\n", argv[i],
		        ntohs(a.sin_port));
		snprintf(names + strlen(names), sizeof names - strlen(names),
		         "%s%s", n ? ":" : "", argv[i]);
		n++;
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "usage: sd-activate NAME=tcp://HOST:PORT... -- "
		        "PROG ARGS\n");
		return 2;
	}
	snprintf(num, sizeof num, "%d", n);
	setenv("LISTEN_FDS", num, 1);
	setenv("LISTEN_FDNAMES", names, 1);
	snprintf(num, sizeof num, "%ld", (long)getpid());
	setenv("LISTEN_PID", num, 1);
	execv(argv[i + 1], argv + i + 1);
	perror("sd-activate: exec");
	return 127;
}
