/*
 * The AVX-512 path: 16 nonces per 512-bit register, native rotates and ternary logic
 * (vprord, vpternlogd for Ch, Maj and the three-way XORs of the sigmas).
 *
 * Two independent 16-lane groups go through each step (HC_AVX512_GROUPS, 32 nonces a
 * loop iteration). One group leaves the core waiting: a round's e-chain (rotates, a
 * ternary, three adds) is about as long as the round's 13 vector operations take to
 * issue, so any gap stalls. With a second group in flight the same code went from 28.0
 * to 34.4 MH/s per thread on AMD Zen 4 (measured side by side, per CPU second); the
 * 32 ZMM registers hold both groups' states with few extra spills.
 */
#include "sha256d_internal.h"

#if HC_X86
#include <immintrin.h>

#ifndef HC_AVX512_GROUPS
#define HC_AVX512_GROUPS 2
#endif
#define HC_FN hc_scan_avx512
#define HC_TARGET __attribute__((target("avx512f,avx512bw")))
#define HC_BSWAP_MASK \
    _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203)
#define HC_LANE_IDS _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#define Z_NONCE_WORDS(base) \
    _mm512_shuffle_epi8(_mm512_add_epi32(_mm512_set1_epi32((int)(base)), HC_LANE_IDS), HC_BSWAP_MASK)
#define Z_PASS_MASK(h7, t7) \
    ((uint32_t)_mm512_cmple_epu32_mask(_mm512_shuffle_epi8((h7), HC_BSWAP_MASK), _mm512_set1_epi32((int)(t7))))

#if HC_AVX512_GROUPS == 1
#define HC_V __m512i
#define HC_LANES 16

#define V_SET1(x) _mm512_set1_epi32((int)(x))
#define V_ADD(a, b) _mm512_add_epi32((a), (b))
#define V_XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define V_ROR(x, n) _mm512_ror_epi32((x), (n))
#define V_SHR(x, n) _mm512_srli_epi32((x), (n))
#define V_CH(e, f, g) _mm512_ternarylogic_epi32((e), (f), (g), 0xca)
#define V_MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xe8)
#define V_NONCE_WORDS(base) Z_NONCE_WORDS(base)
#define V_PASS_MASK(h7, t7) Z_PASS_MASK(h7, t7)
#else
/* Two independent 16-lane groups per step (32 nonces): each operation is issued for
 * both, so the out-of-order core has a second dependency chain to fill latency with. */
typedef struct {
    __m512i x, y;
} hc_z2;
#define HC_V hc_z2
#define HC_LANES 32
static HC_ALWAYS_INLINE HC_TARGET hc_z2 z2_set1(uint32_t v)
{
    const __m512i z = _mm512_set1_epi32((int)v);
    return (hc_z2){z, z};
}
static HC_ALWAYS_INLINE HC_TARGET hc_z2 z2_add(hc_z2 a, hc_z2 b)
{
    return (hc_z2){_mm512_add_epi32(a.x, b.x), _mm512_add_epi32(a.y, b.y)};
}
#define Z2_TERN(name, imm)                                                              \
    static HC_ALWAYS_INLINE HC_TARGET hc_z2 name(hc_z2 a, hc_z2 b, hc_z2 c)              \
    {                                                                                   \
        return (hc_z2){_mm512_ternarylogic_epi32(a.x, b.x, c.x, imm),                   \
                       _mm512_ternarylogic_epi32(a.y, b.y, c.y, imm)};                  \
    }
Z2_TERN(z2_xor3, 0x96)
Z2_TERN(z2_ch, 0xca)
Z2_TERN(z2_maj, 0xe8)
#define V_SET1(v) z2_set1((uint32_t)(v))
#define V_ADD(a, b) z2_add((a), (b))
#define V_XOR3(a, b, c) z2_xor3((a), (b), (c))
#define V_ROR(v, n) ((hc_z2){_mm512_ror_epi32((v).x, (n)), _mm512_ror_epi32((v).y, (n))})
#define V_SHR(v, n) ((hc_z2){_mm512_srli_epi32((v).x, (n)), _mm512_srli_epi32((v).y, (n))})
#define V_CH(e, f, g) z2_ch((e), (f), (g))
#define V_MAJ(a, b, c) z2_maj((a), (b), (c))
#define V_NONCE_WORDS(base) ((hc_z2){Z_NONCE_WORDS(base), Z_NONCE_WORDS((base) + 16u)})
#define V_PASS_MASK(h7, t7) (Z_PASS_MASK((h7).x, (t7)) | (Z_PASS_MASK((h7).y, (t7)) << 16))
#endif

#include "sha256d_lanes.h"

#endif
