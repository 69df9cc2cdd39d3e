// The layer-wise analysis (include/sgp/analysis/): rows that sum to the compile-time totals,
// fused and view rows, liveness by hand, per-layer timing's shape, int8 error, the report files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sgp/analysis/qmodel_table.hpp>
#include <sgp/analysis/report.hpp>
#include <sgp/io/json_reader.hpp>
#include <sgp/models/mobilenet.hpp>
#include <sgp/models/resnet.hpp>
#include <sgp/models/vgg.hpp>
#include <sgp/quant/calibrate.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/int8_target.hpp>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "qmodel_fixtures.hpp"

using namespace sgp::layers;
namespace an = sgp::analysis;
using sgp_test::random_vector;

namespace {

using small_t = sgp::sequential<sgp::input<1, 8, 8>, conv2d<4, 3>, batch_norm, relu, max_pool<2>, flatten, linear<10>>;
// One identity block and one with a projection shortcut.
using res_t = sgp::sequential<sgp::input<2, 8, 8>, conv2d<4, 3>, batch_norm, relu,
                              residual<conv2d<4, 3>, batch_norm, relu, conv2d<4, 3>, batch_norm>,
                              residual<conv2d<6, 3, 2, 1>, batch_norm, shortcut<conv2d<6, 1, 2, 0>, batch_norm>>,
                              global_avg_pool, flatten, linear<3>>;

template <class Net>
void check_sums(Net& net) {
    const auto t = an::table_of(net);
    std::size_t params = 0, macs = 0;
    for (const auto& r : t.rows) params += r.at.parameters, macs += r.at.macs;
    CHECK(t.rows.size() == Net::node_count);
    CHECK(params == t.total.parameters);
    CHECK(macs == t.total.macs);
    CHECK(t.total == net.active_cost());
    CHECK(params == net.active_parameter_count());
}

template <class Net>
const an::layer_row& row_at(const an::layer_table& t, const std::string& path) {
    const auto it = std::find_if(t.rows.begin(), t.rows.end(), [&](const an::layer_row& r) { return r.path == path; });
    REQUIRE(it != t.rows.end());
    return *it;
}

}  // namespace

TEST_CASE("per-layer parameters and multiply-adds sum to the compile-time totals") {
    {
        sgp::models::vgg13bn_quarter<> net(1);
        const auto t = an::table_of(net);
        CHECK(t.total == sgp::cost{decltype(net)::parameter_count, decltype(net)::macs});
        check_sums(net);
    }
    {
        sgp::models::resnet20<sgp::input<1, 32, 32>> net(1);
        const auto t = an::table_of(net);
        CHECK(t.total == sgp::cost{decltype(net)::parameter_count, decltype(net)::macs});
        check_sums(net);
    }
    {
        sgp::models::mobilenet_v2<sgp::input<1, 32, 32>> net(1);
        const auto t = an::table_of(net);
        CHECK(t.total == sgp::cost{decltype(net)::parameter_count, decltype(net)::macs});
        check_sums(net);
    }
}

TEST_CASE("after pruning, the rows hold the active widths and still sum to the network's figures") {
    sgp::models::vgg13bn_quarter<> net(1);
    using Net = decltype(net);
    const auto& groups = sgp::prune::channel_groups<Net>();
    REQUIRE(groups.size() >= 3);
    sgp::prune::detail::keep_active(net, groups[0], {0, 3, 5});
    sgp::prune::detail::keep_active(net, groups[2], {1, 2});
    const auto t = an::table_of(net);
    CHECK(t.total.parameters < Net::parameter_count);
    CHECK(t.total.macs < Net::macs);
    check_sums(net);
    // The first convolution now writes 3 of its 16 declared channels; the next reads 3.
    const auto& first = t.rows[groups[0].producer];
    CHECK(first.out.c == 3);
    CHECK(first.declared_out == Net::layer_type<0>::out_shape.c);
    CHECK(t.rows[groups[0].producer + 3].in.c == 3);
}

