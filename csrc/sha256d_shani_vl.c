/*
 * The SHA-NI path built for CPUs that also have AVX-512VL: the same code as
 * sha256d_shani.c, with XMM16-31 available to the compiler (see the note there). The
 * dispatcher calls it in place of hc_scan_shani where the CPU and OS allow AVX-512.
 */
#define HC_SHANI_FN hc_scan_shani_vl
#define HC_SHA_TARGET __attribute__((target("sha,sse4.1,avx512f,avx512vl")))
#include "sha256d_shani.c"
