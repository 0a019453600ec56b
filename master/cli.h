/*
 * cli.h - corral's command line: an option --foo-bar (and -w, -n, -s)
 * for every key of config_keys[], plus --config, --help, --version and
 * the plugin path.  The file named by --config loads first, so options
 * win whatever their order.
 */
#ifndef MASTER_CLI_H
#define MASTER_CLI_H

#include <stdio.h>

#include "master/conf.h"

/* cli_parse() returns this when the supervisor should start. */
#define CLI_RUN (-1)

/*
 * Fills c (which holds config_defaults() or more) from argv.  Returns
 * CLI_RUN, or the exit code to leave with: CORRAL_EXIT_OK after --help or
 * --version (printed to stdout), CORRAL_EXIT_CONFIG after a usage or
 * configuration error (logged to stderr, naming the option or FILE:LINE).
 * Not thread-safe (getopt).
 */
int cli_parse(config *c, int argc, char **argv);

/*
 * The same without printing: errors go to err.  config_path, when given,
 * is loaded instead of any --config (a reload's `--config FILE`); help 0
 * ignores --help and --version (a reload re-reading the command line).
 */
int cli_build(config *c, int argc, char **argv, const char *config_path,
              int help, char *err, size_t errlen);

/* The --help text, generated from config_keys[]. */
void cli_usage(FILE *f);

#endif
