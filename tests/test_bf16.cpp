// bf16 mixed precision: the rounding, every bf16 GEMM kernel this CPU can run against a double
// reference, and convolution / linear layers against their fp32 selves with a stated bound.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sgp/sgp.hpp>
#include <vector>

#include "helpers.hpp"

using sgp_test::random_vector;
namespace k = sgp::kernels;

namespace {
// The kernels this CPU runs; the others are named and skipped (never executed: SIGILL).
std::vector<k::bf16_kernel> runnable_kernels() {
    std::vector<k::bf16_kernel> out;
    for (auto kern : {k::bf16_kernel::portable, k::bf16_kernel::avx512, k::bf16_kernel::amx}) {
        if (k::available(kern))
            out.push_back(kern);
        else
            MESSAGE("skipped on this CPU: the ", std::string(k::name_of(kern)), " kernel");
    }
    return out;
}
struct restore_kernel {
    ~restore_kernel() { k::set_bf16_kernel(k::bf16_kernel::automatic); }
};
// u of fp32 sums: a sum of K terms is within K * u * sum|terms| of the exact one (for K * u << 1).
constexpr double fp32_u = 1.0 / (1 << 24);
// Relative error of a product of two operands each rounded to bf16 (8 significant bits: a
// rounding moves a value by at most u = 2^-8 of itself): (1 + u)^2 - 1 = 2^-7 + 2^-16.
constexpr double bf16_product = 1.0 / 128 + 1.0 / (1 << 16);
}  // namespace

