/* The portable path: one nonce at a time, every mining shortcut, any CPU (aarch64 too). */
#include "sha256d_internal.h"

#define HC_V uint32_t
#define HC_LANES 1
#define HC_FN hc_scan_scalar
#define HC_TARGET

#define V_SET1(x) ((uint32_t)(x))
#define V_ADD(a, b) ((uint32_t)((a) + (b)))
#define V_XOR3(a, b, c) ((a) ^ (b) ^ (c))
#define V_ROR(x, n) hc_ror((x), (n))
#define V_SHR(x, n) ((x) >> (n))
#define V_CH(e, f, g) hc_ch((e), (f), (g))
#define V_MAJ(a, b, c) hc_maj((a), (b), (c))
#define V_NONCE_WORDS(base) hc_bswap32(base)
#define V_PASS_MASK(h7, t7) ((uint32_t)(hc_bswap32(h7) <= (t7)))

#include "sha256d_lanes.h"
