#pragma once
// The taps of a 3x3 convolution made in AVX-512 registers, so that the direct kernels read
// their input as it is (no zero-padded copy, whole-vector loads). A vector holds 16
// consecutive pixels of a channel's [N][H][W] plane; the tap at pixel offset D (dy * W + dx) of
// every lane is one valignd of the vector with its neighbour D lanes away, and the lanes whose
// tap falls outside their image are zeroed by the same instruction's mask.
#if defined(__AVX512F__) && !defined(SGP_NO_SIMD)
#define SGP_AVX512_TAPS 1
#include <immintrin.h>

#include <cstddef>

namespace sgp::kernels::avx512_taps {

// The mask of the first `count` lanes (all of them for 16 or more): a partial vector's pixels.
inline __mmask16 first_lanes(std::size_t count) {
    return count >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << count) - 1);
}

// Lanes [Imm, 16) of lo, then lanes [0, Imm) of hi; lanes outside `keep` zero. (The zero-masked
// form also for an all-ones mask: GCC 12 warns inside the plain one.)
template <int Imm>
inline __m512 align(__m512 hi, __m512 lo, __mmask16 keep = 0xFFFF) {
    static_assert(Imm > 0 && Imm < 16);
    return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(keep, _mm512_castps_si512(hi), _mm512_castps_si512(lo), Imm));
}

// The value D pixels along from each lane of `cur` (-16 < D < 16), `prev` and `next` being the
// vectors before and after it; lanes outside `keep` zero. D = 0 is the pixel itself, inside its
// image by definition: `cur` as it is.
template <int D>
inline __m512 tap(__m512 prev, __m512 cur, __m512 next, __mmask16 keep) {
    static_assert(D > -16 && D < 16);
    if constexpr (D == 0)
        return (void)keep, cur;
    else if constexpr (D < 0)
        return align<16 + D>(cur, prev, keep);
    else
        return align<D>(next, cur, keep);
}

}  // namespace sgp::kernels::avx512_taps
#endif
