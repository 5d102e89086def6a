/*
 * The SHA-NI path: sha256rnds2 does two rounds, but with a latency of about 4 cycles
 * and a new start about every cycle (AMD Zen 3), so one nonce leaves the unit idle.
 * HC_SHANI_WAYS independent nonces are hashed together to fill it. Each stream's steps
 * of one 4-round group are written together (not alternated instruction by instruction
 * across streams): measured faster, the out-of-order core does the interleaving.
 * Three ways won on Zen 3; at four the 16 XMM registers run out and the code spills.
 *
 * SHA-NI has no VEX form, and legacy SSE code must not run while upper YMM halves are
 * dirty (the dispatcher clears them before calling in). This file builds twice:
 *   - hc_scan_shani: SSE encodings only, 16 XMM registers (any CPU with SHA-NI);
 *   - hc_scan_shani_vl (sha256d_shani_vl.c): the same code where AVX-512VL is there.
 *     The compiler then keeps what does not fit in XMM0-15 in XMM16-31 (EVEX moves)
 *     instead of spilling it to the stack: 3 ways went from 32.2 to 34.4 MH/s per
 *     thread on AMD Zen 4 (measured side by side, per CPU second). The 4-way variant
 *     ran no faster there, so 3 ways stay.
 *
 * Mining shortcuts: rounds 0-1 of the header's second block are precomputed, as are its
 * constant message words 4-15 (with their round constants) and the parts of the message
 * schedule that do not involve the nonce; the second hash starts from its constant
 * padding words; it stops after round 61, once the top hash word is known.
 */
#include "sha256d_internal.h"

#if HC_X86
#include <immintrin.h>

#ifndef HC_SHANI_WAYS
#define HC_SHANI_WAYS 3
#endif

#ifndef HC_SHANI_FN
#define HC_SHANI_FN hc_scan_shani
#define HC_SHA_TARGET __attribute__((target("sha,sse4.1")))
#endif
/* Every loop below must unroll fully: the per-stream arrays then live in registers,
 * whereas a rolled loop indexes them in memory and puts store-to-load forwarding on
 * the critical path. */
#define HC_UNROLL _Pragma("GCC unroll 16")

typedef struct {
    __m128i mid_abef, mid_cdgh; /* midstate in SHA-NI order */
    __m128i abef2;              /* ABEF after rounds 0-1 of the second block */
    uint64_t wk2;               /* K2 + W2 */
    uint32_t k3;
    __m128i m0;                 /* words 0-3 with the nonce word 0 */
    __m128i kw[4][2];           /* K + W of rounds 4-15 (constant): low pair, high pair */
    __m128i msg1_12, msg1_23;   /* sha256msg1 of words (4-7, 8-11) and (8-11, 12-15) */
    __m128i m1, m3;             /* words 4-7 and 12-15 */
    __m128i iv_abef, iv_cdgh;   /* second hash: the IV in SHA-NI order */
    __m128i kw2[4][2];          /* second hash: K + W of rounds 8-15 (constant padding) */
    __m128i m2_2, m2_3;         /* second hash: words 8-11 and 12-15 */
    __m128i msg1_23_2;          /* second hash: sha256msg1 of words (8-11, 12-15) */
} shani_pre;

#define K4(q) _mm_loadu_si128((const __m128i *)&hc_k[4 * (q)])
#define RNDS2(cdgh, abef, wk) _mm_sha256rnds2_epu32((cdgh), (abef), (wk))
#define HI(x) _mm_shuffle_epi32((x), 0x0e)
/* Message words 4q+16..4q+19 from words 4q..4q+15. */
#define SCHED(m0, m1, m2, m3) \
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((m0), (m1)), _mm_alignr_epi8((m3), (m2), 4)), (m3))

/* (a..h) words to ABEF (lanes 0-3 = F, E, B, A) and CDGH (H, G, D, C). */
static HC_SHA_TARGET void to_sha_order(const uint32_t s[8], __m128i *abef, __m128i *cdgh)
{
    *abef = _mm_setr_epi32((int)s[5], (int)s[4], (int)s[1], (int)s[0]);
    *cdgh = _mm_setr_epi32((int)s[7], (int)s[6], (int)s[3], (int)s[2]);
}

