#pragma once
// A per-layer latency estimate for Xilinx's DPUCZDX8G, the DPU of the Zynq UltraScale+ boards
// (ZCU102, ZCU104, KV260): compute cycles from the padded loop counts of the engine that runs
// the layer, DDR time from the bytes the layer moves, a fixed per-layer overhead, and whether the
// layer can be placed on the DPU at all. It is a first-order roofline, made to rank layers and to
// show what channel widths that are not multiples of the DPU's parallelism waste; it is not a
// cycle-accurate simulator (docs/analysis.md says what it ignores).
//
// Sources of the figures, cited next to each:
// - [TF] Vitis AI 3.5, src/vai_runtime/target_factory/targets/DPUCZDX8G_ISA1_B*.prototxt: the
//   compiler's description of each DPU size (engines' parallelism, bank groups, limits);
// - [TF2] Vitis AI 3.5, src/vai_quantizer/vai_q_tensorflow2.x/.../vai_utf/conv2d_limits.py: the
//   conv placement rules the TF2 quantizer checks against a target;
// - [NNDCT] Vitis AI 3.5, src/vai_quantizer/vai_q_pytorch/pytorch_binding/pytorch_nndct/hardware/
//   dpu_op_filter.py: the weights-bank rules the PyTorch quantizer checks;
// - [REF] the project's shared notes, /work/shared/reference/vitis-ai.md (boards, clocks, PG338).
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/error.hpp"

namespace sgp::analysis {

// none: fused into the conv before it (batch norm, relu) or pure layout (flatten, dropout, concat):
// the compiler resolves these without a hardware engine [REF], so they cost nothing here.
enum class dpu_engine { conv, depthwise, pool, eltwise, none };

inline std::string_view engine_name(dpu_engine e) {
    switch (e) {
        case dpu_engine::conv:
            return "conv";
        case dpu_engine::depthwise:
            return "depthwise";
        case dpu_engine::pool:
            return "pool";
        case dpu_engine::eltwise:
            return "eltwise";
        case dpu_engine::none:
            return "none";
    }
    return "?";
}

// One layer as the DPU would run it, int8. Depthwise, pool and eltwise count their channels in oc
// (ic is only read by the conv's input-size rule). A linear layer is a 1x1 conv on a 1x1 map.
struct dpu_work {
    dpu_engine engine = dpu_engine::none;
    std::size_t ic = 0, oc = 0;  // input / output channels (active widths)
    std::size_t ih = 1, iw = 1, oh = 1, ow = 1;
    std::size_t kh = 1, kw = 1, stride = 1;
    std::size_t weight_bytes = 0;             // int8 weights + biases read from DDR
    std::size_t in_bytes = 0, out_bytes = 0;  // int8 feature maps read / written
    std::size_t macs = 0;                     // useful multiply-adds per image (pools: window taps; eltwise: outputs)
};

// One DPU core of one size, at one clock, with the DDR bandwidth it can use.
struct dpu_config {
    std::string name;  // "B4096"
    // Conv engine: pixel, input-channel and output-channel parallelism; [TF] conv_engine
    // pixel_parallel / input_channel_parallel / output_channel_parallel, which agree with [REF]
    // (ops per cycle = 2 x PP x ICP x OCP, PG338).
    std::size_t pp = 8, icp = 16, ocp = 16;
    // The ALU (depthwise conv, average / max pool) and the eltwise engine: channel and pixel
    // lanes; [TF] alu_engine and eltwise_engine channel_parallel (= ICP) and pixel_parallel
    // (= PP / 2) in every size.
    std::size_t alu_cp = 16, alu_pp = 4, eltwise_cp = 16, eltwise_pp = 4;
    // 300 MHz: the DPU clock of ZCU104 and KV260 [REF] (ZCU102 runs at 281 MHz: on_board()).
    double clock_mhz = 300;
    // 19.2 GB/s: the theoretical peak of a 64-bit DDR4-2400 PS memory (8 bytes x 2400 MT/s), the
    // KV260's (board_spec below). Assumption: the peak, not a measured sustained rate.
    double ddr_gbytes_per_s = 19.2;
    // Assumption, not measured: about 300 cycles at 300 MHz per layer for fetching its
    // instructions, starting its loads and filling and draining the engine's pipeline. No public
    // figure isolates it; calibrate against a board's profile (vaitrace) before trusting it.
    double overhead_us = 1.0;
    // Depth of the conv's input banks (VB0/VB1) and of the depthwise weights bank (DWCONVW):
    // [TF] bank_group bank_depth, 2048 in every size (the conv weights bank CONVW too).
    std::size_t bank_depth = 2048, dw_bank_depth = 2048;

