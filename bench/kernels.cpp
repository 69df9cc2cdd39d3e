// Per-kernel speed next to the machine's measured peak: a register-only FMA loop (the
// ceiling no kernel can pass) and sgp's 3x3 convolution forward / backward-data /
// backward-weights on every convolution shape of VGG13-BN at 32x32, batch 64.
// Usage: bench_kernels --help
#include <cstdio>
#include <sgp/sgp.hpp>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

struct options {
    std::string json, precision = "fp32";
    std::size_t threads = 2, batch = 64, repeats = 5;
    bool methods = false;
};

// 16 independent FMA chains per thread: enough to cover the FMA latency on two pipes.
double fma_loop(std::size_t iterations) {
    using sgp::simd::vec;
    constexpr std::size_t chains = 16;
    vec acc[chains];
    for (std::size_t i = 0; i < chains; ++i) acc[i] = vec(static_cast<float>(i) * 1e-3f);
    const vec m(0.999999f), a(1e-7f);
    for (std::size_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (std::size_t i = 0; i < chains; ++i) acc[i] = sgp::simd::fma(acc[i], m, a);
    }
    vec s = acc[0];
    for (std::size_t i = 1; i < chains; ++i) s = s + acc[i];
    alignas(64) float out[sgp::simd::width];
    s.store_aligned(out);
    return static_cast<double>(out[0]);
}

struct figure {
    std::string name;
    double flop = 0;
    bench::timing t;
    double gflops() const { return flop / t.median() * 1e-9; }
};

template <std::size_t Cin, std::size_t Cout, std::size_t HW>
void conv_figures(const options& o, sgp::thread_pool* pool, std::vector<figure>& out) {
    using layer = typename sgp::layers::conv3x3<Cout>::template bind<sgp::shape{Cin, HW, HW, false}>;
    layer conv;
    sgp::rng r(3);
    conv.init(r);
    const std::size_t n = o.batch;
    sgp::aligned_buffer<float> x(Cin * n * HW * HW), y(Cout * n * HW * HW), dy(y.size()), dx(x.size()),
        s1(layer::workspace(n)), s2(layer::workspace(n));
    for (auto& v : x) v = r.normal();
    for (auto& v : dy) v = r.normal();
    sgp::run_context cx;
    cx.pool = pool;
    cx.precision = sgp::parse_precision(o.precision, "--precision");
    cx.scratch = &s1;
    cx.scratch2 = &s2;
    const double flop = 2.0 * static_cast<double>(layer::macs) * static_cast<double>(n);
    const std::string shape = std::to_string(Cin) + "->" + std::to_string(Cout) + " " + std::to_string(HW) + "x" +
                              std::to_string(HW) + " b" + std::to_string(n);
    out.push_back({"conv3x3 forward " + shape, flop,
                   bench::time_calls(o.repeats, 0.1, [&] { conv.forward(cx, x.data(), y.data(), n); })});
    // backward() computes both weight and data gradients: 2x the forward's work. A network's
    // first layer has no data gradient (nothing is before it): timed as training runs it.
    constexpr bool first = Cin == 1;
    out.push_back({std::string("conv3x3 backward ") + (first ? "(weights only) " : "") + shape, (first ? 1 : 2) * flop,
                   bench::time_calls(o.repeats, 0.1, [&] {
                       conv.backward(cx, x.data(), y.data(), dy.data(), first ? nullptr : dx.data(), n);
                   })});
}

#if defined(__x86_64__) && defined(__GNUC__)
// vdpbf16ps's rate from registers, like fma_loop: 16 chains of 32 bf16 multiply-adds each.
[[gnu::target("avx512f,avx512bf16")]] double bf16_dot_loop(std::size_t iterations) {
    __m512 acc[16];
    for (auto& a : acc) a = _mm512_setzero_ps();
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80);
    for (std::size_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], x, x);
        __asm__ volatile("" : "+v"(x));  // keeps the loop from being folded
    }
    __m512 t = acc[0];
    for (int j = 1; j < 16; ++j) t = _mm512_add_ps(t, acc[j]);
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, t);  // not _mm512_reduce_add_ps: GCC 12 warns inside it
    return static_cast<double>(lanes[0]);
}
#endif

