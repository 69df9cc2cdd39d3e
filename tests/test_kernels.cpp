// Kernels against plain reference loops.
#include <doctest/doctest.h>

#include <limits>
#include <sgp/sgp.hpp>

#include "helpers.hpp"

using sgp_test::random_vector;

TEST_CASE("gemm matches the reference for every transpose, edge sizes and accumulation") {
    sgp::thread_pool pool(2);
    // N <= 16 takes the transposed order (C^T = B^T A^T): {100, 3, 513}, {70, 16, 600}, {45, 9, 20}.
    const std::size_t sizes[][3] = {{1, 1, 1},     {7, 5, 3},    {13, 33, 17},  {40, 70, 300},
                                    {100, 3, 513}, {5, 200, 64}, {70, 16, 600}, {45, 9, 20}};
    for (auto [M, N, K] : sizes)
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb)
                for (int acc = 0; acc < 2; ++acc) {
                    CAPTURE(M);
                    CAPTURE(N);
                    CAPTURE(K);
                    CAPTURE(ta);
                    CAPTURE(tb);
                    // Leading dimensions larger than the matrices, to catch stride mistakes.
                    const std::size_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
                    const auto A = random_vector((ta ? K : M) * lda, 1), B = random_vector((tb ? N : K) * ldb, 2);
                    auto C = random_vector(M * ldc, 3), R = C;
                    sgp::kernels::gemm(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, acc, &pool);
                    sgp::kernels::gemm_reference(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, R.data(), ldc, acc);
                    double worst = 0;
                    for (std::size_t i = 0; i < M; ++i)
                        for (std::size_t j = 0; j < N; ++j)
                            worst = std::max(worst, static_cast<double>(std::abs(C[i * ldc + j] - R[i * ldc + j])));
                    CHECK(worst <= 1e-4 * std::sqrt(static_cast<double>(K)));
                    // Padding columns of C are never written.
                    for (std::size_t i = 0; i < M; ++i) CHECK(C[i * ldc + N] == R[i * ldc + N]);
                }
}

TEST_CASE("gemm gives bit-identical results for any thread count") {
    const std::size_t M = 37, N = 301, K = 290;
    const auto A = random_vector(M * K, 4), B = random_vector(K * N, 5);
    std::vector<float> c1(M * N), c2(M * N), c3(N * M);
    sgp::thread_pool one(1), two(2);
    sgp::kernels::gemm(false, false, M, N, K, A.data(), K, B.data(), N, c1.data(), N, false, &one);
    sgp::kernels::gemm(false, false, M, N, K, A.data(), K, B.data(), N, c2.data(), N, false, &two);
    CHECK(c1 == c2);
    // Splitting M instead of N (a tall product) keeps every element's sum order too.
    std::vector<float> t1(N * M), t2(N * M);
    sgp::kernels::gemm(true, true, N, M, K, B.data(), N, A.data(), K, t1.data(), M, false, &one);
    sgp::kernels::gemm(true, true, N, M, K, B.data(), N, A.data(), K, t2.data(), M, false, &two);
    CHECK(t1 == t2);
}

TEST_CASE("gemm: the transposed order for few columns is bit-identical to the usual one") {
    // Column j of C = A B depends only on column j of B: computing 12 columns (transposed
    // order) or 40 (usual order) must give the same bits in the first 12.
    const std::size_t M = 75, K = 700, wide = 40, narrow = 12;
    const auto A = random_vector(M * K, 8), B = random_vector(K * wide, 9);
    std::vector<float> cw(M * wide), cn(M * narrow);
    sgp::thread_pool two(2);
    sgp::kernels::gemm(false, false, M, wide, K, A.data(), K, B.data(), wide, cw.data(), wide, false, &two);
    sgp::kernels::gemm(false, false, M, narrow, K, A.data(), K, B.data(), wide, cn.data(), narrow, false, &two);
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < narrow; ++j) REQUIRE(cn[i * narrow + j] == cw[i * wide + j]);
}

TEST_CASE("gemm with packed weights: reused while valid, repacked after invalidate()") {
    const std::size_t M = 50, K = 300;
    auto A = random_vector(M * K, 10);
    sgp::kernels::packed_weights pw;
    CHECK_FALSE(pw.valid());
    // Both orders (N = 4 transposed, N = 40 usual) and a switch between them on one pack.
    for (std::size_t N : {4, 4, 40, 40, 4}) {
        CAPTURE(N);
        const auto B = random_vector(K * N, 11);
        std::vector<float> plain(M * N), cached(M * N);
        sgp::kernels::gemm(false, false, M, N, K, A.data(), K, B.data(), N, plain.data(), N, false);
        sgp::kernels::gemm(false, false, M, N, K, A.data(), K, B.data(), N, cached.data(), N, false, nullptr, &pw);
        CHECK(pw.valid());
        CHECK(plain == cached);
        if (N == 40) continue;         // same weights for the next product: the pack is reused
        for (auto& a : A) a *= -0.5f;  // the weights change: the owner invalidates the pack
        pw.invalidate();
    }
}

