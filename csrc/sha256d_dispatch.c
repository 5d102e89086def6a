/*
 * The one entry point: checks arguments, lays out the work, and runs the code path the
 * caller chose among those this CPU supports (read from CPUID and XGETBV at run time,
 * so one build carries every path and runs on any x86-64 or other CPU).
 */

#include "sha256d_internal.h"

#if HC_X86
#include <cpuid.h>
#include <immintrin.h>

static uint64_t xgetbv0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* Not a path of its own: bit HC_SHANI_VL_BIT of the detected mask says that the SHA-NI
 * path may take its AVX-512VL build (hc_scan_shani_vl). */
#define HC_SHANI_VL_BIT (1u << 16)

static uint32_t detect_paths(void)
{
    uint32_t paths = 1u << HC_PATH_SCALAR;
    uint32_t eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return paths;
    const int ssse3 = (ecx >> 9) & 1, sse41 = (ecx >> 19) & 1;
    const int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
    if (__get_cpuid_max(0, 0) < 7)
        return paths;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const int avx2 = (ebx >> 5) & 1, avx512f = (ebx >> 16) & 1;
    const int avx512bw = (ebx >> 30) & 1, sha = (ebx >> 29) & 1;
    /* The OS must save the register state: XMM|YMM for AVX, plus opmask|ZMM for AVX-512. */
    const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const int os_avx = (xcr0 & 0x6) == 0x6;
    const int os_avx512 = (xcr0 & 0xe6) == 0xe6;
    if (sha && ssse3 && sse41)
        paths |= 1u << HC_PATH_SHANI;
    const int avx512vl = (ebx >> 31) & 1;
    if (sha && avx && avx512f && avx512vl && os_avx && os_avx512)
        paths |= HC_SHANI_VL_BIT;
    if (avx && avx2 && os_avx)
        paths |= 1u << HC_PATH_AVX2;
    if (avx && avx2 && avx512f && avx512bw && os_avx && os_avx512)
        paths |= 1u << HC_PATH_AVX512;
    return paths;
}

/* Legacy-SSE code (the SHA-NI path) stalls when upper YMM halves are dirty. */
__attribute__((target("avx"))) static void clear_upper_halves(void) { _mm256_zeroupper(); }
#endif

uint32_t hc_paths_compiled(void)
{
#if HC_X86
    return (1u << HC_PATH_SCALAR) | (1u << HC_PATH_SHANI) | (1u << HC_PATH_AVX2) | (1u << HC_PATH_AVX512);
#else
    return 1u << HC_PATH_SCALAR;
#endif
}

/* 0: not detected yet (scalar is always there). */
static volatile uint32_t cached_paths;

uint32_t hc_paths_supported(void)
{
    uint32_t paths = cached_paths;
    if (paths == 0) {
#if HC_X86
        paths = detect_paths();
#else
        paths = 1u << HC_PATH_SCALAR;
#endif
        cached_paths = paths;
    }
    return paths & hc_paths_compiled();
}

/* The detected mask with the HC_SHANI_VL_BIT flag (hc_paths_supported drops it). */
static uint32_t detected(void)
{
    (void)hc_paths_supported();
    return cached_paths;
}

int32_t hc_scan(int32_t path, const uint32_t midstate[8], const uint8_t tail[12],
                const uint32_t target[8], uint32_t nonce_start, uint64_t count,
                uint32_t *found, uint32_t capacity, uint64_t *hashes_done)
{
    hc_scan_fn fn;
    *hashes_done = 0;
    if (path < 0 || path > HC_PATH_AVX512 || !(hc_paths_supported() & (1u << path)))
        return HC_ERR_PATH;
    /* A 64-bit count lets a range end exactly at 2**32 without wrapping. */
    if (count > (1ull << 32) - nonce_start || capacity == 0 || capacity > INT32_MAX)
        return HC_ERR_RANGE;
    switch (path) {
#if HC_X86
    case HC_PATH_SHANI:
        if (hc_paths_supported() & (1u << HC_PATH_AVX2))
            clear_upper_halves();
        fn = (detected() & HC_SHANI_VL_BIT) ? hc_scan_shani_vl : hc_scan_shani;
        break;
    case HC_PATH_AVX2:
        fn = hc_scan_avx2;
        break;
    case HC_PATH_AVX512:
        fn = hc_scan_avx512;
        break;
#endif
    default:
        fn = hc_scan_scalar;
        break;
    }

    hc_work work;
    hc_work_init(&work, midstate, tail, target);
    hc_out out = {found, capacity, 0};
    if (count > 0)
        *hashes_done = fn(&work, nonce_start, count, &out);
    return (int32_t)out.n;
}