    std::size_t peak_ops_per_cycle() const { return 2 * pp * icp * ocp; }
    double peak_gops() const { return static_cast<double>(peak_ops_per_cycle()) * clock_mhz / 1e3; }
};

// The eight sizes of DPUCZDX8G, at the defaults above (300 MHz, 19.2 GB/s, 1 us per layer).
// PP x ICP x OCP [REF] and [TF]: B512 4x8x8, B800 4x10x10, B1024 8x8x8, B1152 4x12x12,
// B1600 8x10x10, B2304 8x12x12, B3136 8x14x14, B4096 8x16x16; ALU and eltwise lanes ICP x PP/2.
inline const std::vector<dpu_config>& dpu_sizes() {
    static const std::vector<dpu_config> sizes = [] {
        auto size = [](const char* name, std::size_t pp, std::size_t cp) {
            dpu_config c;
            c.name = name;
            c.pp = pp;
            c.icp = c.ocp = c.alu_cp = c.eltwise_cp = cp;
            c.alu_pp = c.eltwise_pp = pp / 2;
            return c;
        };
        return std::vector<dpu_config>{size("B512", 4, 8),   size("B800", 4, 10),  size("B1024", 8, 8),
                                       size("B1152", 4, 12), size("B1600", 8, 10), size("B2304", 8, 12),
                                       size("B3136", 8, 14), size("B4096", 8, 16)};
    }();
    return sizes;
}

namespace detail {
// The entry of `list` called `name`, or an error listing the names there are.
template <class T>
T named_entry(const std::vector<T>& list, std::string_view name, const char* where, const char* what) {
    std::string known;
    for (const auto& e : list) {
        if (e.name == name) return e;
        known += (known.empty() ? "" : ", ") + e.name;
    }
    fail(where, "unknown " + std::string(what) + " '" + std::string(name) + "' (known: " + known + ")");
}
}  // namespace detail

inline dpu_config dpu_size(std::string_view name) {
    return detail::named_entry(dpu_sizes(), name, "analysis::dpu_size", "DPU size");
}

// A board: how many cores of which size, their clock and the board's DDR bandwidth.
struct board_spec {
    std::string name;
    std::size_t cores = 1;
    std::string size = "B4096";
    double clock_mhz = 300;
    double ddr_gbytes_per_s = 19.2;
};

// Cores, size and clock: [REF] (ZCU104 2x B4096 @ 300 MHz, ZCU102 3x B4096 @ 281 MHz, KV260 1x
// B4096 @ 300 MHz). DDR: the PS's 64-bit DDR4 at its data rate, theoretical peak (8 bytes per
// transfer). ZCU102: DDR4-2133 (17.06 GB/s), the speed bin of its board preset
// (PSU__DDRC__SPEED_BIN DDR4_2133P in a public Vivado block design for board part
// xilinx.com:zcu102:part0:3.0; UG1182 not checked). KV260: DDR4-2400 (19.2 GB/s), the K26 PS
// setting (DDR4 2400P, 64-bit, 1200 MHz) in a third-party KV260 design note
// (RodolpheThienard/ieee-posit-benchmark, documentation/fpga/zynq_modification.typ; DS987 not
// checked). ZCU104: 64-bit DDR4 components (Xilinx/PYNQ docs/source/pynq_overlays/zcu104.rst);
// its data rate, 2400 like the K26's, is an assumption.
inline const std::vector<board_spec>& dpu_boards() {
    static const std::vector<board_spec> boards{
        {"zcu102", 3, "B4096", 281, 17.064}, {"zcu104", 2, "B4096", 300, 19.2}, {"kv260", 1, "B4096", 300, 19.2}};
    return boards;
}

inline board_spec dpu_board(std::string_view name) {
    return detail::named_entry(dpu_boards(), name, "analysis::dpu_board", "board");
}

// One core of the board's size at its clock. Its cores share the DDR: with `busy_cores` running at
// once (one per thread), each gets that share of the bandwidth.
inline dpu_config on_board(const board_spec& b, std::size_t busy_cores = 1) {
    if (busy_cores == 0 || busy_cores > b.cores)
        fail("analysis::on_board", b.name + " has " + std::to_string(b.cores) + " DPU cores, not " +
                                       std::to_string(busy_cores) + " busy ones");
    dpu_config c = dpu_size(b.size);
    c.clock_mhz = b.clock_mhz;
    c.ddr_gbytes_per_s = b.ddr_gbytes_per_s / static_cast<double>(busy_cores);
    return c;
}

struct dpu_estimate {
    double compute_cycles = 0, compute_us = 0, memory_us = 0, overhead_us = 0, total_us = 0;
    bool memory_bound = false;
    // Useful MACs / (compute cycles * the engine's lanes): what padding to the engine's channel
    // and pixel parallelism wastes (conv: PP*ICP*OCP lanes; ALU: alu_cp*alu_pp; eltwise:
    // eltwise_cp*eltwise_pp). Without macs, the product of the three factors below.
    double utilization = 0;
    double ic_utilization = 1, oc_utilization = 1, pixel_utilization = 1;  // ic/(ceil(ic/ICP)*ICP) etc.
    std::size_t lanes = 0;  // the engine's MACs (or ALU operations) per cycle
    // Placement: false when the layer breaks one of its engine's limits (kernel, stride, the bank
    // rules), which sends it, and the subgraph boundary with it, to the CPU; `why` says which.
    // The figures above are still filled in, as if it fitted.
    bool fits = true;
    std::string why;
};

namespace detail {
inline std::size_t ceil_div(std::size_t a, std::size_t b) {
    return (a + b - 1) / b;
}
// The share of `lanes`-wide steps that n items fill.
inline double fill(std::size_t n, std::size_t lanes) {
    return static_cast<double>(n) / static_cast<double>(ceil_div(n, lanes) * lanes);
}
inline void refuse(dpu_estimate& e, const std::string& why) {
    e.fits = false;
    e.why += (e.why.empty() ? "" : "; ") + why;
}
inline void check_range(dpu_estimate& e, const char* what, std::size_t h, std::size_t w, std::size_t hi,
                        const char* engine) {
    if (h < 1 || w < 1 || h > hi || w > hi)
        refuse(e, std::string(what) + " " + std::to_string(h) + "x" + std::to_string(w) + " outside the " + engine +
                      "'s 1-" + std::to_string(hi));
}
}  // namespace detail

// total = max(compute, memory) + overhead: loads, compute and saves of a layer overlap, layers do
// not (the assumption of the overhead). `none` costs nothing.
inline dpu_estimate estimate(const dpu_work& w, const dpu_config& c) {
    using detail::ceil_div;
    using detail::fill;
    dpu_estimate e;
    if (w.engine == dpu_engine::none) return e;
    if (c.pp == 0 || c.icp == 0 || c.ocp == 0 || c.alu_cp == 0 || c.alu_pp == 0 || c.eltwise_cp == 0 ||
        c.eltwise_pp == 0 || !(c.clock_mhz > 0) || !(c.ddr_gbytes_per_s > 0) || !(c.overhead_us >= 0))
        fail("analysis::estimate", "DPU config '" + c.name +
                                       "': every parallelism, the clock and the DDR bandwidth must be positive and "
                                       "the overhead not negative");
    const bool conv = w.engine == dpu_engine::conv;
    if ((conv && w.ic == 0) || w.oc == 0 || w.oh == 0 || w.ow == 0 || w.kh == 0 || w.kw == 0 || w.stride == 0)
        fail("analysis::estimate",
             std::string(engine_name(w.engine)) + " layer with a zero dimension (ic " + std::to_string(w.ic) + ", oc " +
                 std::to_string(w.oc) + ", out " + std::to_string(w.oh) + "x" + std::to_string(w.ow) + ", kernel " +
                 std::to_string(w.kh) + "x" + std::to_string(w.kw) + ", stride " + std::to_string(w.stride) + ")");

    std::size_t cycles = 0;
    switch (w.engine) {
        case dpu_engine::conv:
            // Issue 16's conv model, the one PG338's 2 x PP x ICP x OCP ops per cycle implies: each
            // cycle PP output pixels of one row x ICP input channels x OCP output channels, one
            // kernel tap; every count padded up to its parallelism.
            e.lanes = c.pp * c.icp * c.ocp;
            cycles = ceil_div(w.ic, c.icp) * ceil_div(w.oc, c.ocp) * ceil_div(w.ow, c.pp) * w.oh * w.kh * w.kw;
            e.ic_utilization = fill(w.ic, c.icp);
            e.oc_utilization = fill(w.oc, c.ocp);
            e.pixel_utilization = fill(w.ow, c.pp);
            detail::check_range(e, "kernel", w.kh, w.kw, 16, "conv engine");         // [TF] conv_limit kernel_size 1-16
            detail::check_range(e, "stride", w.stride, w.stride, 8, "conv engine");  // [TF] conv_limit stride 1-8
            // [TF2] In_Size: kernel_w * kernel_h * ceil(ic / ICP) <= the input bank's depth. ([NNDCT]'s
            // weights rule, kw*kh*ceil(ic/bank_width)*ceil(OCP/bank_num) <= CONVW's depth, is the same
            // count here: CONVW has ICP wide banks, OCP of them, 2048 deep.)
            if (const auto in_size = w.kw * w.kh * ceil_div(w.ic, c.icp); in_size > c.bank_depth)
                detail::refuse(e, "input size kw*kh*ceil(ic/ICP) = " + std::to_string(in_size) + " > bank depth " +
                                      std::to_string(c.bank_depth));
            // [TF2] Out_Size: output_channel <= 256 * OCP.
            if (w.oc > 256 * c.ocp)
                detail::refuse(e, "oc " + std::to_string(w.oc) + " > 256*OCP = " + std::to_string(256 * c.ocp));
            break;
        case dpu_engine::depthwise:
        case dpu_engine::pool:
            // Assumption: the ALU does one kernel tap per cycle for each of its alu_cp channel x
            // alu_pp pixel lanes ([TF] gives the lanes, not the schedule); padded like the conv.
            e.lanes = c.alu_cp * c.alu_pp;
            cycles = ceil_div(w.oc, c.alu_cp) * ceil_div(w.ow, c.alu_pp) * w.oh * w.kh * w.kw;
            e.ic_utilization = e.oc_utilization = fill(w.oc, c.alu_cp);
            e.pixel_utilization = fill(w.ow, c.alu_pp);
            detail::check_range(e, "kernel", w.kh, w.kw, 256, "ALU");          // [TF] alu_limit kernel_size 1-256
            detail::check_range(e, "stride", w.stride, w.stride, 256, "ALU");  // [TF] alu_limit stride 1-256
            // [NNDCT] depthwise weights: kw*kh*ceil(CP/bank_width) <= DWCONVW's depth; its banks are CP
            // wide, so kw*kh <= 2048.
            if (w.engine == dpu_engine::depthwise && w.kh * w.kw > c.dw_bank_depth)
                detail::refuse(e, "depthwise kernel taps kh*kw = " + std::to_string(w.kh * w.kw) +
                                      " > weights bank depth " + std::to_string(c.dw_bank_depth));
            break;
        case dpu_engine::eltwise:
            // Assumption: one output element per lane per cycle (both operands read in that cycle).
            e.lanes = c.eltwise_cp * c.eltwise_pp;
            cycles = ceil_div(w.oc, c.eltwise_cp) * ceil_div(w.ow, c.eltwise_pp) * w.oh;
            e.ic_utilization = e.oc_utilization = fill(w.oc, c.eltwise_cp);
            e.pixel_utilization = fill(w.ow, c.eltwise_pp);
            break;
        case dpu_engine::none:
            break;
    }

    e.compute_cycles = static_cast<double>(cycles);
    e.compute_us = e.compute_cycles / c.clock_mhz;
    // bytes / (GB/s) is in ns; / 1e3 in us.
    e.memory_us = static_cast<double>(w.weight_bytes + w.in_bytes + w.out_bytes) / (c.ddr_gbytes_per_s * 1e3);
    e.overhead_us = c.overhead_us;
    e.memory_bound = e.memory_us > e.compute_us;
    e.total_us = std::max(e.compute_us, e.memory_us) + e.overhead_us;
    const double structural =
        conv ? e.ic_utilization * e.oc_utilization * e.pixel_utilization : e.oc_utilization * e.pixel_utilization;
    e.utilization =
        w.macs > 0 ? static_cast<double>(w.macs) / (e.compute_cycles * static_cast<double>(e.lanes)) : structural;
    return e;
}

}  // namespace sgp::analysis
