#pragma once
// Mixed-precision GEMM: C (fp32) = op(A) * B with both operands rounded to bfloat16 and every
// product summed in fp32, the arithmetic of torch.autocast(dtype=bfloat16) on the CPU. Three
// kernels read the same packed operands:
//   amx       AMX tiles, tdpbf16ps: a 32 x 32 block of C as four 16 x 16 tiles (Sapphire
//             Rapids and later Xeons)
//   avx512    vdpbf16ps on zmm registers: 8 x 32 blocks (Cooper Lake, Zen 4, Zen 5)
//   portable  plain C++ on the same layout, for every other machine
// chosen at run time (core/cpu_features.hpp): a portable build (SGP_NATIVE=OFF, or any
// -march without them) finds the units where they exist and never executes them where they do
// not. (A -march=native build runs only on CPUs like its own anyway.)
//
// Packed layouts, in 32-bit pairs (bf16 of k and k + 1, k even; kernels/bf16.hpp):
//   A: per panel of 32 rows and step of 32 k, two 16-row halves of 16 rows x 16 pairs (an AMX
//      A tile: a row is 64 bytes of one row's k).
//   B: per panel of 32 columns and step of 32 k, two 16-column halves of 16 pairs x 16
//      columns (an AMX B tile: row t holds pair t of every column).
// Each element of C is summed over the same K steps in the same order whatever the thread
// split (threads split M or N, never K), so the result does not depend on the thread count;
// it depends on the kernel (the units round their sums differently), which is chosen per
// machine, never per call.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/cpu_features.hpp"
#include "sgp/core/error.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/core/precision.hpp"
#include "sgp/kernels/bf16.hpp"
#include "sgp/kernels/gemm.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SGP_X86_BF16 1
#endif

