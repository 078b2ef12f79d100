/* What a harness defines: tests/fuzz/fuzz_<name>.c is built twice, as a
 * libFuzzer binary (clang) and with replay.c into a plain program that
 * runs it over the seeds and the regressions (every build); see
 * docs/robustness.md. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* One input: must not crash, leak or trip a sanitizer, whatever data
 * holds. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional: called once before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
