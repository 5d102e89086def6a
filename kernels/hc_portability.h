/*
 * hc_portability.h: the one place where OpenCL implementations differ.
 *
 * Kernels use only the names defined here. The host (hashcore/backends/opencl/)
 * chooses the path and sizes and passes them as -D options; what this file tests
 * itself is only what the compiler says of itself (__clang__, __AVX512F__):
 *
 *   HC_VECTOR_WIDTH   nonces per vector in the portable kernel: 1, 2, 4, 8 or 16, and
 *                     32 where the compiler is clang (PoCL)
 *   HC_RESULT_SLOTS   result slots after the counter in the results buffer
 *   HC_X86_SHA        1 where the device is an x86 CPU with the SHA extensions and the
 *                     compiler is clang (PoCL): the sha256rnds2/msg1/msg2 builtins
 *   HC_X86_STREAMS    nonces in flight through them (HC_X86_SHA only)
 *   HC_P_*            offsets into the per-Work words (hashcore/backends/_precompute.py)
 */
#ifndef HC_PORTABILITY_H
#define HC_PORTABILITY_H

#define HC_KERNEL __kernel HC_WIDE_FN
#define HC_GLOBAL __global
#define HC_CONSTANT __constant
#define HC_INLINE inline HC_WIDE_FN

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
#elif HC_VECTOR_WIDTH == 32 && defined(__clang__)
/* Two 16-lane vectors as one: OpenCL C stops at 16, clang's vector extension does not.
 * On a CPU with 512-bit vectors each step becomes two independent instructions, which
 * hides the latency of one 16-lane chain. No OpenCL builtin takes 32 lanes, so the
 * operations below that use builtins are written out on the two halves. */
typedef uint hc_u32x __attribute__((ext_vector_type(32)));
#define HC_LANE_OFFSETS                                                                  \
    ((hc_u32x)(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u, 15u, 16u, \
               17u, 18u, 19u, 20u, 21u, 22u, 23u, 24u, 25u, 26u, 27u, 28u, 29u, 30u, 31u))
#define HC_ANY(c) (any((c).lo) | any((c).hi))
#define HC_STORE(v, p) (vstore16((v).lo, 0, (p)), vstore16((v).hi, 0, (p) + 16))
#define HC_WIDE_LANES 1
/* A compiler that prefers 256-bit vectors (LLVM's tuning for many AVX-512 CPUs) would
 * split each step into four; this asks for 512-bit registers where the CPU has them. */
#define HC_WIDE_FN __attribute__((min_vector_width(512)))
#else
#error "HC_VECTOR_WIDTH must be 1, 2, 4, 8 or 16 (32 with clang)"
#endif

/* On hc_u32x: rotate() is a left rotation and wants its count in the same type;
 * bitselect(a, b, m) takes b where m is set (one instruction on GPUs: BFI on AMD,
 * LOP3 on NVIDIA). HC_BSWAP32 is the scalar byte swap. */
#ifdef HC_WIDE_LANES
#define HC_ROTR(x, n) (((x) >> (n)) | ((x) << (32u - (n))))
#if defined(__AVX512F__)
/* Ch and Maj as one ternary-logic instruction each on both halves: LLVM folds Ch by
 * itself but splits Maj into two. */
#define HC_TERN16(a, b, c, imm) \
    as_uint16(__builtin_ia32_pternlogd512_mask(as_int16(a), as_int16(b), as_int16(c), (imm), (short)-1))
#define HC_TERN(a, b, c, imm) \
    ((hc_u32x)(HC_TERN16((a).lo, (b).lo, (c).lo, imm), HC_TERN16((a).hi, (b).hi, (c).hi, imm)))
#define HC_CH(e, f, g) HC_TERN((e), (f), (g), 0xca)
#define HC_MAJ(a, b, c) HC_TERN((a), (b), (c), 0xe8)
#else
#define HC_CH(e, f, g) ((g) ^ ((e) & ((f) ^ (g))))
#define HC_MAJ(a, b, c) (((a) & (b)) | ((c) & ((a) | (b))))
#endif
#else
#define HC_ROTR(x, n) rotate((x), (hc_u32x)(32u - (n)))
#define HC_CH(e, f, g) bitselect((g), (f), (e))
#define HC_MAJ(a, b, c) bitselect((a), (b), (a) ^ (c))
#endif
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

#ifndef HC_WIDE_FN
#define HC_WIDE_FN
#endif
#ifdef HC_WIDE_LANES
#define HC_SCHEDULE_UNROLL _Pragma("unroll 1")
#else
#define HC_SCHEDULE_UNROLL _Pragma("unroll")
#endif

#endif /* HC_PORTABILITY_H */
