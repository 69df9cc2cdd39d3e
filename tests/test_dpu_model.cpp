// The DPU estimate model (analysis/dpu_model.hpp) against hand-computed cycles, times,
// utilizations and placement refusals.
#include <doctest/doctest.h>

#include <sgp/analysis/dpu_model.hpp>
#include <string>

using namespace sgp::analysis;

namespace {

dpu_work conv(std::size_t ic, std::size_t oc, std::size_t hw, std::size_t k, std::size_t stride = 1) {
    dpu_work w;
    w.engine = dpu_engine::conv;
    w.ic = ic;
    w.oc = oc;
    w.ih = w.iw = hw * stride;
    w.oh = w.ow = hw;
    w.kh = w.kw = k;
    w.stride = stride;
    w.weight_bytes = oc * ic * k * k + oc;
    w.in_bytes = ic * w.ih * w.iw;
    w.out_bytes = oc * hw * hw;
    w.macs = ic * oc * hw * hw * k * k;
    return w;
}

dpu_work alu(dpu_engine engine, std::size_t c, std::size_t hw, std::size_t k, std::size_t stride = 1) {
    dpu_work w;
    w.engine = engine;
    w.ic = w.oc = c;
    w.oh = w.ow = hw;
    w.ih = w.iw = hw * stride;
    w.kh = w.kw = k;
    w.stride = stride;
    w.macs = c * hw * hw * k * k;
    return w;
}

std::string message_of(auto&& f) {
    try {
        f();
    } catch (const sgp::error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("the eight sizes: PP x ICP x OCP, and the peak ops per cycle is each size's number") {
    const auto& sizes = dpu_sizes();
    REQUIRE(sizes.size() == 8);
    const char* names[] = {"B512", "B800", "B1024", "B1152", "B1600", "B2304", "B3136", "B4096"};
    const std::size_t pp[] = {4, 4, 8, 4, 8, 8, 8, 8}, cp[] = {8, 10, 8, 12, 10, 12, 14, 16};
    for (std::size_t i = 0; i < 8; ++i) {
        CAPTURE(names[i]);
        CHECK(sizes[i].name == names[i]);
        CHECK(sizes[i].pp == pp[i]);
        CHECK(sizes[i].icp == cp[i]);
        CHECK(sizes[i].ocp == cp[i]);
        CHECK(sizes[i].alu_cp == cp[i]);
        CHECK(sizes[i].alu_pp == pp[i] / 2);
        CHECK(sizes[i].peak_ops_per_cycle() == std::stoul(std::string(names[i]).substr(1)));
        CHECK(sizes[i].bank_depth == 2048);
        CHECK(dpu_size(names[i]).peak_ops_per_cycle() == sizes[i].peak_ops_per_cycle());
    }
    // B4096 at 300 MHz: 4096 * 300e6 = 1228.8 GOPS.
    CHECK(dpu_size("B4096").peak_gops() == doctest::Approx(1228.8));
}

TEST_CASE("a 3x3 conv 64->64 on 32x32 on B4096: 18432 cycles, 61.44 us, compute-bound, fully used") {
    const auto c = dpu_size("B4096");
    const auto e = estimate(conv(64, 64, 32, 3), c);
    // ceil(64/16) * ceil(64/16) * ceil(32/8) * 32 * 3 * 3
    CHECK(e.compute_cycles == 18432);
    CHECK(e.compute_us == doctest::Approx(18432.0 / 300));  // 61.44
    // weights 64*64*9 + 64 bias, in and out 64*32*32 each: 168000 bytes at 19.2 GB/s = 8.75 us
    CHECK(e.memory_us == doctest::Approx(168000.0 / 19200));
    CHECK_FALSE(e.memory_bound);
    CHECK(e.overhead_us == doctest::Approx(1.0));
    CHECK(e.total_us == doctest::Approx(61.44 + 1.0));
    CHECK(e.lanes == 8 * 16 * 16);
    CHECK(e.utilization == doctest::Approx(1.0));
    CHECK(e.ic_utilization == 1.0);
    CHECK(e.oc_utilization == 1.0);
    CHECK(e.pixel_utilization == 1.0);
    CHECK(e.fits);
    CHECK(e.why.empty());
}

TEST_CASE("channels that are not a multiple of ICP/OCP cost as much as the next multiple") {
    const auto c = dpu_size("B4096");
    const auto e40 = estimate(conv(40, 40, 32, 3), c), e48 = estimate(conv(48, 48, 32, 3), c),
               e32 = estimate(conv(32, 32, 32, 3), c);
    // ceil(40/16) = 3 = ceil(48/16): 3 * 3 * 4 * 32 * 9 = 10368 cycles for both
    CHECK(e40.compute_cycles == 10368);
    CHECK(e48.compute_cycles == 10368);
    CHECK(e40.compute_cycles >= e48.compute_cycles);
    CHECK(e32.compute_cycles == 2 * 2 * 4 * 32 * 9);                       // 4608: only a multiple of 16 saves
    CHECK(e40.utilization == doctest::Approx((40.0 / 48) * (40.0 / 48)));  // 0.6944
    CHECK(e40.ic_utilization == doctest::Approx(40.0 / 48));
    CHECK(e40.oc_utilization == doctest::Approx(40.0 / 48));
    CHECK(e48.utilization == doctest::Approx(1.0));
    // Without macs the utilization is the product of the padding factors, the same figure.
    auto w = conv(40, 40, 32, 3);
    w.macs = 0;
    CHECK(estimate(w, c).utilization == doctest::Approx((40.0 / 48) * (40.0 / 48)));
    // 28 output columns on 8 pixel lanes: ceil(28/8) = 4 steps, 28/32 used.
    const auto e28 = estimate(conv(64, 64, 28, 3), c);
    CHECK(e28.compute_cycles == 4 * 4 * 4 * 28 * 9);
    CHECK(e28.pixel_utilization == doctest::Approx(0.875));
    CHECK(e28.utilization == doctest::Approx(0.875));
    // On B1152 (4x12x12), 40 channels pad to 48 as well, but 64 pads to 72.
    const auto small = dpu_size("B1152");
    CHECK(estimate(conv(64, 64, 32, 3), small).compute_cycles == 6 * 6 * 8 * 32 * 9);
    CHECK(estimate(conv(64, 64, 32, 3), small).utilization == doctest::Approx((64.0 / 72) * (64.0 / 72)));
}

TEST_CASE("a large 1x1 classifier layer is memory-bound") {
    // A linear 4096 -> 4096 (VGG's fc7) as a 1x1 conv on a 1x1 map.
    const auto c = dpu_size("B4096");
    const auto w = conv(4096, 4096, 1, 1);
    const auto e = estimate(w, c);
    // 256 * 256 * ceil(1/8) * 1 * 1 * 1 = 65536 cycles = 218.45 us
    CHECK(e.compute_cycles == 65536);
    CHECK(e.compute_us == doctest::Approx(65536.0 / 300));
    // 4096*4096 + 4096 weight bytes, 4096 in, 4096 out = 16789504 bytes at 19.2 GB/s = 874.45 us
    CHECK(w.weight_bytes + w.in_bytes + w.out_bytes == 16789504);
    CHECK(e.memory_us == doctest::Approx(16789504.0 / 19200));
    CHECK(e.memory_bound);
    CHECK(e.total_us == doctest::Approx(16789504.0 / 19200 + 1.0));
    // One pixel on 8 pixel lanes.
    CHECK(e.pixel_utilization == doctest::Approx(0.125));
    CHECK(e.utilization == doctest::Approx(0.125));
    // Half the bandwidth (two busy cores sharing the ZCU104's DDR): twice the memory time.
    const auto shared = on_board(dpu_board("zcu104"), 2);
    CHECK(estimate(w, shared).memory_us == doctest::Approx(2 * 16789504.0 / 19200));
}

TEST_CASE("depthwise, pool and eltwise on their engines (ICP channels x PP/2 pixels)") {
    const auto c = dpu_size("B4096");  // ALU and eltwise: 16 channels x 4 pixels = 64 lanes
    const auto dw = estimate(alu(dpu_engine::depthwise, 32, 16, 3), c);
    CHECK(dw.lanes == 64);
    CHECK(dw.compute_cycles == 2 * 4 * 16 * 9);  // ceil(32/16) * ceil(16/4) * 16 * 3 * 3 = 1152
    CHECK(dw.utilization == doctest::Approx(1.0));
    const auto dw24 = estimate(alu(dpu_engine::depthwise, 24, 16, 3), c);
    CHECK(dw24.compute_cycles == 1152);  // 24 channels pad to 32
    CHECK(dw24.utilization == doctest::Approx(0.75));
    CHECK(dw24.oc_utilization == doctest::Approx(0.75));
    // A 2x2 max pool, stride 2, 64 channels to 16x16: 4 * 4 * 16 * 4 = 1024 cycles.
    const auto pool = estimate(alu(dpu_engine::pool, 64, 16, 2, 2), c);
    CHECK(pool.compute_cycles == 1024);
    CHECK(pool.fits);
    // A residual add of 64 channels on 32x32: 4 * 8 * 32 = 1024 cycles, one output per lane per cycle.
    dpu_work add;
    add.engine = dpu_engine::eltwise;
    add.ic = add.oc = 64;
    add.oh = add.ow = 32;
    add.in_bytes = 2 * 64 * 32 * 32;
    add.out_bytes = 64 * 32 * 32;
    const auto e = estimate(add, c);
    CHECK(e.compute_cycles == 1024);
    CHECK(e.memory_us == doctest::Approx(3 * 65536.0 / 19200));  // 10.24 us: memory-bound
    CHECK(e.memory_bound);
    CHECK(e.utilization == doctest::Approx(1.0));  // no macs: the padding factors
    // B512: ALU 8 channels x 2 pixels.
    CHECK(estimate(alu(dpu_engine::depthwise, 32, 16, 3), dpu_size("B512")).compute_cycles == 4 * 8 * 16 * 9);
}

TEST_CASE("layers without an engine cost nothing") {
    dpu_work w;  // engine none
    w.ic = w.oc = 64;
    w.in_bytes = w.out_bytes = 1 << 20;
    const auto e = estimate(w, dpu_size("B4096"));
    CHECK(e.total_us == 0);
    CHECK(e.compute_cycles == 0);
    CHECK(e.memory_us == 0);
    CHECK(e.overhead_us == 0);
    CHECK(e.fits);
}

TEST_CASE("placement: kernel, stride, the input-size rule and the output channels send a conv to the CPU") {
    const auto c = dpu_size("B4096");
    const auto k16 = estimate(conv(16, 16, 8, 16), c);
    CHECK(k16.fits);
    const auto k17 = estimate(conv(16, 16, 8, 17), c);
    CHECK_FALSE(k17.fits);
    CHECK(k17.why == "kernel 17x17 outside the conv engine's 1-16");
    CHECK(k17.compute_cycles == 1 * 1 * 1 * 8 * 17 * 17);  // still estimated, as if it fitted
    CHECK(estimate(conv(16, 16, 8, 3, 8), c).fits);
    const auto s9 = estimate(conv(16, 16, 8, 3, 9), c);
    CHECK_FALSE(s9.fits);
    CHECK(s9.why == "stride 9x9 outside the conv engine's 1-8");
    // 3x3: 9 * ceil(ic/16) <= 2048 holds up to ceil(ic/16) = 227, i.e. ic = 3632.
    CHECK(estimate(conv(3632, 16, 4, 3), c).fits);
    const auto big = estimate(conv(3633, 16, 4, 3), c);  // 9 * 228 = 2052
    CHECK_FALSE(big.fits);
    CHECK(big.why == "input size kw*kh*ceil(ic/ICP) = 2052 > bank depth 2048");
    // On B512 (ICP 8) the same rule binds at half the channels: 9 * ceil(1817/8) = 2052.
    CHECK(estimate(conv(1816, 8, 4, 3), dpu_size("B512")).fits);
    CHECK_FALSE(estimate(conv(1817, 8, 4, 3), dpu_size("B512")).fits);
    // oc <= 256 * OCP = 4096
    CHECK(estimate(conv(16, 4096, 1, 1), c).fits);
    const auto wide = estimate(conv(16, 4097, 1, 1), c);
    CHECK_FALSE(wide.fits);
    CHECK(wide.why == "oc 4097 > 256*OCP = 4096");
    // Several reasons are all given.
    const auto both = estimate(conv(16, 16, 8, 17, 9), c);
    CHECK(both.why == "kernel 17x17 outside the conv engine's 1-16; stride 9x9 outside the conv engine's 1-8");
}

TEST_CASE("placement on the ALU: kernel and stride up to 256, depthwise taps up to the weights bank") {
    const auto c = dpu_size("B4096");
    CHECK(estimate(alu(dpu_engine::depthwise, 16, 4, 17), c).fits);  // too large for the conv engine, not the ALU
    CHECK(estimate(alu(dpu_engine::pool, 16, 1, 256, 256), c).fits);
    const auto p = estimate(alu(dpu_engine::pool, 16, 1, 257), c);
    CHECK_FALSE(p.fits);
    CHECK(p.why == "kernel 257x257 outside the ALU's 1-256");
    CHECK(estimate(alu(dpu_engine::depthwise, 16, 1, 45), c).fits);      // 2025 taps
    const auto dw = estimate(alu(dpu_engine::depthwise, 16, 1, 46), c);  // 2116 taps
    CHECK_FALSE(dw.fits);
    CHECK(dw.why == "depthwise kernel taps kh*kw = 2116 > weights bank depth 2048");
    CHECK(estimate(alu(dpu_engine::pool, 16, 1, 46), c).fits);  // a pool has no weights
}

TEST_CASE("boards: cores, clocks, DDR, and the peak of a board") {
    const auto zcu102 = dpu_board("zcu102"), zcu104 = dpu_board("zcu104"), kv260 = dpu_board("kv260");
    CHECK(zcu102.cores == 3);
    CHECK(zcu104.cores == 2);
    CHECK(kv260.cores == 1);
    const auto c102 = on_board(zcu102);
    CHECK(c102.name == "B4096");
    CHECK(c102.clock_mhz == 281);
    CHECK(c102.ddr_gbytes_per_s == doctest::Approx(17.064));
    CHECK(c102.peak_gops() == doctest::Approx(4096 * 0.281));  // 1150.98 GOPS per core
    // ZCU104: 2 x 4096 x 300 MHz = 2.4576 TOPS, the published 2.46.
    CHECK(static_cast<double>(zcu104.cores) * on_board(zcu104).peak_gops() == doctest::Approx(2457.6));
    // The same conv is slower at 281 MHz: 18432 cycles / 281.
    CHECK(estimate(conv(64, 64, 32, 3), c102).compute_us == doctest::Approx(18432.0 / 281));
    CHECK(on_board(zcu102, 3).ddr_gbytes_per_s == doctest::Approx(17.064 / 3));
    const auto busy = message_of([&] { (void)on_board(kv260, 2); });
    CHECK(busy == "analysis::on_board: kv260 has 1 DPU cores, not 2 busy ones");
}

TEST_CASE("unknown names and impossible layers fail with a message that names them") {
    const auto size = message_of([] { (void)dpu_size("B9999"); });
    CHECK(size ==
          "analysis::dpu_size: unknown DPU size 'B9999' (known: B512, B800, B1024, B1152, B1600, B2304, B3136, B4096)");
    const auto board = message_of([] { (void)dpu_board("zcu106"); });
    CHECK(board == "analysis::dpu_board: unknown board 'zcu106' (known: zcu102, zcu104, kv260)");
    auto w = conv(16, 16, 8, 3);
    w.oc = 0;
    const auto zero = message_of([&] { (void)estimate(w, dpu_size("B4096")); });
    CHECK(zero.find("analysis::estimate: conv layer with a zero dimension (ic 16, oc 0,") == 0);
    auto c = dpu_size("B4096");
    c.ddr_gbytes_per_s = 0;
    CHECK(message_of([&] { (void)estimate(conv(16, 16, 8, 3), c); }).find("DPU config 'B4096'") != std::string::npos);
}
