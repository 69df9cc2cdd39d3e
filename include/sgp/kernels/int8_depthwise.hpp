#pragma once
// The per-channel int8 window of the fast int8 path: a depthwise convolution, and the DPU's
// average pool (a sum times N, the same rounding shift: a depthwise convolution whose weights
// are all N). Biased bytes in the layout of kernels/int8_conv.hpp (pixel-major, channels
// padded to 4, a border as wide as the padding); int32 weights [k * k][c16] so that an average
// pool's N need not fit a byte. Vectorised over channels: 16 per AVX-512 register (VNNI builds,
// which have AVX512-BW), one at a time otherwise. The sums are exact int32 (checked at set-up),
// so both give the same bits.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "sgp/kernels/int8_conv.hpp"

namespace sgp::kernels::int8 {

struct window_args {
    const std::uint8_t* in = nullptr;  // the window of output (0, 0): its top-left tap
    std::size_t c = 0, c4 = 4;         // real channels, bytes per pixel (in and out)
    std::size_t in_row = 0, out_row = 0;
    std::size_t k = 1, stride = 1, oh = 1, ow = 1;
    std::uint8_t* out = nullptr;           // output pixel (0, 0)
    const std::int32_t* weight = nullptr;  // [k * k][c16], zero past c
    const std::int32_t* offset = nullptr;  // [c16]: rounding, bias and the 128 correction
    int cut = 0;
    std::int32_t lo = -128, hi = 127;
};

inline std::size_t round16(std::size_t c) {
    return (c + 15) / 16 * 16;
}

inline void depthwise(const window_args& g) {
    const std::size_t c16 = round16(g.c), taps = g.k * g.k;
    for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const std::uint8_t* x = g.in + oy * g.stride * g.in_row + ox * g.stride * g.c4;
            std::uint8_t* y = g.out + oy * g.out_row + ox * g.c4;
#if defined(SGP_INT8_VNNI)
            // The maskz forms with an all-ones mask: GCC 12 warns falsely on the unmasked ones.
            constexpr __mmask16 all = 0xFFFF;
            for (std::size_t c = 0; c < g.c; c += 16) {
                const std::size_t n = std::min<std::size_t>(16, g.c - c);
                const auto m = static_cast<__mmask16>((1u << n) - 1u);
                __m512i acc = _mm512_setzero_si512();
                for (std::size_t t = 0; t < taps; ++t) {
                    const std::uint8_t* p = x + (t / g.k) * g.in_row + (t % g.k) * g.c4 + c;
                    const __m512i u = _mm512_maskz_cvtepu8_epi32(all, _mm_maskz_loadu_epi8(m, p));
                    acc = _mm512_maskz_add_epi32(
                        all, acc, _mm512_maskz_mullo_epi32(all, u, _mm512_loadu_si512(g.weight + t * c16 + c)));
                }
                __m512i v = _mm512_maskz_add_epi32(all, acc, _mm512_loadu_si512(g.offset + c));
                v = _mm512_maskz_srai_epi32(all, v, static_cast<unsigned>(g.cut));
                v = _mm512_maskz_min_epi32(all, _mm512_maskz_max_epi32(all, v, _mm512_set1_epi32(g.lo)),
                                           _mm512_set1_epi32(g.hi));
                const __m128i q =
                    _mm_xor_si128(_mm512_maskz_cvtsepi32_epi8(all, v), _mm_set1_epi8(static_cast<char>(0x80)));
                _mm_mask_storeu_epi8(y + c, m, q);
            }
#else
            for (std::size_t c = 0; c < g.c; ++c) {
                std::int32_t acc = 0;
                for (std::size_t t = 0; t < taps; ++t)
                    acc += static_cast<std::int32_t>(x[(t / g.k) * g.in_row + (t % g.k) * g.c4 + c]) *
                           g.weight[t * c16 + c];
                const std::int32_t v = (acc + g.offset[c]) >> g.cut;  // arithmetic (C++20)
                y[c] = static_cast<std::uint8_t>(std::clamp(std::clamp(v, g.lo, g.hi), -128, 127) + 128);
            }
#endif
        }
}

}  // namespace sgp::kernels::int8