static HC_SHA_TARGET void shani_prepare(const hc_work *work, shani_pre *p)
{
    const uint32_t *w = work->block;
    to_sha_order(work->midstate, &p->mid_abef, &p->mid_cdgh);
    const __m128i wk01 = _mm_setr_epi32((int)(hc_k[0] + w[0]), (int)(hc_k[1] + w[1]), 0, 0);
    p->abef2 = RNDS2(p->mid_cdgh, p->mid_abef, wk01);
    p->wk2 = hc_k[2] + w[2];
    p->k3 = hc_k[3];
    p->m0 = _mm_setr_epi32((int)w[0], (int)w[1], (int)w[2], 0);
    const __m128i m1 = _mm_setr_epi32((int)w[4], (int)w[5], (int)w[6], (int)w[7]);
    const __m128i m2 = _mm_setr_epi32((int)w[8], (int)w[9], (int)w[10], (int)w[11]);
    const __m128i m3 = _mm_setr_epi32((int)w[12], (int)w[13], (int)w[14], (int)w[15]);
    const __m128i m[4] = {p->m0, m1, m2, m3};
    for (int q = 1; q < 4; q++) {
        p->kw[q][0] = _mm_add_epi32(m[q], K4(q));
        p->kw[q][1] = HI(p->kw[q][0]);
    }
    p->msg1_12 = _mm_sha256msg1_epu32(m1, m2);
    p->msg1_23 = _mm_sha256msg1_epu32(m2, m3);
    p->m1 = m1;
    p->m3 = m3;

    to_sha_order(hc_iv, &p->iv_abef, &p->iv_cdgh);
    p->m2_2 = _mm_setr_epi32((int)0x80000000u, 0, 0, 0);
    p->m2_3 = _mm_setr_epi32(0, 0, 0, 256);
    p->kw2[2][0] = _mm_add_epi32(p->m2_2, K4(2));
    p->kw2[2][1] = HI(p->kw2[2][0]);
    p->kw2[3][0] = _mm_add_epi32(p->m2_3, K4(3));
    p->kw2[3][1] = HI(p->kw2[3][0]);
    p->msg1_23_2 = _mm_sha256msg1_epu32(p->m2_2, p->m2_3);
}

/*
 * The top hash word H7 of nonces nonce .. nonce + n - 1. n is a constant at each call
 * site, so the stream loops unroll and the per-stream arrays live in registers.
 */
