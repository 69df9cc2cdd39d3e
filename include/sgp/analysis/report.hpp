#pragma once
// The layer-wise report: the layer table (analysis/layer_table.hpp) with the measured CPU
// times (profile.hpp), the int8 error (sqnr.hpp) and the DPU estimate (dpu_model.hpp) per row,
// and the totals; written as JSON (schema "sgp-report/1", read by scripts/plot_report.py), CSV
// (one row per layer, to set beside a vaitrace run) and a markdown table. docs/analysis.md
// explains every column.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "sgp/analysis/dpu_mapping.hpp"
#include "sgp/analysis/dpu_model.hpp"
#include "sgp/analysis/layer_table.hpp"
#include "sgp/analysis/profile.hpp"
#include "sgp/analysis/sqnr.hpp"
#include "sgp/core/error.hpp"
#include "sgp/io/atomic_file.hpp"
#include "sgp/io/json.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::analysis {

struct report {
    std::string network, state, weights, cpu, int8_note;
    std::size_t threads = 1, batch = 1, repeats = 0, sqnr_images = 0;
    layer_table table;
    timing fp32, int8;  // int8.ms: per step (0 the input's quantization, i + 1 op i, last the output)
    bool has_fp32 = false, has_int8 = false;
    dpu_config dpu = dpu_size("B4096");
    std::vector<dpu_estimate> dpu_rows;  // per row of the table

    double int8_io_ms() const { return has_int8 ? int8.ms.front() + int8.ms.back() : not_measured; }
};

// The measured fp32 times, per node.
inline void attach_fp32(report& r, const timing& t) {
    if (t.ms.size() != r.table.rows.size())
        fail("analysis::attach_fp32", "timing of " + std::to_string(t.ms.size()) + " nodes for a table of " +
                                          std::to_string(r.table.rows.size()));
    r.fp32 = t;
    r.has_fp32 = true;
    for (std::size_t i = 0; i < t.ms.size(); ++i) r.table.rows[i].cpu_fp32_ms = t.ms[i];
}

// The node of the network each op of `m` comes from (the layer that opened it in quant::fold).
inline std::vector<std::size_t> nodes_of_ops(const quant::qmodel& m) {
    std::vector<std::size_t> n;
    for (const auto& op : m.ops) n.push_back(quant::base_of(op).layer);
    return n;
}

// The int8 path's times and errors, per op, on row node[op] of the table.
inline void attach_int8(report& r, const std::vector<std::size_t>& node_of_op, const timing& t,
                        const std::vector<op_error>& err) {
    if (t.ms.size() != node_of_op.size() + 2)
        fail("analysis::attach_int8",
             "timing of " + std::to_string(t.ms.size()) + " steps for " + std::to_string(node_of_op.size()) + " ops");
    if (err.size() != node_of_op.size())
        fail("analysis::attach_int8",
             "errors of " + std::to_string(err.size()) + " ops for " + std::to_string(node_of_op.size()) + " ops");
    r.int8 = t;
    r.has_int8 = true;
    for (std::size_t i = 0; i < node_of_op.size(); ++i) {
        const std::size_t node = node_of_op[i];
        if (node >= r.table.rows.size())
            fail("analysis::attach_int8", "op " + std::to_string(i) + " names node " + std::to_string(node) +
                                              ", the table has " + std::to_string(r.table.rows.size()));
        auto& row = r.table.rows[node];
        row.int8_op = i;
        row.cpu_int8_ms = t.ms[i + 1];
        row.sqnr_db = err[i].sqnr_db();
    }
}

// The DPU estimate of every row for configuration `c`.
inline void estimate_dpu(report& r, const dpu_config& c) {
    r.dpu = c;
    r.dpu_rows.clear();
    for (const auto& row : r.table.rows) r.dpu_rows.push_back(estimate(dpu_work_of(row), c));
}

// The DPU's share of the network: the layers it would run. A layer it cannot place runs on
// the CPU (and splits the graph into subgraphs): counted in not_placed, not in the times.
struct dpu_totals {
    double total_us = 0, compute_us = 0, memory_us = 0, overhead_us = 0;
    std::size_t layers = 0, memory_bound = 0, not_placed = 0;
};
inline dpu_totals dpu_sum(const report& r, const std::vector<dpu_estimate>& rows) {
    dpu_totals s;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& e = rows[i];
        if (dpu_work_of(r.table.rows[i]).engine == dpu_engine::none) continue;
        if (!e.fits) {
            ++s.not_placed;
            continue;
        }
        s.total_us += e.total_us, s.compute_us += e.compute_us, s.memory_us += e.memory_us,
            s.overhead_us += e.overhead_us;
        ++s.layers;
        s.memory_bound += e.memory_bound;
    }
    return s;
}