TEST_CASE("evaluation's fusion and a flatten's view are rows without activations, liveness by hand") {
    small_t net(1);
    const auto t = an::table_of(net);
    REQUIRE(t.rows.size() == 6);
    // conv -> batch norm -> relu run as one pass: only the ReLU's output is formed.
    CHECK_FALSE(t.rows[0].formed);
    CHECK_FALSE(t.rows[1].formed);
    CHECK(t.rows[2].formed);
    CHECK(t.rows[3].formed);
    CHECK_FALSE(t.rows[4].formed);  // flatten: a view of the pool's output
    CHECK(t.rows[5].formed);
    // The convolution runs the group; batch norm and ReLU are fused into it.
    CHECK_FALSE(t.rows[0].fused);
    CHECK(t.rows[1].fused);
    CHECK(t.rows[2].fused);
    CHECK_FALSE(t.rows[3].fused);
    CHECK_FALSE(t.rows[4].fused);
    CHECK(t.rows[0].windowed);
    CHECK(t.rows[0].kernel == 3);
    CHECK(t.rows[3].kernel == 2);
    CHECK(t.rows[3].stride == 2);
    // Input 64 values; the fused group's output 4x8x8 = 256; pool 4x4x4 = 64; linear 10.
    CHECK(t.rows[0].live_elements == 64);        // the input, while the group runs
    CHECK(t.rows[2].live_elements == 64 + 256);  // the group writes its output
    CHECK(t.rows[3].live_elements == 256 + 64);  // the pool reads it, writes its own
    CHECK(t.rows[4].live_elements == 64);
    CHECK(t.rows[5].live_elements == 64 + 10);
    CHECK(t.peak_live_elements == 320);
    CHECK(t.peak_at == 2);
}

TEST_CASE("a residual block keeps its input alive while its body runs, and reads it in the shortcut") {
    res_t net(1);
    const auto t = an::table_of(net);
    const auto& g = res_t::graph();
    // The second block: body conv (stride 2) reads the first block's add; the shortcut conv
    // reads the same node, not the body's last node.
    std::size_t first_add = 0, second_add = 0, adds = 0;
    for (const auto& n : g.nodes)
        if (n.type == sgp::graph::node_type::add) (adds++ == 0 ? first_add : second_add) = n.id;
    REQUIRE(adds == 2);
    const auto& body_conv = t.rows[first_add + 1];
    CHECK(body_conv.reads == std::vector<std::size_t>{first_add});
    const auto& add = t.rows[second_add];
    REQUIRE(add.reads.size() == 2);
    const auto& shortcut_conv = t.rows[add.reads[1] - 1];  // the shortcut: conv, batch norm
    CHECK(shortcut_conv.reads == std::vector<std::size_t>{first_add});
    // While the body's convolution runs, the block's input (4x8x8) and, once written, the
    // body's output (6x4x4) are alive.
    CHECK(body_conv.live_elements == 4 * 64);
    CHECK(t.rows[first_add + 2].live_elements == 4 * 64 + 6 * 16);
    // The first add: its two operands (body output and block input) and its output.
    CHECK(t.rows[first_add].live_elements == 3 * 4 * 64);
    check_sums(net);
}

TEST_CASE("inside composites, every leaf reads the node its input comes from") {
    // A residual block opening the second branch of a concat reads the concat's input, not the
    // first branch's end; a residual nested in a residual's body reads the body's node before it.
    using cat_t = sgp::sequential<
        sgp::input<2, 6, 6>, conv2d<4, 3>, relu,
        concat<chain<conv2d<3, 1, 1, 0>, relu>, chain<residual<conv2d<4, 3>, batch_norm>, conv2d<2, 1, 1, 0>>>, flatten,
        linear<3>>;
    cat_t net(1);
    const auto t = an::table_of(net);
    const auto& g = cat_t::graph();
    // 0 conv, 1 relu, [2 conv, 3 relu], [4 conv, 5 bn, 6 add, 7 conv], 8 concat, 9 flatten, 10 linear
    REQUIRE(g.nodes.size() == 11);
    CHECK(t.rows[2].reads == std::vector<std::size_t>{1});
    CHECK(t.rows[4].reads == std::vector<std::size_t>{1});     // the second branch reads the concat's input
    CHECK(t.rows[6].reads == std::vector<std::size_t>{5, 1});  // body end, identity shortcut: the input
    CHECK(t.rows[7].reads == std::vector<std::size_t>{6});
    CHECK(t.rows[8].reads == std::vector<std::size_t>{3, 7});
    check_sums(net);

    using nested_t =
        sgp::sequential<sgp::input<2, 6, 6>, conv2d<4, 3>, relu,
                        residual<conv2d<4, 3>, relu, residual<conv2d<4, 3>, batch_norm>>, flatten, linear<3>>;
    nested_t nested(1);
    const auto u = an::table_of(nested);
    // 0 conv, 1 relu, [2 conv, 3 relu, [4 conv, 5 bn, 6 inner add], 7 outer add], 8 flatten, 9 linear
    REQUIRE(u.rows.size() == 10);
    CHECK(u.rows[4].reads == std::vector<std::size_t>{3});
    CHECK(u.rows[6].reads == std::vector<std::size_t>{5, 3});
    CHECK(u.rows[7].reads == std::vector<std::size_t>{6, 1});
    // While the inner body runs, the outer block's input (node 1) and the inner one's (node 3)
    // are both alive.
    CHECK(u.rows[4].live_elements == 4 * 36 + 4 * 36);
    check_sums(nested);
}

