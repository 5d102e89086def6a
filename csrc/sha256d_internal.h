/*
 * Shared by the code paths: the work description every path receives, the portable
 * SHA-256 pieces, and the exact check each fast path runs on its rare candidates.
 */
#ifndef HASHCORE_SHA256D_INTERNAL_H
#define HASHCORE_SHA256D_INTERNAL_H

#include <stdint.h>

#include "hashcore_sha256d.h"

#if defined(__x86_64__) || defined(__i386__)
#define HC_X86 1
#else
#define HC_X86 0
#endif

#define HC_ALWAYS_INLINE inline __attribute__((always_inline))
#define HC_CAT_(a, b) a##b
#define HC_CAT(a, b) HC_CAT_(a, b)

extern const uint32_t hc_k[64];
extern const uint32_t hc_iv[8];

/* One header to scan, as every path receives it. */
typedef struct {
    uint32_t midstate[8];
    uint32_t block[16]; /* the second block of the header; block[3] (the nonce) is 0 */
    uint32_t target[8]; /* least significant word first */
} hc_work;

/*
 * What the lane paths compute once per scan from an hc_work (hc_precompute): the state
 * before round 3 of the second block, round 3 less its message word (the nonce), the
 * nonce-free message words, and the second hash's round 0 less its message word.
 */
typedef struct {
    uint32_t mid[8];
    uint32_t s3[8];   /* a..h before round 3 of the second block */
    uint32_t r3_a;    /* a after round 3, less the nonce word */
    uint32_t r3_e;    /* e after round 3, less the nonce word */
    uint32_t w16, w17;
    uint32_t w18;     /* less ssig0(nonce word) */
    uint32_t w19;     /* less the nonce word */
    uint32_t w31c;    /* the constant part of word 31: ssig0(w16) + word 15 */
    uint32_t h2_a1;   /* second hash: a after round 0, less its message word 0 */
    uint32_t h2_e1;   /* second hash: e after round 0, less its message word 0 */
} hc_pre;

void hc_precompute(const hc_work *work, hc_pre *pre);

/* Lays out the header's second block (the nonce word left 0); target may be NULL. */
void hc_work_init(hc_work *work, const uint32_t midstate[8], const uint8_t tail[12], const uint32_t target[8]);

/* Where a scan writes what it finds; a path stops once n == capacity. */
typedef struct {
    uint32_t *found;
    uint32_t capacity;
    uint32_t n;
} hc_out;

/* A path scans [start, start + count) and returns how much of it it fully examined. */
typedef uint64_t (*hc_scan_fn)(const hc_work *work, uint32_t start, uint64_t count, hc_out *out);

uint64_t hc_scan_scalar(const hc_work *work, uint32_t start, uint64_t count, hc_out *out);
#if HC_X86
uint64_t hc_scan_shani(const hc_work *work, uint32_t start, uint64_t count, hc_out *out);
/* The same with AVX-512VL (XMM16-31): only where hc_shani_vl_usable(). */
uint64_t hc_scan_shani_vl(const hc_work *work, uint32_t start, uint64_t count, hc_out *out);
uint64_t hc_scan_avx2(const hc_work *work, uint32_t start, uint64_t count, hc_out *out);
uint64_t hc_scan_avx512(const hc_work *work, uint32_t start, uint64_t count, hc_out *out);
#endif

/*
 * A candidate whose top hash word passed a path's cheap test: hash it in full with the
 * portable code, compare all 256 bits with the target, and record it when it meets it.
 * Returns 1 when the output is now full (the scan must stop), else 0.
 */
int hc_candidate(const hc_work *work, uint32_t nonce, hc_out *out);

static inline uint32_t hc_ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
static inline uint32_t hc_bsig0(uint32_t x) { return hc_ror(x, 2) ^ hc_ror(x, 13) ^ hc_ror(x, 22); }
static inline uint32_t hc_bsig1(uint32_t x) { return hc_ror(x, 6) ^ hc_ror(x, 11) ^ hc_ror(x, 25); }
static inline uint32_t hc_ssig0(uint32_t x) { return hc_ror(x, 7) ^ hc_ror(x, 18) ^ (x >> 3); }
static inline uint32_t hc_ssig1(uint32_t x) { return hc_ror(x, 17) ^ hc_ror(x, 19) ^ (x >> 10); }
static inline uint32_t hc_ch(uint32_t e, uint32_t f, uint32_t g) { return (e & (f ^ g)) ^ g; }
static inline uint32_t hc_maj(uint32_t a, uint32_t b, uint32_t c) { return (a & b) | (c & (a | b)); }

static inline uint32_t hc_bswap32(uint32_t x) { return __builtin_bswap32(x); }

/* Round t of SHA-256 on the state s[0..7] = a..h with message word w. */
static inline void hc_round(uint32_t s[8], int t, uint32_t w)
{
    uint32_t t1 = s[7] + hc_bsig1(s[4]) + hc_ch(s[4], s[5], s[6]) + hc_k[t] + w;
    uint32_t t2 = hc_bsig0(s[0]) + hc_maj(s[0], s[1], s[2]);
    s[7] = s[6];
    s[6] = s[5];
    s[5] = s[4];
    s[4] = s[3] + t1;
    s[3] = s[2];
    s[2] = s[1];
    s[1] = s[0];
    s[0] = t1 + t2;
}

/* The full message schedule of one block. */
static inline void hc_schedule(uint32_t w[64], const uint32_t block[16])
{
    for (int t = 0; t < 16; t++)
        w[t] = block[t];
    for (int t = 16; t < 64; t++)
        w[t] = hc_ssig1(w[t - 2]) + w[t - 7] + hc_ssig0(w[t - 15]) + w[t - 16];
}

/* state += compress(state, block): plain FIPS 180-4, no shortcuts. */
void hc_compress(uint32_t state[8], const uint32_t block[16]);

#endif
