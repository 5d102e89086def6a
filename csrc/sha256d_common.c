/* The portable SHA-256 pieces every path shares, and the exact check of candidates. */
#include <string.h>

#include "sha256d_internal.h"

const uint32_t hc_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

const uint32_t hc_iv[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

void hc_compress(uint32_t state[8], const uint32_t block[16])
{
    uint32_t w[64];
    uint32_t s[8];
    hc_schedule(w, block);
    memcpy(s, state, sizeof s);
    for (int t = 0; t < 64; t++)
        hc_round(s, t, w[t]);
    for (int i = 0; i < 8; i++)
        state[i] += s[i];
}

/* The second hash's state words H0..H7 for one nonce, with no shortcuts. */
static void sha256d_state(const hc_work *work, uint32_t nonce, uint32_t out[8])
{
    uint32_t block[16];
    uint32_t state[8];
    memcpy(block, work->block, sizeof block);
    block[3] = hc_bswap32(nonce);
    memcpy(state, work->midstate, sizeof state);
    hc_compress(state, block);
    for (int i = 0; i < 8; i++)
        block[i] = state[i];
    block[8] = 0x80000000u;
    for (int i = 9; i < 15; i++)
        block[i] = 0;
    block[15] = 256;
    memcpy(out, hc_iv, 8 * sizeof(uint32_t));
    hc_compress(out, block);
}

int hc_candidate(const hc_work *work, uint32_t nonce, hc_out *out)
{
    uint32_t h[8];
    sha256d_state(work, nonce, h);
    /* The hash as a number is little-endian over the digest bytes: its word i is
     * bswap(H[i]), and H7 holds the most significant word. */
    for (int i = 7; i >= 0; i--) {
        const uint32_t v = hc_bswap32(h[i]);
        if (v < work->target[i])
            break;
        if (v > work->target[i])
            return 0;
    }
    out->found[out->n++] = nonce;
    return out->n >= out->capacity;
}

void hc_precompute(const hc_work *work, hc_pre *pre)
{
    const uint32_t *w = work->block;
    uint32_t s[8];
    memcpy(pre->mid, work->midstate, sizeof pre->mid);
    memcpy(s, work->midstate, sizeof s);
    for (int t = 0; t < 3; t++)
        hc_round(s, t, w[t]);
    memcpy(pre->s3, s, sizeof s);
    const uint32_t t1 = s[7] + hc_bsig1(s[4]) + hc_ch(s[4], s[5], s[6]) + hc_k[3];
    const uint32_t t2 = hc_bsig0(s[0]) + hc_maj(s[0], s[1], s[2]);
    pre->r3_a = t1 + t2;
    pre->r3_e = s[3] + t1;

    /* Words 4-15 are padding: 0x80000000, zeros, and the length 640 bits. */
    pre->w16 = hc_ssig1(w[14]) + w[9] + hc_ssig0(w[1]) + w[0];
    pre->w17 = hc_ssig1(w[15]) + w[10] + hc_ssig0(w[2]) + w[1];
    pre->w18 = hc_ssig1(pre->w16) + w[11] + w[2];
    pre->w19 = hc_ssig1(pre->w17) + w[12] + hc_ssig0(w[4]);
    pre->w31c = hc_ssig0(pre->w16) + w[15];

    const uint32_t *iv = hc_iv;
    const uint32_t c0 = iv[7] + hc_bsig1(iv[4]) + hc_ch(iv[4], iv[5], iv[6]) + hc_k[0];
    pre->h2_a1 = c0 + hc_bsig0(iv[0]) + hc_maj(iv[0], iv[1], iv[2]);
    pre->h2_e1 = iv[3] + c0;
}

void hc_work_init(hc_work *work, const uint32_t midstate[8], const uint8_t tail[12], const uint32_t target[8])
{
    memcpy(work->midstate, midstate, sizeof work->midstate);
    for (int i = 0; i < 3; i++)
        work->block[i] = ((uint32_t)tail[4 * i] << 24) | ((uint32_t)tail[4 * i + 1] << 16) |
                         ((uint32_t)tail[4 * i + 2] << 8) | tail[4 * i + 3];
    work->block[3] = 0;
    work->block[4] = 0x80000000u; /* padding after the 80-byte header */
    for (int i = 5; i < 15; i++)
        work->block[i] = 0;
    work->block[15] = 640; /* the header's length in bits */
    if (target)
        memcpy(work->target, target, sizeof work->target);
    else
        memset(work->target, 0, sizeof work->target);
}

void hc_sha256d(const uint32_t midstate[8], const uint8_t tail[12], uint32_t nonce, uint8_t digest[32])
{
    hc_work work;
    uint32_t h[8];
    hc_work_init(&work, midstate, tail, NULL);
    sha256d_state(&work, nonce, h);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)h[i];
    }
}