TEST_CASE("DPU engines come from what the layers state") {
    res_t net(1);
    const auto t = an::table_of(net);
    std::size_t conv = 0, pool = 0, eltwise = 0, none = 0;
    for (const auto& r : t.rows) {
        const auto w = an::dpu_work_of(r);
        switch (w.engine) {
            case an::dpu_engine::conv:
                ++conv;
                break;
            case an::dpu_engine::pool:
                ++pool;
                break;
            case an::dpu_engine::eltwise:
                ++eltwise;
                break;
            case an::dpu_engine::none:
                ++none;
                break;
            case an::dpu_engine::depthwise:
                FAIL("no depthwise layer here");
                break;
        }
        if (r.type == sgp::graph::node_type::add) CHECK(w.in_bytes == 2 * r.out.size());
    }
    CHECK(conv == 6);  // 5 convolutions and the linear layer
    CHECK(pool == 1);
    CHECK(eltwise == 2);
    using dw_t = sgp::sequential<sgp::input<4, 8, 8>, depthwise_conv2d<3>, batch_norm, relu6, conv2d<8, 1, 1, 0>>;
    dw_t dw(1);
    const auto d = an::table_of(dw);
    CHECK(an::dpu_work_of(d.rows[0]).engine == an::dpu_engine::depthwise);
    CHECK(an::dpu_work_of(d.rows[1]).engine == an::dpu_engine::none);
    CHECK(an::dpu_work_of(d.rows[3]).engine == an::dpu_engine::conv);
}

TEST_CASE("per-layer fp32 times: one per node, fused nodes charged to their convolution") {
    small_t net(1);
    const auto x = random_vector(4 * 64, 3);
    const auto tm = an::time_fp32(net, x.data(), 4, 5);
    REQUIRE(tm.ms.size() == small_t::node_count);
    CHECK(tm.repeats == 5);
    CHECK(tm.ms[1] == 0.0);  // batch norm and ReLU ran inside the convolution's pass
    CHECK(tm.ms[2] == 0.0);
    CHECK(tm.ms[0] > 0.0);
    CHECK(tm.total_ms > 0.0);
    double sum = 0;
    for (double v : tm.ms) {
        CHECK(v >= 0.0);
        sum += v;
    }
    CHECK(sum == doctest::Approx(tm.sum_ms));
    an::report r;
    r.table = an::table_of(net);
    an::attach_fp32(r, tm);
    CHECK(r.table.rows[0].cpu_fp32_ms == tm.ms[0]);
    an::timing wrong;
    wrong.ms.resize(2);
    CHECK_THROWS_AS(an::attach_fp32(r, wrong), sgp::error);
}

TEST_CASE("per-layer fp32 times of residual blocks: the body, the shortcut and the add each get their own") {
    res_t net(1);
    const auto x = random_vector(2 * 2 * 64, 4);
    const auto tm = an::time_fp32(net, x.data(), 2, 5);
    const auto t = an::table_of(net);
    REQUIRE(tm.ms.size() == t.rows.size());
    for (const auto& r : t.rows) {
        CAPTURE(r.path);
        if (r.fused)
            CHECK(tm.ms[r.id] == 0.0);
        else if (r.role == sgp::channel_role::produces || r.type == sgp::graph::node_type::add)
            CHECK(tm.ms[r.id] > 0.0);
    }
}

