#pragma once
// The int8 convolution of the fast int8 path (target/int8_target.hpp), in the DPU's arithmetic.
//
// Activations are stored as biased bytes, u = q + 128 (q the int8 value), pixel-major (NHWC)
// with the channels padded to a multiple of 4 and a border of zeros (u = 128) as wide as the
// consumer's padding: VNNI's vpdpbusd multiplies unsigned by signed bytes, four at a time, so
// four consecutive channels of one pixel are one 32-bit broadcast. The bias of 128 is taken
// back exactly through a per-channel constant: sum (q + 128) w = sum q w + 128 sum w.
//
// Vectorised over output channels (lanes = channels, one register per pixel of a tile), so a
// pruned layer's few channels and a linear layer's single pixel both fill the lanes. The sums
// are exact int32 (checked at set-up), so every lane policy gives the same bits.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sgp/core/simd.hpp"

#if !defined(SGP_NO_SIMD) && defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#define SGP_INT8_VNNI 1
#include <immintrin.h>
#endif

namespace sgp::kernels::int8 {

inline constexpr std::uint8_t zero_byte = 128;  // the biased byte of q = 0

// One convolution's geometry, in the layout above. Input and output pointers address the
// first real pixel of their maps (inside the border).
struct conv_args {
    const std::uint8_t* in = nullptr;
    std::size_t in_c4 = 4;   // bytes per input pixel
    std::size_t in_row = 0;  // bytes per input row, border included
    std::size_t kh = 1, kw = 1, stride = 1;
    std::size_t oh = 1, ow = 1;
    std::size_t out_c4 = 4;  // bytes per output pixel (the real channels rounded up to 4)
    std::uint8_t* out = nullptr;
    std::size_t out_row = 0;                     // bytes per output row, border included
    const std::int8_t* weight = nullptr;         // [kh][kw][in_c4 / 4][cout_pad][4], 64-byte aligned
    const std::uint32_t* step_offset = nullptr;  // per (ky, kx, group): ky in_row + kx in_c4 + 4 group
    std::size_t steps = 0;                       // kh kw in_c4 / 4
    std::size_t cout_pad = 0;                    // output channels padded to the lane count
    const std::int32_t* offset = nullptr;        // [cout_pad]: rounding, bias and the 128 correction
    int cut = 0;                                 // right shift of (sum + offset)
    std::int32_t lo = -128, hi = 127;            // the activation's clamp (ReLU: lo 0; ReLU6: hi 96)
};

inline std::uint32_t load_dword(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

#if defined(SGP_INT8_VNNI)
// AVX512-VNNI, 16 output channels per register.
struct vnni16 {
    static constexpr std::size_t lanes = 16;
    static constexpr const char* name = "avx512-vnni x16";
    using acc = __m512i;
    static acc zero() { return _mm512_setzero_si512(); }
    static acc weights(const std::int8_t* p) { return _mm512_load_si512(p); }
    static acc dot(acc a, const std::uint8_t* x, acc w) {
        return _mm512_dpbusd_epi32(a, _mm512_set1_epi32(static_cast<int>(load_dword(x))), w);
    }
    static void finish(acc a, const conv_args& g, std::size_t o, std::uint8_t* y, std::size_t n) {
        // The maskz forms with an all-ones mask: GCC 12 warns falsely on the unmasked ones.
        constexpr __mmask16 all = 0xFFFF;
        __m512i v = _mm512_add_epi32(a, _mm512_loadu_si512(g.offset + o));
        v = _mm512_maskz_sra_epi32(all, v, _mm_cvtsi32_si128(g.cut));
        v = _mm512_maskz_min_epi32(all, _mm512_maskz_max_epi32(all, v, _mm512_set1_epi32(g.lo)),
                                   _mm512_set1_epi32(g.hi));
        const __m128i q = _mm_xor_si128(_mm512_maskz_cvtsepi32_epi8(all, v), _mm_set1_epi8(static_cast<char>(0x80)));
        _mm_mask_storeu_epi8(y, static_cast<__mmask16>((1u << n) - 1u), q);
    }
};
// AVX512-VNNI on 256 bits, 8 output channels per register: for layers with <= 8 channels.
struct vnni8 {
    static constexpr std::size_t lanes = 8;
    static constexpr const char* name = "avx512-vnni x8";
    using acc = __m256i;
    static acc zero() { return _mm256_setzero_si256(); }
    static acc weights(const std::int8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
    static acc dot(acc a, const std::uint8_t* x, acc w) {
        return _mm256_dpbusd_epi32(a, _mm256_set1_epi32(static_cast<int>(load_dword(x))), w);
    }
    static void finish(acc a, const conv_args& g, std::size_t o, std::uint8_t* y, std::size_t n) {
        constexpr __mmask8 all = 0xFF;
        __m256i v = _mm256_add_epi32(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.offset + o)));
        v = _mm256_maskz_sra_epi32(all, v, _mm_cvtsi32_si128(g.cut));
        v = _mm256_maskz_min_epi32(all, _mm256_maskz_max_epi32(all, v, _mm256_set1_epi32(g.lo)),
                                   _mm256_set1_epi32(g.hi));
        const __m128i q = _mm_xor_si128(_mm256_maskz_cvtsepi32_epi8(all, v), _mm_set1_epi8(static_cast<char>(0x80)));
        _mm_mask_storeu_epi8(y, static_cast<__mmask16>((1u << n) - 1u), q);
    }
};
#endif

// Without VNNI: int32 lanes (xsimd's widest, or one lane in the scalar build), each weight
// word split into its four signed bytes by shifts. Slower, the same integers.
struct portable {
#if defined(SGP_NO_SIMD)
    using acc = std::int32_t;
    static constexpr std::size_t lanes = 1;
    static acc weights(const std::int8_t* p) {
        std::int32_t v;
        std::memcpy(&v, p, 4);
        return v;
    }
    static void store(acc a, std::int32_t* p) {
        *p = a;
    }
#else
    using acc = xsimd::batch<std::int32_t>;
    static constexpr std::size_t lanes = acc::size;
    static acc weights(const std::int8_t* p) {
        return acc::load_aligned(reinterpret_cast<const std::int32_t*>(p));
    }
    static void store(acc a, std::int32_t* p) {
        a.store_unaligned(p);
    }
#endif
    static constexpr const char* name = "portable int32";
    static acc zero() {
        return acc(0);
    }
#pragma GCC diagnostic push
// clang (the fuzz targets) has no -Wmaybe-uninitialized and would warn about the name.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside xsimd's AVX-512 shifts
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"  // (the same at -O1)
    static acc dot(acc a, const std::uint8_t* x, acc w) {
        // x's bytes are unsigned; w's are signed: sign-extend each byte of w in place.
        const acc w0 = (w << 24) >> 24, w1 = (w << 16) >> 24, w2 = (w << 8) >> 24, w3 = w >> 24;
        return a + w0 * acc(x[0]) + w1 * acc(x[1]) + w2 * acc(x[2]) + w3 * acc(x[3]);
    }
#pragma GCC diagnostic pop
    static void finish(acc a, const conv_args& g, std::size_t o, std::uint8_t* y, std::size_t n) {
        std::int32_t s[lanes];
        store(a, s);
        for (std::size_t i = 0; i < n; ++i) {
            const std::int32_t v = (s[i] + g.offset[o + i]) >> g.cut;  // arithmetic (C++20)
            y[i] = static_cast<std::uint8_t>(std::clamp(std::clamp(v, g.lo, g.hi), -128, 127) + 128);
        }
    }
};

// P consecutive output pixels of row oy from x = ox, V registers of output channels from o.
template <class L, int V, int P>
inline void conv_tile(const conv_args& g, std::size_t oy, std::size_t ox, std::size_t o) {
    typename L::acc a[P][V];
    SGP_UNROLL(8)
    for (int p = 0; p < P; ++p) SGP_UNROLL(4)
    for (int v = 0; v < V; ++v) a[p][v] = L::zero();
    // One flat loop over (ky, kx, channel group): an offset per step, P pixel bases in registers.
    const std::size_t px_step = g.stride * g.in_c4, w_step = g.cout_pad * 4;
    const std::uint8_t* base[P];
    SGP_UNROLL(8)
    for (int p = 0; p < P; ++p)
        base[p] = g.in + oy * g.stride * g.in_row + (ox + static_cast<std::size_t>(p)) * px_step;
    const std::int8_t* wk = g.weight + o * 4;
    for (std::size_t t = 0; t < g.steps; ++t, wk += w_step) {
        const std::uint32_t off = g.step_offset[t];
        typename L::acc w[V];
        SGP_UNROLL(4)
        for (int v = 0; v < V; ++v) w[v] = L::weights(wk + static_cast<std::size_t>(v) * L::lanes * 4);
        SGP_UNROLL(8)
        for (int p = 0; p < P; ++p) SGP_UNROLL(4)
        for (int v = 0; v < V; ++v) a[p][v] = L::dot(a[p][v], base[p] + off, w[v]);
    }
    for (int p = 0; p < P; ++p)
        for (int v = 0; v < V; ++v) {
            const std::size_t oc = o + static_cast<std::size_t>(v) * L::lanes;
            if (oc >= g.out_c4) break;
            L::finish(a[p][v], g, oc, g.out + oy * g.out_row + (ox + static_cast<std::size_t>(p)) * g.out_c4 + oc,
                      std::min(L::lanes, g.out_c4 - oc));
        }
}

// Pixels of one row in tiles of P, then the tail in halves.
template <class L, int V, int P>
inline void conv_row(const conv_args& g, std::size_t oy, std::size_t o) {
    std::size_t ox = 0;
    for (; ox + P <= g.ow; ox += P) conv_tile<L, V, P>(g, oy, ox, o);
    if constexpr (P > 1) {
        if (ox < g.ow) {
            conv_args t = g;  // the tail as a narrower map
            t.ow = g.ow - ox;
            t.in += ox * g.stride * g.in_c4;
            t.out += ox * g.out_c4;
            conv_row<L, V, P / 2>(t, oy, o);
        }
    }
}

// The whole convolution: output channels in blocks of up to 2 registers (4 for a single
// pixel, where more independent sums hide the multiply-add latency).
template <class L>
void conv(const conv_args& g) {
    const std::size_t vectors = g.cout_pad / L::lanes;
    const bool one_pixel = g.oh * g.ow == 1;
    std::size_t v = 0;
    while (v < vectors) {
        const std::size_t o = v * L::lanes, left = vectors - v;
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
            if (one_pixel && left >= 4)
                conv_tile<L, 4, 1>(g, oy, 0, o);
            else if (left >= 2)
                conv_row<L, 2, 8>(g, oy, o);
            else
                conv_row<L, 1, 8>(g, oy, o);
        }
        v += one_pixel && left >= 4 ? 4 : std::min<std::size_t>(left, 2);
    }
}

