/*
 * fuzz_config.c - the configuration parser: the input as INI text
 * (config_load_buffer), as one key's value (config_set, the key picked by
 * the first byte) and as a duration.  Properties: no crash, no leak, no
 * read outside the input; a failed config_set leaves the config as it
 * was; errors are corral_errs with a "NAME:LINE: " message.
 *
 * And one differential property for lines longer than inih's buffer: the
 * text with PAD blanks appended to every line (which inih strips, and
 * which makes every line take the long-line path) must give the same
 * config, or the same error, as the text itself.
 */
#include "corral.h"
#include "common/duration.h"
#include "master/conf.h"
#include "tests/fuzz/fuzz.h"

/* memcmp() without libFuzzer's comparison tracing and ASan's checks,
 * which cost more than the rest of an execution on a struct config. */
#if defined(__clang__)
__attribute__((noinline, no_sanitize("coverage", "address")))
#endif
static int same_config(const config *a, const config *b)
{
	const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;
	uint64_t d = 0;
	_Static_assert(sizeof(config) % sizeof(uint64_t) == 0, "words");
	for (size_t i = 0; i < sizeof(config) / sizeof(uint64_t); i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* Blanks that make any line longer than inih's 200-byte buffer. */
#define PAD 200

/* data with PAD blanks before every '\n' and at the end; malloc()ed.
 * Not traced: it is the harness, not the code under test. */
#if defined(__clang__)
__attribute__((noinline, no_sanitize("coverage")))
#endif
static char *pad_lines(const uint8_t *data, size_t size, size_t *len)
{
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	char *out = malloc(size + lines * PAD);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i == size || data[i] == '\n') {
			memset(out + o, ' ', PAD);
			o += PAD;
		}
		if (i < size)
			out[o++] = (char)data[i];
	}
	*len = o;
	return out;
}

/* Same keys, same values, same plugin settings in the same order. */
static int same_settings(const config *a, const config *b)
{
	if (a->nsettings != b->nsettings)
		return 0;
	for (size_t i = 0; i < a->nsettings; i++)
		if (strcmp(a->settings[i].key, b->settings[i].key) ||
		    strcmp(a->settings[i].value, b->settings[i].value))
			return 0;
	return 1;
}

static void check_padded_same(const config *defaults, const config *c,
                              int rc, const char *err, const uint8_t *data,
                              size_t size)
{
	static config p, x, y;
	char perr[1024];
	size_t plen;
	if (size > 16384)
		return;
	char *padded = pad_lines(data, size, &plen);
	if (!padded)
		return;
	p = *defaults;
	int prc = config_load_buffer(&p, "f.ini", padded, plen, perr,
	                             sizeof perr);
	free(padded);
	if (prc == CORRAL_ENOMEM || rc == CORRAL_ENOMEM) {
		config_free(&p);
		return;
	}
	if (prc != rc || (rc && strcmp(err, perr) != 0)) {
		fprintf(stderr, "plain: %d %s\npadded: %d %s\n", rc,
		        rc ? err : "", prc, prc ? perr : "");
		FUZZ_CHECK(!"padding lines changed the outcome");
	}
	x = *c;
	y = p;
	x.settings = y.settings = NULL;
	FUZZ_CHECK(same_config(&x, &y) && same_settings(c, &p));
	config_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static config defaults, c;
	static int ready;
	char err[1024];
	if (!ready) {
		config_defaults(&defaults);
		ready = 1;
	}
	c = defaults; /* no settings: nothing owned to share */
	int rc = config_load_buffer(&c, "f.ini", (const char *)data, size, err,
	                            sizeof err);
	FUZZ_CHECK(rc == 0 || rc == CORRAL_ECONFIG || rc == CORRAL_ENOMEM);
	FUZZ_CHECK(rc == 0 || strncmp(err, "f.ini:", 6) == 0);
	check_padded_same(&defaults, &c, rc, err, data, size);
	config_free(&c);

	/* One value for one key: the first byte picks it (past the end of
	 * the table: an unknown key), the rest up to a NUL is the value. */
	if (size) {
		char *v = strndup((const char *)data + 1, size - 1);
		if (!v)
			return 0;
		size_t k = data[0] % (config_nkeys + 1);
		const char *key = k < config_nkeys ? config_keys[k].key : "nope";
		c = defaults;
		rc = config_set(&c, key, v, err, sizeof err);
		FUZZ_CHECK(rc == 0 || rc == CORRAL_ECONFIG ||
		           rc == CORRAL_ENOMEM);
		if (rc == CORRAL_ECONFIG)
			FUZZ_CHECK(same_config(&c, &defaults) &&
			           strlen(err) < 300);
		config_free(&c);

		uint64_t ms = 12345;
		if (parse_duration_ms(v, &ms) != 0)
			FUZZ_CHECK(ms == 12345);
		else
			FUZZ_CHECK(ms <= 1000000000000000ull);
		free(v);
	}
	return 0;
}