namespace detail {

inline const char* bound_name(dpu_engine e, const dpu_estimate& d) {
    return e == dpu_engine::none ? "none" : d.memory_bound ? "memory" : "compute";
}
inline std::string number(double v, const char* fmt = "%.6g") {
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";  // an exact int8 op's SQNR
    if (!std::isfinite(v)) return "";
    char b[48];
    std::snprintf(b, sizeof b, fmt, v);
    return b;
}
inline double share(double part, double whole) {
    return whole > 0 ? part / whole : not_measured;
}
inline void shape_array(json_writer& j, const char* key, const shape& s) {
    j.key(key).begin_array().value(s.c).value(s.h).value(s.w).end_array();
}
inline std::string csv_text(std::string s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

}  // namespace detail

inline std::string to_json(const report& r) {
    const auto& t = r.table;
    const auto d = dpu_sum(r, r.dpu_rows);
    json_writer j;
    j.begin_object()
        .field("schema", "sgp-report/1")
        .field("network", r.network)
        .field("state", r.state)
        .field("weights", r.weights)
        .field("cpu", r.cpu)
        .field("threads", r.threads)
        .field("batch", r.batch)
        .field("repeats", r.repeats)
        .field("sqnr_images", r.sqnr_images);
    if (!r.int8_note.empty()) j.field("int8_note", r.int8_note);
    detail::shape_array(j, "input", t.input);
    j.key("dpu")
        .begin_object()
        .field("name", r.dpu.name)
        .field("pp", r.dpu.pp)
        .field("icp", r.dpu.icp)
        .field("ocp", r.dpu.ocp)
        .field("peak_ops_per_cycle", r.dpu.peak_ops_per_cycle())
        .field("clock_mhz", r.dpu.clock_mhz)
        .field("ddr_gbytes_per_s", r.dpu.ddr_gbytes_per_s)
        .field("overhead_us", r.dpu.overhead_us)
        .end_object();
    const std::size_t weights = t.total.parameters;  // the rows' sum (layer_table)
    j.key("totals")
        .begin_object()
        .field("parameters", t.total.parameters)
        .field("macs", t.total.macs)
        .field("gop", 2.0 * static_cast<double>(t.total.macs) / 1e9)
        .field("weight_bytes_fp32", 4 * weights)
        .field("weight_bytes_int8", weights)
        .field("peak_activation_bytes_fp32", 4 * t.peak_live_elements)
        .field("peak_activation_bytes_int8", t.peak_live_elements)
        .field("peak_at", t.rows.empty() ? std::string() : t.rows[t.peak_at].path)
        .field("peak_working_bytes_fp32", 4 * (t.peak_live_elements + weights))
        .field("cpu_fp32_ms", r.has_fp32 ? r.fp32.total_ms : not_measured)
        .field("cpu_fp32_ms_layers", r.has_fp32 ? r.fp32.sum_ms : not_measured)
        .field("cpu_int8_ms", r.has_int8 ? r.int8.total_ms : not_measured)
        .field("cpu_int8_ms_layers", r.has_int8 ? r.int8.sum_ms : not_measured)
        .field("cpu_int8_io_ms", r.int8_io_ms())
        .field("dpu_us", d.total_us)
        .field("dpu_compute_us", d.compute_us)
        .field("dpu_memory_us", d.memory_us)
        .field("dpu_overhead_us", d.overhead_us)
        .field("dpu_layers", d.layers)
        .field("dpu_memory_bound_layers", d.memory_bound)
        .field("dpu_not_placed_layers", d.not_placed)
        .end_object();
    // The whole network on every DPU size at the same clock and bandwidth.
    j.key("dpu_sizes").begin_array();
    for (auto c : dpu_sizes()) {
        c.clock_mhz = r.dpu.clock_mhz, c.ddr_gbytes_per_s = r.dpu.ddr_gbytes_per_s, c.overhead_us = r.dpu.overhead_us;
        std::vector<dpu_estimate> rows;
        for (const auto& row : t.rows) rows.push_back(estimate(dpu_work_of(row), c));
        const auto s = dpu_sum(r, rows);
        j.begin_object()
            .field("name", c.name)
            .field("total_us", s.total_us)
            .field("compute_us", s.compute_us)
            .field("memory_us", s.memory_us)
            .end_object();
    }
    j.end_array();
    j.key("layers").begin_array();
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const auto& row = t.rows[i];
        const auto w = dpu_work_of(row);
        const dpu_estimate e = i < r.dpu_rows.size() ? r.dpu_rows[i] : dpu_estimate{};
        j.begin_object().field("id", row.id).field("path", row.path).field("kind", row.kind);
        detail::shape_array(j, "in", row.in);
        detail::shape_array(j, "out", row.out);
        j.field("declared_in", row.declared_in)
            .field("declared_out", row.declared_out)
            .field("parameters", row.at.parameters)
            .field("macs", row.at.macs)
            .field("gop", row.gop())
            .field("weight_bytes_fp32", row.weight_bytes_fp32())
            .field("weight_bytes_int8", row.weight_bytes_int8())
            .field("activation_in_bytes_fp32", 4 * row.in_elements())
            .field("activation_out_bytes_fp32", 4 * row.out_elements())
            .field("live_bytes_fp32", 4 * row.live_elements)
            .field("fused", row.fused)
            .field("cpu_fp32_ms", row.cpu_fp32_ms)
            .field("cpu_fp32_share", detail::share(row.cpu_fp32_ms, r.fp32.sum_ms))
            .field("cpu_int8_ms", row.cpu_int8_ms)
            .field("cpu_int8_share", detail::share(row.cpu_int8_ms, r.int8.sum_ms))
            .field("sqnr_db", row.sqnr_db)
            .field("int8_exact", std::isinf(row.sqnr_db));  // sqnr_db is null then: no noise at all
        if (row.int8_op != graph::no_node)
            j.field("int8_op", row.int8_op);
        else
            j.key("int8_op").value_raw("null");
        j.key("dpu")
            .begin_object()
            .field("engine", engine_name(w.engine))
            .field("total_us", e.total_us)
            .field("compute_us", e.compute_us)
            .field("memory_us", e.memory_us)
            .field("compute_cycles", e.compute_cycles)
            .field("bound", detail::bound_name(w.engine, e))
            .field("utilization", e.utilization)
            .field("fits", e.fits)
            .field("why", e.why)
            .end_object();
        j.end_object();
    }
    j.end_array().end_object();
    return j.str() + "\n";
}

