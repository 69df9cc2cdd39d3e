#pragma once
// bfloat16: the upper half of an IEEE float (8 exponent bits, 7 mantissa bits), the operand
// format of AVX512-BF16's vdpbf16ps and AMX's tdpbf16ps. sgp rounds to it in one place, here,
// so that every kernel path multiplies the same operands.
#include <bit>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace sgp::kernels::bf16 {

// Round to nearest, ties to even (vcvtneps2bf16's rounding); a NaN stays a (quiet) NaN
// instead of rounding into infinity. Denormals are kept, where vcvtneps2bf16, vdpbf16ps and
// tdpbf16ps treat them as zero: the kernels can differ on values below 2^-126 (1.2e-38).
constexpr std::uint16_t from_float(float f) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
constexpr float to_float(std::uint16_t b) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}
// x rounded to the nearest bf16, as a float.
constexpr float round(float x) {
    return to_float(from_float(x));
}
// Two values as one 32-bit pair, the first in the low half: the layout vdpbf16ps and tdpbf16ps
// read (k and k + 1 of a dot product side by side).
constexpr std::uint32_t pair(float lo, float hi) {
    return static_cast<std::uint32_t>(from_float(lo)) | (static_cast<std::uint32_t>(from_float(hi)) << 16);
}

#if defined(__AVX512F__)
// pair() on 16 lanes: lo and hi rounded exactly as from_float does.
// Shifts are the zero-masked forms: the plain ones start from _mm512_undefined_epi32, which GCC 12
// reports as maybe-uninitialized.
inline __m512i pairs16(__m512 lo, __m512 hi) {
    auto srl16 = [](__m512i v) { return _mm512_maskz_srli_epi32(0xffff, v, 16); };
    auto round16 = [&](__m512 x) {
        const __m512i u = _mm512_castps_si512(x);
        const __m512i odd = _mm512_and_si512(srl16(u), _mm512_set1_epi32(1));
        const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd);
        const __mmask16 nan =
            _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
        // A NaN keeps its upper half with the quiet bit set, as from_float.
        return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
    };
    const __m512i l = srl16(round16(lo));
    const __m512i h = _mm512_and_si512(round16(hi), _mm512_set1_epi32(static_cast<int>(0xffff0000u)));
    return _mm512_or_si512(l, h);
}
// 32 consecutive values (k, k + 1, ...) as their 16 pairs: even and odd k split by two permutes.
inline __m512i pairs16_consecutive(__m512 v0, __m512 v1) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    return pairs16(_mm512_permutex2var_ps(v0, even, v1), _mm512_permutex2var_ps(v0, odd, v1));
}
#endif

}  // namespace sgp::kernels::bf16