namespace sgp::kernels {

enum class bf16_kernel { automatic, amx, avx512, portable };

inline std::string_view name_of(bf16_kernel k) {
    switch (k) {
        case bf16_kernel::amx:
            return "amx";
        case bf16_kernel::avx512:
            return "avx512_bf16";
        case bf16_kernel::portable:
            return "portable";
        default:
            return "automatic";
    }
}
inline bool available(bf16_kernel k) {
    switch (k) {
        case bf16_kernel::amx:
            return cpu::has_amx_bf16();
        case bf16_kernel::avx512:
            return cpu::has_avx512_bf16();
        default:
            return true;
    }
}

namespace bf16_detail {
inline constexpr std::size_t P = 32;       // rows of an A panel, columns of a B panel
inline constexpr std::size_t KS = 32;      // k per step (one AMX tile's depth)
inline constexpr std::size_t BLOCK = 512;  // pairs of one (panel, step): two 16 x 16 halves
inline constexpr std::size_t KC = 512;     // k per packed block of B
static_assert(KC <= gemm_detail::max_packed_rows, "the fp32 packers keep per-row state for max_packed_rows rows");
inline constexpr std::size_t NC = 8 * P;  // columns per packed block of B
constexpr std::size_t round_up(std::size_t x, std::size_t m) {
    return (x + m - 1) / m * m;
}
inline std::atomic<bf16_kernel>& forced() {
    static std::atomic<bf16_kernel> k{bf16_kernel::automatic};
    return k;
}
}  // namespace bf16_detail

// The kernel gemm_bf16 runs: the one set by set_bf16_kernel, else the fastest this CPU has.
inline bf16_kernel bf16_kernel_in_use() {
    const bf16_kernel f = bf16_detail::forced().load();
    if (f != bf16_kernel::automatic) return f;
    if (cpu::has_amx_bf16()) return bf16_kernel::amx;
    if (cpu::has_avx512_bf16()) return bf16_kernel::avx512;
    return bf16_kernel::portable;
}
// Forces a kernel (tests, benchmarks); automatic restores the choice by CPU. A kernel this CPU
// cannot run is refused with an error, never executed.
inline void set_bf16_kernel(bf16_kernel k) {
    if (!available(k))
        fail("bf16", std::string("this CPU cannot run the ") + std::string(name_of(k)) + " kernel (" +
                         (k == bf16_kernel::amx ? "no AMX-BF16, or the OS refused the tile state" : "no AVX512-BF16") +
                         ")");
    bf16_detail::forced().store(k);
}

namespace bf16_detail {

// op(A) [M x K] whole, in panels (see the header comment).
inline std::size_t packed_a_size(std::size_t M, std::size_t K) {
    return round_up(M, P) * round_up(K, KS) / 2;
}
inline void pack_a(const gemm_detail::matrix& a, std::size_t M, std::size_t K, std::uint32_t* out, thread_pool* pool) {
    const std::size_t steps = round_up(K, KS) / KS, panels = round_up(M, P) / P;
    parallel_for(pool, panels, 1, [&](std::size_t p0, std::size_t p1) {
        for (std::size_t p = p0; p < p1; ++p)
            for (std::size_t s = 0; s < steps; ++s) {
                std::uint32_t* blk = out + (p * steps + s) * BLOCK;
                for (std::size_t r = 0; r < P; ++r) {
                    const std::size_t i = p * P + r;
                    std::uint32_t* row = blk + r * (KS / 2);  // half r / 16, row r % 16: contiguous
#if defined(__AVX512F__)
                    // A whole step of a stored row (a gradient's 65,536 columns in a weight
                    // gradient) in vectors.
                    if (!a.trans && i < M && s * KS + KS <= K) {
                        const float* src = a.p + i * a.ld + s * KS;
                        _mm512_storeu_si512(row,
                                            bf16::pairs16_consecutive(_mm512_loadu_ps(src), _mm512_loadu_ps(src + 16)));
                        continue;
                    }
#endif
                    for (std::size_t t = 0; t < KS / 2; ++t) {
                        const std::size_t k = s * KS + 2 * t;
                        const float lo = i < M && k < K ? a.at(i, k) : 0.f;
                        const float hi = i < M && k + 1 < K ? a.at(i, k + 1) : 0.f;
                        row[t] = bf16::pair(lo, hi);
                    }
                }
            }
    });
}

// Rows [k0, k0 + kc) x columns [j0, j0 + nc) of op(B), nc <= P, as `steps` B blocks: packed by
// the source's own fp32 pack_b (any operand gemm_source takes) into `f`, then paired.
template <class BSource>
void pack_bf16_panel_generic(const BSource& b, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc, float* f,
                             std::uint32_t* out) {
    constexpr std::size_t NR = gemm_detail::NR;
    using gemm_detail::pack_b;
    pack_b(b, k0, kc, j0, nc, f);
    const std::size_t have = round_up(nc, NR), steps = round_up(kc, KS) / KS;
    // Element (k, j) of the fp32 panels: NR-column panels of kc rows each.
    auto at = [&](std::size_t k, std::size_t j) -> float {
        return k < kc && j < have ? f[j / NR * NR * kc + k * NR + j % NR] : 0.f;
    };
    for (std::size_t s = 0; s < steps; ++s)
        for (std::size_t h = 0; h < 2; ++h)
            for (std::size_t t = 0; t < KS / 2; ++t) {
                std::uint32_t* row = out + s * BLOCK + (h * 16 + t) * 16;
                const std::size_t k = s * KS + 2 * t;
#if defined(__AVX512F__)
                // Sixteen pairs at once where both rows and all 16 columns are there: the packing
                // of B is a pass over the whole column matrix and would cost more than an AMX
                // product at a convolution's 64 rows.
                if constexpr (NR >= 16) {
                    if (k + 1 < kc && h * 16 + 16 <= have) {
                        const float* e = f + h * 16 / NR * NR * kc + k * NR + h * 16 % NR;
                        _mm512_store_si512(row, bf16::pairs16(_mm512_loadu_ps(e), _mm512_loadu_ps(e + NR)));
                        continue;
                    }
                }
#endif
                for (std::size_t j = 0; j < 16; ++j) row[j] = bf16::pair(at(k, h * 16 + j), at(k + 1, h * 16 + j));
            }
}

}  // namespace bf16_detail

// B's panels for gemm_bf16: the generic way for any operand; an operand may overload this to
// pack itself faster (kernels/conv_columns_bf16.hpp), found by argument-dependent lookup.
template <class BSource>
void pack_bf16_panel(const BSource& b, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc, float* scratch,
                     std::uint32_t* out) {
    bf16_detail::pack_bf16_panel_generic(b, k0, kc, j0, nc, scratch, out);
}

namespace bf16_detail {

// The mr x nr valid part of a 32 x 32 block: c (row stride ldc) = acc, or += acc.
inline void write_block(const float* acc, float* c, std::size_t ldc, std::size_t mr, std::size_t nr, bool add) {
    for (std::size_t i = 0; i < mr; ++i)
        for (std::size_t j = 0; j < nr; ++j) c[i * ldc + j] = add ? c[i * ldc + j] + acc[i * P + j] : acc[i * P + j];
}

// Portable kernel: tdpbf16ps's sum of each pair, k then k + 1, in fp32 (a product of two bf16
// is exact in fp32).
inline void block_portable(std::size_t steps, const std::uint32_t* a, const std::uint32_t* b, float* c, std::size_t ldc,
                           std::size_t mr, std::size_t nr, bool add) {
    alignas(64) float acc[P * P];
    for (std::size_t i = 0; i < P; ++i)
        for (std::size_t j = 0; j < P; ++j) acc[i * P + j] = add && i < mr && j < nr ? c[i * ldc + j] : 0.f;
    for (std::size_t s = 0; s < steps; ++s, a += BLOCK, b += BLOCK)
        for (std::size_t i = 0; i < P; ++i)
            for (std::size_t t = 0; t < KS / 2; ++t) {
                const std::uint32_t ap = a[i * (KS / 2) + t];
                const float a0 = bf16::to_float(static_cast<std::uint16_t>(ap)),
                            a1 = bf16::to_float(static_cast<std::uint16_t>(ap >> 16));
                for (std::size_t j = 0; j < P; ++j) {
                    const std::uint32_t bp = b[(j / 16 * 16 + t) * 16 + j % 16];
                    float& v = acc[i * P + j];
                    v += a0 * bf16::to_float(static_cast<std::uint16_t>(bp));
                    v += a1 * bf16::to_float(static_cast<std::uint16_t>(bp >> 16));
                }
            }
    write_block(acc, c, ldc, mr, nr, false);
}

#if defined(SGP_X86_BF16)
// vdpbf16ps: 8-row slices of the block, 16 zmm accumulators each; a pair of A broadcast, two
// vectors of B pairs per step of k.
[[gnu::target("avx512f,avx512bw,avx512bf16")]] inline void block_avx512(std::size_t steps, const std::uint32_t* a,
                                                                        const std::uint32_t* b, float* c,
                                                                        std::size_t ldc, std::size_t mr, std::size_t nr,
                                                                        bool add) {
    const bool whole = mr == P && nr == P;
    alignas(64) float tmp[P * P];
    for (std::size_t r0 = 0; r0 < P; r0 += 8) {
        if (!whole && r0 >= mr) break;
        __m512 acc[8][2];
        SGP_UNROLL(8)
        for (std::size_t i = 0; i < 8; ++i) {
            acc[i][0] = _mm512_setzero_ps();
            acc[i][1] = _mm512_setzero_ps();
        }
        for (std::size_t s = 0; s < steps; ++s) {
            const std::uint32_t* as = a + s * BLOCK + r0 * (KS / 2);
            const std::uint32_t* bs = b + s * BLOCK;
            SGP_UNROLL(4)
            for (std::size_t t = 0; t < KS / 2; ++t) {
                const __m512bh b0 = (__m512bh)_mm512_load_si512(bs + t * 16);
                const __m512bh b1 = (__m512bh)_mm512_load_si512(bs + (16 + t) * 16);
                SGP_UNROLL(8)
                for (std::size_t i = 0; i < 8; ++i) {
                    const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(as[i * (KS / 2) + t]));
                    acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
                    acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
                }
            }
        }
        SGP_UNROLL(8)
        for (std::size_t i = 0; i < 8; ++i) SGP_UNROLL(2)
        for (std::size_t h = 0; h < 2; ++h) {
            if (whole) {
                float* p = c + (r0 + i) * ldc + h * 16;
                _mm512_storeu_ps(p, add ? _mm512_add_ps(acc[i][h], _mm512_loadu_ps(p)) : acc[i][h]);
            } else {
                _mm512_store_ps(tmp + (r0 + i) * P + h * 16, acc[i][h]);
            }
        }
    }
    if (!whole) write_block(tmp, c, ldc, mr, nr, add);
}

// AMX: tiles 0-3 hold C (rows 0-15 / 16-31 x columns 0-15 / 16-31), 4-5 the A halves, 6-7
// the B halves; every tile is 16 rows of 64 bytes.
struct alignas(64) tile_config {
    std::uint8_t palette = 1, start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};
// ldtilecfg by hand: GCC 12's _tile_loadconfig tells the compiler it reads 8 bytes of the
// 64, so the writes of colsb and rows may be dropped as dead (at -O2 without -march=native
// they were, and the first tile load faulted). The whole struct is the operand here.
[[gnu::target("amx-tile")]] inline void amx_configure() {
    tile_config cfg;
    for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
}
[[gnu::target("amx-tile")]] inline void amx_release() {
    _tile_release();
}
// One 32 x 32 block over `steps` steps of k; the tiles are configured by amx_configure.
[[gnu::target("amx-tile,amx-bf16")]] inline void block_amx(std::size_t steps, const std::uint32_t* a,
                                                           const std::uint32_t* b, float* c, std::size_t ldc,
                                                           std::size_t mr, std::size_t nr, bool add) {
    const bool whole = mr == P && nr == P;
    alignas(64) float tmp[P * P];
    float* dst = whole ? c : tmp;
    const std::size_t ld = (whole ? ldc : P) * sizeof(float);
    // GCC 12's tile loads and stores are asm statements that name no memory: these barriers
    // order them against the plain reads and writes of C and tmp around them.
    if (add) {
        if (!whole)
            for (std::size_t i = 0; i < P; ++i)
                for (std::size_t j = 0; j < P; ++j) tmp[i * P + j] = i < mr && j < nr ? c[i * ldc + j] : 0.f;
        __asm__ volatile("" ::: "memory");
        _tile_loadd(0, dst, ld);
        _tile_loadd(1, dst + 16, ld);
        _tile_loadd(2, dst + 16 * (ld / sizeof(float)), ld);
        _tile_loadd(3, dst + 16 * (ld / sizeof(float)) + 16, ld);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    __asm__ volatile("" ::: "memory");  // the packed operands are written before this call
    for (std::size_t s = 0; s < steps; ++s, a += BLOCK, b += BLOCK) {
        _tile_loadd(4, a, 64);
        _tile_loadd(5, a + 256, 64);
        _tile_loadd(6, b, 64);
        _tile_loadd(7, b + 256, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, dst, ld);
    _tile_stored(1, dst + 16, ld);
    _tile_stored(2, dst + 16 * (ld / sizeof(float)), ld);
    _tile_stored(3, dst + 16 * (ld / sizeof(float)) + 16, ld);
    __asm__ volatile("" ::: "memory");
    if (!whole) write_block(tmp, c, ldc, mr, nr, false);
}
#endif

using block_fn = void (*)(std::size_t, const std::uint32_t*, const std::uint32_t*, float*, std::size_t, std::size_t,
                          std::size_t, bool);
inline block_fn block_of(bf16_kernel k) {
#if defined(SGP_X86_BF16)
    if (k == bf16_kernel::amx) return block_amx;
    if (k == bf16_kernel::avx512) return block_avx512;
#endif
    (void)k;
    return block_portable;
}

// Rows [m0, m1) x columns [n0, n1) of C on this thread (bounds multiples of P but the ends).
template <class BSource>
void range(bf16_kernel kern, const std::uint32_t* apack, const BSource& b, std::size_t m0, std::size_t m1,
           std::size_t n0, std::size_t n1, std::size_t K, float* C, std::size_t ldc, bool accumulate) {
    const block_fn block = block_of(kern);
    const std::size_t steps_all = round_up(K, KS) / KS;
    thread_local aligned_buffer<float> fpanel;
    thread_local aligned_buffer<std::uint32_t> bpack;
    fpanel.reserve(KC * P);
    bpack.reserve(KC / 2 * NC);
#if defined(SGP_X86_BF16)
    if (kern == bf16_kernel::amx) amx_configure();
#endif
    for (std::size_t jc = n0; jc < n1; jc += NC) {
        const std::size_t nc = std::min(NC, n1 - jc);
        for (std::size_t pc = 0; pc < K; pc += KC) {
            const std::size_t kc = std::min(KC, K - pc), steps = round_up(kc, KS) / KS;
            for (std::size_t jr = 0; jr < nc; jr += P)
                pack_bf16_panel(b, pc, kc, jc + jr, std::min(P, nc - jr), fpanel.data(),
                                bpack.data() + jr / P * steps * BLOCK);
            const bool add = accumulate || pc > 0;
            for (std::size_t ir = m0; ir < m1; ir += P) {
                const std::uint32_t* ap = apack + (ir / P * steps_all + pc / KS) * BLOCK;
                for (std::size_t jr = 0; jr < nc; jr += P)
                    block(steps, ap, bpack.data() + jr / P * steps * BLOCK, C + ir * ldc + jc + jr, ldc,
                          std::min(P, m1 - ir), std::min(P, nc - jr), add);
            }
        }
    }
#if defined(SGP_X86_BF16)
    if (kern == bf16_kernel::amx) amx_release();
#endif
}

}  // namespace bf16_detail

// C[M x N] = bf16(op(A)) * bf16(B) in fp32 (+ C if accumulate), B given by its fp32 packing as
// for gemm_source (a matrix, or a convolution's columns packed from its input).
template <class BSource>
void gemm_bf16_source(bool trans_a, std::size_t M, std::size_t N, std::size_t K, const float* A, std::size_t lda,
                      const BSource& b, float* C, std::size_t ldc, bool accumulate, thread_pool* pool = nullptr) {
    using namespace bf16_detail;
    // Nothing to multiply: gemm() zeroes C (or leaves it, accumulating) without reading B.
    if (M == 0 || N == 0 || K == 0) return gemm(trans_a, false, M, N, K, A, lda, nullptr, N, C, ldc, accumulate);
    const bf16_kernel kern = bf16_kernel_in_use();
    thread_local aligned_buffer<std::uint32_t> apack;
    apack.reserve(packed_a_size(M, K));
    bf16_detail::pack_a(gemm_detail::matrix{A, lda, trans_a}, M, K, apack.data(), pool);
    const std::uint32_t* ap = apack.data();
    if (N >= M)
        parallel_for(pool, N, P,
                     [&](std::size_t n0, std::size_t n1) { range(kern, ap, b, 0, M, n0, n1, K, C, ldc, accumulate); });
    else
        parallel_for(pool, M, P,
                     [&](std::size_t m0, std::size_t m1) { range(kern, ap, b, m0, m1, 0, N, K, C, ldc, accumulate); });
}

// The same contract as gemm(), in bf16 with fp32 sums.
inline void gemm_bf16(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const float* A,
                      std::size_t lda, const float* B, std::size_t ldb, float* C, std::size_t ldc, bool accumulate,
                      thread_pool* pool = nullptr) {
    gemm_bf16_source(trans_a, M, N, K, A, lda, gemm_detail::matrix{B, ldb, trans_b}, C, ldc, accumulate, pool);
}

// gemm() or gemm_bf16() by precision (training products; inference keeps its packed weights).
inline void gemm_at(precision p, bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                    const float* A, std::size_t lda, const float* B, std::size_t ldb, float* C, std::size_t ldc,
                    bool accumulate, thread_pool* pool) {
    if (p == precision::bf16)
        gemm_bf16(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, pool);
    else
        gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, pool);
}
// gemm_source() or gemm_bf16_source() by precision.
template <class BSource>
void gemm_source_at(precision p, bool trans_a, std::size_t M, std::size_t N, std::size_t K, const float* A,
                    std::size_t lda, const BSource& b, float* C, std::size_t ldc, bool accumulate, thread_pool* pool) {
    if (p == precision::bf16)
        gemm_bf16_source(trans_a, M, N, K, A, lda, b, C, ldc, accumulate, pool);
    else
        gemm_source(trans_a, M, N, K, A, lda, b, C, ldc, accumulate, pool);
}

}  // namespace sgp::kernels

#undef SGP_X86_BF16  // this header's own switch, not an interface
