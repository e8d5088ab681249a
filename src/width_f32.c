/* width_f32.c — the hot path: float32 top-label rows of weight 1 under
 * equal-width bins (a token-level or verbalized-confidence eval), and
 * under equal-mass bins once mass.c knows the edges.
 *
 * No superaccumulator work per row: a float32 value >= 2^-18 is an integer
 * multiple of 2^-41, so sum p is kept as an integer q in units of 2^-41
 * and sum p^2 in units of 2^-82; the top-label Brier score is then exact as
 *   sum (p - c)^2 = sum p^2 - 2 sum_{c=1} p + sum c.
 * So is p = 0 (q = 0), which is common (clamped negatives, underflowed
 * scores: one in a thousand rows put two thirds of the blocks of the bench
 * data on the slow path).  Only 0 < p < 2^-18 (rare) takes the
 * superaccumulator.  Rows without groups
 * and with at most 256 bins go through a block kernel below; the others
 * through fast_row, one row at a time.  Equal-mass bins come from bs->thr,
 * the edges as float32 bits (mass_bins).  The block kernel has two forms
 * with the same results: portable C that GCC vectorises (phase1, then the
 * table adds of phase2), and one pass in AVX2 and FMA intrinsics that
 * checks, bins and adds as it goes (block_avx2: 7.0 ms on one core for
 * the bench's 10^7 rows, about 2 cycles a row, 6.1 ms without sum p^2
 * (scores = 0), where an AVX2 phase 1 and phase 2 took 11.8-12.2 ms),
 * each checked against the float64 path by tests/test_metrics.c.
 */
#include "metrics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* x86-64 with GCC or Clang: the block kernel also in AVX2, FMA and BMI2
 * intrinsics (block_avx2), taken where the processor has all three. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define WIDTH_AVX2 1
#include <immintrin.h>
#endif

int calib__width_portable = 0;

#define ONE_BITS 0x3f800000     /* 1.0f */

/* The bin of a clamped float32 with bits u among mass thresholds thr[0 ..
 * nthr): #{b : thr[b] < u}, thr ascending. */
