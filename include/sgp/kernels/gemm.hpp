#pragma once
// Single-precision GEMM: C = op(A) * op(B) (+ C when accumulating), row-major, with
// op(X) = X or X^T. Blocked for the caches (BLIS-style loops: NC columns of B packed for
// L3, KC x MC of A packed for L2, an MR x NR register tile), micro-kernel in xsimd batches.
//
// Every element of C is summed over K in the same order whatever the split into tiles or
// threads, so results are bit-identical for any thread count: threads split M or N, never K.
#include <algorithm>
#include <cstddef>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/core/simd.hpp"

namespace sgp::kernels {

namespace gemm_detail {

using simd::vec;
inline constexpr std::size_t NV = 2;                                                    // vectors per tile row
inline constexpr std::size_t NR = NV * simd::width;                                     // tile columns
inline constexpr std::size_t MR = simd::width >= 16 ? 12 : (simd::width >= 4 ? 6 : 4);  // tile rows
inline constexpr std::size_t KC = 256;
inline constexpr std::size_t MC = MR * 16;
inline constexpr std::size_t NC = NR * 64;
// The most rows of B any caller packs in one call (gemm_bf16's K blocks: 512): a packer may
// keep per-row state on the stack for that many.
inline constexpr std::size_t max_packed_rows = 512;

struct matrix {
    const float* p;
    std::size_t ld;
    bool trans;
    float at(std::size_t r, std::size_t c) const { return trans ? p[c * ld + r] : p[r * ld + c]; }
};

// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of op(A) into R-row panels, k-major, zero padded.
template <std::size_t R = MR>
void pack_a(const matrix& a, std::size_t i0, std::size_t mc, std::size_t k0, std::size_t kc, float* out) {
    for (std::size_t ir = 0; ir < mc; ir += R) {
        const std::size_t mr = std::min(R, mc - ir);
        float* panel = out + ir * kc;
        if (!a.trans) {
            for (std::size_t i = 0; i < mr; ++i) {
                const float* src = a.p + (i0 + ir + i) * a.ld + k0;
                for (std::size_t k = 0; k < kc; ++k) panel[k * R + i] = src[k];
            }
        } else {
            for (std::size_t k = 0; k < kc; ++k) {
                const float* src = a.p + (k0 + k) * a.ld + i0 + ir;
                for (std::size_t i = 0; i < mr; ++i) panel[k * R + i] = src[i];
            }
        }
        for (std::size_t i = mr; i < R; ++i)
            for (std::size_t k = 0; k < kc; ++k) panel[k * R + i] = 0.f;
    }
}

// Packs rows [k0, k0+kc) x cols [j0, j0+nc) of op(B) into NR-column panels, zero padded.
inline void pack_b(const matrix& b, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc, float* out) {
    for (std::size_t jr = 0; jr < nc; jr += NR) {
        const std::size_t nr = std::min(NR, nc - jr);
        float* panel = out + jr * kc;
        if (!b.trans) {
            for (std::size_t k = 0; k < kc; ++k) {
                const float* src = b.p + (k0 + k) * b.ld + j0 + jr;
                float* dst = panel + k * NR;
                std::size_t j = 0;
                for (; j < nr; ++j) dst[j] = src[j];
                for (; j < NR; ++j) dst[j] = 0.f;
            }
        } else {
            for (std::size_t j = 0; j < nr; ++j) {
                const float* src = b.p + (j0 + jr + j) * b.ld + k0;
                for (std::size_t k = 0; k < kc; ++k) panel[k * NR + j] = src[k];
            }
            for (std::size_t j = nr; j < NR; ++j)
                for (std::size_t k = 0; k < kc; ++k) panel[k * NR + j] = 0.f;
        }
    }
}

// acc(R x NR) = sum_k a[k] (outer) b[k]; then C = acc or C += acc on the valid mr x nr part.
// TC: C is stored transposed (tile element (i, j) at c[j * ldc + i]), for C^T = B^T A^T.
template <std::size_t R, bool TC>
void micro_kernel(std::size_t kc, const float* a, const float* b, float* c, std::size_t ldc, std::size_t mr,
                  std::size_t nr, bool add) {
    vec acc[R][NV];
    SGP_UNROLL(16)
    for (std::size_t i = 0; i < R; ++i) {
        SGP_UNROLL(4)
        for (std::size_t j = 0; j < NV; ++j) acc[i][j] = vec(0.f);
    }
    for (std::size_t k = 0; k < kc; ++k) {
        vec bv[NV];
        SGP_UNROLL(4)
        for (std::size_t j = 0; j < NV; ++j) bv[j] = vec::load_aligned(b + k * NR + j * simd::width);
        SGP_UNROLL(16)
        for (std::size_t i = 0; i < R; ++i) {
            const vec av(a[k * R + i]);
            SGP_UNROLL(4)
            for (std::size_t j = 0; j < NV; ++j) acc[i][j] = simd::fma(av, bv[j], acc[i][j]);
        }
    }
    if (!TC && mr == R && nr == NR) {
        SGP_UNROLL(16)
        for (std::size_t i = 0; i < R; ++i) SGP_UNROLL(4)
        for (std::size_t j = 0; j < NV; ++j) {
            float* p = c + i * ldc + j * simd::width;
            (add ? acc[i][j] + vec::load_unaligned(p) : acc[i][j]).store_unaligned(p);
        }
        return;
    }
    alignas(64) float tile[R * NR];
    for (std::size_t i = 0; i < R; ++i)
        for (std::size_t j = 0; j < NV; ++j) acc[i][j].store_aligned(tile + i * NR + j * simd::width);
    if constexpr (TC) {
        for (std::size_t j = 0; j < nr; ++j)
            for (std::size_t i = 0; i < mr; ++i)
                c[j * ldc + i] = add ? c[j * ldc + i] + tile[i * NR + j] : tile[i * NR + j];
    } else {
        for (std::size_t i = 0; i < mr; ++i)
            for (std::size_t j = 0; j < nr; ++j)
                c[i * ldc + j] = add ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
    }
}

// The blocked loops over rows [m0, m1) and columns [n0, n1) of C (of C^T when TC), on this
// thread. apre / bpre: op(A) / op(B) already packed whole (pack_whole_a / pack_whole_b, with
// apre_rows / bpre_cols their padded sizes), or null to pack per block.
template <std::size_t R, bool TC, class BSource = matrix>
void gemm_range(const matrix& a, const BSource& b, std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1,
                std::size_t K, float* C, std::size_t ldc, bool accumulate, const float* apre, std::size_t apre_rows,
                const float* bpre, std::size_t bpre_cols) {
    constexpr std::size_t mcb = R * (MC / MR);
    thread_local aligned_buffer<float> apack, bpack;
    if (!apre) apack.reserve(mcb * KC);
    if (!bpre) bpack.reserve(KC * NC);
    for (std::size_t jc = n0; jc < n1; jc += NC) {
        const std::size_t nc = std::min(NC, n1 - jc);
        for (std::size_t pc = 0; pc < K; pc += KC) {
            const std::size_t kc = std::min(KC, K - pc);
            const bool add = accumulate || pc > 0;
            const float* bp = bpre ? bpre + pc * bpre_cols + jc * kc : bpack.data();
            if (!bpre) pack_b(b, pc, kc, jc, nc, bpack.data());
            for (std::size_t ic = m0; ic < m1; ic += mcb) {
                const std::size_t mc = std::min(mcb, m1 - ic);
                const float* ap = apre ? apre + pc * apre_rows + ic * kc : apack.data();
                if (!apre) pack_a<R>(a, ic, mc, pc, kc, apack.data());
                for (std::size_t jr = 0; jr < nc; jr += NR)
                    for (std::size_t ir = 0; ir < mc; ir += R) {
                        float* c = TC ? C + (jc + jr) * ldc + ic + ir : C + (ic + ir) * ldc + jc + jr;
                        micro_kernel<R, TC>(kc, ap + ir * kc, bp + jr * kc, c, ldc, std::min(R, mc - ir),
                                            std::min(NR, nc - jr), add);
                    }
            }
        }
    }
}

// op(B) [K x N] packed whole, block after block of KC rows, each block in NR-column panels:
// block pc starts at pc * round_up(N, NR), panel jr of it at jr * kc.
inline std::size_t whole_b_size(std::size_t K, std::size_t N) {
    return K * ((N + NR - 1) / NR * NR);
}
inline void pack_whole_b(const matrix& b, std::size_t K, std::size_t N, float* out) {
    const std::size_t cols = (N + NR - 1) / NR * NR;
    for (std::size_t pc = 0; pc < K; pc += KC) pack_b(b, pc, std::min(KC, K - pc), 0, N, out + pc * cols);
}
// op(A) [M x K] likewise, in R-row panels: block pc at pc * round_up(M, R), panel ir at ir * kc.
template <std::size_t R>
std::size_t whole_a_size(std::size_t M, std::size_t K) {
    return K * ((M + R - 1) / R * R);
}
template <std::size_t R>
void pack_whole_a(const matrix& a, std::size_t M, std::size_t K, float* out) {
    const std::size_t rows = (M + R - 1) / R * R;
    for (std::size_t pc = 0; pc < K; pc += KC) pack_a<R>(a, 0, M, pc, std::min(KC, K - pc), out + pc * rows);
}

}  // namespace gemm_detail

// Weights packed once for repeated products (inference): the left operand op(A) of gemm()
// kept in the layout its micro-kernel reads. The owner calls invalidate() whenever A changes.
class packed_weights {
public:
    void invalidate() { valid_ = false; }
    bool valid() const { return valid_; }