TEST_CASE("bf16 rounding: to nearest, ties to even, NaN kept, and the vector form agrees") {
    using k::bf16::from_float;
    CHECK(from_float(1.f) == 0x3f80);
    CHECK(from_float(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie, down to even
    CHECK(from_float(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie, up to even
    CHECK(from_float(std::bit_cast<float>(0x3f808001u)) == 0x3f81);  // above the tie
    CHECK(from_float(-2.f) == 0xc000);
    CHECK(from_float(std::numeric_limits<float>::infinity()) == 0x7f80);
    CHECK(from_float(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up past the largest bf16
    CHECK(std::isnan(k::bf16::to_float(from_float(std::numeric_limits<float>::quiet_NaN()))));
    // A NaN whose payload is all in the low half would round to infinity if not caught.
    CHECK(std::isnan(k::bf16::to_float(from_float(std::bit_cast<float>(0x7f800001u)))));
    CHECK(k::bf16::round(3.14159265f) == 3.140625f);
#if defined(__AVX512F__)
    std::vector<float> v = random_vector(4096, 9, -1e4f, 1e4f);
    const float specials[] = {0.f,
                              -0.f,
                              std::numeric_limits<float>::infinity(),
                              std::bit_cast<float>(0x7f800001u),
                              std::bit_cast<float>(0x3f808000u),
                              std::bit_cast<float>(0x3f818000u),
                              std::numeric_limits<float>::denorm_min(),
                              std::numeric_limits<float>::max()};
    std::copy(std::begin(specials), std::end(specials), v.begin());
    for (std::size_t i = 0; i + 32 <= v.size(); i += 32) {
        alignas(64) std::uint32_t got[16];
        _mm512_store_si512(got, k::bf16::pairs16(_mm512_loadu_ps(&v[i]), _mm512_loadu_ps(&v[i + 16])));
        for (std::size_t j = 0; j < 16; ++j) REQUIRE(got[j] == k::bf16::pair(v[i + j], v[i + 16 + j]));
    }
#endif
}

TEST_CASE("gemm_bf16: every kernel this CPU runs, within the fp32-sum bound of the rounded operands") {
    restore_kernel restore;
    sgp::thread_pool pool(2);
    // Edges on every side: rows and columns off the 32 x 32 blocks, k off the 32-deep steps and
    // past one 512-deep block of B, and few columns.
    const std::size_t sizes[][3] = {{1, 1, 1},     {7, 5, 3},    {33, 31, 17},  {64, 70, 600},
                                    {100, 3, 513}, {5, 200, 64}, {45, 9, 1030}, {3, 4, 0}};
    for (auto kern : runnable_kernels()) {
        k::set_bf16_kernel(kern);
        CHECK(k::bf16_kernel_in_use() == kern);
        for (auto [M, N, K] : sizes)
            for (int ta = 0; ta < 2; ++ta)
                for (int tb = 0; tb < 2; ++tb)
                    for (int acc = 0; acc < 2; ++acc) {
                        CAPTURE(std::string(k::name_of(kern)));
                        CAPTURE(M);
                        CAPTURE(N);
                        CAPTURE(K);
                        CAPTURE(ta);
                        CAPTURE(tb);
                        const std::size_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
                        const auto A = random_vector((ta ? K : M) * lda, 1), B = random_vector((tb ? N : K) * ldb, 2);
                        const auto C0 = random_vector(M * ldc, 3);
                        auto C1 = C0, C2 = C0;
                        k::gemm_bf16(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C1.data(), ldc, acc, nullptr);
                        k::gemm_bf16(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C2.data(), ldc, acc, &pool);
                        CHECK(C1 == C2);  // threads split M or N, never K
                        double worst = 0;
                        for (std::size_t i = 0; i < M; ++i)
                            for (std::size_t j = 0; j < N; ++j) {
                                double exact = acc ? C0[i * ldc + j] : 0.0, mag = std::abs(exact);
                                for (std::size_t q = 0; q < K; ++q) {
                                    const double a = k::bf16::round(ta ? A[q * lda + i] : A[i * lda + q]);
                                    const double b = k::bf16::round(tb ? B[j * ldb + q] : B[q * ldb + j]);
                                    exact += a * b, mag += std::abs(a * b);
                                }
                                const double err = std::abs(C1[i * ldc + j] - exact);
                                worst = std::max(worst, err / (static_cast<double>(K + 2) * fp32_u * mag + 1e-30));
                            }
                        CHECK(worst <= 1.0);
                        for (std::size_t i = 0; i < M; ++i) CHECK(C1[i * ldc + N] == C0[i * ldc + N]);
                    }
    }
}

TEST_CASE("gemm_bf16 refuses a kernel this CPU cannot run, with its name, and keeps the previous one") {
    restore_kernel restore;
    const auto before = k::bf16_kernel_in_use();
    for (auto kern : {k::bf16_kernel::avx512, k::bf16_kernel::amx}) {
        if (k::available(kern)) continue;
        CHECK_THROWS_WITH_AS(k::set_bf16_kernel(kern), doctest::Contains(std::string(k::name_of(kern)).c_str()),
                             sgp::error);
        CHECK(k::bf16_kernel_in_use() == before);
    }
    CHECK_NOTHROW(k::set_bf16_kernel(k::bf16_kernel::portable));
    CHECK(sgp::parse_precision("bf16", "--precision") == sgp::precision::bf16);
    CHECK_THROWS_WITH_AS(sgp::parse_precision("fp16", "--precision"), doctest::Contains("fp16"), sgp::error);
}

namespace {
// |a - b| <= bf16_product * m + K * u * m + tiny, elementwise: m is the same product on |operands|.
void check_bound(const std::vector<float>& got, const std::vector<float>& fp32, const std::vector<float>& mag,
                 std::size_t K) {
    REQUIRE(got.size() == fp32.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double bound = (bf16_product + 2.0 * static_cast<double>(K) * fp32_u) * mag[i] + 1e-30;
        worst = std::max(worst, std::abs(static_cast<double>(got[i]) - fp32[i]) / bound);
    }
    CHECK(worst <= 1.0);
    CHECK(got != fp32);  // bf16 did run: its rounding shows
}
std::vector<float> abs_of(std::vector<float> v) {
    for (auto& x : v) x = std::abs(x);
    return v;
}

// y, dx and dW of one training forward and backward of `layer` on x and dy (batch images).
template <class L>
std::array<std::vector<float>, 3> forward_backward(L& layer, const std::vector<float>& x, const std::vector<float>& dy,
                                                   std::size_t batch, sgp::precision p) {
    sgp::aligned_buffer<float> s1(L::workspace(batch)), s2(L::workspace(batch));
    sgp::run_context cx;
    cx.training = true;
    cx.precision = p;
    cx.scratch = &s1;
    cx.scratch2 = &s2;
    std::vector<float> y(L::out_shape.size() * batch), dx(x.size());
    layer.forward(cx, x.data(), y.data(), batch);
    layer.backward(cx, x.data(), y.data(), dy.data(), dx.data(), batch);
    std::vector<float> dw;
    layer.for_each_tensor([&](const sgp::tensor_ref& t) {
        if (t.name == "weight") dw.assign(t.grad, t.grad + t.size());
    });
    return {y, dx, dw};
}

// A layer (weights from seed 9) in bf16 against itself in fp32: y, dx and dW each within the bound
// of rounding both operands, the magnitudes from the same layer on |weights|, |x| and |dy|.
// taps: kernel positions per input channel (k * k; 1 for linear).
template <class L>
void check_layer_bf16(std::size_t batch, std::size_t taps) {
    L layer;
    sgp::rng r(9);
    layer.init(r);
    const auto x = random_vector(L::in_shape.size() * batch, 41), dy = random_vector(L::out_shape.size() * batch, 42);
    const auto fp = forward_backward(layer, x, dy, batch, sgp::precision::fp32);
    const auto bf = forward_backward(layer, x, dy, batch, sgp::precision::bf16);
    L mag = layer;
    mag.for_each_tensor([&](const sgp::tensor_ref& t) {
        for (std::size_t i = 0; i < t.size(); ++i) t.value[i] = std::abs(t.value[i]);
    });
    const auto m = forward_backward(mag, abs_of(x), abs_of(dy), batch, sgp::precision::fp32);
    const std::size_t cin = L::in_shape.c, cout = L::out_shape.c, plane = L::out_shape.flat ? 1 : L::out_shape.plane();
    check_bound(bf[0], fp[0], m[0], cin * taps);
    check_bound(bf[1], fp[1], m[1], cout * taps);
    check_bound(bf[2], fp[2], m[2], batch * plane);
}
}  // namespace

TEST_CASE("conv2d and linear in bf16: forward, data and weight gradients within the bf16 bound of fp32") {
    restore_kernel restore;
    for (auto kern : runnable_kernels()) {
        k::set_bf16_kernel(kern);
        CAPTURE(std::string(k::name_of(kern)));
        check_layer_bf16<sgp::layers::conv3x3<40>::bind<sgp::shape{12, 9, 9, false}>>(3, 9);
        check_layer_bf16<sgp::layers::linear<21, true>::bind<sgp::shape{70, 1, 1, true}>>(3, 1);
        // Off the fast packers: stride 2 onto a 1-pixel output over 300 images (a weight
        // gradient's 512-pixel block of 300 runs), and a 1x1 convolution (its input is the matrix).
        using strided = sgp::layers::conv2d<24, 3, 2, 1>::bind<sgp::shape{8, 2, 2, false}>;
        static_assert(strided::out_shape.h == 1 && strided::out_shape.w == 1);
        check_layer_bf16<strided>(300, 9);
        check_layer_bf16<sgp::layers::conv1x1<20>::bind<sgp::shape{12, 5, 5, false}>>(3, 1);
    }
}

TEST_CASE("evaluation in bf16 runs the training forward's products (no fp32 weights packed for it)") {
    restore_kernel restore;
    using conv_t = sgp::layers::conv3x3<40>::bind<sgp::shape{12, 9, 9, false}>;
    const std::size_t n = 3;
    conv_t conv;
    sgp::rng r(7);
    conv.init(r);
    sgp::aligned_buffer<float> s1(conv_t::workspace(n)), s2(conv_t::workspace(n));
    const auto x = random_vector(12 * n * 81, 11);
    auto forward = [&](bool training, sgp::precision p) {
        sgp::run_context cx;
        cx.training = training;
        cx.precision = p;
        cx.scratch = &s1;
        cx.scratch2 = &s2;
        std::vector<float> y(40 * n * 81);
        conv.forward(cx, x.data(), y.data(), n);
        return y;
    };
    const auto fp_eval = forward(false, sgp::precision::fp32);  // packs fp32 weights for evaluation
    const auto bf_train = forward(true, sgp::precision::bf16);
    CHECK(forward(false, sgp::precision::bf16) == bf_train);
    CHECK(bf_train != fp_eval);
    CHECK(forward(false, sgp::precision::fp32) == fp_eval);
}

TEST_CASE("a network trains in bf16, and fp32 stays the default, bit for bit") {
    using namespace sgp::layers;
    using net_t = sgp::sequential<sgp::input<1, 8, 8>, conv3x3<8>, batch_norm, relu, max_pool<2>, conv3x3<16>,
                                  batch_norm, relu, flatten, linear<3>>;
    const std::size_t n = 16;
    std::vector<int> labels(n);
    for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<int>(i % 3);
    const auto x = random_vector(n * 64, 21);
    auto losses = [&](sgp::trainer_options o) {
        sgp::trainer<net_t> t{sgp::sgd{.lr = 0.05f, .momentum = 0.9f}, o};
        t.net().reserve(n);
        std::vector<float> out;
        for (int s = 0; s < 30; ++s) {
            std::copy(x.begin(), x.end(), t.net().input_buffer());
            out.push_back(t.train_step(labels.data(), n, 0.05f).loss);
        }
        return out;
    };
    const auto fp_default = losses({.threads = 1});
    const auto fp_explicit = losses({.threads = 1, .precision = sgp::precision::fp32});
    const auto bf = losses({.threads = 2, .precision = sgp::precision::bf16});
    CHECK(fp_default == fp_explicit);
    CHECK(bf != fp_default);
    for (float l : bf) REQUIRE(std::isfinite(l));
    // It learns the 16 images as fp32 does: the last loss far below the first, and near fp32's.
    CHECK(bf.back() < 0.2f * bf.front());
    CHECK(std::abs(bf.back() - fp_default.back()) < 0.1f);
}

TEST_CASE("bf16 packing of a convolution's columns: the fast packers equal the generic path bit for bit") {
    // Stride-1 shapes the fast path serves: padding 0 to k/2 + 1, maps narrower and wider than
    // a vector, batches ending inside a 32-pixel panel, k not a multiple of a step.
    struct shape_case {
        std::size_t c, h, n, k, pad;
    };
    const shape_case cases[] = {{3, 7, 2, 3, 1}, {5, 32, 2, 3, 1}, {4, 4, 3, 3, 1},  {2, 2, 5, 3, 1}, {3, 9, 2, 5, 2},
                                {6, 5, 2, 3, 0}, {2, 17, 1, 3, 1}, {2, 40, 1, 3, 2}, {3, 6, 2, 1, 0}};
    sgp::aligned_buffer<float> scratch(k::bf16_detail::KC * k::bf16_detail::P);
    sgp::aligned_buffer<std::uint32_t> fast(16 * k::bf16_detail::BLOCK), generic(fast.size());
    std::size_t panels = 0;
    for (const auto& sc : cases) {
        const std::size_t o = sc.h + 2 * sc.pad - sc.k + 1;
        const k::conv_geometry g{sc.n, sc.c, sc.h, sc.h, sc.k, 1, sc.pad, o, o};
        const auto x = random_vector(sc.c * sc.n * sc.h * sc.h, 31);
        auto compare = [&](const auto& src, std::size_t rows, std::size_t cols, std::size_t kstep) {
            for (std::size_t k0 = 0; k0 < rows; k0 += kstep)
                for (std::size_t j0 = 0; j0 < cols; j0 += 32) {
                    const std::size_t kc = std::min(kstep, rows - k0), nc = std::min<std::size_t>(32, cols - j0);
                    std::fill_n(fast.data(), fast.size(), 7u);
                    std::fill_n(generic.data(), generic.size(), 7u);
                    k::pack_bf16_panel(src, k0, kc, j0, nc, scratch.data(), fast.data());
                    k::bf16_detail::pack_bf16_panel_generic(src, k0, kc, j0, nc, scratch.data(), generic.data());
                    CAPTURE(sc.h);
                    CAPTURE(k0);
                    CAPTURE(j0);
                    REQUIRE(std::equal(fast.data(), fast.data() + fast.size(), generic.data()));
                    ++panels;
                }
        };
        compare(k::conv_columns{x.data(), g}, g.rows(), g.cols(), 40);
        compare(k::conv_columns_transposed{x.data(), g}, g.cols(), g.rows(), 70);
    }
    CHECK(panels > 100);
}