TEST_CASE("col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>") {
    sgp::thread_pool pool(2);
    const sgp::kernels::conv_geometry geos[] = {{2, 3, 7, 6, 3, 2, 1, 4, 3},
                                                {3, 2, 5, 5, 3, 1, 1, 5, 5},
                                                {1, 4, 6, 6, 5, 1, 0, 2, 2},
                                                {1, 2, 2, 2, 5, 1, 2, 2, 2},
                                                {2, 1, 9, 4, 3, 3, 2, 4, 2}};
    for (const auto& g : geos) {
        const auto x = random_vector(g.c * g.n * g.h * g.w, 6);
        const auto c = random_vector(g.rows() * g.cols(), 7);
        std::vector<float> col(c.size()), dx(x.size());
        sgp::kernels::im2col(g, x.data(), col.data(), &pool);
        sgp::kernels::col2im(g, c.data(), dx.data(), &pool);
        double lhs = 0, rhs = 0;
        for (std::size_t i = 0; i < c.size(); ++i) lhs += static_cast<double>(col[i]) * c[i];
        for (std::size_t i = 0; i < x.size(); ++i) rhs += static_cast<double>(x[i]) * dx[i];
        CHECK(lhs == doctest::Approx(rhs).epsilon(1e-5));
    }
}

TEST_CASE("im2col equals the definition for strides, paddings and kernels wider than the map") {
    sgp::thread_pool pool(2);
    const sgp::kernels::conv_geometry geos[] = {{2, 3, 7, 6, 3, 2, 1, 4, 3}, {3, 2, 5, 5, 3, 1, 1, 5, 5},
                                                {1, 4, 6, 6, 5, 1, 0, 2, 2}, {1, 2, 2, 2, 5, 1, 2, 2, 2},
                                                {2, 1, 9, 4, 3, 3, 2, 4, 2}, {1, 1, 3, 3, 1, 2, 0, 2, 2}};
    for (const auto& g : geos) {
        const auto x = random_vector(g.c * g.n * g.h * g.w, 13);
        std::vector<float> col(g.rows() * g.cols(), -1.f);
        sgp::kernels::im2col(g, x.data(), col.data(), &pool);
        for (std::size_t c = 0; c < g.c; ++c)
            for (std::size_t ky = 0; ky < g.k; ++ky)
                for (std::size_t kx = 0; kx < g.k; ++kx)
                    for (std::size_t n = 0; n < g.n; ++n)
                        for (std::size_t oy = 0; oy < g.oh; ++oy)
                            for (std::size_t ox = 0; ox < g.ow; ++ox) {
                                const auto iy = static_cast<long>(oy * g.stride + ky) - static_cast<long>(g.pad);
                                const auto ix = static_cast<long>(ox * g.stride + kx) - static_cast<long>(g.pad);
                                const bool in =
                                    iy >= 0 && ix >= 0 && iy < static_cast<long>(g.h) && ix < static_cast<long>(g.w);
                                const float want = in ? x[((c * g.n + n) * g.h + static_cast<std::size_t>(iy)) * g.w +
                                                          static_cast<std::size_t>(ix)]
                                                      : 0.f;
                                REQUIRE(col[((c * g.k + ky) * g.k + kx) * g.cols() + (n * g.oh + oy) * g.ow + ox] ==
                                        want);
                            }
    }
}

TEST_CASE("a convolution's columns packed from the input equal im2col then gemm, bit for bit") {
    sgp::thread_pool pool(2);
    const sgp::kernels::conv_geometry geos[] = {{2, 3, 7, 6, 3, 2, 1, 4, 3},      {3, 2, 5, 5, 3, 1, 1, 5, 5},
                                                {1, 4, 6, 6, 5, 1, 0, 2, 2},      {2, 1, 9, 4, 3, 3, 2, 4, 2},
                                                {4, 30, 12, 12, 3, 1, 1, 12, 12}, {1, 3, 40, 40, 3, 1, 1, 40, 40}};
    for (const auto& g : geos) {
        const std::size_t M = 19;
        const auto x = random_vector(g.c * g.n * g.h * g.w, 14), w = random_vector(M * g.rows(), 15);
        std::vector<float> col(g.rows() * g.cols()), want(M * g.cols()), got(M * g.cols());
        sgp::kernels::im2col(g, x.data(), col.data(), &pool);
        sgp::kernels::gemm(false, false, M, g.cols(), g.rows(), w.data(), g.rows(), col.data(), g.cols(), want.data(),
                           g.cols(), false, &pool);
        sgp::kernels::gemm_source(false, M, g.cols(), g.rows(), w.data(), g.rows(),
                                  sgp::kernels::conv_columns{x.data(), g}, got.data(), g.cols(), false, &pool);
        CHECK(got == want);
        // The weight gradient's operand: dW = dY col^T, col^T packed from x as well.
        const auto dy = random_vector(M * g.cols(), 16);
        std::vector<float> dw_want(M * g.rows()), dw_got(M * g.rows());
        sgp::kernels::gemm(false, true, M, g.rows(), g.cols(), dy.data(), g.cols(), col.data(), g.cols(),
                           dw_want.data(), g.rows(), false, &pool);
        sgp::kernels::gemm_source(false, M, g.rows(), g.cols(), dy.data(), g.cols(),
                                  sgp::kernels::conv_columns_transposed{x.data(), g}, dw_got.data(), g.rows(), false,
                                  &pool);
        CHECK(dw_got == dw_want);
    }
}