inline std::string to_csv(const report& r) {
    std::string s =
        "id,path,kind,in_c,in_h,in_w,out_c,out_h,out_w,declared_in,declared_out,parameters,macs,gop,"
        "weight_bytes_fp32,weight_bytes_int8,activation_in_bytes_fp32,activation_out_bytes_fp32,live_bytes_fp32,fused,"
        "cpu_fp32_ms,cpu_int8_ms,sqnr_db,dpu_engine,dpu_total_us,dpu_compute_us,dpu_memory_us,dpu_bound,"
        "dpu_utilization,dpu_fits,dpu_why\n";
    const auto& t = r.table;
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const auto& row = t.rows[i];
        const auto w = dpu_work_of(row);
        const dpu_estimate e = i < r.dpu_rows.size() ? r.dpu_rows[i] : dpu_estimate{};
        auto z = [](std::size_t v) { return std::to_string(v); };
        s += z(row.id) + "," + detail::csv_text(row.path) + "," + std::string(row.kind) + "," + z(row.in.c) + "," +
             z(row.in.h) + "," + z(row.in.w) + "," + z(row.out.c) + "," + z(row.out.h) + "," + z(row.out.w) + "," +
             z(row.declared_in) + "," + z(row.declared_out) + "," + z(row.at.parameters) + "," + z(row.at.macs) + "," +
             detail::number(row.gop()) + "," + z(row.weight_bytes_fp32()) + "," + z(row.weight_bytes_int8()) + "," +
             z(4 * row.in_elements()) + "," + z(4 * row.out_elements()) + "," + z(4 * row.live_elements) + "," +
             (row.fused ? "1" : "0") + "," + detail::number(row.cpu_fp32_ms) + "," + detail::number(row.cpu_int8_ms) +
             "," + detail::number(row.sqnr_db) + "," + std::string(engine_name(w.engine)) + "," +
             detail::number(e.total_us) + "," + detail::number(e.compute_us) + "," + detail::number(e.memory_us) + "," +
             detail::bound_name(w.engine, e) + "," + detail::number(e.utilization) + "," + (e.fits ? "1" : "0") + "," +
             detail::csv_text(e.why) + "\n";
    }
    return s;
}

