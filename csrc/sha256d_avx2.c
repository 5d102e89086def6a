/* The AVX2 path: 8 nonces per 256-bit register. */
#include "sha256d_internal.h"

#if HC_X86
#include <immintrin.h>

#define HC_V __m256i
#define HC_LANES 8
#define HC_FN hc_scan_avx2
#define HC_TARGET __attribute__((target("avx2")))

#define V_SET1(x) _mm256_set1_epi32((int)(x))
#define V_ADD(a, b) _mm256_add_epi32((a), (b))
#define V_XOR3(a, b, c) _mm256_xor_si256(_mm256_xor_si256((a), (b)), (c))
#define V_ROR(x, n) _mm256_or_si256(_mm256_srli_epi32((x), (n)), _mm256_slli_epi32((x), 32 - (n)))
#define V_SHR(x, n) _mm256_srli_epi32((x), (n))
#define V_CH(e, f, g) _mm256_xor_si256(_mm256_and_si256((e), _mm256_xor_si256((f), (g))), (g))
#define V_MAJ(a, b, c) \
    _mm256_or_si256(_mm256_and_si256((a), (b)), _mm256_and_si256((c), _mm256_or_si256((a), (b))))

#define HC_BSWAP_MASK \
    _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, \
                     3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12)
#define V_NONCE_WORDS(base) \
    _mm256_shuffle_epi8(_mm256_add_epi32(_mm256_set1_epi32((int)(base)), \
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), HC_BSWAP_MASK)
/* Unsigned h <= t as max(h, t) == t. */
#define V_PASS_MASK(h7, t7) hc_avx2_pass_mask((h7), (t7))

static HC_ALWAYS_INLINE HC_TARGET uint32_t hc_avx2_pass_mask(__m256i h7, uint32_t t7)
{
    const __m256i top = _mm256_shuffle_epi8(h7, HC_BSWAP_MASK);
    const __m256i t = _mm256_set1_epi32((int)t7);
    const __m256i ok = _mm256_cmpeq_epi32(_mm256_max_epu32(top, t), t);
    return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(ok));
}

#include "sha256d_lanes.h"

#endif