TEST_CASE("im2col places padding zeros and strided pixels") {
    // 1 channel, 1 image, 3x3 map, 3x3 kernel, stride 2, padding 1 -> 2x2 output.
    const sgp::kernels::conv_geometry g{1, 1, 3, 3, 3, 2, 1, 2, 2};
    const std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::vector<float> col(g.rows() * g.cols());
    sgp::kernels::im2col(g, x.data(), col.data(), nullptr);
    // Row (ky=0, kx=0) reads pixel (2oy-1, 2ox-1): only output (1,1) sees pixel (1,1) = 5.
    CHECK(std::vector<float>(col.begin(), col.begin() + 4) == std::vector<float>{0, 0, 0, 5});
    // Row (ky=1, kx=1) is the centre: pixels (0,0), (0,2), (2,0), (2,2).
    CHECK(std::vector<float>(col.begin() + 16, col.begin() + 20) == std::vector<float>{1, 3, 7, 9});
}

TEST_CASE("batch-norm statistics and backward agree with direct formulas") {
    const auto x = random_vector(1000, 8, -3.f, 5.f);
    const auto s = sgp::kernels::bn_channel_stats(x.data(), x.size());
    double m = 0, v = 0;
    for (float f : x) m += f;
    m /= 1000;
    for (float f : x) v += (f - m) * (f - m);
    v /= 1000;
    CHECK(s.mean == doctest::Approx(m).epsilon(1e-6));
    CHECK(s.var == doctest::Approx(v).epsilon(1e-6));
}

TEST_CASE("relu kernel handles lengths that are not a multiple of the SIMD width") {
    for (std::size_t n : {1u, 15u, 16u, 17u, 33u}) {
        const auto x = random_vector(n, 9);
        std::vector<float> y(n);
        sgp::kernels::relu(x.data(), y.data(), n);
        for (std::size_t i = 0; i < n; ++i) CHECK(y[i] == (x[i] > 0 ? x[i] : 0.f));
    }
}

TEST_CASE("parallel_for covers every index exactly once and rethrows worker exceptions") {
    sgp::thread_pool pool(2);
    for (std::size_t n : {0u, 1u, 5u, 1000u}) {
        std::vector<int> hits(n, 0);
        pool.parallel_for(n, 3, [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) ++hits[i];
        });
        for (int h : hits) CHECK(h == 1);
    }
#if !defined(SGP_NO_THREADS)
    CHECK(pool.size() == 2);
    CHECK_THROWS_AS(pool.parallel_for(100, 1,
                                      [&](std::size_t b, std::size_t) {
                                          if (b > 0) throw sgp::error("worker");
                                      }),
                    sgp::error);
#else
    CHECK(pool.size() == 1);  // a single-threaded build never creates a thread
#endif
    sgp::thread_pool single(1);
    CHECK(single.size() == 1);
}

TEST_CASE("packed weights never go stale: a weight written through for_each_tensor is used") {
    using net_t = sgp::sequential<sgp::input<2, 4, 4>, sgp::layers::conv3x3<8>, sgp::layers::batch_norm,
                                  sgp::layers::relu, sgp::layers::flatten, sgp::layers::linear<3>>;
    net_t a(1), b(2);
    const auto x = random_vector(2 * 4 * 4, 12);
    auto run = [&](net_t& net) {
        net.reserve(1);
        std::copy(x.begin(), x.end(), net.input_buffer());
        sgp::run_context cx;  // evaluation: conv (N = 16) and linear (N = 1) use packed weights
        const float* y = net.forward(1, cx);
        return std::vector<float>(y, y + 3);
    };
    const auto before = run(a);
    a.for_each_tensor([](const std::string&, const sgp::tensor_ref& t) {
        if (t.value && t.role == sgp::tensor_role::parameter)
            for (std::size_t i = 0; i < t.size(); ++i) t.value[i] *= 0.75f;
    });
    run(b);  // b's packs are built from its own weights, then replaced by a's
    std::vector<std::vector<float>> w;
    a.for_each_tensor([&](const std::string&, const sgp::tensor_ref& t) {
        if (t.value) w.emplace_back(t.value, t.value + t.size());
    });
    std::size_t k = 0;
    b.for_each_tensor([&](const std::string&, const sgp::tensor_ref& t) {
        if (t.value) std::copy(w[k].begin(), w[k].end(), t.value), ++k;
    });
    const auto after = run(a);
    CHECK(after != before);
    CHECK(after == run(b));
}

