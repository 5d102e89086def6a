/*
 * hc_sha256.cl: SHA-256 primitives for SHA-256d nonce scanning.
 *
 * Two variants of the same work:
 *   - on hc_u32x (HC_VECTOR_WIDTH nonces per vector; 1 on GPUs, where the hardware
 *     already runs work items in lockstep, wider on CPUs to fill SIMD registers);
 *   - with the x86 SHA extensions (HC_X86_SHA), HC_X86_STREAMS nonces in flight,
 *     since sha256rnds2 has a latency of several cycles but starts about once a cycle.
 *
 * Precomputed by the host once per Work (hashcore/backends/_precompute.py, at the
 * HC_P_* offsets): the midstate, the state after rounds 0-2 of the header's second
 * block (0-1 for the SHA extensions, which go in pairs), message words 16 and 17,
 * and the target's words. None of them reads the nonce.
 *
 * Skipped per nonce: rounds 61-63 of the second hash, and all but e of rounds 57-60
 * (portable variant). After round 60, e is already the final h, so the hash's top word
 * is known; only where it can meet the target are those nonces hashed again in full and
 * all 256 bits compared. Recomputing them, rather than keeping the state for them, also
 * frees the registers that state would hold across the test (at 32 lanes on Zen 5 the
 * scan ran 24% faster).
 */
#include "hc_portability.h"

HC_CONSTANT uint HC_K[64] = {
    0x428A2F98u, 0x71374491u, 0xB5C0FBCFu, 0xE9B5DBA5u, 0x3956C25Bu, 0x59F111F1u, 0x923F82A4u, 0xAB1C5ED5u,
    0xD807AA98u, 0x12835B01u, 0x243185BEu, 0x550C7DC3u, 0x72BE5D74u, 0x80DEB1FEu, 0x9BDC06A7u, 0xC19BF174u,
    0xE49B69C1u, 0xEFBE4786u, 0x0FC19DC6u, 0x240CA1CCu, 0x2DE92C6Fu, 0x4A7484AAu, 0x5CB0A9DCu, 0x76F988DAu,
    0x983E5152u, 0xA831C66Du, 0xB00327C8u, 0xBF597FC7u, 0xC6E00BF3u, 0xD5A79147u, 0x06CA6351u, 0x14292967u,
    0x27B70A85u, 0x2E1B2138u, 0x4D2C6DFCu, 0x53380D13u, 0x650A7354u, 0x766A0ABBu, 0x81C2C92Eu, 0x92722C85u,
    0xA2BFE8A1u, 0xA81A664Bu, 0xC24B8B70u, 0xC76C51A3u, 0xD192E819u, 0xD6990624u, 0xF40E3585u, 0x106AA070u,
    0x19A4C116u, 0x1E376C08u, 0x2748774Cu, 0x34B0BCB5u, 0x391C0CB3u, 0x4ED8AA4Au, 0x5B9CCA4Fu, 0x682E6FF3u,
    0x748F82EEu, 0x78A5636Fu, 0x84C87814u, 0x8CC70208u, 0x90BEFFFAu, 0xA4506CEBu, 0xBEF9A3F7u, 0xC67178F2u,
};

HC_CONSTANT uint HC_IV[8] = {
    0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au, 0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u,
};

/* --- the portable variant, on hc_u32x ---------------------------------------------- */

#define HC_BSIG0(a) (HC_ROTR((a), 2u) ^ HC_ROTR((a), 13u) ^ HC_ROTR((a), 22u))
#define HC_BSIG1(e) (HC_ROTR((e), 6u) ^ HC_ROTR((e), 11u) ^ HC_ROTR((e), 25u))
#define HC_SSIG0(w) (HC_ROTR((w), 7u) ^ HC_ROTR((w), 18u) ^ ((w) >> 3u))
#define HC_SSIG1(w) (HC_ROTR((w), 17u) ^ HC_ROTR((w), 19u) ^ ((w) >> 10u))

/* Rounds first..last-1 on the state s[8] with the message schedule w. Macros, so the
 * bounds are literals where the loop is unrolled; unrolled, the moves between s[]
 * entries are register renames. */
