/*
 * hc_sha256d_scan.cl: entry kernels for SHA-256d nonce scanning.
 *
 * Scan kernels: work item i checks nonces base + i * per_item .. + per_item - 1 (those
 * below base + count) and appends each nonce whose hash meets the target to results:
 * results[0] counts them (atomically) and results[1 .. HC_RESULT_SLOTS] hold the first
 * HC_RESULT_SLOTS in no particular order. A count above HC_RESULT_SLOTS tells the host
 * that some were dropped; it rescans that launch in smaller parts.
 *
 * Hash kernels: the full digest (H0..H7) of nonce base + i at out[8 i ..], work item i
 * taking HC_VECTOR_WIDTH (portable) or HC_X86_STREAMS (x86 SHA) nonces; the host compares
 * them with hashlib on each device before real work (the known answer).
 */
#include "hc_sha256.cl"

HC_INLINE void hc_report(HC_GLOBAL uint *results, const uint nonce)
{
    const uint slot = atomic_inc(&results[0]);
    if (slot < HC_RESULT_SLOTS)
        results[1 + slot] = nonce;
}

HC_KERNEL void hc_sha256d_scan(HC_CONSTANT const uint *pre, const uint base, const uint count, const uint per_item,
                               HC_GLOBAL uint *results)
{
    const uint first = (uint)get_global_id(0) * per_item;
    for (uint j = 0; j < per_item; j += HC_VECTOR_WIDTH) {
        const uint offset = first + j;
        if (offset >= count)
            return;
        const hc_u32x nonce = (hc_u32x)(base + offset) + HC_LANE_OFFSETS;
        hc_u32x h1[8];
        hc_first_hash(pre, nonce, h1);
        const hc_u32x top = HC_BSWAP(hc_second_hash_top(h1));
        if (HC_ANY(top <= (hc_u32x)(pre[HC_P_TARGET + 7]))) {
            /* Rare: hash these lanes again in full and compare all 256 bits. */
            hc_u32x s[8];
            hc_first_hash(pre, nonce, h1);
            hc_second_hash(h1, s);
            uint words[8 * HC_VECTOR_WIDTH];
            for (int i = 0; i < 8; i++)
                HC_STORE(s[i], words + i * HC_VECTOR_WIDTH);
            /* Lanes past this item's share (per_item need not be a multiple of the
             * width) or past the launch belong to no one here. */
            for (uint lane = 0; lane < HC_VECTOR_WIDTH && offset + lane < count && j + lane < per_item; lane++) {
                uint digest[8];
                for (int i = 0; i < 8; i++)
                    digest[i] = words[i * HC_VECTOR_WIDTH + lane];
                if (hc_meets_target(digest, pre))
                    hc_report(results, base + offset + lane);
            }
        }
    }
}

HC_KERNEL void hc_sha256d_hash(HC_CONSTANT const uint *pre, const uint base, HC_GLOBAL uint *out)
{
    const uint first = (uint)get_global_id(0) * HC_VECTOR_WIDTH;
    hc_u32x h1[8], s[8];
    hc_first_hash(pre, (hc_u32x)(base + first) + HC_LANE_OFFSETS, h1);
    hc_second_hash(h1, s);
    uint words[8 * HC_VECTOR_WIDTH];
    for (int i = 0; i < 8; i++)
        HC_STORE(s[i], words + i * HC_VECTOR_WIDTH);
    for (uint lane = 0; lane < HC_VECTOR_WIDTH; lane++)
        for (int i = 0; i < 8; i++)
            out[8 * (first + lane) + i] = words[i * HC_VECTOR_WIDTH + lane];
}

#if HC_X86_SHA

HC_X86_SHA_FN void hc_scan_x86_sha(HC_CONSTANT const uint *pre, const uint base, const uint count,
                                   const uint per_item, HC_GLOBAL uint *results)
{
    const uint first = (uint)get_global_id(0) * per_item;
    for (uint j = 0; j < per_item; j += HC_X86_STREAMS) {
        const uint offset = first + j;
        if (offset >= count)
            return;
        hc_v4 abef[HC_X86_STREAMS], cdgh[HC_X86_STREAMS];
        hc_sha256d_xn(pre, base + offset, abef, cdgh);
        for (uint s = 0; s < HC_X86_STREAMS && offset + s < count && j + s < per_item; s++) {
            if (HC_BSWAP32(cdgh[s][0]) > pre[HC_P_TARGET + 7]) /* H7, the top word */
                continue;
            uint digest[8];
            hc_digest_words(abef[s], cdgh[s], digest);
            if (hc_meets_target(digest, pre))
                hc_report(results, base + offset + s);
        }
    }
}

HC_KERNEL void hc_sha256d_scan_x86sha(HC_CONSTANT const uint *pre, const uint base, const uint count,
                                      const uint per_item, HC_GLOBAL uint *results)
{
    hc_scan_x86_sha(pre, base, count, per_item, results);
}

HC_X86_SHA_FN void hc_hash_x86_sha(HC_CONSTANT const uint *pre, const uint base, HC_GLOBAL uint *out)
{
    const uint first = (uint)get_global_id(0) * HC_X86_STREAMS;
    hc_v4 abef[HC_X86_STREAMS], cdgh[HC_X86_STREAMS];
    hc_sha256d_xn(pre, base + first, abef, cdgh);
    for (uint s = 0; s < HC_X86_STREAMS; s++) {
        uint digest[8];
        hc_digest_words(abef[s], cdgh[s], digest);
        for (int i = 0; i < 8; i++)
            out[8 * (first + s) + i] = digest[i];
    }
}

HC_KERNEL void hc_sha256d_hash_x86sha(HC_CONSTANT const uint *pre, const uint base, HC_GLOBAL uint *out)
{
    hc_hash_x86_sha(pre, base, out);
}

#endif /* HC_X86_SHA */
