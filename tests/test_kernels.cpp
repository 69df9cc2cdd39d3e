// Kernels against plain reference loops.
#include <doctest/doctest.h>

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