static HC_ALWAYS_INLINE HC_SHA_TARGET void shani_h7(const shani_pre *p, uint32_t nonce, int n, uint32_t *h7)
{
    __m128i s0[HC_SHANI_WAYS], s1[HC_SHANI_WAYS], m[HC_SHANI_WAYS][4];

    /* First hash, second block. Rounds 0-1 are precomputed; rounds 2-3 carry the nonce. */
    HC_UNROLL for (int s = 0; s < n; s++) {
        const uint32_t w3 = hc_bswap32(nonce + (uint32_t)s);
        const __m128i wk = _mm_cvtsi64_si128((long long)(p->wk2 | ((uint64_t)(w3 + p->k3) << 32)));
        s1[s] = p->abef2;
        s0[s] = RNDS2(p->mid_abef, p->abef2, wk);
        m[s][0] = _mm_insert_epi32(p->m0, (int)w3, 3);
        /* Words 16-19; words 5-8 are zero, so the alignr term vanishes. */
        m[s][0] = _mm_sha256msg2_epu32(_mm_sha256msg1_epu32(m[s][0], p->m1), p->m3);
    }
    HC_UNROLL for (int s = 0; s < n; s++) {
        s1[s] = RNDS2(s1[s], s0[s], p->kw[1][0]);
        s0[s] = RNDS2(s0[s], s1[s], p->kw[1][1]);
        m[s][1] = _mm_sha256msg2_epu32(_mm_add_epi32(p->msg1_12, _mm_alignr_epi8(m[s][0], p->m3, 4)), m[s][0]);
    }
    HC_UNROLL for (int s = 0; s < n; s++) {
        s1[s] = RNDS2(s1[s], s0[s], p->kw[2][0]);
        s0[s] = RNDS2(s0[s], s1[s], p->kw[2][1]);
        m[s][2] = _mm_sha256msg2_epu32(_mm_add_epi32(p->msg1_23, _mm_alignr_epi8(m[s][1], m[s][0], 4)), m[s][1]);
    }
    HC_UNROLL for (int s = 0; s < n; s++) {
        s1[s] = RNDS2(s1[s], s0[s], p->kw[3][0]);
        s0[s] = RNDS2(s0[s], s1[s], p->kw[3][1]);
        m[s][3] = SCHED(p->m3, m[s][0], m[s][1], m[s][2]);
    }
    /* Rounds 16-63; m[s][q & 3] holds words 4q..4q+3. */
    HC_UNROLL for (int q = 4; q < 16; q++) {
        HC_UNROLL for (int s = 0; s < n; s++) {
            const __m128i wk = _mm_add_epi32(m[s][q & 3], K4(q));
            s1[s] = RNDS2(s1[s], s0[s], wk);
            s0[s] = RNDS2(s0[s], s1[s], HI(wk));
            if (q < 12)
                m[s][q & 3] = SCHED(m[s][q & 3], m[s][(q + 1) & 3], m[s][(q + 2) & 3], m[s][(q + 3) & 3]);
        }
    }

    /* Second hash: the first hash's state is its message words 0-7. */
    HC_UNROLL for (int s = 0; s < n; s++) {
        s0[s] = _mm_add_epi32(s0[s], p->mid_abef);
        s1[s] = _mm_add_epi32(s1[s], p->mid_cdgh);
        m[s][0] = _mm_shuffle_epi32(_mm_unpackhi_epi64(s0[s], s1[s]), 0xb1); /* A B C D */
        m[s][1] = _mm_shuffle_epi32(_mm_unpacklo_epi64(s0[s], s1[s]), 0xb1); /* E F G H */
        const __m128i wk = _mm_add_epi32(m[s][0], K4(0));
        s1[s] = RNDS2(p->iv_cdgh, p->iv_abef, wk);
        s0[s] = RNDS2(p->iv_abef, s1[s], HI(wk));
        /* Words 16-19; words 9-12 are zero, so the alignr term vanishes. */
        m[s][2] = _mm_sha256msg2_epu32(_mm_sha256msg1_epu32(m[s][0], m[s][1]), p->m2_3);
    }
    HC_UNROLL for (int s = 0; s < n; s++) {
        const __m128i wk = _mm_add_epi32(m[s][1], K4(1));
        s1[s] = RNDS2(s1[s], s0[s], wk);
        s0[s] = RNDS2(s0[s], s1[s], HI(wk));
        m[s][3] = SCHED(m[s][1], p->m2_2, p->m2_3, m[s][2]);
    }
    HC_UNROLL for (int s = 0; s < n; s++) {
        s1[s] = RNDS2(s1[s], s0[s], p->kw2[2][0]);
        s0[s] = RNDS2(s0[s], s1[s], p->kw2[2][1]);
        m[s][0] = _mm_sha256msg2_epu32(_mm_add_epi32(p->msg1_23_2, _mm_alignr_epi8(m[s][3], m[s][2], 4)), m[s][3]);
    }
    HC_UNROLL for (int s = 0; s < n; s++) {
        s1[s] = RNDS2(s1[s], s0[s], p->kw2[3][0]);
        s0[s] = RNDS2(s0[s], s1[s], p->kw2[3][1]);
        m[s][1] = SCHED(p->m2_3, m[s][2], m[s][3], m[s][0]);
    }
    /* Rounds 16-59; m[s][(q + 2) & 3] holds words 4q..4q+3. */
    HC_UNROLL for (int q = 4; q < 15; q++) {
        HC_UNROLL for (int s = 0; s < n; s++) {
            const __m128i wk = _mm_add_epi32(m[s][(q + 2) & 3], K4(q));
            s1[s] = RNDS2(s1[s], s0[s], wk);
            s0[s] = RNDS2(s0[s], s1[s], HI(wk));
            if (q < 12)
                m[s][(q + 2) & 3] =
                    SCHED(m[s][(q + 2) & 3], m[s][(q + 3) & 3], m[s][q & 3], m[s][(q + 1) & 3]);
        }
    }
    /* Early exit: rounds 60-61 give ABEF = (a, b, e, f) after round 61, and f then is
     * the final h, so H7 = f + IV7; rounds 62-63 are not run. */
    HC_UNROLL for (int s = 0; s < n; s++) {
        const __m128i wk = _mm_add_epi32(m[s][(15 + 2) & 3], K4(15));
        s1[s] = RNDS2(s1[s], s0[s], wk);
        h7[s] = (uint32_t)_mm_cvtsi128_si32(s1[s]) + hc_iv[7];
    }
}

HC_SHA_TARGET uint64_t HC_SHANI_FN(const hc_work *work, uint32_t start, uint64_t count, hc_out *out)
{
    shani_pre pre;
    shani_prepare(work, &pre);
    const uint32_t t7 = work->target[7];
    uint32_t h7[HC_SHANI_WAYS];
    uint64_t done = 0;
    for (; done + HC_SHANI_WAYS <= count; done += HC_SHANI_WAYS) {
        const uint32_t base = (uint32_t)(start + done);
        shani_h7(&pre, base, HC_SHANI_WAYS, h7);
        for (int s = 0; s < HC_SHANI_WAYS; s++) {
            if (__builtin_expect(hc_bswap32(h7[s]) <= t7, 0) &&
                hc_candidate(work, base + (uint32_t)s, out))
                return done + (uint64_t)s + 1u;
        }
    }
    for (; done < count; done++) {
        const uint32_t nonce = (uint32_t)(start + done);
        shani_h7(&pre, nonce, 1, h7);
        if (hc_bswap32(h7[0]) <= t7 && hc_candidate(work, nonce, out))
            return done + 1u;
    }
    return count;
}

#endif
