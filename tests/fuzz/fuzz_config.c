/*
 * fuzz_config.c - the configuration parser: the input as INI text
 * (config_load_buffer), as one key's value (config_set, the key picked by
 * the first byte) and as a duration.  Properties: no crash, no leak, no
 * read outside the input; a failed config_set leaves the config as it
 * was; errors are corral_errs with a "NAME:LINE: " message.
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