// The bf16 GEMM alone by every kernel this CPU runs (the others are named and skipped): a
// convolution's 64 rows, and 512, where packing matters less.
void bf16_gemm_figures(const options& o, sgp::thread_pool* pool, std::vector<figure>& out) {
    namespace k = sgp::kernels;
    for (auto kern : {k::bf16_kernel::amx, k::bf16_kernel::avx512, k::bf16_kernel::portable}) {
        if (!k::available(kern)) {
            std::printf("bf16 gemm: the %s kernel is skipped (this CPU cannot run it)\n",
                        std::string(k::name_of(kern)).c_str());
            continue;
        }
        k::set_bf16_kernel(kern);
#if defined(__x86_64__) && defined(__GNUC__)
        if (kern == k::bf16_kernel::avx512 && o.threads == 1) {  // one thread: compare with its fma peak
            constexpr std::size_t iters = 1u << 20;
            volatile double sink = 0;
            out.push_back({"bf16 vdpbf16ps register loop", 2.0 * 16 * 32 * iters,
                           bench::time_calls(o.repeats, 0.1, [&] { sink = sink + bf16_dot_loop(iters); })});
        }
#endif
        for (std::size_t M : {64, 512}) {
            const std::size_t N = 4096, K = 576;
            sgp::aligned_buffer<float> a(M * K), b(K * N), c(M * N);
            sgp::rng r(5);
            for (auto& v : a) v = r.normal();
            for (auto& v : b) v = r.normal();
            out.push_back({"bf16 gemm " + std::string(k::name_of(kern)) + " " + std::to_string(M) + "x4096x576",
                           2.0 * static_cast<double>(M * N * K), bench::time_calls(o.repeats, 0.1, [&] {
                               k::gemm_bf16(false, false, M, N, K, a.data(), K, b.data(), N, c.data(), N, false, pool);
                           })});
        }
    }
    k::set_bf16_kernel(k::bf16_kernel::automatic);
}

// One 3x3 convolution at active widths cin -> cout on HW x HW maps, batch n, with a random input
// (and output gradient, for training) and its scratch; declared at 512 channels and narrowed,
// as pruning does.
template <std::size_t HW>
struct shape_bench {
    using layer = typename sgp::layers::conv3x3<512>::template bind<sgp::shape{512, HW, HW, false}>;
    layer conv;
    sgp::aligned_buffer<float> x, y, dy, dx, s1, s2;
    sgp::run_context cx;
    std::string name;
    double flop;
    shape_bench(sgp::thread_pool* pool, std::size_t cin, std::size_t cout, std::size_t n, bool training)
        : x(cin * n * HW * HW),
          y(cout * n * HW * HW),
          dy(training ? y.size() : 0),
          dx(training ? x.size() : 0),
          s1(layer::workspace(n)),
          s2(layer::workspace(n)),
          name(std::to_string(cin) + "->" + std::to_string(cout) + " " + std::to_string(HW) + "x" + std::to_string(HW) +
               " b" + std::to_string(n)),
          flop(2.0 * static_cast<double>(cin * cout * 9 * HW * HW * n)) {
        sgp::rng r(3);
        conv.init(r);
        conv.set_input_channels(cin);
        conv.set_out_channels(cout);
        for (auto& v : x) v = r.normal();
        for (auto& v : dy) v = r.normal();
        cx.pool = pool;
        cx.scratch = &s1;
        cx.scratch2 = &s2;
        cx.training = training;
    }
};

// One shape in evaluation mode, by both algorithms (the layer's weights packed once, as in inference).
struct method_figure {
    std::string name;
    double flop;
    bench::timing gemm, direct, few_pixel;  // few_pixel: only where it applies (empty otherwise)
    const char* automatic;
};

