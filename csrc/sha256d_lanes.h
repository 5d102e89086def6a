/*
 * The lane-parallel SHA-256d scan, one nonce per lane, shared by the scalar (1 lane),
 * AVX2 (8 lanes) and AVX-512 (16 lanes) paths. The including file defines:
 *
 *   HC_V, HC_LANES, HC_FN, HC_TARGET        vector type, lanes, function name, attribute
 *   V_SET1 V_ADD V_XOR3 V_ROR V_SHR V_CH V_MAJ
 *   V_NONCE_WORDS(base)   the nonce message word of each lane: bswap(base + lane)
 *   V_PASS_MASK(h7, t7)   lanes whose top hash word bswap(h7) is <= t7 (bit i = lane i)
 *
 * Mining shortcuts, each named where it happens:
 *   - rounds 0-2 of the header's second block and the nonce-free part of round 3 are
 *     computed once per scan (the nonce is message word 3);
 *   - message words 16-31 of that block fold in the constant padding words, and words
 *     16 and 17 are computed once per scan;
 *   - the second hash starts from the constant IV, so its round 0 is two additions;
 *     its words 8-15 are constant padding;
 *   - the second hash stops after round 60: the top hash word H7 = IV7 + e(61) is then
 *     known, and rounds 61-63 only matter for lanes that pass the cheap test on it,
 *     which hc_candidate() re-hashes in full.
 *
 * Variables a..h rotate roles from round to round instead of being moved: at round t
 * the working variable "a" is name[(-t) mod 8] of (a, b, c, d, e, f, g, h).
 */

#define HC_BSIG0(x) V_XOR3(V_ROR(x, 2), V_ROR(x, 13), V_ROR(x, 22))
#define HC_BSIG1(x) V_XOR3(V_ROR(x, 6), V_ROR(x, 11), V_ROR(x, 25))
#define HC_SSIG0(x) V_XOR3(V_ROR(x, 7), V_ROR(x, 18), V_SHR(x, 3))
#define HC_SSIG1(x) V_XOR3(V_ROR(x, 17), V_ROR(x, 19), V_SHR(x, 10))

#define HC_RND(A, B, C, D, E, F, G, H, KW)                                              \
    do {                                                                                \
        HC_V t1_ = V_ADD(V_ADD(H, HC_BSIG1(E)), V_ADD(V_CH(E, F, G), KW));              \
        D = V_ADD(D, t1_);                                                              \
        H = V_ADD(t1_, V_ADD(HC_BSIG0(A), V_MAJ(A, B, C)));                             \
    } while (0)

/* A round that computes only the new e (written into D): enough for rounds 57-60. */
#define HC_RND_E(A, B, C, D, E, F, G, H, KW)                                            \
    do {                                                                                \
        D = V_ADD(V_ADD(D, H), V_ADD(V_ADD(HC_BSIG1(E), V_CH(E, F, G)), KW));           \
    } while (0)

#define HC_KW(t) V_ADD(V_SET1(hc_k[t]), w[t])
#define HC_KC(t, c) V_SET1(hc_k[t] + (uint32_t)(c))
#define HC_WGEN(t) w[t] = V_ADD(V_ADD(HC_SSIG1(w[(t) - 2]), w[(t) - 7]), V_ADD(HC_SSIG0(w[(t) - 15]), w[(t) - 16]))

#define HC_R8(t)                                                                        \
    HC_RND(a, b, c, d, e, f, g, h, HC_KW((t) + 0));                                     \
    HC_RND(h, a, b, c, d, e, f, g, HC_KW((t) + 1));                                     \
    HC_RND(g, h, a, b, c, d, e, f, HC_KW((t) + 2));                                     \
    HC_RND(f, g, h, a, b, c, d, e, HC_KW((t) + 3));                                     \
    HC_RND(e, f, g, h, a, b, c, d, HC_KW((t) + 4));                                     \
    HC_RND(d, e, f, g, h, a, b, c, HC_KW((t) + 5));                                     \
    HC_RND(c, d, e, f, g, h, a, b, HC_KW((t) + 6));                                     \
    HC_RND(b, c, d, e, f, g, h, a, HC_KW((t) + 7))