    // For gemm(): op(A) packed for the order it uses at this N, packed now unless already there.
    template <class Pack>
    // `layout` names the order and tile (0: transposed order, else the tile's rows).
    const float* get(std::size_t layout, std::size_t m, std::size_t k, std::size_t size, Pack&& pack) {
        if (!valid_ || layout_ != layout || m_ != m || k_ != k) {
            data_.reserve(size);
            pack(data_.data());
            m_ = m, k_ = k, layout_ = layout, valid_ = true;
        }
        return data_.data();
    }

private:
    aligned_buffer<float> data_;
    std::size_t m_ = 0, k_ = 0, layout_ = 0;
    bool valid_ = false;
};

namespace gemm_detail {
// The usual order: C in R x NR tiles, threads splitting the larger side of C.
template <std::size_t R, class BSource>
void gemm_usual_tiles(const matrix& a, const BSource& b, std::size_t M, std::size_t N, std::size_t K, float* C,
                      std::size_t ldc, bool accumulate, thread_pool* pool, packed_weights* cache) {
    const float* apre =
        cache ? cache->get(R, M, K, whole_a_size<R>(M, K), [&](float* out) { pack_whole_a<R>(a, M, K, out); })
              : nullptr;
    const std::size_t rows = (M + R - 1) / R * R;
    if (N >= M)
        parallel_for(pool, N, NR, [&](std::size_t n0, std::size_t n1) {
            gemm_range<R, false>(a, b, 0, M, n0, n1, K, C, ldc, accumulate, apre, rows, nullptr, 0);
        });
    else
        parallel_for(pool, M, R, [&](std::size_t m0, std::size_t m1) {
            gemm_range<R, false>(a, b, m0, m1, 0, N, K, C, ldc, accumulate, apre, rows, nullptr, 0);
        });
}

// MR-row tiles, or 8-row ones when they pad M less (M = 64: 8 tiles of 8, not 6 of 12 with 8
// rows of padding). Each element's sum over k runs in the same order either way.
template <class BSource>
void gemm_usual(const matrix& a, const BSource& b, std::size_t M, std::size_t N, std::size_t K, float* C,
                std::size_t ldc, bool accumulate, thread_pool* pool, packed_weights* cache) {
    if constexpr (MR > 8) {
        if ((M + 7) / 8 * 8 < (M + MR - 1) / MR * MR)
            return gemm_usual_tiles<8>(a, b, M, N, K, C, ldc, accumulate, pool, cache);
    }
    gemm_usual_tiles<MR>(a, b, M, N, K, C, ldc, accumulate, pool, cache);
}
}  // namespace gemm_detail

// C[M x N] = op(A)[M x K] * op(B)[K x N] (+ C if accumulate). lda/ldb/ldc are the row
// strides of A, B, C as stored (A is stored K x M when trans_a).
//
// With few columns (N <= 16: a deep layer's pixels at batch 1) an NR-wide tile would be mostly
// padding and packing op(A) would cost as much as the product, so it computes
// C^T = op(B)^T op(A)^T instead, with tiles of 4 or 8 rows over N and NR columns over M.
// Both orders sum every element over k in the same sequence: the results are bit-identical.
// `cache`, when given, holds op(A) packed for that order and is reused while valid (the
// weights of a layer in inference).
inline void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const float* A,
                 std::size_t lda, const float* B, std::size_t ldb, float* C, std::size_t ldc, bool accumulate,
                 thread_pool* pool = nullptr, packed_weights* cache = nullptr) {
    using namespace gemm_detail;
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!accumulate)
            for (std::size_t i = 0; i < M; ++i) std::fill_n(C + i * ldc, N, 0.f);
        return;
    }
    const matrix a{A, lda, trans_a}, b{B, ldb, trans_b};
    if (N <= 16) {
        // C^T [N x M] = op(B)^T [N x K] * op(A)^T [K x M]; the weights are the packed-whole side.
        const matrix bt{B, ldb, !trans_b}, at{A, lda, !trans_a};
        const float* wpre =
            cache ? cache->get(0, M, K, whole_b_size(K, M), [&](float* out) { pack_whole_b(at, K, M, out); }) : nullptr;
        const std::size_t cols = (M + NR - 1) / NR * NR;
        auto run = [&](std::size_t m0, std::size_t m1) {
            if (N <= 4)
                gemm_range<4, true>(bt, at, 0, N, m0, m1, K, C, ldc, accumulate, nullptr, 0, wpre, cols);
            else
                gemm_range<8, true>(bt, at, 0, N, m0, m1, K, C, ldc, accumulate, nullptr, 0, wpre, cols);
        };
        parallel_for(pool, M, NR, run);
        return;
    }
    gemm_usual(a, b, M, N, K, C, ldc, accumulate, pool, cache);
}

