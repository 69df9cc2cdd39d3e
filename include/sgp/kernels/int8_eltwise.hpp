#pragma once
// The DPU's eltwise add on the fast int8 path's biased bytes (kernels/int8_conv.hpp's layout;
// the arithmetic is quant/dpu_arithmetic.hpp's add_term / add_output). 16 bytes per AVX-512
// register in VNNI builds (which have AVX512-BW), one at a time otherwise; the same bits.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "sgp/kernels/int8_conv.hpp"

namespace sgp::kernels::int8 {

// eltwise-fix ADD over `n` biased bytes of each input (quant/dpu_arithmetic.hpp): each input
// shifted to the common step (left by 7 - shift_read, or floored right), summed, shifted down
// by `write` = shift_write + 7 with DPU_ROUND (left for write < 0), clamped to [lo, 127].
struct add_args {
    static constexpr std::size_t max_inputs = 8;
    std::size_t inputs = 2;
    int read[max_inputs] = {};  // 7 - shift_read: a left shift (>= 0) or a floored right shift (< 0)
    int write = 7;
    std::int32_t lo = -128;
};

inline void add_row(const add_args& g, const std::uint8_t* const* x, std::uint8_t* y, std::size_t n) {
    std::size_t i = 0;
#if defined(SGP_INT8_VNNI)
    constexpr __mmask16 all = 0xFFFF;  // maskz forms: GCC 12 warns falsely on the unmasked ones
    const __m512i bias = _mm512_set1_epi32(128);
    for (; i < n; i += 16) {
        const std::size_t left = std::min<std::size_t>(16, n - i);
        const auto m = static_cast<__mmask16>((1u << left) - 1u);
        __m512i sum = _mm512_setzero_si512();
        for (std::size_t k = 0; k < g.inputs; ++k) {
            const __m512i q =
                _mm512_maskz_sub_epi32(all, _mm512_maskz_cvtepu8_epi32(all, _mm_maskz_loadu_epi8(m, x[k] + i)), bias);
            const int s = g.read[k];
            sum = _mm512_maskz_add_epi32(all, sum,
                                         s >= 0 ? _mm512_maskz_slli_epi32(all, q, static_cast<unsigned>(s))
                                                : _mm512_maskz_srai_epi32(all, q, static_cast<unsigned>(-s)));
        }
        if (g.write > 0)
            sum = _mm512_maskz_srai_epi32(
                all, _mm512_maskz_add_epi32(all, sum, _mm512_set1_epi32(std::int32_t{1} << (g.write - 1))),
                static_cast<unsigned>(g.write));
        else
            sum = _mm512_maskz_slli_epi32(all, sum, static_cast<unsigned>(-g.write));
        sum = _mm512_maskz_max_epi32(all, sum, _mm512_set1_epi32(g.lo));
        const __m128i q = _mm_xor_si128(_mm512_maskz_cvtsepi32_epi8(all, sum), _mm_set1_epi8(static_cast<char>(0x80)));
        _mm_mask_storeu_epi8(y + i, m, q);
    }
#else
    for (; i < n; ++i) {
        std::int32_t sum = 0;
        for (std::size_t k = 0; k < g.inputs; ++k) {
            const std::int32_t q = static_cast<std::int32_t>(x[k][i]) - 128;
            sum += g.read[k] >= 0 ? q * (std::int32_t{1} << g.read[k]) : q >> -g.read[k];
        }
        sum = g.write > 0 ? (sum + (std::int32_t{1} << (g.write - 1))) >> g.write : sum * (std::int32_t{1} << -g.write);
        y[i] = static_cast<std::uint8_t>(std::clamp(std::max(sum, g.lo), -128, 127) + 128);
    }
#endif
}

}  // namespace sgp::kernels::int8