inline std::string to_markdown(const report& r) {
    const auto& t = r.table;
    const auto d = dpu_sum(r, r.dpu_rows);
    auto mb = [](double bytes) { return detail::number(bytes / 1e6, "%.3f"); };
    const std::size_t weights = t.total.parameters;  // the rows' sum (layer_table)
    std::string s = "# " + r.network + " (" + r.state + ")\n\n";
    s += "Weights: " + (r.weights.empty() ? std::string("initial (none given)") : r.weights) + ". CPU: " + r.cpu +
         ", " + std::to_string(r.threads) + " thread(s), batch " + std::to_string(r.batch) + ", median of " +
         std::to_string(r.repeats) + " repeats.\n\n";
    s += "| total | value |\n| --- | --- |\n";
    s += "| parameters | " + std::to_string(t.total.parameters) + " |\n";
    s += "| multiply-adds per image | " + std::to_string(t.total.macs) + " (" +
         detail::number(2.0 * static_cast<double>(t.total.macs) / 1e9, "%.4f") + " GOP) |\n";
    s += "| weights fp32 / int8 | " + mb(4.0 * static_cast<double>(weights)) + " / " +
         mb(static_cast<double>(weights)) + " MB |\n";
    s += "| peak live activations fp32 / int8 (at " + (t.rows.empty() ? std::string() : t.rows[t.peak_at].path) +
         ") | " + mb(4.0 * static_cast<double>(t.peak_live_elements)) + " / " +
         mb(static_cast<double>(t.peak_live_elements)) + " MB |\n";
    if (r.has_fp32)
        s += "| CPU fp32, whole / sum of layers | " + detail::number(r.fp32.total_ms, "%.4f") + " / " +
             detail::number(r.fp32.sum_ms, "%.4f") + " ms |\n";
    if (r.has_int8)
        s += "| CPU int8, whole / sum of layers (incl. input and output " + detail::number(r.int8_io_ms(), "%.4f") +
             " ms) | " + detail::number(r.int8.total_ms, "%.4f") + " / " + detail::number(r.int8.sum_ms, "%.4f") +
             " ms |\n";
    else if (!r.int8_note.empty())
        s += "| int8 | " + r.int8_note + " |\n";
    s += "| DPU estimate (" + r.dpu.name + " at " + detail::number(r.dpu.clock_mhz, "%.0f") + " MHz, " +
         detail::number(r.dpu.ddr_gbytes_per_s, "%.1f") + " GB/s) | " + detail::number(d.total_us, "%.1f") +
         " us (compute " + detail::number(d.compute_us, "%.1f") + ", memory " + detail::number(d.memory_us, "%.1f") +
         ", overhead " + detail::number(d.overhead_us, "%.1f") + "; " + std::to_string(d.memory_bound) + " of " +
         std::to_string(d.layers) + " layers memory-bound" +
         (d.not_placed ? "; " + std::to_string(d.not_placed) + " layers the DPU cannot place, on the CPU" : "") +
         ") |\n\n";
    s += "| # | layer | kind | in | out | channels (declared) | params | MMACs | weights int8 KB | live KB | fp32 ms "
         "(batch " +
         std::to_string(r.batch) + ") | share | int8 ms (1 image) | SQNR dB | DPU us | bound | DPU util |\n";
    s += "| ---: | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | "
         "---: |\n";
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const auto& row = t.rows[i];
        const auto w = dpu_work_of(row);
        const dpu_estimate e = i < r.dpu_rows.size() ? r.dpu_rows[i] : dpu_estimate{};
        auto dims = [](const shape& x) {
            return std::to_string(x.c) + "x" + std::to_string(x.h) + "x" + std::to_string(x.w);
        };
        s += "| " + std::to_string(row.id) + " | " + row.path + " | " + std::string(row.kind) +
             (row.fused ? " (fused)" : "") + " | " + dims(row.in) + " | " + dims(row.out) + " | " +
             std::to_string(row.out.c) + " (" + std::to_string(row.declared_out) + ") | " +
             std::to_string(row.at.parameters) + " | " +
             detail::number(static_cast<double>(row.at.macs) / 1e6, "%.3f") + " | " +
             detail::number(static_cast<double>(row.weight_bytes_int8()) / 1e3, "%.1f") + " | " +
             detail::number(4.0 * static_cast<double>(row.live_elements) / 1e3, "%.1f") + " | " +
             detail::number(row.cpu_fp32_ms, "%.4f") + " | " +
             detail::number(100 * detail::share(row.cpu_fp32_ms, r.fp32.sum_ms), "%.1f %%") + " | " +
             detail::number(row.cpu_int8_ms, "%.4f") + " | " + detail::number(row.sqnr_db, "%.1f") + " | " +
             (w.engine == dpu_engine::none ? std::string() : detail::number(e.total_us, "%.2f")) + " | " +
             (w.engine == dpu_engine::none ? std::string() : std::string(detail::bound_name(w.engine, e))) +
             (e.fits ? "" : " (CPU: " + e.why + ")") + " | " +
             (w.engine == dpu_engine::none ? std::string() : detail::number(e.utilization, "%.2f")) + " |\n";
    }
    return s;
}

// Writes <stem>.json, <stem>.csv and <stem>.md, each atomically.
inline void save(const report& r, const std::string& stem) {
    write_file_atomic(stem + ".json", to_json(r));
    write_file_atomic(stem + ".csv", to_csv(r));
    write_file_atomic(stem + ".md", to_markdown(r));
}

}  // namespace sgp::analysis