// C = op(A) * B for a B given by its packing (see gemm_detail::pack_b): the usual order only.
// A convolution passes its input here and the column matrix is packed without being formed.
template <class BSource>
void gemm_source(bool trans_a, std::size_t M, std::size_t N, std::size_t K, const float* A, std::size_t lda,
                 const BSource& b, float* C, std::size_t ldc, bool accumulate, thread_pool* pool = nullptr,
                 packed_weights* cache = nullptr) {
    if (M == 0 || N == 0 || K == 0) return gemm(trans_a, false, M, N, K, A, lda, nullptr, N, C, ldc, accumulate);
    gemm_detail::gemm_usual(gemm_detail::matrix{A, lda, trans_a}, b, M, N, K, C, ldc, accumulate, pool, cache);
}

// The plain triple loop, for tests: the same contract as gemm().
inline void gemm_reference(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const float* A,
                           std::size_t lda, const float* B, std::size_t ldb, float* C, std::size_t ldc,
                           bool accumulate) {
    const gemm_detail::matrix a{A, lda, trans_a}, b{B, ldb, trans_b};
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            double s = accumulate ? C[i * ldc + j] : 0.0;
            for (std::size_t k = 0; k < K; ++k) s += static_cast<double>(a.at(i, k)) * b.at(k, j);
            C[i * ldc + j] = static_cast<float>(s);
        }
}

}  // namespace sgp::kernels