static inline size_t mass_slot(int32_t u, const int32_t *thr, size_t nthr)
{
    size_t lo = 0, hi = nthr;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (thr[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The clamped bits of a float32 confidence, as in phase1. */
static inline int32_t clamp_bits(float pf)
{
    int32_t u;
    memcpy(&u, &pf, sizeof u);
    u = u < 0 ? 0 : u;
    return u > ONE_BITS ? ONE_BITS : u;
}

/* The fast path for one float32 top-label row of weight 1. */
static inline void fast_row(pop *P, float pf, unsigned c, const binspec *bs)
{
    const double p = pf < 0.0f ? 0.0 : pf > 1.0f ? 1.0 : (double)pf;
    cell *x = &P->cells[bs->thr ? mass_slot(clamp_bits(pf), bs->thr, bs->nb - 1)
                                : width_slot(p, bs)];
    x->count++;
    x->plain_hits += c;
    if (p >= FX_MIN || p == 0.0) {
        const uint64_t q = (uint64_t)(p * FX_ONE);
        x->conf_fx += q;
        P->p2_fx += (u128)q * q;
        P->pc_fx += q & (0 - (uint64_t)c);
        P->fast_hits += c;
    } else {
        calib__xsum_add(&x->conf, p);
        calib__xsum_add(&P->brier, (p - c) * (p - c));
    }
}

/* The block kernel, portable form (block_avx2 below does the same in one
 * pass).  Rows are taken BLK at a time in two phases.
 *
 * Phase 1 has no branches and no table lookups, so it vectorises: it
 * clamps p, splits q = p 2^41 = qh 2^21 + ql (qh = floor(p 2^20), ql < 2^21,
 * both exact in float32 arithmetic for p >= 2^-18), sums q^2 as the 32x32
 * -> 64-bit products qh^2, qh ql and ql^2, and finds each row's bin and
 * its packed contribution.  The bin needs no edge table: for a float32 p
 * and M < 2^29, p compares with e_k = RN(k/M) as it compares with k/M
 * itself (a float32 is either k/M or further than 2^-53 p from it), and
 * p M = q M 2^-41 is an exact integer ratio, so (e_b, e_b+1] is bin
 * ceil(p M) - 1 and [e_b, e_b+1) bin floor(p M), computed from qh M and
 * ql M in 32-bit integers.  test_binning/test_metrics hold this against
 * the edge table.
 *
 * Phase 2 scatters each row's word q + 2^52 into slot 2 b + correct of a
 * small table, so one add records the count, the hits and sum q of its
 * bin.  Rows go round-robin to LANES copies of the table: when most rows
 * fall in one bin (confidences near 1), consecutive adds then hit
 * different words instead of waiting on each other's stores.  A copy
 * takes at most FLUSH * BLK / LANES = 512 rows between flushes, so its
 * count (< 2^10, from bit 52) and sum q (<= 2^50) never collide.
 *
 * Rows in (0, 2^-18) (rare) have q = 0 in both phases and are added to
 * superaccumulators afterwards, as fast_row does. */
#define LOCAL_CELLS 258
#define BLK 1024
#define LANES 8
#define FLUSH 4                          /* blocks between table flushes */
#define SUPER ((size_t)1 << 21)          /* rows between pushes into P */
#define CNT_SHIFT 52
#define Q_MASK (((uint64_t)1 << CNT_SHIFT) - 1)
#define RULE_MASS 99            /* phase1: bins given in idx[] */
#define MASS_SCAN 32            /* thresholds compared with every row */
#define FX_MIN_BITS 0x36800000  /* 0x1p-18f */
/* block_avx2's lanes (see there) */
#define GBASE 1024              /* unused entries before a lane's slots */
#define FLUSH_G 15              /* blocks between flush_g */
#define PUSH_G (FLUSH_G * (SUPER / BLK / FLUSH_G)) /* blocks between pushes */
#define RING 64                 /* words between the vector step and adds */
#define RING_LAG 32             /* rows between a word's store and its add */
/* A lane's length: room for any flag byte's slot, and 16704 bytes, which
 * is 320 modulo 4096.  With the lanes at the start of a 4096-aligned
 * f32_state (GBASE 8 = 8192), lane k's slots start at 320 k modulo 4096
 * and the ring right after the lanes at 2560: up to 40 slots (18 bins),
 * no two of them, nor a slot and the ring, share the low 12 bits of their
 * addresses.  When they did, the adds to the hottest slot of one lane
 * waited on the ring's stores of words that merely looked the same to the
 * load/store unit: 2.55 cycles a row instead of 2.07. */
#define LANE_LEN 2088
#define STATE_ALIGN 4096
/* phase2's lanes likewise 320 bytes apart modulo 4096 (4416 bytes): when
 * they were 4128 apart, an add to slot j of one lane waited on the store
 * to slot j of the one before */
#define TAB_LEN 552
_Static_assert(TAB_LEN >= 2 * LOCAL_CELLS && TAB_LEN * 8 % 4096 == 320,
               "see TAB_LEN");
_Static_assert(LANE_LEN >= GBASE + 2 + 2 * LOCAL_CELLS + 255 &&
                   FLUSH_G * BLK / LANES < 2048 &&
                   (FLUSH_G * BLK / LANES) * (GBASE + 2 + 2 * LOCAL_CELLS) <
                       ((uint64_t)1 << 22),
               "flush_g takes a lane word apart");

/* What phase 1 found in a block: nothing to add, rows in (0, 2^-18) to
 * add exactly, or a value or flag that needs the row path. */
enum { CLEAN_FAST, CLEAN_SLOW, CLEAN_NOT };

typedef struct f32_state {
#ifdef WIDTH_AVX2
    uint64_t lane[LANES][LANE_LEN];        /* block_avx2's lanes */
    uint64_t ring[RING];                   /* and its words; first, see
                                              LANE_LEN */
#endif
    uint64_t tab[LANES][TAB_LEN];          /* packed words, by 2 b + c */
    uint64_t cnt[2 * LOCAL_CELLS];         /* flushed rows, by 2 b + c */
    uint64_t qs[2 * LOCAL_CELLS];          /* flushed sum q, by 2 b + c */
    uint32_t idx[BLK];                     /* phase 1 -> 2: 2 b + c */
    uint64_t v[BLK];                       /* phase 1 -> 2: q + 2^52 */
    u128 p2;                               /* sum q^2 of fast rows */
    uint64_t slow_hits;                    /* correct rows below 2^-18 */
} f32_state;
#ifdef WIDTH_AVX2
_Static_assert(GBASE * 8 % STATE_ALIGN == 0 && LANE_LEN * 8 % STATE_ALIGN == 320 &&
                   offsetof(f32_state, ring) % STATE_ALIGN == 2560,
               "see LANE_LEN");
#endif

/* Returns f(args..., rule) with the rule a constant, so that an inlined
 * f's tests of it fold away (gpleiss and hollance bin alike). */
#define BY_RULE(f, rule, ...)                                              \
    switch ((int)(rule)) {                                                 \
    case RULE_MASS:                                                        \
        return f(__VA_ARGS__, (calib_bin_rule)RULE_MASS);                  \
    case CALIB_RULE_NETCAL:                                                \
        return f(__VA_ARGS__, CALIB_RULE_NETCAL);                          \
    case CALIB_RULE_TORCHMETRICS:                                          \
        return f(__VA_ARGS__, CALIB_RULE_TORCHMETRICS);                    \
    case CALIB_RULE_GPLEISS:                                               \
    case CALIB_RULE_HOLLANCE:                                              \
        return f(__VA_ARGS__, CALIB_RULE_GPLEISS);                         \
    default:                                                               \
        return f(__VA_ARGS__, CALIB_RULE_SKLEARN);                         \
    }

/* Phase 1 over a block of n <= BLK rows; returns the
 * number of rows in (0, 2^-18). */
static inline __attribute__((always_inline)) uint32_t
phase1(f32_state *st, const float *restrict conf,
       const uint8_t *restrict cor, size_t n, int32_t m,
       calib_bin_rule rule)
{
    uint32_t *restrict idx = st->idx;
    uint64_t *restrict v = st->v;
    uint64_t hh = 0, hl = 0, ll = 0;
    uint32_t slow = 0;
    const int left = rule == CALIB_RULE_NETCAL || rule == CALIB_RULE_TORCHMETRICS;
    const int mass = (int)rule == RULE_MASS;
    for (size_t i = 0; i < n; i++) {
        /* Clamped on the bits: non-negative float32 values order as their
         * int32 bits, negative ones have negative bits (and a float
         * comparison would be a branch under -ftrapping-math). */
        int32_t u;
        memcpy(&u, conf + i, sizeof u);
        u = u < 0 ? 0 : u;
        u = u > ONE_BITS ? ONE_BITS : u;
        float p;
        memcpy(&p, &u, sizeof p);
        const float x = p * 0x1p20f;
        const int32_t qh = (int32_t)x;
        const int32_t ql = (int32_t)((x - (float)qh) * 0x1p21f);
        const int32_t a = qh * m, b = ql * m;
        /* floor(p M) = floor((a 2^21 + b) 2^-41); ceil(p M) - 1 likewise
         * with a 2^21 + b - 1.  Right shifts of negatives are arithmetic
         * (GCC and Clang define them so). */
        int32_t s = left ? (a + (b >> 21)) >> 20 : (a + ((b - 1) >> 21)) >> 20;
        s = mass ? (int32_t)idx[i] : s;
        s = s < 0 ? 0 : s;
        if (rule != CALIB_RULE_TORCHMETRICS && !mass) /* torchmetrics: M */
            s = s > m - 1 ? m - 1 : s;
        if (rule == CALIB_RULE_GPLEISS || rule == CALIB_RULE_HOLLANCE)
            s = u > 0 ? s : m + 1;
        const uint32_t fast = u >= FX_MIN_BITS || u == 0 ? 0xffffffffu : 0;
        const uint32_t h = (uint32_t)qh & fast, l = (uint32_t)ql & fast;
        idx[i] = 2 * (uint32_t)s + (cor[i] != 0);
        v[i] = ((uint64_t)h << 21) + l + ((uint64_t)1 << CNT_SHIFT);
        hh += (uint64_t)h * h;
        hl += (uint64_t)h * l;
        ll += (uint64_t)l * l;
        slow += fast + 1; /* 0 or 1 */
    }
    /* q^2 = qh^2 2^42 + 2 qh ql 2^21 + ql^2; each sum < 2^53 for BLK rows */
    st->p2 += ((u128)hh << 42) + ((u128)hl << 22) + ll;
    return slow;
}

/* One phase 1 per rule, so that the rule's tests fold away; cloned for
 * AVX2 where the toolchain and the loader can pick a clone at run time.
 * Both clones do the same exact integer and float32 operations. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) &&      \
    !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
static uint32_t phase1_any(f32_state *st, const float *conf,
                           const uint8_t *cor, size_t n, int32_t m,
                           calib_bin_rule rule)
{
    BY_RULE(phase1, rule, st, conf, cor, n, m);
}

#ifdef WIDTH_AVX2
/* The block in AVX2 and FMA: one pass that bins each row, packs its word
 * and sums p^2, eight rows a step, and scatters the words of the step
 * before last but three (RING_LAG rows back) as it goes, so that the
 * vector work and the table adds overlap.  Only the whole groups of eight
 * (n8 rows); the caller takes the rest row by row.  Same results as
 * phase1 + phase2, computed otherwise:
 * - the block is checked as it goes, not clamped: values other than 0
 *   and [2^-18, 1] (by their bits, as unsigned) count as 0 and are
 *   recorded; the flags are ORed eight at a time.  When a value's bits are
 *   above those of 1.0 (negatives, -0.0 and NaN too) or a flag is above
 *   1, the block's words are taken back out of the lanes and the function
 *   returns CLEAN_NOT; the caller takes the block row by row (fast_row
 *   clamps).  (A check before the work would wait on memory with nothing
 *   to do meanwhile.)  Rows in (0, 2^-18) are thus zeroed as in phase1
 *   (they are added exactly afterwards; their bin is 0 for every rule,
 *   as p M < 1);
 * - p is converted to double d, and the bin found from d M, exact in
 *   double: s + 513 = ceil(d M + 512) (sklearn, gpleiss: ceil(p M) - 1,
 *   which is -1 for p = 0 only), floor(d M + 513) (torchmetrics; netcal
 *   also at most M - 1 + 513), or given (mass);
 * - the word from the double w = 4 (s + 513) + d = 2052 + 4 s + d, exact
 *   in [2^11, 2^12) where the last bit weighs 2^-41: its bits are those of
 *   2^11 plus (s + 1) 2^43 + q; adding c 2^42 and taking 1023 2^52 +
 *   2^11's exponent away leaves GBASE 2^42 + j 2^42 + q (j = 2 (s + 1) +
 *   c), so that word >> 42 is the slot's index in a lane table whose first
 *   GBASE entries are never used; slots 0 and 1 hold p = 0 under sklearn
 *   and gpleiss (bin 0 for one, none for the other: flush_g sorts them
 *   out).  A lane's word for slot j thus sums to cnt G 2^42 + sum q with
 *   G = GBASE + j, and flush_g takes cnt and sum q apart;
 * - p^2 (exact in double) as h = RN(p^2 + 1), whose bits are those of 1.0
 *   plus k = RN(p^2 2^52), and l = p^2 - (h - 1), exact (the error of one
 *   rounding), a multiple of 2^-82 below 2^-52 in size: a block's sum of
 *   l is exact in double, and sum p^2 = 2^-52 sum k + sum l exactly.
 * Returns CLEAN_SLOW when the block has rows in (0, 2^-18), else
 * CLEAN_FAST. */
#define AVX2_FN __attribute__((target("avx2,fma,bmi2")))
#define AVX2_INLINE AVX2_FN static inline __attribute__((always_inline))

typedef struct sums {
    __m256i k;      /* bits of h = RN(p^2 + 1), by lane */
    __m256d l;      /* p^2 - (h - 1), exact sums */
    __m256i odd;    /* OR of the bits of values not 0 nor in [2^-18, 1] */
    uint64_t flags; /* OR of the flag bytes, eight at a time */
} sums;

/* The words of rows [0, 8) into w[0 .. 8). */
AVX2_INLINE void step_avx2(sums *S, uint64_t *w, const float *conf,
                           const uint8_t *cor, const uint32_t *bins,
                           int32_t m, int p2, calib_bin_rule rule)
{
    const __m256d md = _mm256_set1_pd((double)m), one = _mm256_set1_pd(1.0),
                  four = _mm256_set1_pd(4.0);
    const __m256i fix = _mm256_set1_epi64x((int64_t)((uint64_t)0x409 << 52));
    const __m256i u = _mm256_loadu_si256((const __m256i *)conf);
    /* fast: FX_MIN_BITS <= u <= ONE_BITS as unsigned, that is
     * u - FX_MIN_BITS <= ONE_BITS - FX_MIN_BITS, compared signed after
     * adding 2^31.  The other rows count as 0 here (bin 0, q = 0, no p^2),
     * so that even a block that is not clean names only slots inside the
     * lanes; odd records them (0 itself is fast enough: it adds nothing). */
    const __m256i fast = _mm256_cmpgt_epi32(
        _mm256_set1_epi32((int32_t)(INT32_MIN + (ONE_BITS - FX_MIN_BITS) + 1)),
        _mm256_add_epi32(u, _mm256_set1_epi32((int32_t)(0x80000000u - FX_MIN_BITS))));
    S->odd = _mm256_or_si256(S->odd, _mm256_andnot_si256(fast, u));
    const __m256 pm = _mm256_castsi256_ps(_mm256_and_si256(u, fast));
    uint64_t c8;
    memcpy(&c8, cor, sizeof c8);
    S->flags |= c8;
    __m256d d[2];
    d[0] = _mm256_cvtps_pd(_mm256_castps256_ps128(pm));
    d[1] = _mm256_cvtps_pd(_mm256_extractf128_ps(pm, 1));
    for (int h = 0; h < 2; h++) {
        __m256d sp; /* 513 + s, s = -1 for p = 0 under sklearn and gpleiss */
        if ((int)rule == RULE_MASS) {
            sp = _mm256_set1_pd(513.0);
        } else if (rule == CALIB_RULE_NETCAL || rule == CALIB_RULE_TORCHMETRICS) {
            sp = _mm256_round_pd(_mm256_fmadd_pd(d[h], md, _mm256_set1_pd(513.0)),
                                 _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
            if (rule == CALIB_RULE_NETCAL)
                sp = _mm256_min_pd(sp, _mm256_set1_pd(512.0 + m));
        } else {
            sp = _mm256_round_pd(_mm256_fmadd_pd(d[h], md, _mm256_set1_pd(512.0)),
                                 _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
        }
        int32_t c4;
        memcpy(&c4, cor + 4 * h, sizeof c4);
        __m256i x = _mm256_slli_epi64(_mm256_cvtepu8_epi64(_mm_cvtsi32_si128(c4)), 42);
        if ((int)rule == RULE_MASS)
            x = _mm256_add_epi64(x, _mm256_slli_epi64(_mm256_cvtepu32_epi64(
                                        _mm_loadu_si128((const __m128i *)(bins + 4 * h))), 43));
        const __m256i bits = _mm256_castpd_si256(_mm256_fmadd_pd(sp, four, d[h]));
        _mm256_storeu_si256((__m256i *)(w + 4 * h),
                            _mm256_sub_epi64(_mm256_add_epi64(bits, x), fix));
    }
    if (!p2)
        return;
    const __m256d h0 = _mm256_fmadd_pd(d[0], d[0], one), h1 = _mm256_fmadd_pd(d[1], d[1], one);
    const __m256d l0 = _mm256_fmsub_pd(d[0], d[0], _mm256_sub_pd(h0, one));
    const __m256d l1 = _mm256_fmsub_pd(d[1], d[1], _mm256_sub_pd(h1, one));
    S->l = _mm256_add_pd(S->l, _mm256_add_pd(l0, l1));
    S->k = _mm256_add_epi64(S->k, _mm256_add_epi64(_mm256_castpd_si256(h0),
                                                   _mm256_castpd_si256(h1)));
}

/* Adds words w[0 .. 8) to lanes 0 .. 7.  The shift count is opaque to the
 * compiler so that it emits one SHRX (no copy) per row. */
AVX2_INLINE void scatter_avx2(uint64_t (*lane)[LANE_LEN],
                              const uint64_t *w, unsigned sh)
{
    for (int k = 0; k < LANES; k++)
        lane[k][w[k] >> sh] += w[k];
}

AVX2_INLINE int block_avx2_rule(f32_state *st, const float *conf,
                                const uint8_t *cor, size_t n8, int32_t m,
                                int p2, calib_bin_rule rule)
{
    const __m256i z = _mm256_setzero_si256();
    sums S = {z, _mm256_setzero_pd(), z, 0};
    uint64_t *ring = st->ring;
    const uint32_t *bins = st->idx;
    unsigned sh = 42;
    __asm__("" : "+r"(sh));
    size_t i = 0;
    for (; i < RING_LAG && i < n8; i += 8)
        step_avx2(&S, ring + i % RING, conf + i, cor + i, bins + i, m, p2, rule);
    for (; i < n8; i += 8) {
        step_avx2(&S, ring + i % RING, conf + i, cor + i, bins + i, m, p2, rule);
        scatter_avx2(st->lane, ring + (i - RING_LAG) % RING, sh);
    }
    for (i = n8 > RING_LAG ? n8 - RING_LAG : 0; i < n8; i += 8)
        scatter_avx2(st->lane, ring + i % RING, sh);

    /* values outside {0} and [2^-18, 1]: the block is not clean when one
     * is above 1 as unsigned bits (negatives, -0.0 and NaN too), else
     * they are rows in (0, 2^-18), rare */
    int slow = 0, clean = !(S.flags & 0xfefefefefefefefeu);
    if (!_mm256_testz_si256(S.odd, S.odd)) {
        for (size_t j = 0; j < n8; j++) {
            uint32_t v;
            memcpy(&v, conf + j, sizeof v);
            clean &= v <= ONE_BITS;
            slow |= v > 0 && v < FX_MIN_BITS;
        }
    }
    if (clean && slow && rule == CALIB_RULE_GPLEISS) {
        /* rows in (0, 2^-18) counted as p = 0 (pair 0) belong in bin 0
         * (pair 1) under gpleiss: moved there; rows j and lane j % 8 */
        for (size_t j = 0; j < n8; j++) {
            uint32_t v;
            memcpy(&v, conf + j, sizeof v);
            if (v > 0 && v < FX_MIN_BITS) {
                const uint64_t at = GBASE + cor[j];
                st->lane[j % LANES][at] -= at << 42;
                st->lane[j % LANES][at + 2] += (at + 2) << 42;
            }
        }
    }
    if (!clean) {
        /* not clean: the same words again, taken back (the lanes count
         * modulo 2^64, so they are as before) */
        sums T = S;
        for (i = 0; i < n8; i += 8) {
            step_avx2(&T, ring, conf + i, cor + i, bins + i, m, p2, rule);
            for (int k = 0; k < LANES; k++)
                st->lane[k][ring[k] >> 42] -= ring[k];
        }
        return CLEAN_NOT;
    }

    if (p2) { /* S.k and S.l hold sums only then */
        uint64_t k4[4];
        double l4[4];
        _mm256_storeu_si256((__m256i *)k4, S.k);
        _mm256_storeu_pd(l4, S.l);
        /* each row added the bits of 1.0 besides k; l's sum is exact, so
         * its order does not matter, and so is its scaling to units of
         * 2^-82 */
        const uint64_t k = k4[0] + k4[1] + k4[2] + k4[3] - n8 * ((uint64_t)0x3ff << 52);
        const double l = (l4[0] + l4[1]) + (l4[2] + l4[3]);
        st->p2 += ((u128)k << 30) + (u128)(int64_t)(l * 0x1p82);
    }
    return slow ? CLEAN_SLOW : CLEAN_FAST;
}

/* One per rule and p2 (whether to sum p^2), as phase1_any. */
AVX2_FN static int block_avx2(f32_state *st, const float *conf,
                              const uint8_t *cor, size_t n8, int32_t m,
                              calib_bin_rule rule, int p2)
{
    if (p2)
        BY_RULE(block_avx2_rule, rule, st, conf, cor, n8, m, 1);
    BY_RULE(block_avx2_rule, rule, st, conf, cor, n8, m, 0);
}

/* Unpacks the AVX2 lanes into cnt/qs and clears them.  Slot j's word is
 * cnt G 2^42 + sum q (G = GBASE + j) with cnt < 2^11 and sum q <= cnt
 * 2^41 (FLUSH_G), so t = word >> 42 = cnt G + e with e <= cnt / 2 < G:
 * cnt = floor(t / G), as floor(t ceil'(2^40 / G) 2^-40) for t < 2^22.
 * Slots 2 + 2 b + c hold bin b; slots 0 and 1, rows of p = 0 under
 * sklearn and gpleiss (s = -1), go to bin `zero`. */
static void flush_g(f32_state *st, size_t slots, size_t zero)
{
    for (size_t j = 0; j < slots + 2; j++) {
        const uint64_t g = GBASE + j, inv = ((uint64_t)1 << 40) / g + 1;
        const size_t to = j < 2 ? 2 * zero + j : j - 2;
        for (int k = 0; k < LANES; k++) {
            const uint64_t t = st->lane[k][GBASE + j];
            const uint64_t c = ((t >> 42) * inv) >> 40;
            st->cnt[to] += c;
            st->qs[to] += t - ((c * g) << 42);
            st->lane[k][GBASE + j] = 0;
        }
    }
}

/* __builtin_cpu_supports reads flags the runtime set at start-up. */
static int have_avx2(void)
{
    return !calib__width_portable && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
}
#endif

/* Equal-mass bins of n <= BLK rows into idx[]: few thresholds are each
 * compared with every row (no branches: it vectorises), many are
 * bisected. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) &&      \
    !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
static void mass_bins(uint32_t *restrict idx, const float *restrict conf,
                      size_t n, const int32_t *thr, size_t nthr)
{
    int32_t u[BLK];
    for (size_t i = 0; i < n; i++) {
        u[i] = clamp_bits(conf[i]);
        idx[i] = 0;
    }
    if (nthr > MASS_SCAN) {
        for (size_t i = 0; i < n; i++)
            idx[i] = (uint32_t)mass_slot(u[i], thr, nthr);
        return;
    }
    for (size_t b = 0; b < nthr; b++) {
        const int32_t t = thr[b];
        for (size_t i = 0; i < n; i++)
            idx[i] += (uint32_t)(u[i] > t);
    }
}

/* Phase 2: row i adds its word to lane i mod LANES. */
static void phase2(f32_state *st, size_t n)
{
    uint64_t *t0 = st->tab[0], *t1 = st->tab[1], *t2 = st->tab[2],
             *t3 = st->tab[3], *t4 = st->tab[4], *t5 = st->tab[5],
             *t6 = st->tab[6], *t7 = st->tab[7];
    const uint32_t *idx = st->idx;
    const uint64_t *v = st->v;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        t0[idx[i]] += v[i];
        t1[idx[i + 1]] += v[i + 1];
        t2[idx[i + 2]] += v[i + 2];
        t3[idx[i + 3]] += v[i + 3];
        t4[idx[i + 4]] += v[i + 4];
        t5[idx[i + 5]] += v[i + 5];
        t6[idx[i + 6]] += v[i + 6];
        t7[idx[i + 7]] += v[i + 7];
    }
    for (; i < n; i++)
        st->tab[i % LANES][idx[i]] += v[i];
}

/* Where add_slow finds a row's cell: idx[i] >> 1 (phase 1 wrote 2 b + c
 * there), idx[i] (mass_bins wrote b) or cell 0 (equal-width bins, after
 * block_avx2: p M < 1 for p < 2^-18). */
enum { CELL_PACKED, CELL_BIN, CELL_ZERO };

/* The rows of the block in (0, 2^-18): their p and Brier term exactly. */
static void add_slow(pop *P, f32_state *st, const float *conf,
                     const uint8_t *cor, size_t n, int where)
{
    for (size_t i = 0; i < n; i++) {
        double p = conf[i];
        p = p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
        if (p >= FX_MIN || p == 0.0)
            continue;
        const uint64_t c = cor[i];
        const size_t b = where == CELL_PACKED ? st->idx[i] >> 1
                         : where == CELL_BIN  ? st->idx[i]
                                              : 0;
        calib__xsum_add(&P->cells[b].conf, p);
        calib__xsum_add(&P->brier, (p - (double)c) * (p - (double)c));
        st->slow_hits += c;
    }
}

/* Unpacks the lanes into cnt/qs and clears them. */
static void flush(f32_state *st, size_t slots)
{
    for (int k = 0; k < LANES; k++)
        for (size_t j = 0; j < slots; j++) {
            st->cnt[j] += st->tab[k][j] >> CNT_SHIFT;
            st->qs[j] += st->tab[k][j] & Q_MASK;
            st->tab[k][j] = 0;
        }
}

/* Moves cnt/qs (< 2^21 rows: sum q < 2^62) into the population. */
static void push(pop *P, f32_state *st)
{
    uint64_t hits = 0;
    u128 pc = 0;
    for (size_t b = 0; b < P->n_cells; b++) {
        cell *x = &P->cells[b];
        x->count += st->cnt[2 * b] + st->cnt[2 * b + 1];
        x->plain_hits += st->cnt[2 * b + 1];
        x->conf_fx += (u128)st->qs[2 * b] + st->qs[2 * b + 1];
        hits += st->cnt[2 * b + 1];
        pc += st->qs[2 * b + 1];
    }
    P->pc_fx += pc;
    P->fast_hits += hits - st->slow_hits;
    P->p2_fx += st->p2;
    memset(st->cnt, 0, sizeof st->cnt);
    memset(st->qs, 0, sizeof st->qs);
    st->p2 = 0;
    st->slow_hits = 0;
}

/* With chk: row i checked as calib_dataset_wrap checks it (clamps are
 * counted; fast_row clamps the same way).  Returns 0 after recording the
 * worker's first bad row, else 1. */
static int row_ok(row_check *chk, int worker, const float *conf,
                  const uint8_t *cor, size_t i)
{
    if (!chk)
        return 1;
    double v = conf[i];
    const size_t col = calib__check_row(CALIB_TOPLABEL, &v, 1, cor[i],
                                        &chk->stats[worker], chk->why[worker],
                                        sizeof chk->why[worker]);
    if (col) {
        chk->bad_row[worker] = i;
        chk->bad_col[worker] = col;
    }
    return !col;
}

/* Rows [i0, i1) one by one; 0 at a bad row (with chk), else 1. */
static int rows_one_by_one(pop *P, const float *conf, const uint8_t *cor,
                           size_t i0, size_t i1, const binspec *bs,
                           row_check *chk, int worker)
{
    for (size_t i = i0; i < i1; i++) {
        if (!row_ok(chk, worker, conf, cor, i))
            return 0;
        fast_row(P, conf[i], cor[i], bs);
    }
    return 1;
}

/* The AVX2 form of the loop below, for blocks that are whole groups of
 * eight; rows outside them go one by one.  Returns 0 at a bad row. */
#ifdef WIDTH_AVX2
static int fast_plain_avx2(pop *P, f32_state *st, const float *conf,
                           const uint8_t *cor, size_t begin, size_t end,
                           const binspec *bs, row_check *chk, int worker,
                           int p2)
{
    const size_t slots = 2 * P->n_cells;
    const size_t zero = !bs->thr && (bs->rule == CALIB_RULE_GPLEISS ||
                                     bs->rule == CALIB_RULE_HOLLANCE)
                            ? (size_t)bs->m + 1
                            : 0;
    size_t blocks = 0;
    for (size_t b0 = begin; b0 < end; b0 += BLK) {
        const size_t n = end - b0 < BLK ? end - b0 : BLK, n8 = n / 8 * 8;
        calib_bin_rule rule = bs->rule;
        if (bs->thr) {
            mass_bins(st->idx, conf + b0, n8, bs->thr, bs->nb - 1);
            rule = (calib_bin_rule)RULE_MASS;
        }
        /* a clean block passes the checks unchanged (block_avx2 saw to
         * that); the rest go one by one */
        const int how = n8 ? block_avx2(st, conf + b0, cor + b0, n8, bs->m, rule, p2)
                           : CLEAN_NOT;
        if (!rows_one_by_one(P, conf, cor, how == CLEAN_NOT ? b0 : b0 + n8,
                             b0 + n, bs, chk, worker))
            return 0;
        if (how == CLEAN_NOT)
            continue;
        if (how == CLEAN_SLOW)
            add_slow(P, st, conf + b0, cor + b0, n8, bs->thr ? CELL_BIN : CELL_ZERO);
        if (++blocks % FLUSH_G == 0)
            flush_g(st, slots, zero);
        if (blocks % PUSH_G == 0)
            push(P, st);
    }
    flush_g(st, slots, zero);
    push(P, st);
    return 1;
}
#endif

/* The block kernel over rows [begin, end); with chk, a block that is not
 * clean goes one by one, checked.  Returns 0 at a bad row. */
static int fast_blocks(pop *P, f32_state *st, const float *conf,
                       const uint8_t *cor, size_t begin, size_t end,
                       const binspec *bs, row_check *chk, int worker, int p2)
{
#ifdef WIDTH_AVX2
    if (have_avx2())
        return fast_plain_avx2(P, st, conf, cor, begin, end, bs, chk, worker, p2);
#endif
    const size_t slots = 2 * P->n_cells;
    size_t blocks = 0;
    for (size_t b0 = begin; b0 < end; b0 += BLK) {
        const size_t n = end - b0 < BLK ? end - b0 : BLK;
        if (chk && !calib__top_f32_clean(conf + b0, cor + b0, n)) {
            if (!rows_one_by_one(P, conf, cor, b0, b0 + n, bs, chk, worker))
                return 0;
            continue;
        }
        calib_bin_rule rule = bs->rule;
        if (bs->thr) {
            mass_bins(st->idx, conf + b0, n, bs->thr, bs->nb - 1);
            rule = (calib_bin_rule)RULE_MASS;
        }
        if (phase1_any(st, conf + b0, cor + b0, n, bs->m, rule))
            add_slow(P, st, conf + b0, cor + b0, n, CELL_PACKED);
        phase2(st, n);
        if (++blocks % FLUSH == 0)
            flush(st, slots);
        if (blocks % (SUPER / BLK) == 0)
            push(P, st);
    }
    flush(st, slots);
    push(P, st);
    return 1;
}

static void fast_plain(pop *P, const float *conf, const uint8_t *cor,
                       size_t begin, size_t end, const binspec *bs,
                       row_check *chk, int worker, int p2)
{
    const size_t size = (sizeof(f32_state) + STATE_ALIGN - 1) / STATE_ALIGN * STATE_ALIGN;
    f32_state *st = aligned_alloc(STATE_ALIGN, size);
    if (st)
        memset(st, 0, sizeof *st);
    else { /* fall back on the row path rather than fail */
        rows_one_by_one(P, conf, cor, begin, end, bs, chk, worker);
        return;
    }
    fast_blocks(P, st, conf, cor, begin, end, bs, chk, worker, p2);
    free(st);
}

void calib__fast_range(pass *ps, size_t begin, size_t end, int worker)
{
    const float *conf = ps->ds->conf;
    const uint8_t *cor = ps->ds->correct;
    const uint32_t *g = ps->ds->groups;
    if (!g) {
        pop *P = calib__local_pop(ps, worker, 0, begin);
        if (P && P->n_cells <= LOCAL_CELLS)
            fast_plain(P, conf, cor, begin, end, ps->bs, ps->check, worker,
                       !ps->skip_p2);
        else if (P)
            rows_one_by_one(P, conf, cor, begin, end, ps->bs, ps->check, worker);
        return;
    }
    for (size_t i = begin; i < end; i++) {
        pop *P = ps->locals[(size_t)worker * ps->n_pops + g[i]];
        if (!P && !(P = calib__local_pop(ps, worker, g[i], i)))
            continue;
        fast_row(P, conf[i], cor[i], ps->bs); /* (no ps->check with groups) */
    }
}