namespace {

// The convolution's definition in double, then the epilogue: y[m][n][oy][ox].
std::vector<double> conv_reference(const sgp::kernels::direct_geometry& g, const std::vector<float>& x,
                                   const std::vector<float>& w, std::size_t m, const sgp::kernels::conv_epilogue& e) {
    const std::size_t oh = g.oh(), ow = g.ow();
    std::vector<double> y(m * g.n * oh * ow);
    for (std::size_t o = 0; o < m; ++o)
        for (std::size_t n = 0; n < g.n; ++n)
            for (std::size_t oy = 0; oy < oh; ++oy)
                for (std::size_t ox = 0; ox < ow; ++ox) {
                    double s = 0;
                    for (std::size_t c = 0; c < g.c; ++c)
                        for (std::size_t ky = 0; ky < g.k; ++ky)
                            for (std::size_t kx = 0; kx < g.k; ++kx) {
                                const auto iy =
                                    static_cast<std::ptrdiff_t>(oy + ky) - static_cast<std::ptrdiff_t>(g.pad);
                                const auto ix =
                                    static_cast<std::ptrdiff_t>(ox + kx) - static_cast<std::ptrdiff_t>(g.pad);
                                if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(g.h) ||
                                    ix >= static_cast<std::ptrdiff_t>(g.w))
                                    continue;
                                s += static_cast<double>(w[((o * g.c + c) * g.k + ky) * g.k + kx]) *
                                     x[((c * g.n + n) * g.h + static_cast<std::size_t>(iy)) * g.w +
                                       static_cast<std::size_t>(ix)];
                            }
                    if (e.bias) s += e.bias[o];
                    if (e.scale) s = s * e.scale[o] + e.shift[o];
                    if (e.relu) s = std::max(s, 0.0);
                    y[((o * g.n + n) * oh + oy) * ow + ox] = s;
                }
    return y;
}

// Runs both direct kernels (the few-pixel one where it applies) on g with m output channels,
// on exactly sized buffers, with and without threads; checks them against the definition.
template <std::size_t K>
void check_direct_kernels(const sgp::kernels::direct_geometry& g, std::size_t m, bool epilogue) {
    namespace k = sgp::kernels;
    INFO("n ", g.n, " c ", g.c, " map ", g.h, "x", g.w, " k ", K, " pad ", g.pad, " m ", m, " epilogue ", epilogue);
    const auto x = random_vector(g.c * g.n * g.h * g.w, 21), w = random_vector(m * g.c * K * K, 22);
    const auto bias = random_vector(m, 23), scale = random_vector(m, 24), shift = random_vector(m, 25);
    k::conv_epilogue e;
    if (epilogue) e = {bias.data(), scale.data(), shift.data(), true};
    const auto want = conv_reference(g, x, w, m, e);
    auto close = [&](const std::vector<float>& got) {
        REQUIRE(got.size() == want.size());
        for (std::size_t i = 0; i < got.size(); ++i)
            REQUIRE(std::abs(got[i] - want[i]) <= 1e-4 * (1 + std::abs(want[i])) * static_cast<double>(g.c * K));
    };
    sgp::thread_pool pool(2);
    std::vector<float> xpad(g.input_floats()), ypad(g.output_floats(m)), y1(want.size()), y2(want.size());
    std::vector<float> wd(k::direct_weights_size(m, g.c, K));
    k::pack_direct_weights(w.data(), m, g.c, K, wd.data());
    k::direct_conv<K>(g, x.data(), wd.data(), m, xpad.data(), ypad.data(), y1.data(), e, nullptr);
    close(y1);
    k::direct_conv<K>(g, x.data(), wd.data(), m, xpad.data(), ypad.data(), y2.data(), e, &pool);
    CHECK(y1 == y2);  // tiles do not depend on the thread count
    if (g.n * g.oh() * g.ow() <= k::few_pixel_limit) {
        std::vector<float> wf(k::few_pixel_weights_size(m, g.c, K));
        k::pack_few_pixel_weights(w.data(), m, g.c, K, wf.data());
        k::few_pixel_conv<K>(g, x.data(), wf.data(), m, xpad.data(), y1.data(), e, nullptr);
        close(y1);
        k::few_pixel_conv<K>(g, x.data(), wf.data(), m, xpad.data(), y2.data(), e, &pool);
        CHECK(y1 == y2);
    }
}

}  // namespace

