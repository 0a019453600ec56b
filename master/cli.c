/*
 * cli.c - see cli.h.  The option table is built from config_keys[] at
 * each call; argv is read twice: --help, --version and --config first,
 * then every other option in order, then the plugin path.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "corral.h"
#include "common/log.h"
#include "master/cli.h"
#include "master/sup.h"

enum { OPT_VERSION = 1000, OPT_CHECK = 1001, OPT_KEY = 2000 };

/* Column where the help text of an option starts, and the line width. */
#define HELP_COL 31
#define HELP_WIDTH 79

static const char intro[] =
"Usage: corral [OPTIONS] PLUGIN.so\n"
"\n"
"Runs one corral-worker process per slot, each loading PLUGIN.so, and keeps\n"
"them running: restarts with backoff, hang detection, graceful shutdown on\n"
"SIGTERM (a second one kills at once).  Logs to stderr, or log_file.\n"
"\n"
"Options (all but --config, --help and --version are also keys of the\n"
"config file's [corral] section, foo_bar for --foo-bar):\n"
"  -c, --config FILE            INI file; command-line options win\n";

static const char outro[] =
"      --check-config           check the configuration and load the plugin\n"
"                               (in a child), then exit 0, or 2 saying why;\n"
"                               starts nothing (like nginx -t)\n"
"  -h, --help                   this text\n"
"      --version                print the version\n"
"\n"
"Durations: 500ms, 10s, 2m, 1h; a bare number is seconds.\n"
"\n"
"Exit codes:\n"
"  0  stopped cleanly          1  could not start (rundir, socket, spawn)\n"
"  2  usage or config error    3  every worker FAILED (crash loop, fatal)\n"
"  4  stopped, but workers had to be killed at the deadline, or crashed\n"
"     while stopping\n"
"Worker exit codes: 78 = fatal plugin error (never restarted),\n"
"  75 = lost the supervisor.\n";

/* "--foo-bar" for the key foo_bar, into out (cap bytes). */
static void option_name(const char *key, char *out, size_t cap)
{
	snprintf(out, cap, "%s", key);
	for (char *p = out; *p; p++)
		if (*p == '_')
			*p = '-';
}

/* Writes text from column col, wrapped at HELP_WIDTH, continuation lines
 * starting at HELP_COL. */
static void put_wrapped(FILE *f, const char *text, size_t col)
{
	while (*text) {
		size_t room = HELP_WIDTH > col ? HELP_WIDTH - col : 20;
		size_t n = strlen(text);
		if (n > room) {
			size_t cut = room;
			while (cut > 0 && text[cut] != ' ')
				cut--;
			n = cut ? cut : room;
		}
		fprintf(f, "%.*s\n", (int)n, text);
		text += n;
		while (*text == ' ')
			text++;
		if (*text)
			fprintf(f, "%*s", HELP_COL, "");
		col = HELP_COL;
	}
}

static const struct {
	const char *name, *what;
} signals[] = {
#define X(sig, what) {#sig, what},
	SUP_SIGNALS(X)
#undef X
};

void cli_usage(FILE *f)
{
	fputs(intro, f);
	for (size_t i = 0; i < config_nkeys; i++) {
		const conf_key *k = &config_keys[i];
		char name[64], head[160], help[256];
		option_name(k->key, name, sizeof name);
		if (k->short_opt)
			snprintf(head, sizeof head, "  -%c, --%s %s", k->short_opt,
			         name, k->arg);
		else
			snprintf(head, sizeof head, "      --%s %s", name, k->arg);
		if (k->def && k->def[0])
			snprintf(help, sizeof help, "%s (default %s)", k->help,
			         k->def);
		else
			snprintf(help, sizeof help, "%s", k->help);
		size_t col = strlen(head);
		fputs(head, f);
		if (col + 1 < HELP_COL) {
			fprintf(f, "%*s", (int)(HELP_COL - col), "");
			col = HELP_COL;
		} else {
			fprintf(f, "\n%*s", HELP_COL, "");
			col = HELP_COL;
		}
		put_wrapped(f, help, col);
	}
	fputs(outro, f);
	fputs("\nSignals (each is logged, and is an event):\n", f);
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		fprintf(f, "  %-8s %s\n", signals[i].name, signals[i].what);
	fputs("  SIGPIPE  ignored\n", f);
}

/* The getopt tables for config_keys[]: opts (ending in a zero row) and
 * the short-option string.  Owned by the caller: free(opts), free(names). */