#define HC_ROUNDS(s, w, first, last)                                                   \
    _Pragma("unroll") for (int i_ = (first); i_ < (last); i_++) {                      \
        const hc_u32x t1_ = s[7] + HC_BSIG1(s[4]) + HC_CH(s[4], s[5], s[6]) + w[i_] + HC_K[i_]; \
        const hc_u32x t2_ = HC_BSIG0(s[0]) + HC_MAJ(s[0], s[1], s[2]);                  \
        s[7] = s[6];                                                                   \
        s[6] = s[5];                                                                   \
        s[5] = s[4];                                                                   \
        s[4] = s[3] + t1_;                                                             \
        s[3] = s[2];                                                                   \
        s[2] = s[1];                                                                   \
        s[1] = s[0];                                                                   \
        s[0] = t1_ + t2_;                                                              \
    }

/* As HC_SCHEDULE for the words from 32 on, which hold nothing constant to fold: kept
 * as a loop where the lanes are wide (HC_SCHEDULE_UNROLL), since unrolled at 32 lanes
 * the scan outgrows the L1 code cache and runs 9% slower (Zen 5); unrolled otherwise,
 * which is faster at 16 lanes and below. */
#define HC_SCHEDULE_LOOP(w, first, last)                                               \
    HC_SCHEDULE_UNROLL for (int i_ = (first); i_ < (last); i_++)                       \
        w[i_] = HC_SSIG1(w[i_ - 2]) + w[i_ - 7] + HC_SSIG0(w[i_ - 15]) + w[i_ - 16];

/* Message words first..last-1 from the sixteen before each. */
#define HC_SCHEDULE(w, first, last)                                                    \
    _Pragma("unroll") for (int i_ = (first); i_ < (last); i_++)                        \
        w[i_] = HC_SSIG1(w[i_ - 2]) + w[i_ - 7] + HC_SSIG0(w[i_ - 15]) + w[i_ - 16];

/* The first SHA-256 of the header for each lane's nonce: h[0..7] (H0..H7). */
HC_INLINE void hc_first_hash(HC_CONSTANT const uint *pre, const hc_u32x nonce, hc_u32x *h)
{
    hc_u32x w[64];
    w[0] = (hc_u32x)(pre[HC_P_TAIL]);
    w[1] = (hc_u32x)(pre[HC_P_TAIL + 1]);
    w[2] = (hc_u32x)(pre[HC_P_TAIL + 2]);
    w[3] = HC_BSWAP(nonce);
    w[4] = (hc_u32x)(0x80000000u);
#pragma unroll
    for (int i = 5; i < 15; i++)
        w[i] = (hc_u32x)(0u);
    w[15] = (hc_u32x)(640u);
    w[16] = (hc_u32x)(pre[HC_P_W16]);
    w[17] = (hc_u32x)(pre[HC_P_W16 + 1]);
    HC_SCHEDULE(w, 18, 32)
    HC_SCHEDULE_LOOP(w, 32, 64)
    hc_u32x s[8];
#pragma unroll
    for (int i = 0; i < 8; i++)
        s[i] = (hc_u32x)(pre[HC_P_STATE3 + i]);
    HC_ROUNDS(s, w, 3, 64)
#pragma unroll
    for (int i = 0; i < 8; i++)
        h[i] = s[i] + pre[HC_P_MID + i];
}

/* The message schedule and state of the second SHA-256 (of the 32-byte h1) before
 * its round 0: the message is h1 and its constant padding. */
#define HC_SECOND_HASH_START(h1, w, s)                                                 \
    _Pragma("unroll") for (int i_ = 0; i_ < 8; i_++) {                                 \
        w[i_] = h1[i_];                                                                \
        s[i_] = (hc_u32x)(HC_IV[i_]);                                                  \
    }                                                                                  \
    w[8] = (hc_u32x)(0x80000000u);                                                     \
    _Pragma("unroll") for (int i_ = 9; i_ < 15; i_++) w[i_] = (hc_u32x)(0u);           \
    w[15] = (hc_u32x)(256u);                                                           \
    HC_SCHEDULE(w, 16, 32)