TEST_CASE("direct and few-pixel convolutions equal the definition: kernels, paddings, odd maps, channel tails") {
    using g = sgp::kernels::direct_geometry;  // n, c, h, w, k, pad
    for (std::size_t m : {1, 5, 8, 9, 33}) {
        for (bool e : {false, true}) {
            check_direct_kernels<3>(g{1, 3, 5, 5, 3, 1}, m, e);
            check_direct_kernels<3>(g{2, 2, 7, 4, 3, 1}, m, e);
            check_direct_kernels<3>(g{1, 17, 2, 2, 3, 1}, m, e);
            check_direct_kernels<3>(g{3, 4, 1, 1, 3, 1}, m, e);
            check_direct_kernels<3>(g{1, 5, 4, 4, 3, 0}, m, e);
            check_direct_kernels<3>(g{2, 6, 32, 3, 3, 1}, m, e);
            // Rows of 1, 2 and 4 AVX-512 vectors (the row tiles there), and of 3.
            check_direct_kernels<3>(g{2, 3, 4, 16, 3, 1}, m, e);  // pairs of rows on AVX-512
            check_direct_kernels<3>(g{2, 2, 5, 16, 3, 1}, m, e);  // an odd height: rows one at a time
            check_direct_kernels<3>(g{1, 2, 3, 32, 3, 1}, m, e);
            check_direct_kernels<3>(g{1, 2, 2, 64, 3, 1}, m, e);
            check_direct_kernels<3>(g{2, 2, 3, 48, 3, 1}, m, e);  // 3 vectors: the positions tile
            // The small maps (the small-map tiles on AVX-512): images over several vectors, one
            // image per vector, four per vector with a partial last vector.
            check_direct_kernels<3>(g{3, 3, 8, 8, 3, 1}, m, e);
            check_direct_kernels<3>(g{1, 2, 12, 8, 3, 1}, m, e);
            check_direct_kernels<3>(g{3, 4, 4, 4, 3, 1}, m, e);
            check_direct_kernels<3>(g{1, 5, 4, 4, 3, 1}, m, e);  // one vector in all: blocks in pairs
            check_direct_kernels<3>(g{5, 3, 2, 2, 3, 1}, m, e);
            check_direct_kernels<3>(g{8, 2, 2, 2, 3, 1}, m, e);
            check_direct_kernels<1>(g{2, 7, 3, 5, 1, 0}, m, e);
            check_direct_kernels<1>(g{1, 40, 1, 1, 1, 0}, m, e);
            check_direct_kernels<5>(g{1, 2, 6, 6, 5, 2}, m, e);
            check_direct_kernels<5>(g{2, 3, 6, 7, 5, 0}, m, e);
        }
    }
}

TEST_CASE("a conv2d layer's algorithms agree, and the automatic choice follows the measured rule") {
    using sgp::layers::conv_method;
    auto run = [](auto& conv, std::size_t n, conv_method m, std::uint64_t seed) {
        using layer = std::remove_reference_t<decltype(conv)>;
        constexpr auto in = layer::in_shape;
        const auto x = random_vector(in.c * n * in.plane(), seed);
        sgp::aligned_buffer<float> s1(layer::workspace(n)), s2(layer::workspace(n));
        std::vector<float> y(layer::out_shape.c * n * layer::out_shape.plane());
        sgp::run_context cx;
        cx.scratch = &s1;
        cx.scratch2 = &s2;
        conv.set_method(m);
        conv.forward(cx, x.data(), y.data(), n);
        return y;
    };
    auto agree = [](const std::vector<float>& a, const std::vector<float>& b) {
        REQUIRE(a.size() == b.size());
        for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(1e-4).scale(1));
    };
    // 48 output channels on a 2x2 map: every algorithm applies at batch 1, the few-pixel kernel
    // not at `over`.
    constexpr std::size_t side = 2;
    constexpr std::size_t over = sgp::kernels::few_pixel_limit / (side * side) + 1;
    sgp::layers::conv3x3<48, true>::bind<sgp::shape{12, side, side, false}> conv;
    sgp::rng r(4);
    conv.init(r);
    for (std::size_t i = 0; i < 48; ++i) conv.bias()[i] = 0.1f * static_cast<float>(i % 7);
    const auto g1 = run(conv, 1, conv_method::gemm, 30);
    agree(run(conv, 1, conv_method::direct, 30), g1);
    agree(run(conv, 1, conv_method::few_pixel, 30), g1);
    conv.set_method(conv_method::automatic);
    CHECK(conv.uses_few_pixel(1));
    CHECK_FALSE(conv.uses_few_pixel(over));
    // Through the padded copy 4x4 maps leave 16 of 36 positions useful (2x2 ones 4 of 16): wide
    // layers keep the GEMM, narrow ones not. On AVX-512 the small-map tiles compute no padding,
    // and every layer takes them.
    CHECK(conv.uses_direct() == sgp::kernels::small_map_applies(3, 1, side, side));
    CHECK(sgp::kernels::small_map_applies(3, 1, side, side) == (sgp::simd::width == 16));
    conv.set_out_channels(32);
    CHECK(conv.uses_direct());
    // 4x4 maps: on AVX-512 the small-map tiles rather than the few-pixel kernel at batch 1 (which
    // applies there, when forced); elsewhere 16 pixels exceed the few-pixel limit.
    sgp::layers::conv3x3<48>::bind<sgp::shape{12, 4, 4, false}> map4;
    CHECK_FALSE(map4.uses_few_pixel(1));
    map4.set_method(conv_method::few_pixel);
    CHECK(map4.uses_few_pixel(1) == (sgp::kernels::few_pixel_limit >= 16));
    // A 1x1 convolution keeps the GEMM (its input is the column matrix as it is).
    sgp::layers::conv1x1<16>::bind<sgp::shape{12, side, side, false}> pointwise;
    CHECK_FALSE(pointwise.uses_direct());
    CHECK_FALSE(pointwise.uses_few_pixel(1));
    // Batch `over`: the few-pixel kernel does not apply; asked for, the layer runs the GEMM.
    const auto g3 = run(conv, over, conv_method::gemm, 31);
    agree(run(conv, over, conv_method::direct, 31), g3);
    CHECK(run(conv, over, conv_method::few_pixel, 31) == g3);
}