// max(y, x) over n bytes.
inline void max_bytes(std::uint8_t* y, const std::uint8_t* x, std::size_t n) {
#if defined(SGP_INT8_VNNI)
    for (std::size_t c = 0; c < n; c += 64) {
        const __mmask64 m = n - c >= 64 ? ~__mmask64{0} : (__mmask64{1} << (n - c)) - 1;
        _mm512_mask_storeu_epi8(y + c, m,
                                _mm512_max_epu8(_mm512_maskz_loadu_epi8(m, y + c), _mm512_maskz_loadu_epi8(m, x + c)));
    }
#else
    for (std::size_t c = 0; c < n; ++c) y[c] = std::max(y[c], x[c]);
#endif
}

// k x k max pool with stride s on biased bytes (order-preserving: max of u is max of q).
// Row by row: the k input rows' maximum first (contiguous bytes), then the k pixels of each
// window within it.
inline void max_pool(const std::uint8_t* in, std::size_t c4, std::size_t in_row, std::size_t k, std::size_t s,
                     std::size_t oh, std::size_t ow, std::uint8_t* out, std::size_t out_row, std::uint8_t* scratch) {
    const std::size_t span = ((ow - 1) * s + k) * c4;  // the input bytes one output row reads per row
    for (std::size_t oy = 0; oy < oh; ++oy) {
        const std::uint8_t* x = in + oy * s * in_row;
        std::memcpy(scratch, x, span);
        for (std::size_t ky = 1; ky < k; ++ky) max_bytes(scratch, x + ky * in_row, span);
        std::uint8_t* y = out + oy * out_row;
        for (std::size_t ox = 0; ox < ow; ++ox) {
            std::memcpy(y + ox * c4, scratch + ox * s * c4, c4);
            for (std::size_t kx = 1; kx < k; ++kx) max_bytes(y + ox * c4, scratch + (ox * s + kx) * c4, c4);
        }
    }
}

}  // namespace sgp::kernels::int8
