#pragma once
// The lane sums of many AVX-512 vectors at once: the weight-gradient tiles hold 9 or 18 vectors of
// lane-wise partial sums and reduce them at the end of each run of pixels. One at a time (a
// store and 15 dependent adds, or _mm512_reduce_add_ps's 8 operations) the reduction costs as
// much as the FMAs of a run on the small maps (64 vectors on 4x4 at batch 64, 16 on 2x2);
// sixteen at a time by a transpose-and-add tree it costs 30 shuffles and 15 adds.
#if defined(__AVX512F__) && !defined(SGP_NO_SIMD)
#define SGP_AVX512_SUM_LANES 1
#include <immintrin.h>

#include <cstddef>

#include "sgp/core/simd.hpp"  // SGP_UNROLL

namespace sgp::kernels::avx512_sum_lanes {

// out[i] = the sum of the 16 lanes of v[i], for i < 16.
[[gnu::always_inline]] inline void sum16(const __m512 (&v)[16], float* out) {
    // Halves: lanes 0-7 of t[k] are partial sums of v[2k], lanes 8-15 of v[2k + 1].
    __m512 t[8], u[4], w[2];
    SGP_UNROLL(8)  // every loop unrolled: the vectors stay in registers
    for (int k = 0; k < 8; ++k)
        t[k] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(0xFFFF, v[2 * k], v[2 * k + 1], 0x44),
                             _mm512_maskz_shuffle_f32x4(0xFFFF, v[2 * k], v[2 * k + 1], 0xEE));
    // Quarters: 128-bit lane l of u[j] holds partial sums of v[4j + l].
    SGP_UNROLL(4)
    for (int j = 0; j < 4; ++j)
        u[j] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(0xFFFF, t[2 * j], t[2 * j + 1], 0x88),
                             _mm512_maskz_shuffle_f32x4(0xFFFF, t[2 * j], t[2 * j + 1], 0xDD));
    // Within 128-bit lanes: lane l of w[i] holds pairs of sums of v[8i + l] and v[8i + 4 + l].
    SGP_UNROLL(2)
    for (int i = 0; i < 2; ++i)
        w[i] = _mm512_add_ps(_mm512_maskz_shuffle_ps(0xFFFF, u[2 * i], u[2 * i + 1], 0x44),
                             _mm512_maskz_shuffle_ps(0xFFFF, u[2 * i], u[2 * i + 1], 0xEE));
    // Lane 4l + k: the sum of v[4k + l].
    const __m512 z = _mm512_add_ps(_mm512_maskz_shuffle_ps(0xFFFF, w[0], w[1], 0x88),
                                   _mm512_maskz_shuffle_ps(0xFFFF, w[0], w[1], 0xDD));
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, z);
    for (int i = 0; i < 16; ++i) out[i] = lanes[(i % 4) * 4 + i / 4];
}

// The sum of v's lanes (_mm512_reduce_add_ps draws a false -Wuninitialized from GCC 12).
[[gnu::always_inline]] inline float sum1(__m512 v) {
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0x4E));  // 256-bit halves swapped
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0xB1));  // 128-bit lanes swapped in pairs
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_ps(0xFFFF, v, v, 0x4E));
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_ps(0xFFFF, v, v, 0xB1));
    return _mm512_cvtss_f32(v);
}

// out[r * T + t] = the sum of the lanes of v[r][t]: sixteen at a time, the rest one by one.
template <std::size_t R, std::size_t T>
[[gnu::always_inline]] inline void sum_lanes(const __m512 (&v)[R][T], float* out) {
    __m512 flat[R * T];
    SGP_UNROLL(3)
    for (std::size_t r = 0; r < R; ++r) {
        SGP_UNROLL(9)
        for (std::size_t t = 0; t < T; ++t) flat[r * T + t] = v[r][t];
    }
    std::size_t i = 0;
    for (; i + 16 <= R * T; i += 16) {
        __m512 group[16];
        SGP_UNROLL(16)
        for (std::size_t k = 0; k < 16; ++k) group[k] = flat[i + k];
        sum16(group, out + i);
    }
    SGP_UNROLL(16)
    for (; i < R * T; ++i) out[i] = sum1(flat[i]);
}

// The weight-gradient tiles' end of a run: dw[r * dws + t] = (first ? 0 : dw[r * dws + t]) + the
// lane sum of acc[r][t].
template <std::size_t R, std::size_t T>
[[gnu::always_inline]] inline void add_to(const __m512 (&acc)[R][T], float* dw, std::size_t dws, bool first) {
    float sums[R * T];
    sum_lanes(acc, sums);
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t t = 0; t < T; ++t) {
            float& o = dw[r * dws + t];
            o = first ? sums[r * T + t] : o + sums[r * T + t];
        }
}

}  // namespace sgp::kernels::avx512_sum_lanes
#endif