static int build_opts(struct option **opts_out, char **names_out,
                      char *shorts, size_t cap)
{
	enum { NAME_LEN = 64 };
	struct option *opts = calloc(config_nkeys + 5, sizeof *opts);
	char *names = calloc(config_nkeys, NAME_LEN);
	size_t n = 0, s = 0;
	if (!opts || !names) {
		free(opts);
		free(names);
		return CORRAL_ENOMEM;
	}
	shorts[s++] = '+'; /* stop at the plugin path */
	for (size_t i = 0; i < config_nkeys; i++) {
		const conf_key *k = &config_keys[i];
		option_name(k->key, names + i * NAME_LEN, NAME_LEN);
		opts[n++] = (struct option){names + i * NAME_LEN,
		                            required_argument, NULL,
		                            OPT_KEY + (int)i};
		if (k->short_opt && s + 3 < cap) {
			shorts[s++] = k->short_opt;
			shorts[s++] = ':';
		}
	}
	opts[n++] = (struct option){"config", required_argument, NULL, 'c'};
	opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	opts[n++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
	opts[n++] = (struct option){"check-config", no_argument, NULL,
	                            OPT_CHECK};
	snprintf(shorts + s, cap - s, "c:h");
	*opts_out = opts;
	*names_out = names;
	return 0;
}

/* The key row a getopt result stands for, or NULL. */
static const conf_key *key_of(int ch)
{
	if (ch >= OPT_KEY && (size_t)(ch - OPT_KEY) < config_nkeys)
		return &config_keys[ch - OPT_KEY];
	for (size_t i = 0; i < config_nkeys; i++)
		if (config_keys[i].short_opt && config_keys[i].short_opt == ch)
			return &config_keys[i];
	return NULL;
}

/* First pass: --help and --version (when help is set), then the config
 * file: override, else the last --config. */
static int early_options(config *c, int argc, char **argv,
                         const struct option *opts, const char *shorts,
                         int help, const char *override, char *err,
                         size_t errlen)
{
	const char *path = override;
	int ch;
	optind = 0;
	opterr = help;
	while ((ch = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (ch == 'h' && help) {
			cli_usage(stdout);
			return CORRAL_EXIT_OK;
		}
		if (ch == OPT_VERSION && help) {
			printf("corral %s (plugin ABI %d)\n", PACKAGE_VERSION,
			       CORRAL_ABI_VERSION);
			return CORRAL_EXIT_OK;
		}
		if (ch == '?') {
			snprintf(err, errlen, "bad option (see corral --help)");
			return CORRAL_EXIT_CONFIG;
		}
		if (ch == 'c' && !override)
			path = optarg;
		if (ch == OPT_CHECK)
			c->check_config = 1;
	}
	if (path && config_load(c, path, err, errlen))
		return CORRAL_EXIT_CONFIG;
	return CLI_RUN;
}

static int usage_error(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s (see corral --help)", msg);
	return CORRAL_EXIT_CONFIG;
}

/* Second pass: every key option, in order, then the plugin path. */
static int key_options(config *c, int argc, char **argv,
                       const struct option *opts, const char *shorts,
                       char *out, size_t outlen)
{
	char err[512], msg[640], name[64];
	int ch;
	optind = 0;
	opterr = 0; /* the first pass reported everything */
	while ((ch = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		const conf_key *k = key_of(ch);
		if (!k)
			continue; /* --config */
		int rc = config_set(c, k->key, optarg, err, sizeof err);
		if (rc == CORRAL_ENOMEM)
			return usage_error(out, outlen, "out of memory");
		if (rc) {
			option_name(k->key, name, sizeof name);
			snprintf(msg, sizeof msg, "option --%s: %s", name, err);
			return usage_error(out, outlen, msg);
		}
	}
	if (optind < argc - 1)
		return usage_error(out, outlen, "one plugin path expected");
	if (optind == argc - 1 &&
	    config_set(c, "plugin", argv[optind], err, sizeof err) != 0)
		return usage_error(out, outlen, err);
	if (!c->plugin[0])
		return usage_error(out, outlen, "no plugin given");
	return CLI_RUN;
}

int cli_build(config *c, int argc, char **argv, const char *config_path,
              int help, char *err, size_t errlen)
{
	struct option *opts;
	char *names, shorts[64];
	err[0] = '\0';
	if (build_opts(&opts, &names, shorts, sizeof shorts) != 0) {
		snprintf(err, errlen, "out of memory");
		return CORRAL_EXIT_CONFIG;
	}
	int rc = early_options(c, argc, argv, opts, shorts, help, config_path,
	                       err, errlen);
	if (rc == CLI_RUN)
		rc = key_options(c, argc, argv, opts, shorts, err, errlen);
	free(opts);
	free(names);
	return rc;
}

int cli_parse(config *c, int argc, char **argv)
{
	static char err[PATH_MAX + 1024];
	int rc = cli_build(c, argc, argv, NULL, 1, err, sizeof err);
	if (rc == CORRAL_EXIT_CONFIG)
		log_plain("%s", err);
	return rc;
}