template <std::size_t HW>
method_figure compare_methods(const options& o, sgp::thread_pool* pool, std::size_t cin, std::size_t cout,
                              std::size_t n) {
    shape_bench<HW> b(pool, cin, cout, n, false);
    auto& conv = b.conv;
    method_figure f{b.name, b.flop, {}, {}, {}, ""};
    auto time = [&](sgp::layers::conv_method m) {
        conv.set_method(m);
        return bench::time_calls(o.repeats, 0.05, [&] { conv.forward(b.cx, b.x.data(), b.y.data(), n); });
    };
    f.gemm = time(sgp::layers::conv_method::gemm);
    f.direct = time(sgp::layers::conv_method::direct);
    if (n * HW * HW <= sgp::kernels::few_pixel_limit) f.few_pixel = time(sgp::layers::conv_method::few_pixel);
    conv.set_method(sgp::layers::conv_method::automatic);
    f.automatic = conv.uses_few_pixel(n) ? "few_pixel" : conv.uses_direct() ? "direct" : "gemm";
    return f;
}

// One shape's backward pass in training at batch n by each algorithm: the weight gradient alone
// (a first layer's backward) and with the data gradient. The direct weight gradient only where
// it applies (rows of whole vectors).
struct backward_figure {
    std::string name;
    double flop;  // of the forward: dW is as much, dW + dX twice
    bench::timing w_gemm, w_direct, wx_gemm, wx_direct;
    bool w_auto_direct, x_auto_direct;
};

template <std::size_t HW>
backward_figure compare_backward(const options& o, sgp::thread_pool* pool, std::size_t cin, std::size_t cout,
                                 std::size_t n) {
    shape_bench<HW> b(pool, cin, cout, n, true);
    auto& conv = b.conv;
    backward_figure f{b.name, b.flop, {}, {}, {}, {}, conv.uses_direct_weight_grad(), conv.uses_direct_data_grad()};
    auto time = [&](sgp::layers::conv_method m, float* dx) {
        conv.set_method(m);
        return bench::time_calls(o.repeats, 0.05,
                                 [&] { conv.backward(b.cx, b.x.data(), b.y.data(), b.dy.data(), dx, n); });
    };
    f.w_gemm = time(sgp::layers::conv_method::gemm, nullptr);
    f.wx_gemm = time(sgp::layers::conv_method::gemm, b.dx.data());
    if (sgp::kernels::direct_weight_grad_applies(3, 1, HW, HW)) f.w_direct = time(sgp::layers::conv_method::direct, nullptr);
    f.wx_direct = time(sgp::layers::conv_method::direct, b.dx.data());
    conv.set_method(sgp::layers::conv_method::automatic);
    return f;
}