/* The top hash word H7 of SHA-256d for the nonces whose message word 3 is w3. */
static HC_ALWAYS_INLINE HC_TARGET HC_V HC_CAT(HC_FN, _h7)(const hc_pre *p, HC_V w3)
{
    HC_V w[64];
    HC_V a, b, c, d, e, f, g, h;

    /* First hash, second block: rounds 0-2 and most of round 3 come precomputed. */
    e = V_ADD(V_SET1(p->r3_a), w3);
    f = V_SET1(p->s3[0]);
    g = V_SET1(p->s3[1]);
    h = V_SET1(p->s3[2]);
    a = V_ADD(V_SET1(p->r3_e), w3);
    b = V_SET1(p->s3[4]);
    c = V_SET1(p->s3[5]);
    d = V_SET1(p->s3[6]);
    HC_RND(e, f, g, h, a, b, c, d, HC_KC(4, 0x80000000u));
    HC_RND(d, e, f, g, h, a, b, c, HC_KC(5, 0));
    HC_RND(c, d, e, f, g, h, a, b, HC_KC(6, 0));
    HC_RND(b, c, d, e, f, g, h, a, HC_KC(7, 0));
    HC_RND(a, b, c, d, e, f, g, h, HC_KC(8, 0));
    HC_RND(h, a, b, c, d, e, f, g, HC_KC(9, 0));
    HC_RND(g, h, a, b, c, d, e, f, HC_KC(10, 0));
    HC_RND(f, g, h, a, b, c, d, e, HC_KC(11, 0));
    HC_RND(e, f, g, h, a, b, c, d, HC_KC(12, 0));
    HC_RND(d, e, f, g, h, a, b, c, HC_KC(13, 0));
    HC_RND(c, d, e, f, g, h, a, b, HC_KC(14, 0));
    HC_RND(b, c, d, e, f, g, h, a, HC_KC(15, 640));

    /* Message words 16-31 with the block's constant words 4-15 (padding) folded in. */
    w[16] = V_SET1(p->w16);
    w[17] = V_SET1(p->w17);
    w[18] = V_ADD(V_SET1(p->w18), HC_SSIG0(w3));
    w[19] = V_ADD(V_SET1(p->w19), w3);
    w[20] = V_ADD(HC_SSIG1(w[18]), V_SET1(0x80000000u));
    w[21] = HC_SSIG1(w[19]);
    w[22] = V_ADD(HC_SSIG1(w[20]), V_SET1(640));
    w[23] = V_ADD(HC_SSIG1(w[21]), w[16]);
    w[24] = V_ADD(HC_SSIG1(w[22]), w[17]);
    w[25] = V_ADD(HC_SSIG1(w[23]), w[18]);
    w[26] = V_ADD(HC_SSIG1(w[24]), w[19]);
    w[27] = V_ADD(HC_SSIG1(w[25]), w[20]);
    w[28] = V_ADD(HC_SSIG1(w[26]), w[21]);
    w[29] = V_ADD(HC_SSIG1(w[27]), w[22]);
    w[30] = V_ADD(V_ADD(HC_SSIG1(w[28]), w[23]), V_SET1(hc_ssig0(640)));
    w[31] = V_ADD(V_ADD(HC_SSIG1(w[29]), w[24]), V_SET1(p->w31c));
    for (int t = 32; t < 64; t++)
        HC_WGEN(t);
    HC_R8(16);
    HC_R8(24);
    HC_R8(32);
    HC_R8(40);
    HC_R8(48);
    HC_R8(56);

    /* Second hash: its message is the first hash's state, then constant padding. */
    w[0] = V_ADD(a, V_SET1(p->mid[0]));
    w[1] = V_ADD(b, V_SET1(p->mid[1]));
    w[2] = V_ADD(c, V_SET1(p->mid[2]));
    w[3] = V_ADD(d, V_SET1(p->mid[3]));
    w[4] = V_ADD(e, V_SET1(p->mid[4]));
    w[5] = V_ADD(f, V_SET1(p->mid[5]));
    w[6] = V_ADD(g, V_SET1(p->mid[6]));
    w[7] = V_ADD(h, V_SET1(p->mid[7]));

    /* Round 0 from the constant IV: everything but the message word is known. */
    h = V_ADD(V_SET1(p->h2_a1), w[0]);
    a = V_SET1(hc_iv[0]);
    b = V_SET1(hc_iv[1]);
    c = V_SET1(hc_iv[2]);
    d = V_ADD(V_SET1(p->h2_e1), w[0]);
    e = V_SET1(hc_iv[4]);
    f = V_SET1(hc_iv[5]);
    g = V_SET1(hc_iv[6]);
    HC_RND(h, a, b, c, d, e, f, g, HC_KW(1));
    HC_RND(g, h, a, b, c, d, e, f, HC_KW(2));
    HC_RND(f, g, h, a, b, c, d, e, HC_KW(3));
    HC_RND(e, f, g, h, a, b, c, d, HC_KW(4));
    HC_RND(d, e, f, g, h, a, b, c, HC_KW(5));
    HC_RND(c, d, e, f, g, h, a, b, HC_KW(6));
    HC_RND(b, c, d, e, f, g, h, a, HC_KW(7));
    HC_RND(a, b, c, d, e, f, g, h, HC_KC(8, 0x80000000u));
    HC_RND(h, a, b, c, d, e, f, g, HC_KC(9, 0));
    HC_RND(g, h, a, b, c, d, e, f, HC_KC(10, 0));
    HC_RND(f, g, h, a, b, c, d, e, HC_KC(11, 0));
    HC_RND(e, f, g, h, a, b, c, d, HC_KC(12, 0));
    HC_RND(d, e, f, g, h, a, b, c, HC_KC(13, 0));
    HC_RND(c, d, e, f, g, h, a, b, HC_KC(14, 0));
    HC_RND(b, c, d, e, f, g, h, a, HC_KC(15, 256));

    /* Its words 16-31 with the constant words 8-15 (padding, length 256) folded in. */
    w[16] = V_ADD(HC_SSIG0(w[1]), w[0]);
    w[17] = V_ADD(V_ADD(HC_SSIG0(w[2]), w[1]), V_SET1(hc_ssig1(256)));
    w[18] = V_ADD(V_ADD(HC_SSIG1(w[16]), HC_SSIG0(w[3])), w[2]);
    w[19] = V_ADD(V_ADD(HC_SSIG1(w[17]), HC_SSIG0(w[4])), w[3]);
    w[20] = V_ADD(V_ADD(HC_SSIG1(w[18]), HC_SSIG0(w[5])), w[4]);
    w[21] = V_ADD(V_ADD(HC_SSIG1(w[19]), HC_SSIG0(w[6])), w[5]);
    w[22] = V_ADD(V_ADD(HC_SSIG1(w[20]), HC_SSIG0(w[7])), V_ADD(w[6], V_SET1(256)));
    w[23] = V_ADD(V_ADD(HC_SSIG1(w[21]), w[16]), V_ADD(w[7], V_SET1(hc_ssig0(0x80000000u))));
    w[24] = V_ADD(V_ADD(HC_SSIG1(w[22]), w[17]), V_SET1(0x80000000u));
    w[25] = V_ADD(HC_SSIG1(w[23]), w[18]);
    w[26] = V_ADD(HC_SSIG1(w[24]), w[19]);
    w[27] = V_ADD(HC_SSIG1(w[25]), w[20]);
    w[28] = V_ADD(HC_SSIG1(w[26]), w[21]);
    w[29] = V_ADD(HC_SSIG1(w[27]), w[22]);
    w[30] = V_ADD(V_ADD(HC_SSIG1(w[28]), w[23]), V_SET1(hc_ssig0(256)));
    w[31] = V_ADD(V_ADD(HC_SSIG1(w[29]), w[24]), V_ADD(HC_SSIG0(w[16]), V_SET1(256)));
    for (int t = 32; t < 61; t++)
        HC_WGEN(t);
    HC_R8(16);
    HC_R8(24);
    HC_R8(32);
    HC_R8(40);
    HC_R8(48);
    HC_RND(a, b, c, d, e, f, g, h, HC_KW(56));

    /* Early exit: rounds 57-60 only need the new e, rounds 61-63 are not run at all. */
    HC_RND_E(h, a, b, c, d, e, f, g, HC_KW(57));
    HC_RND_E(g, h, a, b, c, d, e, f, HC_KW(58));
    HC_RND_E(f, g, h, a, b, c, d, e, HC_KW(59));
    HC_RND_E(e, f, g, h, a, b, c, d, HC_KW(60));
    return V_ADD(h, V_SET1(hc_iv[7]));
}

HC_TARGET uint64_t HC_FN(const hc_work *work, uint32_t start, uint64_t count, hc_out *out)
{
    hc_pre pre;
    hc_precompute(work, &pre);
    const uint32_t t7 = work->target[7];
    for (uint64_t done = 0; done < count; done += HC_LANES) {
        const uint32_t base = (uint32_t)(start + done);
        HC_V h7 = HC_CAT(HC_FN, _h7)(&pre, V_NONCE_WORDS(base));
        uint32_t mask = V_PASS_MASK(h7, t7);
        if (__builtin_expect(mask != 0, 0)) {
            /* Lanes past the end of the range (they may have wrapped) do not count. */
            if (count - done < HC_LANES)
                mask &= (1u << (count - done)) - 1u;
            while (mask) {
                const uint32_t lane = (uint32_t)__builtin_ctz(mask);
                mask &= mask - 1u;
                if (hc_candidate(work, base + lane, out))
                    return done + lane + 1u;
            }
        }
    }
    return count;
}

#undef HC_BSIG0
#undef HC_BSIG1
#undef HC_SSIG0
#undef HC_SSIG1
#undef HC_RND
#undef HC_RND_E
#undef HC_KW
#undef HC_KC
#undef HC_WGEN
#undef HC_R8