TEST_CASE("the direct weight gradient equals the definition, for any thread count") {
    namespace k = sgp::kernels;
    constexpr std::size_t W = sgp::simd::width;
    using g_t = k::direct_geometry;  // n, c, h, w, k, pad
    // Rows of 1, 2 and 4 vectors; images that split across the 4096-pixel chunks; output
    // channel counts with tails of every size. On AVX-512 also the small maps (8 wide over 4 and
    // 12 rows, 4x4, 2x2 with a partial last vector), across the runs of 256 vectors.
    std::vector<g_t> shapes{g_t{2, 3, 5, W, 3, 1}, g_t{3, 1, 2 * W, 2 * W, 3, 1}, g_t{1, 2, 3, 4 * W, 3, 1},
                            g_t{9, 2, 2 * W, 2 * W, 3, 1}};
    if (k::small_map_applies(3, 1, 8, 8))
        shapes.insert(shapes.end(), {g_t{3, 2, 8, 8, 3, 1}, g_t{2, 3, 12, 8, 3, 1}, g_t{70, 1, 8, 8, 3, 1},
                                     g_t{5, 3, 4, 4, 3, 1}, g_t{7, 2, 2, 2, 3, 1}, g_t{1100, 1, 2, 2, 3, 1}});
    for (const g_t g : shapes) {
        REQUIRE(k::direct_weight_grad_applies(3, 1, g.oh(), g.ow()));
        for (std::size_t m : {1, 2, 3, 5}) {
            INFO("n ", g.n, " c ", g.c, " map ", g.h, "x", g.w, " m ", m);
            const std::size_t pixels = g.n * g.oh() * g.ow();
            const auto x = random_vector(g.c * g.n * g.h * g.w, 31), dy = random_vector(m * pixels, 32);
            std::vector<double> want(m * g.c * 9, 0.0);
            double scale = 0;  // sum of |products| per weight, for the float bound
            for (std::size_t o = 0; o < m; ++o)
                for (std::size_t c = 0; c < g.c; ++c)
                    for (std::size_t t = 0; t < 9; ++t) {
                        double s = 0, a = 0;
                        for (std::size_t n = 0; n < g.n; ++n)
                            for (std::size_t oy = 0; oy < g.oh(); ++oy)
                                for (std::size_t ox = 0; ox < g.ow(); ++ox) {
                                    const auto iy = static_cast<std::ptrdiff_t>(oy + t / 3) - 1;
                                    const auto ix = static_cast<std::ptrdiff_t>(ox + t % 3) - 1;
                                    if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(g.h) ||
                                        ix >= static_cast<std::ptrdiff_t>(g.w))
                                        continue;
                                    const double p =
                                        static_cast<double>(dy[((o * g.n + n) * g.oh() + oy) * g.ow() + ox]) *
                                        x[((c * g.n + n) * g.h + static_cast<std::size_t>(iy)) * g.w +
                                          static_cast<std::size_t>(ix)];
                                    s += p;
                                    a += std::abs(p);
                                }
                        want[(o * g.c + c) * 9 + t] = s;
                        scale = std::max(scale, a);
                    }
            std::vector<float> xpad(g.input_floats()), dw1(want.size(), 7.f), dw2(want.size(), -7.f);
            k::direct_weight_grad(g, x.data(), dy.data(), m, xpad.data(), dw1.data(), nullptr);
            // fp32 sums of at most `pixels` products: the usual bound, times a small margin.
            const double bound = 4.0 * static_cast<double>(pixels) * 0x1p-24 * scale;
            for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(std::abs(dw1[i] - want[i]) <= bound);
            sgp::thread_pool pool(2);
            k::direct_weight_grad(g, x.data(), dy.data(), m, xpad.data(), dw2.data(), &pool);
            CHECK(dw1 == dw2);  // threads split tiles, never a sum
        }
    }
    // A partial last vector (2x2 maps, a batch not a multiple of 4) reads no lane past the plane:
    // an Inf in the next input channel's first pixels must not reach channel 0's sums (0 * Inf).
    if (k::small_map_applies(3, 1, 2, 2)) {
        const g_t g{1, 2, 2, 2, 3, 1};
        std::vector<float> x(2 * 4, 1.f), dy(4, 1.f), xpad(g.input_floats()), dw(2 * 9);
        x[4] = x[5] = std::numeric_limits<float>::infinity();  // channel 1
        k::direct_weight_grad(g, x.data(), dy.data(), 1, xpad.data(), dw.data(), nullptr);
        // Channel 0: each tap sums the pixels of the 2x2 image it reaches (4, 2 or 1 of them).
        const float want[9] = {1, 2, 1, 2, 4, 2, 1, 2, 1};
        for (std::size_t t = 0; t < 9; ++t) CHECK(dw[t] == want[t]);
    }
    CHECK_FALSE(k::direct_weight_grad_applies(3, 1, 5, 5 * W));  // rows of more than 4 vectors
    CHECK_FALSE(k::direct_weight_grad_applies(5, 2, 5, W));
    // 8 wide and 6 tall: rows of whole vectors below AVX-512 (up to 4); on AVX-512 not a small
    // map (8-wide maps take rows in fours).
    CHECK(k::direct_weight_grad_applies(3, 1, 6, 8) == (8 % W == 0 && 8 / W <= 4));
    CHECK(k::direct_weight_grad_applies(3, 1, 3, 3) == (W == 1));  // rows of 3 whole vectors in a scalar build
}