/* The top word H7 of the second SHA-256, all the scan needs of most nonces: after
 * round 60, e is already the final h, and of rounds 57-60 only e is worked out (the
 * compiler drops what nothing reads). */
HC_INLINE hc_u32x hc_second_hash_top(const hc_u32x *h1)
{
    hc_u32x w[64], s[8];
    HC_SECOND_HASH_START(h1, w, s)
    HC_SCHEDULE_LOOP(w, 32, 61)
    HC_ROUNDS(s, w, 0, 61)
    return s[4] + HC_IV[7];
}

/* The whole second SHA-256: h becomes the digest words H0..H7. */
HC_INLINE void hc_second_hash(const hc_u32x *h1, hc_u32x *h)
{
    hc_u32x w[64], s[8];
    HC_SECOND_HASH_START(h1, w, s)
    HC_SCHEDULE_LOOP(w, 32, 64)
    HC_ROUNDS(s, w, 0, 64)
#pragma unroll
    for (int i = 0; i < 8; i++)
        h[i] = s[i] + HC_IV[i];
}

/* Whether digest words H0..H7, read as the little-endian number Bitcoin compares, are
 * at most the target: word i of that number is H_i byte-swapped, word 7 the top. */
HC_INLINE bool hc_meets_target(const uint *digest, HC_CONSTANT const uint *pre)
{
    for (int i = 7; i >= 0; i--) {
        const uint value = HC_BSWAP32(digest[i]);
        const uint limit = pre[HC_P_TARGET + i];
        if (value != limit)
            return value < limit;
    }
    return true;
}

/* --- the x86 SHA-extensions variant ------------------------------------------------ */
#if HC_X86_SHA

/* State in the layout sha256rnds2 uses: ABEF = (F, E, B, A) and CDGH = (H, G, D, C),
 * lane 0 first. Four rounds: rnds2 returns the new ABEF, and the old ABEF is then
 * the new CDGH. */
#define HC_QUAD(abef, cdgh, wk)                                                        \
    do {                                                                               \
        const hc_v4 x_ = HC_RNDS2((cdgh), (abef), (wk));                                \
        (abef) = HC_RNDS2((abef), x_, HC_SHUFFLE4((wk), (wk), 2, 3, 2, 3));             \
        (cdgh) = x_;                                                                   \
    } while (0)
/* W[i..i+3] from W[i-16..i-1] held as four quads. */
#define HC_NEXT_W(m0, m1, m2, m3) HC_MSG2(HC_MSG1((m0), (m1)) + HC_SHUFFLE4((m2), (m3), 1, 2, 3, 4), (m3))
#define HC_K4(g) ((hc_v4){HC_K[4 * (g)], HC_K[4 * (g) + 1], HC_K[4 * (g) + 2], HC_K[4 * (g) + 3]})
#define HC_ABEF(p, at) ((hc_v4){(p)[(at) + 5], (p)[(at) + 4], (p)[(at) + 1], (p)[(at)]})
#define HC_CDGH(p, at) ((hc_v4){(p)[(at) + 7], (p)[(at) + 6], (p)[(at) + 3], (p)[(at) + 2]})

/* Rounds 4g.. of one compression for every stream, message schedule included;
 * m[s][0..3] hold W[4g-16..4g-1] of stream s on entry and are moved along. */
#define HC_SCHEDULED_GROUPS(abef, cdgh, m, first)                                   \
    _Pragma("unroll") for (int g = (first); g < 16; g++) {                             \
        const hc_v4 k_ = HC_K4(g);                                                     \
        _Pragma("unroll") for (int s = 0; s < HC_X86_STREAMS; s++) {                                \
            const hc_v4 n_ = HC_NEXT_W(m[s][0], m[s][1], m[s][2], m[s][3]);            \
            HC_QUAD(abef[s], cdgh[s], n_ + k_);                                        \
            m[s][0] = m[s][1];                                                         \
            m[s][1] = m[s][2];                                                         \
            m[s][2] = m[s][3];                                                         \
            m[s][3] = n_;                                                              \
        }                                                                              \
    }

/* SHA-256d of the header with nonces n .. n + HC_X86_STREAMS - 1: digests in the
 * ABEF/CDGH layout, written to abef_out/cdgh_out at the end. The state is worked on in
 * local arrays: LLVM cannot tell that two output pointers do not alias, and updating
 * them in place puts a store and a reload on every rnds2 dependency chain. */
