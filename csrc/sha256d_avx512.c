/* The AVX-512 path: 16 nonces per 512-bit register, native rotates and ternary logic. */
#include "sha256d_internal.h"

#if HC_X86
#include <immintrin.h>

#define HC_V __m512i
#define HC_LANES 16
#define HC_FN hc_scan_avx512
#define HC_TARGET __attribute__((target("avx512f,avx512bw")))

#define V_SET1(x) _mm512_set1_epi32((int)(x))
#define V_ADD(a, b) _mm512_add_epi32((a), (b))
#define V_XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define V_ROR(x, n) _mm512_ror_epi32((x), (n))
#define V_SHR(x, n) _mm512_srli_epi32((x), (n))
#define V_CH(e, f, g) _mm512_ternarylogic_epi32((e), (f), (g), 0xca)
#define V_MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xe8)

#define HC_BSWAP_MASK \
    _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203)
#define V_NONCE_WORDS(base)                                                              \
    _mm512_shuffle_epi8(                                                                 \
        _mm512_add_epi32(_mm512_set1_epi32((int)(base)),                                 \
                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)), \
        HC_BSWAP_MASK)
#define V_PASS_MASK(h7, t7) \
    ((uint32_t)_mm512_cmple_epu32_mask(_mm512_shuffle_epi8((h7), HC_BSWAP_MASK), _mm512_set1_epi32((int)(t7))))

#include "sha256d_lanes.h"

#endif