TEST_CASE(
    "a conv2d layer's backward: GEMM and direct kernels agree, and the automatic choice follows the measured rule") {
    using sgp::layers::conv_method;
    constexpr std::size_t W = sgp::simd::width;
    // A W x W map (one vector per row), so that every backward algorithm applies.
    using layer = sgp::layers::conv3x3<24>::bind<sgp::shape{6, W, W, false}>;
    layer conv;
    sgp::rng r(6);
    conv.init(r);
    const std::size_t n = 3;
    const auto x = random_vector(6 * n * W * W, 41), dy = random_vector(24 * n * W * W, 42);
    auto backward = [&](conv_method m, sgp::thread_pool* pool) {
        sgp::aligned_buffer<float> s1(layer::workspace(n)), s2(layer::workspace(n));
        std::vector<float> dx(x.size()), y(dy.size());
        sgp::run_context cx;
        cx.scratch = &s1;
        cx.scratch2 = &s2;
        cx.pool = pool;
        cx.training = true;
        conv.set_method(m);
        conv.backward(cx, x.data(), y.data(), dy.data(), dx.data(), n);
        std::vector<float> dw;
        conv.for_each_tensor([&](const sgp::tensor_ref& t) { dw.assign(t.grad, t.grad + t.size()); });
        return std::pair{dw, dx};
    };
    auto agree = [](const std::vector<float>& a, const std::vector<float>& b) {
        REQUIRE(a.size() == b.size());
        for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(1e-4).scale(1));
    };
    const auto [dw_gemm, dx_gemm] = backward(conv_method::gemm, nullptr);
    const auto [dw_direct, dx_direct] = backward(conv_method::direct, nullptr);
    agree(dw_direct, dw_gemm);
    agree(dx_direct, dx_gemm);
    sgp::thread_pool pool(2);
    const auto [dw2, dx2] = backward(conv_method::direct, &pool);
    CHECK(dw2 == dw_direct);
    CHECK(dx2 == dx_direct);
    // Narrow layers and the first layers take the direct kernels; wide ones take the direct
    // weight gradient on AVX-512 only (its aligned tile), and keep the GEMM for the data on maps
    // where the padding is a large share.
    conv.set_method(conv_method::automatic);
    CHECK(conv.uses_direct_weight_grad());
    CHECK_FALSE(conv.uses_direct_weight_grad(sgp::precision::bf16));
    sgp::layers::conv3x3<64>::bind<sgp::shape{64, 2 * W, 2 * W, false}> wide;
    CHECK(wide.uses_direct_weight_grad() == (W == 16));
    if (W >= 8) CHECK(wide.uses_direct_data_grad());  // a map of 16x16 or more: the padding is small
    wide.set_input_channels(1);
    CHECK(wide.uses_direct_weight_grad());
    // Small maps: on AVX-512 the small-map tiles (no padding computed) for both gradients, but
    // for the weight gradient of wide layers on 2x2 maps, where the GEMM was measured faster;
    // elsewhere the GEMM for wide layers.
    constexpr bool avx512 = W == 16;
    sgp::layers::conv3x3<64>::bind<sgp::shape{64, 2, 2, false}> map2;
    CHECK(map2.uses_direct_data_grad() == avx512);
    CHECK_FALSE(map2.uses_direct_weight_grad());
    map2.set_out_channels(32);  // narrow: also the scalar build's portable tile (rows of 2 whole "vectors")
    CHECK(map2.uses_direct_weight_grad() == (avx512 || W == 1));
    sgp::layers::conv3x3<64>::bind<sgp::shape{64, 4, 4, false}> map4;
    CHECK(map4.uses_direct_data_grad() == avx512);
    CHECK(map4.uses_direct_weight_grad() == avx512);
    sgp::layers::conv3x3<64>::bind<sgp::shape{64, 8, 8, false}> map8;
    CHECK(map8.uses_direct_data_grad() == avx512);
    CHECK(map8.uses_direct_weight_grad() == avx512);
}

