/*
 * The C interface of hashcore's SHA-256d nonce scanner.
 *
 * cffi reads this file as its cdef (lines starting with '#' are dropped first), so it
 * holds only declarations with fixed-width types. Every array argument is a plain
 * uint32_t or uint8_t buffer owned by the caller.
 */
#ifndef HASHCORE_SHA256D_H
#define HASHCORE_SHA256D_H

#include <stdint.h>

/* Code paths; bit (1 << path) of hc_paths_*() says whether a path is there. */
enum {
    HC_PATH_SCALAR = 0,
    HC_PATH_SHANI = 1,
    HC_PATH_AVX2 = 2,
    HC_PATH_AVX512 = 3
};

/* Negative return values of hc_scan. */
enum {
    HC_ERR_PATH = -1,
    HC_ERR_RANGE = -2
};

/* Paths compiled into this build. */
uint32_t hc_paths_compiled(void);

/* Paths compiled in that this CPU and operating system can run. */
uint32_t hc_paths_supported(void);

/*
 * Scan nonces [nonce_start, nonce_start + count) of one header.
 *
 * midstate: the SHA-256 state after the first 64 header bytes.
 * tail:     header bytes 64..76 (end of the merkle root, ntime, nbits).
 * target:   the 256-bit target as 8 words, least significant word first.
 * count:    at most 2**32 - nonce_start (the range never wraps).
 *
 * Writes every nonce whose hash is <= target, in increasing order, into found[] and
 * stops once `capacity` nonces are written. *hashes_done is the length of the prefix
 * of the range that was fully examined (count, or up to the last nonce written when
 * the scan stopped early). Returns the number of nonces written, or HC_ERR_*.
 */
int32_t hc_scan(int32_t path, const uint32_t midstate[8], const uint8_t tail[12],
                const uint32_t target[8], uint32_t nonce_start, uint64_t count,
                uint32_t *found, uint32_t capacity, uint64_t *hashes_done);

/* SHA-256d of the header (midstate, tail, nonce) with the portable code: a known answer. */
void hc_sha256d(const uint32_t midstate[8], const uint8_t tail[12], uint32_t nonce,
                uint8_t digest[32]);

#endif