TEST_CASE("int8: per-op times and errors land on the nodes the ops come from") {
    small_t net(1);
    auto m = sgp::quant::fold(net);
    REQUIRE(m.ops.size() == 3);  // conv (with batch norm and ReLU), max pool, linear
    sgp::quant::calibrator cal(m, sgp::quant::calibration::max_abs);
    const auto x = random_vector(16 * 64, 5, 0.f, 1.f);
    for (std::size_t i = 0; i < 16; ++i) cal.observe(x.data() + i * 64);
    cal.finish();
    sgp::target::int8_target fast(m);
    const auto tm = an::time_int8(fast, x.data(), 4, 64, 3);
    REQUIRE(tm.ms.size() == m.ops.size() + 2);
    const auto err = an::int8_error(m, x.data(), 16, 64);
    REQUIRE(err.size() == 3);
    for (const auto& e : err) {
        CHECK(e.signal > 0);
        // 8 bits of a calibrated range: tens of dB, not exact, not noise.
        CHECK(e.sqnr_db() > 15.0);
        CHECK(e.sqnr_db() < 60.0);
    }
    an::report r;
    r.table = an::table_of(net);
    const auto nodes = an::nodes_of_ops(m);
    CHECK(nodes == std::vector<std::size_t>{0, 3, 5});
    CHECK_THROWS_AS(an::attach_int8(r, nodes, tm, std::vector<an::op_error>(2)), sgp::error);
    an::attach_int8(r, nodes, tm, err);
    CHECK(r.table.rows[3].int8_op == 1);
    CHECK(r.table.rows[5].cpu_int8_ms == tm.ms[3]);
    CHECK(r.table.rows[0].sqnr_db == doctest::Approx(err[0].sqnr_db()));
    CHECK(std::isnan(r.table.rows[1].sqnr_db));
}

TEST_CASE("an exact int8 op has infinite SQNR, an op without signal has none") {
    an::op_error exact{4.0, 0.0}, silent{0.0, 0.0}, half{1.0, 0.5};
    CHECK(std::isinf(exact.sqnr_db()));
    CHECK(std::isnan(silent.sqnr_db()));
    CHECK(half.sqnr_db() == doctest::Approx(10 * std::log10(2.0)));
}

TEST_CASE("a qmodel's own table sums to its weights and multiply-adds") {
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
        const auto m = sgp_test::random_model(seed);
        const auto t = an::table_of(m);
        REQUIRE(t.rows.size() == m.ops.size());
        std::size_t params = 0, macs = 0;
        for (const auto& op : m.ops)
            if (const auto* c = std::get_if<sgp::quant::qconv>(&op)) {
                params += c->weight.size() + c->bias.size();
                macs += c->cout * c->oh * c->ow * (c->weight.size() / c->cout);
            }
        CHECK(t.total.parameters == params);
        CHECK(t.total.macs == macs);
        CHECK(t.peak_live_elements >= m.c * m.h * m.w);
    }
}

TEST_CASE("the report's JSON, CSV and markdown hold every row") {
    small_t net(1);
    an::report r;
    r.network = "small";
    r.state = "declared";
    r.cpu = "test cpu";
    r.table = an::table_of(net);
    const auto x = random_vector(64, 9);
    an::attach_fp32(r, an::time_fp32(net, x.data(), 1, 3));
    an::estimate_dpu(r, an::dpu_size("B1024"));
    const auto j = sgp::parse_json(an::to_json(r), "report");
    CHECK(j.at("schema", "report").str == "sgp-report/1");
    CHECK(j.at("dpu", "report").at("name", "dpu").str == "B1024");
    const auto& rows = j.at("layers", "report");
    REQUIRE(rows.items.size() == r.table.rows.size());
    CHECK(rows.items[0].at("dpu", "row").at("engine", "row").str == "conv");
    CHECK(rows.items[1].at("fused", "row").b);
    CHECK(rows.items[0].at("fused", "row").b == false);  // the convolution runs the fused group
    CHECK(rows.items[4].at("fused", "row").b == false);  // a flatten is a view, not fused
    CHECK(j.at("totals", "report").at("parameters", "totals").index("parameters") == small_t::parameter_count);
    CHECK(j.at("dpu_sizes", "report").items.size() == an::dpu_sizes().size());
    const auto csv = an::to_csv(r);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == static_cast<std::ptrdiff_t>(r.table.rows.size() + 1));
    const auto header = csv.substr(0, csv.find('\n'));
    const auto columns = std::count(header.begin(), header.end(), ',');
    for (std::size_t at = csv.find('\n') + 1; at < csv.size();) {
        const auto end = csv.find('\n', at);
        const auto line = csv.substr(at, end - at);
        CHECK(std::count(line.begin(), line.end(), ',') == columns);
        at = end + 1;
    }
    const auto md = an::to_markdown(r);
    CHECK(md.find("| 5 | 5 | linear |") != std::string::npos);
}