HC_X86_SHA_FN void hc_sha256d_xn(HC_CONSTANT const uint *pre, const uint n, hc_v4 *abef_out, hc_v4 *cdgh_out)
{
    hc_v4 abef[HC_X86_STREAMS], cdgh[HC_X86_STREAMS];
    const hc_v4 m1 = {0x80000000u, 0u, 0u, 0u}, m2 = {0u, 0u, 0u, 0u}, m3 = {0u, 0u, 0u, 640u};
    const hc_v4 abef2 = HC_ABEF(pre, HC_P_STATE2), cdgh2 = HC_CDGH(pre, HC_P_STATE2);
    hc_v4 m[HC_X86_STREAMS][4];
    /* Rounds 0-1 were done by the host; rounds 2-3 read the nonce (word 3). */
#pragma unroll
    for (int s = 0; s < HC_X86_STREAMS; s++) {
        m[s][0] = (hc_v4){pre[HC_P_TAIL], pre[HC_P_TAIL + 1], pre[HC_P_TAIL + 2], HC_BSWAP32(n + (uint)s)};
        m[s][1] = m1;
        m[s][2] = m2;
        m[s][3] = m3;
        abef[s] = HC_RNDS2(cdgh2, abef2, HC_SHUFFLE4(m[s][0] + HC_K4(0), m2, 2, 3, 2, 3));
        cdgh[s] = abef2;
    }
#pragma unroll
    for (int g = 1; g < 4; g++) {
        const hc_v4 wk = (g == 1 ? m1 : g == 2 ? m2 : m3) + HC_K4(g);
#pragma unroll
        for (int s = 0; s < HC_X86_STREAMS; s++)
            HC_QUAD(abef[s], cdgh[s], wk);
    }
    HC_SCHEDULED_GROUPS(abef, cdgh, m, 4)
    const hc_v4 mid_abef = HC_ABEF(pre, HC_P_MID), mid_cdgh = HC_CDGH(pre, HC_P_MID);
    const hc_v4 iv_abef = HC_ABEF(HC_IV, 0), iv_cdgh = HC_CDGH(HC_IV, 0);
    const hc_v4 d2 = {0x80000000u, 0u, 0u, 0u}, d3 = {0u, 0u, 0u, 256u};
    /* The second hash: message = the first digest (H0..H7) and its padding. */
#pragma unroll
    for (int s = 0; s < HC_X86_STREAMS; s++) {
        const hc_v4 a = abef[s] + mid_abef, c = cdgh[s] + mid_cdgh;
        m[s][0] = HC_SHUFFLE4(a, c, 3, 2, 7, 6);
        m[s][1] = HC_SHUFFLE4(a, c, 1, 0, 5, 4);
        m[s][2] = d2;
        m[s][3] = d3;
        abef[s] = iv_abef;
        cdgh[s] = iv_cdgh;
    }
#pragma unroll
    for (int g = 0; g < 4; g++) {
        const hc_v4 k_ = HC_K4(g);
#pragma unroll
        for (int s = 0; s < HC_X86_STREAMS; s++)
            HC_QUAD(abef[s], cdgh[s], m[s][g] + k_);
    }
    HC_SCHEDULED_GROUPS(abef, cdgh, m, 4)
#pragma unroll
    for (int s = 0; s < HC_X86_STREAMS; s++) {
        abef_out[s] = abef[s] + iv_abef;
        cdgh_out[s] = cdgh[s] + iv_cdgh;
    }
}

/* Digest words H0..H7 from the ABEF/CDGH layout. */
HC_X86_SHA_FN HC_INLINE void hc_digest_words(const hc_v4 abef, const hc_v4 cdgh, uint *digest)
{
    digest[0] = abef[3];
    digest[1] = abef[2];
    digest[2] = cdgh[3];
    digest[3] = cdgh[2];
    digest[4] = abef[1];
    digest[5] = abef[0];
    digest[6] = cdgh[1];
    digest[7] = cdgh[0];
}

#endif /* HC_X86_SHA */
