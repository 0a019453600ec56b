/*
 * bench/slack - runs a program with a timer slack of 1 ns (inherited by
 * its threads), the way corral-load runs: sleeps end when asked, not up to
 * 50 us later.  bench/jobs.sh runs the Node side through it, so that both
 * sides' pacers sleep alike.
 * Usage: bench/slack PROGRAM [ARGS...]
 */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench/slack PROGRAM [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) != 0)
		perror("bench/slack: prctl(PR_SET_TIMERSLACK)");
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
