/*
 * hc_portability.h: the one place where OpenCL implementations differ.
 *
 * Kernels use only the names defined here. The host (hashcore/backends/opencl.py)
 * chooses everything device-specific and passes it as -D options:
 *
 *   HC_VECTOR_WIDTH   nonces per vector in the portable kernel: 1, 2, 4, 8 or 16
 *   HC_RESULT_SLOTS   result slots after the counter in the results buffer
 *   HC_X86_SHA        1 where the device is an x86 CPU with the SHA extensions and the
 *                     compiler is clang (PoCL): the sha256rnds2/msg1/msg2 builtins
 *   HC_X86_STREAMS    nonces in flight through them (HC_X86_SHA only)
 *   HC_P_*            offsets into the per-Work words (hashcore/backends/_precompute.py)
 */
#ifndef HC_PORTABILITY_H
#define HC_PORTABILITY_H

#define HC_KERNEL __kernel
#define HC_GLOBAL __global
#define HC_CONSTANT __constant
#define HC_INLINE inline

#ifndef HC_VECTOR_WIDTH
#define HC_VECTOR_WIDTH 1
#endif
#ifndef HC_RESULT_SLOTS
#error "HC_RESULT_SLOTS must come from the host"
#endif
#ifndef HC_P_SIZE
#error "the HC_P_* offsets must come from the host"
#endif

/* hc_u32x: HC_VECTOR_WIDTH uint32 lanes, one nonce each. HC_ANY: a lane-wise compare
 * result has any lane true. HC_STORE: lanes to consecutive uints. */
#if HC_VECTOR_WIDTH == 1
typedef uint hc_u32x;
#define HC_LANE_OFFSETS ((hc_u32x)(0u))
#define HC_ANY(c) (c)
#define HC_STORE(v, p) (*(p) = (v))
#elif HC_VECTOR_WIDTH == 2
typedef uint2 hc_u32x;
#define HC_LANE_OFFSETS ((hc_u32x)(0u, 1u))
#define HC_ANY(c) any(c)
#define HC_STORE(v, p) vstore2((v), 0, (p))
#elif HC_VECTOR_WIDTH == 4
typedef uint4 hc_u32x;
#define HC_LANE_OFFSETS ((hc_u32x)(0u, 1u, 2u, 3u))
#define HC_ANY(c) any(c)
#define HC_STORE(v, p) vstore4((v), 0, (p))
#elif HC_VECTOR_WIDTH == 8
typedef uint8 hc_u32x;
#define HC_LANE_OFFSETS ((hc_u32x)(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u))
#define HC_ANY(c) any(c)
#define HC_STORE(v, p) vstore8((v), 0, (p))
#elif HC_VECTOR_WIDTH == 16
typedef uint16 hc_u32x;
#define HC_LANE_OFFSETS ((hc_u32x)(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u, 15u))
#define HC_ANY(c) any(c)
#define HC_STORE(v, p) vstore16((v), 0, (p))
#else
#error "HC_VECTOR_WIDTH must be 1, 2, 4, 8 or 16"
#endif

/* On hc_u32x: rotate() is a left rotation and wants its count in the same type;
 * bitselect(a, b, m) takes b where m is set (one instruction on GPUs: BFI on AMD,
 * LOP3 on NVIDIA). HC_BSWAP32 is the scalar byte swap. */
#define HC_ROTR(x, n) rotate((x), (hc_u32x)(32u - (n)))
#define HC_CH(e, f, g) bitselect((g), (f), (e))
#define HC_MAJ(a, b, c) bitselect((a), (b), (a) ^ (c))
#define HC_BSWAP(x) ((HC_ROTR((x), 8u) & 0xFF00FF00u) | (HC_ROTR((x), 24u) & 0x00FF00FFu))
#define HC_BSWAP32(x) as_uint(as_uchar4((uint)(x)).s3210)

#if HC_X86_SHA
#ifndef HC_X86_STREAMS
#error "HC_X86_STREAMS must come from the host"
#endif
/* The SHA extensions through clang's builtins. Functions using them carry
 * HC_X86_SHA_FN, so the rest of the kernel keeps the device's baseline target. */
typedef uint hc_v4 __attribute__((__vector_size__(16)));
typedef int hc_v4i __attribute__((__vector_size__(16)));
#define HC_X86_SHA_FN __attribute__((target("sha,ssse3,sse4.1")))
#define HC_RNDS2(cdgh, abef, wk) ((hc_v4)__builtin_ia32_sha256rnds2((hc_v4i)(cdgh), (hc_v4i)(abef), (hc_v4i)(wk)))
#define HC_MSG1(a, b) ((hc_v4)__builtin_ia32_sha256msg1((hc_v4i)(a), (hc_v4i)(b)))
#define HC_MSG2(a, b) ((hc_v4)__builtin_ia32_sha256msg2((hc_v4i)(a), (hc_v4i)(b)))
#define HC_SHUFFLE4(a, b, i0, i1, i2, i3) __builtin_shufflevector((a), (b), i0, i1, i2, i3)
#endif

#endif /* HC_PORTABILITY_H */
