/*
 * fuzz_input.h: hands a libFuzzer input to cuvae's readers, which take a path.
 * The bytes go into one memfd per process (a regular file in memory, no disk
 * I/O), opened by the readers as /proc/self/fd/N. Not a harness itself.
 */
#ifndef VAE_FUZZ_INPUT_H
#define VAE_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* The path of a file that holds exactly data[0..size). Aborts on failure. */
const char *fuzz_input_path(const uint8_t *data, size_t size);

#endif