int run_methods(const options& o) {
    sgp::thread_pool pool(o.threads);
    sgp::thread_pool* p = o.threads > 1 ? &pool : nullptr;
    std::vector<method_figure> f;
    for (std::size_t n : {std::size_t{1}, o.batch}) {
        // Full VGG13-BN, then the pruned widths 8,16,24,24,32,32,32,32,32,32.
        f.push_back(compare_methods<32>(o, p, 1, 64, n));
        f.push_back(compare_methods<32>(o, p, 64, 64, n));
        f.push_back(compare_methods<16>(o, p, 64, 128, n));
        f.push_back(compare_methods<16>(o, p, 128, 128, n));
        f.push_back(compare_methods<8>(o, p, 128, 256, n));
        f.push_back(compare_methods<8>(o, p, 256, 256, n));
        f.push_back(compare_methods<4>(o, p, 256, 512, n));
        f.push_back(compare_methods<4>(o, p, 512, 512, n));
        f.push_back(compare_methods<2>(o, p, 512, 512, n));
        f.push_back(compare_methods<32>(o, p, 1, 8, n));
        f.push_back(compare_methods<32>(o, p, 8, 16, n));
        f.push_back(compare_methods<16>(o, p, 16, 24, n));
        f.push_back(compare_methods<16>(o, p, 24, 24, n));
        f.push_back(compare_methods<8>(o, p, 24, 32, n));
        f.push_back(compare_methods<8>(o, p, 32, 32, n));
        f.push_back(compare_methods<4>(o, p, 32, 32, n));
        f.push_back(compare_methods<2>(o, p, 32, 32, n));
    }
    std::vector<backward_figure> bw;
    {
        const std::size_t n = o.batch;
        bw.push_back(compare_backward<32>(o, p, 1, 64, n));
        bw.push_back(compare_backward<32>(o, p, 64, 64, n));
        bw.push_back(compare_backward<16>(o, p, 64, 128, n));
        bw.push_back(compare_backward<16>(o, p, 128, 128, n));
        bw.push_back(compare_backward<8>(o, p, 128, 256, n));
        bw.push_back(compare_backward<8>(o, p, 256, 256, n));
        bw.push_back(compare_backward<4>(o, p, 256, 512, n));
        bw.push_back(compare_backward<4>(o, p, 512, 512, n));
        bw.push_back(compare_backward<2>(o, p, 512, 512, n));
        bw.push_back(compare_backward<32>(o, p, 1, 8, n));
        bw.push_back(compare_backward<32>(o, p, 8, 16, n));
        bw.push_back(compare_backward<16>(o, p, 16, 24, n));
        bw.push_back(compare_backward<16>(o, p, 24, 24, n));
        bw.push_back(compare_backward<8>(o, p, 32, 32, n));
        bw.push_back(compare_backward<4>(o, p, 32, 32, n));
        bw.push_back(compare_backward<2>(o, p, 32, 32, n));
        // ResNet-20/56's stages (16, 32, 64 channels).
        bw.push_back(compare_backward<32>(o, p, 16, 16, n));
        bw.push_back(compare_backward<16>(o, p, 32, 32, n));
        bw.push_back(compare_backward<8>(o, p, 64, 64, n));
    }
    std::printf("%-24s %10s %10s %10s  %s\n", "conv3x3 (eval forward)", "gemm ms", "direct ms", "few-px ms",
                "automatic");
    for (const auto& k : f)
        std::printf("%-24s %10.4f %10.4f %10.4f  %s\n", k.name.c_str(), 1e3 * k.gemm.median(), 1e3 * k.direct.median(),
                    k.few_pixel.seconds.empty() ? 0.0 : 1e3 * k.few_pixel.median(), k.automatic);
    std::printf("%-24s %10s %10s %12s %12s  %s\n", "conv3x3 (training backward)", "dW gemm", "dW direct", "dW+dX gemm",
                "dW+dX direct", "automatic dW, dX");
    for (const auto& k : bw)
        std::printf("%-24s %10.3f %10.3f %12.3f %12.3f  %s, %s\n", k.name.c_str(), 1e3 * k.w_gemm.median(),
                    k.w_direct.seconds.empty() ? 0.0 : 1e3 * k.w_direct.median(), 1e3 * k.wx_gemm.median(),
                    1e3 * k.wx_direct.median(), k.w_auto_direct ? "direct" : "gemm",
                    k.x_auto_direct ? "direct" : "gemm");
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("framework", "sgp")
            .field("cpu", sgp::cpu_model())
            .field("threads", o.threads)
            .field("simd", sgp::simd::arch_name);
        j.key("shapes").begin_array();
        for (const auto& k : f)
            j.begin_object()
                .field("name", k.name)
                .field("flop", k.flop)
                .field("gemm_ms_median", 1e3 * k.gemm.median())
                .field("direct_ms_median", 1e3 * k.direct.median())
                .field("gemm_over_direct", k.gemm.median() / k.direct.median())
                .field("few_pixel_ms_median", k.few_pixel.seconds.empty() ? 0.0 : 1e3 * k.few_pixel.median())
                .field("automatic", k.automatic)
                .end_object();
        j.end_array();
        j.key("backward").begin_array();
        for (const auto& k : bw)
            j.begin_object()
                .field("name", k.name)
                .field("forward_flop", k.flop)
                .field("weights_gemm_ms_median", 1e3 * k.w_gemm.median())
                .field("weights_direct_ms_median", k.w_direct.seconds.empty() ? 0.0 : 1e3 * k.w_direct.median())
                .field("weights_and_data_gemm_ms_median", 1e3 * k.wx_gemm.median())
                .field("weights_and_data_direct_ms_median", 1e3 * k.wx_direct.median())
                .field("automatic_weights", k.w_auto_direct ? "direct" : "gemm")
                .field("automatic_data", k.x_auto_direct ? "direct" : "gemm")
                .end_object();
        j.end_array().end_object();
        j.save(o.json);
    }
    return 0;
}

