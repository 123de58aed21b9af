/*
 * fuzz_config.c - libFuzzer target for the whole configuration path: TOML parse, checks,
 * error formatting, and printing of what loaded. Must never crash, leak or read out of bounds.
 */
#include "agent/config.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg *c = NULL;
    buf errs, out;
    fserr e = {0};

    buf_init(&errs, 0);
    buf_init(&out, 0);
    if (cfg_load_mem("fuzz.toml", (const char *)data, size, &c, &errs, &e) == 0)
        cfg_print(c, &out);
    cfg_free(c);
    buf_release(&errs);
    buf_release(&out);
    return 0;
}