TEST_CASE("evaluation fuses conv, batch norm and relu: the same output bit for bit, fused-away activations refused") {
    using namespace sgp::layers;
    using net_t = sgp::sequential<sgp::input<3, 8, 8>, conv3x3<16>, batch_norm, relu, max_pool<2>, conv3x3<40>,
                                  batch_norm, conv3x3<8, true>, relu, flatten, linear<3>>;
    static_assert(net_t::fused_after<0>() == 2 && net_t::fused_after<4>() == 1 && net_t::fused_after<6>() == 1);
    static_assert(net_t::fused_after<3>() == 0 && net_t::fused_after<8>() == 0);
    net_t net(3);
    // Running statistics and affine parameters away from their defaults.
    sgp::rng r(5);
    net.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (!t.value || k.find("running_var") != std::string::npos) return;
        for (std::size_t i = 0; i < t.size(); ++i) t.value[i] += 0.3f * r.normal();
    });
    const std::size_t n = 2;
    net.reserve(n);
    const auto x = random_vector(n * net_t::input_shape.size(), 40);
    auto forward = [&](bool fuse) {
        std::copy(x.begin(), x.end(), net.input_buffer());
        sgp::run_context cx;
        cx.fuse = fuse;
        const float* y = net.forward(n, cx);
        return std::vector<float>(y, y + 3 * n);
    };
    const auto unfused = forward(false);
    const auto relu_out = std::vector<float>(net.activation(3), net.activation(3) + 16 * n * 64);
    CHECK(forward(true) == unfused);
    CHECK(std::equal(relu_out.begin(), relu_out.end(), net.activation(3)));
    for (std::size_t i : {1, 2, 5, 7}) CHECK_THROWS_WITH_AS(net.activation(i), doctest::Contains("fused"), sgp::error);
    for (std::size_t i : {0, 3, 4, 6, 8, 9, 10}) CHECK_NOTHROW(net.activation(i));
    forward(false);
    CHECK_NOTHROW(net.activation(1));
}

TEST_CASE("the vector 2x2 max pool equals the scalar one on every map it serves, tails and odd sizes included") {
    namespace k = sgp::kernels;
    // Maps from 8 to 70 pixels wide (one to three 32-column steps, partial ones), odd heights
    // and widths (the last row or column dropped, as the floor of (h - 2) / 2 + 1 does).
    for (std::size_t h : {2, 5, 8, 9}) {
        for (std::size_t w : {7, 8, 9, 16, 31, 32, 33, 48, 70}) {
            const k::pool_geometry g{h, w, 2, 2, (h - 2) / 2 + 1, (w - 2) / 2 + 1};
            INFO("map ", h, "x", w);
            const auto x = random_vector(h * w, 50 + w);
            std::vector<float> want(g.oh * g.ow, -1.f), got(want.size() + 1, -2.f);  // one float past: untouched
            k::max_pool_plane_scalar(g, x.data(), want.data());
            if (!k::max_pool_2x2_applies(g)) {
                CHECK((w < 8 || sgp::simd::width != 16));
                continue;
            }
            k::max_pool_plane(g, x.data(), got.data());  // the vector one, where it applies
            CHECK(std::equal(want.begin(), want.end(), got.begin()));
            CHECK(got.back() == -2.f);
        }
    }
}