int run(const options& o) {
    if (o.methods) return run_methods(o);
    sgp::thread_pool pool(o.threads);
    sgp::thread_pool* p = o.threads > 1 ? &pool : nullptr;

    constexpr std::size_t iters = 1u << 22;
    volatile double sink = 0;
    const auto peak_t = bench::time_calls(o.repeats, 0.1, [&] {
        sgp::parallel_for(p, o.threads, 1, [&](std::size_t b, std::size_t e) {
            for (std::size_t t = b; t < e; ++t) sink = sink + fma_loop(iters);
        });
    });
    const double peak_flop = 2.0 * 16 * sgp::simd::width * static_cast<double>(iters) * static_cast<double>(o.threads);
    const double peak = peak_flop / peak_t.median() * 1e-9;
    std::printf("FMA peak, %zu thread(s), %s: %.1f GFLOP/s\n", o.threads, sgp::simd::arch_name, peak);

    std::vector<figure> f;
    conv_figures<1, 64, 32>(o, p, f);
    conv_figures<64, 64, 32>(o, p, f);
    conv_figures<64, 128, 16>(o, p, f);
    conv_figures<128, 128, 16>(o, p, f);
    conv_figures<128, 256, 8>(o, p, f);
    conv_figures<256, 256, 8>(o, p, f);
    conv_figures<256, 512, 4>(o, p, f);
    conv_figures<512, 512, 4>(o, p, f);
    conv_figures<512, 512, 2>(o, p, f);
    if (o.precision == "bf16") bf16_gemm_figures(o, p, f);
    for (const auto& k : f)
        std::printf("%-50s %8.3f ms  %7.1f GFLOP/s  %5.1f %% of peak\n", k.name.c_str(), 1e3 * k.t.median(), k.gflops(),
                    100 * k.gflops() / peak);
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("framework", "sgp")
            .field("threads", o.threads)
            .field("batch", o.batch)
            .field("cpu", sgp::cpu_model())
            .field("precision", o.precision)
            .field("bf16_kernel", o.precision == "bf16"
                                      ? std::string(sgp::kernels::name_of(sgp::kernels::bf16_kernel_in_use()))
                                      : std::string())
            .field("simd", sgp::simd::arch_name)
            .field("fma_peak_gflops", peak);
        j.key("kernels").begin_array();
        for (const auto& k : f)
            j.begin_object()
                .field("name", k.name)
                .field("flop", k.flop)
                .field("ms_median", 1e3 * k.t.median())
                .field("ms_min", 1e3 * k.t.min())
                .field("ms_max", 1e3 * k.t.max())
                .field("gflops_median", k.gflops())
                .field("fraction_of_peak", k.gflops() / peak)
                .end_object();
        j.end_array().end_object();
        j.save(o.json);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        options o;
        example::flags f("bench_kernels [options]: FMA peak and 3x3 convolutions of VGG13-BN (32x32 input)");
        f.threads(o.threads);
        f.size("--batch", o.batch, "images", 1, 4096);
        f.size("--repeats", o.repeats, "timed repeats, median reported", 1, 10000);
        f.choice("--precision", o.precision,
                 "the convolutions' arithmetic: fp32, or bf16 operands with fp32 sums (peak stays the fp32 FMA loop's)",
                 {"fp32", "bf16"});
        f.toggle("--methods", o.methods,
                 "instead: evaluation forward of every VGG13-BN convolution shape (full and pruned widths, batch 1 "
                 "and --batch) by GEMM and by direct convolution, and the training backward (weight and data "
                 "gradients) of the full, pruned and ResNet shapes at --batch by both");
        f.output("--json", o.json, "the figures as JSON");
        f.parse(argc, argv);
        return run(o);
    });
}
