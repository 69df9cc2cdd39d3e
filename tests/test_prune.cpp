// Pruning: channel groups, surgery, plans, rules, options, costs, checkpoints.
#include <doctest/doctest.h>

#include <cstdio>
#include <sgp/sgp.hpp>

#include "helpers.hpp"

using namespace sgp::layers;
namespace pr = sgp::prune;

// Conv groups, a group across flatten on a 2x2 map (4 linear inputs per channel), a hidden
// linear group, and the classifier (not prunable).
using net_t =
    sgp::sequential<sgp::input<2, 8, 8>, conv3x3<6>, batch_norm, relu, max_pool<2>, conv3x3<5, true>, batch_norm, relu,
                    max_pool<2>, flatten, linear<7>, batch_norm, relu, dropout<0.3f>, linear<3>>;

namespace {

// A network with non-trivial running statistics and BN parameters.
net_t make_net(std::uint64_t seed = 3) {
    net_t net(seed);
    net.for_each_node([&](std::size_t i, auto& l) {
        if constexpr (sgp::has_channel_scale_v<std::remove_cvref_t<decltype(l)>>) {
            sgp::rng r(seed + i);
            l.for_each_tensor([&](const sgp::tensor_ref& t) {
                if (!t.value) return;
                for (std::size_t c = 0; c < t.size(); ++c)
                    t.value[c] = t.name == "running_var" ? r.uniform(0.5f, 2.f) : r.uniform(-0.8f, 0.8f);
            });
        }
    });
    return net;
}

std::vector<float> outputs(net_t& net, const std::vector<float>& x, std::size_t n, bool training = false) {
    net.reserve(n);
    std::copy(x.begin(), x.end(), net.input_buffer());
    sgp::run_context cx;
    cx.training = training;
    const float* out = net.forward(n, cx);
    return {out, out + 3 * n};
}

// Zeroes gamma and beta of the channels not in `keep` for the group whose BN is layer `norm`.
void mask(net_t& net, std::size_t norm, const std::vector<std::size_t>& keep) {
    pr::detail::with_node(net, norm, [&](auto& bn) {
        if constexpr (sgp::has_channel_scale_v<std::remove_cvref_t<decltype(bn)>>)
            for (std::size_t c = 0; c < bn.out_channels(); ++c)
                if (!std::binary_search(keep.begin(), keep.end(), c)) bn.gamma()[c] = bn.beta()[c] = 0.f;
    });
}

pr::group_stats stats(std::vector<float> score, double zeros = 0) {
    pr::group_stats g;
    g.channels = score.size();
    g.score = std::move(score);
    g.next_zero_fraction = zeros;
    return g;
}

}  // namespace

TEST_CASE("channel groups follow the layer list") {
    using ids = std::vector<std::size_t>;
    const auto& g = pr::channel_groups<net_t>();
    REQUIRE(g.size() == 3);
    CHECK((g[0].producers == ids{0} && g[0].scales == ids{1} && g[0].consumers == ids{4} && g[0].capacity == 6));
    CHECK((g[1].producers == ids{4} && g[1].scales == ids{5} && g[1].consumers == ids{9} && g[1].capacity == 5));
    CHECK((g[2].producers == ids{9} && g[2].scales == ids{10} && g[2].consumers == ids{13} && g[2].capacity == 7));
    // The linear layer after the flatten reads each channel of group 1 as its 2x2 = 4 features.
    CHECK(net_t::graph().nodes[9].in.at(0).factor == 4);
    CHECK(net_t::graph().nodes[4].in.at(0).factor == 1);
    // The ReLU (before the pool) is node 2, 6 and 11.
    CHECK((g[0].sites == ids{2} && g[1].sites == ids{6} && g[2].sites == ids{11}));
    CHECK((g[0].name == "0" && g[1].name == "4" && g[2].name == "9"));
    // The source work's VGG13BN: ten conv groups and the two 4096-wide classifier groups.
    const auto& v = pr::channel_groups<sgp::models::vgg13bn_source<>>();
    REQUIRE(v.size() == 12);
    CHECK(v[10].capacity == 4096);
    CHECK(v[11].consumers == ids{43});
}

TEST_CASE("pruning channels whose gamma and beta are zero leaves the outputs exactly unchanged") {
    const std::size_t n = 4;
    const auto x = sgp_test::random_vector(n * 2 * 64, 1);
    auto net = make_net();
    const std::vector<std::vector<std::size_t>> keep{{0, 2, 3, 5}, {1, 4}, {0, 1, 2, 6}};
    for (std::size_t i = 0; i < 3; ++i) mask(net, pr::channel_groups<net_t>()[i].scales[0], keep[i]);
    const auto before = outputs(net, x, n);
    auto copy = net;  // training mode updates running statistics: use a copy
    const auto before_train = outputs(copy, x, n, true);
    auto p = pr::current_plan(net);
    for (std::size_t i = 0; i < 3; ++i) p.layers[i].keep = keep[i];
    pr::apply(net, p);
    CHECK(net.widths()[1] == 4);
    CHECK(net.widths()[9] == 2 * 4);  // flatten of 2 channels x 2x2
    CHECK(outputs(net, x, n) == before);
    CHECK(outputs(net, x, n, true) == before_train);  // batch statistics of the kept channels are unchanged
}

TEST_CASE("a pruned network's forward equals the original with those channels masked") {
    const std::size_t n = 3;
    const auto x = sgp_test::random_vector(n * 2 * 64, 2);
    auto pruned = make_net(7), masked = make_net(7);
    const std::vector<std::vector<std::size_t>> keep{{1, 4}, {0, 2, 3}, {3}};
    for (std::size_t i = 0; i < 3; ++i) mask(masked, pr::channel_groups<net_t>()[i].scales[0], keep[i]);
    auto p = pr::current_plan(pruned);
    for (std::size_t i = 0; i < 3; ++i) p.layers[i].keep = keep[i];
    pr::apply(pruned, p);
    CHECK(outputs(pruned, x, n) == outputs(masked, x, n));
    // Costs at the new widths, computed and counted.
    CHECK(pruned.active_parameter_count() == pr::cost_at<net_t>(pruned.class_widths()).parameters);
    CHECK(pruned.active_macs() == pr::cost_at<net_t>(pruned.class_widths()).macs);
    CHECK(pruned.active_parameter_count() == 2 * 2 * 9 + 4 + 3 * 2 * 9 + 3 + 6 + 1 * 12 + 1 + 2 + 3 * 1 + 3);
}

TEST_CASE("pruning in rounds composes: plans keep declared indices") {
    auto net = make_net();
    auto p = pr::current_plan(net);
    p.layers[0].keep = {1, 2, 4, 5};
    pr::apply(net, p);
    p.layers[0].keep = {2, 5};
    pr::apply(net, p);
    CHECK(pr::kept_channels(net, pr::channel_groups<net_t>()[0]) == std::vector<std::size_t>{2, 5});
    p.layers[0].keep = {0, 2};
    CHECK_THROWS_WITH_AS(pr::apply(net, p), doctest::Contains("channel 0 was already removed"), sgp::error);
}

TEST_CASE("plans round-trip through JSON and re-apply to a checkpoint") {
    sgp_test::temp_dir d("plan");
    const auto x = sgp_test::random_vector(2 * 2 * 64, 3);
    auto net = make_net();
    auto p = pr::current_plan(net);
    p.layers[1].keep = {0, 3};
    p.layers[2].keep = {1, 2, 6};
    pr::apply(net, p);
    pr::save_plan(pr::current_plan(net), d.file("plan.json"));
    const auto q = pr::load_plan(d.file("plan.json"));
    CHECK(q.network == p.network);
    REQUIRE(q.layers.size() == 3);
    CHECK(q.layers[1].keep == p.layers[1].keep);
    CHECK(q.layers[2].keep == p.layers[2].keep);
    CHECK(q.layers[0].keep.size() == 6);

    // The plan applied to the unpruned checkpoint gives the pruned network.
    auto original = make_net();
    sgp::save_state_dict(original, d.file("full.npz"));
    net_t fresh(99);
    sgp::load_state_dict(fresh, d.file("full.npz"));
    pr::apply(fresh, q, d.file("plan.json"));
    CHECK(outputs(fresh, x, 2) == outputs(net, x, 2));

    // A pruned network's .npz describes its own widths.
    sgp::save_state_dict(net, d.file("pruned.npz"));
    net_t other(5);
    sgp::load_state_dict(other, d.file("pruned.npz"));
    CHECK(other.widths() == net.widths());
    CHECK(outputs(other, x, 2) == outputs(net, x, 2));
}

TEST_CASE("bad plans get clear errors") {
    net_t net;
    const auto good = pr::current_plan(net);
    auto fails = [&](pr::plan p, const char* what) {
        CHECK_THROWS_WITH_AS(pr::apply(net, p, "plan.json"), doctest::Contains(what), sgp::error);
    };
    auto p = good;
    p.layers[0].keep = {0, 6};
    fails(p, "channel index 6 is out of range (capacity 6)");
    p = good;
    p.layers[1].keep = {};
    fails(p, "keeps no channel");
    p = good;
    p.layers[0].keep = {3, 1};
    fails(p, "ascending and distinct");
    p = good;
    p.layers[0].layer = 2;
    fails(p, "layer 2: is not a prunable layer");
    p = good;
    p.layers[0].capacity = 64;
    fails(p, "capacity 64, the network declares 6");
    p = good;
    p.network = pr::network_signature<sgp::models::vgg13bn<>>();
    fails(p, "the plan is for another network");
    CHECK_THROWS_WITH_AS(pr::plan_from_json("{\"format\": \"sgp pruning plan 1\", \"network\": 3}", "p.json"),
                         doctest::Contains("p.json: network: expected a string"), sgp::error);
    CHECK_THROWS_WITH_AS(pr::plan_from_json("{\"format\": \"sgp pruning plan 1\", ", "p.json"),
                         doctest::Contains("p.json: invalid JSON at byte"), sgp::error);
    CHECK_THROWS_WITH_AS(
        pr::plan_from_json(pr::to_json(good).replace(pr::to_json(good).find("\"keep\": [0"), 10, "\"keep\": [-1"),
                           "p.json"),
        doctest::Contains("non-negative integer"), sgp::error);
    CHECK_THROWS_WITH_AS(pr::load_plan("/nonexistent/plan.json"), doctest::Contains("file not found"), sgp::error);
}

TEST_CASE("the source work's activation-sparsity rule, on hand-made groups") {
    const pr::rules::activation_sparsity rule;
    // C = 10, s = 0.3: k = 3 -> threshold = 4th smallest; scores <= it are removed (4).
    const auto a = stats({0.9f, 0.1f, 0.5f, 0.2f, 0.8f, 0.3f, 0.7f, 0.4f, 0.6f, 1.0f}, 0.3);
    // s = 0.8: k = 8 >= C/2 -> k = floor(0.5 * 10 * 0.8) = 4 -> 5 removed.
    const auto b = stats({0.9f, 0.1f, 0.5f, 0.2f, 0.8f, 0.3f, 0.7f, 0.4f, 0.6f, 1.0f}, 0.8);
    // s below the 0.1 cut-off: nothing.
    const auto c = stats({0.1f, 0.2f, 0.3f}, 0.09);
    // Ties at the threshold are removed together.
    const auto d = stats({0.5f, 0.5f, 0.5f, 0.9f}, 0.25);
    CHECK(rule.remove_counts({a, b, c, d}) == std::vector<std::size_t>{4, 5, 0, 3});

    // Measured at the ReLU output instead: the same formula on relu_zero_fraction.
    auto p = stats({0.9f, 0.1f, 0.5f, 0.2f, 0.8f, 0.3f, 0.7f, 0.4f, 0.6f, 1.0f}, 0.02);  // after a pool
    p.relu_zero_fraction = 0.3;
    CHECK(rule.remove_counts({p}) == std::vector<std::size_t>{0});
    const pr::rules::activation_sparsity at_relu{.at = pr::rules::sparsity_site::relu_output};
    CHECK(at_relu.remove_counts({p}) == std::vector<std::size_t>{4});
}

TEST_CASE("knee, energy and global-percentile rules, on hand-made groups") {
    // Sorted: 0.01 0.02 0.03 | 0.5 0.6: the largest jump is after the third.
    const auto a = stats({0.5f, 0.01f, 0.6f, 0.03f, 0.02f});
    CHECK(pr::rules::knee{}.remove_counts({a}) == std::vector<std::size_t>{3});
    // Squares 1, 4, 9, 16, 70 (total 100): within 6 % -> remove 1 and 4 (5 %), not 9 (14 %).
    const auto e = stats({4.f, 1.f, std::sqrt(70.f), 2.f, 3.f});
    CHECK(pr::rules::energy{0.06}.remove_counts({e}) == std::vector<std::size_t>{2});
    CHECK(pr::rules::energy{0.0}.remove_counts({e}) == std::vector<std::size_t>{0});
    // Global: 8 channels over two groups, remove the lowest half wherever they are.
    const auto g1 = stats({0.1f, 0.2f, 0.3f, 0.4f}), g2 = stats({0.05f, 0.9f, 0.8f, 0.7f});
    CHECK(pr::rules::global_percentile{0.5}.remove_counts({g1, g2}) == std::vector<std::size_t>{3, 1});
    // A global threshold can empty a whole group.
    const auto low = stats({0.01f, 0.02f}), high = stats({0.5f, 0.6f, 0.7f});
    CHECK(pr::rules::global_percentile{0.4}.remove_counts({low, high}) == std::vector<std::size_t>{2, 0});
}

TEST_CASE("options: minimum channels, rounding to the DPU's channel parallelism") {
    CHECK(pr::apply_options(0, 64, {}) == 2);
    CHECK(pr::apply_options(0, 64, {.min_channels = 0}) == 1);
    CHECK(pr::apply_options(9, 64, {.round_to = 8}) == 16);
    CHECK(pr::apply_options(60, 64, {.round_to = 16}) == 64);
    CHECK(pr::apply_options(5, 4, {}) == 4);
    CHECK(pr::top_channels({0.3f, 0.9f, 0.1f, 0.9f, 0.5f}, 3) == std::vector<std::size_t>{1, 3, 4});
}

TEST_CASE("prune() measures, decides, removes and reports, and emptied layers are flagged") {
    auto net = make_net();
    sgp::dataset ds;
    ds.channels = 2;
    ds.height = ds.width = 8;
    ds.classes = 3;
    sgp::rng r(4);
    for (int i = 0; i < 24; ++i) {
        ds.labels.push_back(static_cast<std::uint8_t>(i % 3));
        for (int p = 0; p < 128; ++p) ds.images.push_back(static_cast<std::uint8_t>(r.below(256)));
    }
    sgp::batch_loader calib(ds, {.batch = 8, .shuffle = false});
    const auto st = pr::collect_stats(net, pr::scores::gamma_magnitude{}, calib);
    REQUIRE(st.size() == 3);
    for (const auto& s : st) {
        CHECK(s.next_zero_fraction > 0.0);  // post-ReLU activations hold zeros
        CHECK(s.next_zero_fraction < 1.0);
        // A max pool keeps the largest of each window: fewer zeros after it than before.
        CHECK(s.relu_zero_fraction > 0.0);
        CHECK(s.relu_zero_fraction < 1.0);
    }
    CHECK(st[0].relu_zero_fraction > st[0].next_zero_fraction);   // conv -> BN -> ReLU -> pool -> conv
    CHECK(st[2].relu_zero_fraction == st[2].next_zero_fraction);  // ReLU -> dropout (identity in eval) -> linear
    // Taylor scores leave the running statistics as they were.
    std::vector<float> rv(net.layer<1>().out_channels());
    net.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (k == "1.running_mean") std::copy(t.value, t.value + t.size(), rv.begin());
    });
    const auto ts = pr::collect_stats(net, pr::scores::taylor{}, calib);
    net.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (k == "1.running_mean") CHECK(std::equal(rv.begin(), rv.end(), t.value));
    });
    CHECK(std::any_of(ts[0].score.begin(), ts[0].score.end(), [](float v) { return v > 0.f; }));

    const auto rep = pr::prune_with(net, st, pr::rules::global_percentile{0.6}, {.min_channels = 1});
    CHECK(rep.params_after < rep.params_before);
    CHECK(rep.macs_after < rep.macs_before);
    CHECK(rep.params_after == net.active_parameter_count());
    for (std::size_t i = 0; i < 3; ++i) CHECK(rep.layers[i].channels_after == net.widths()[rep.layers[i].layer + 1]);
    sgp::json_writer j;
    pr::write_json(j, rep);
    CHECK(j.str().find("\"channels_before\": 6") != std::string::npos);

    // Hand-made scores that a global threshold empties in one group.
    auto fresh = make_net();
    auto st2 = pr::collect_stats(fresh, pr::scores::gamma_magnitude{}, calib);
    for (auto& s : st2[1].score) s = 1e-6f;
    const auto rep2 = pr::prune_with(fresh, st2, pr::rules::global_percentile{0.3});
    CHECK(rep2.emptied_layers() == 1);
    CHECK(rep2.layers[1].emptied);
    CHECK(rep2.layers[1].channels_after == 2);  // min_channels keeps the network runnable
}

TEST_CASE("the global threshold for a parameter budget meets it") {
    auto net = make_net();
    std::vector<pr::group_stats> st;
    for (const auto& g : pr::channel_groups<net_t>()) {
        auto s = stats(sgp_test::random_vector(g.capacity, g.producer, 0.f, 1.f));
        s.group = g;
        st.push_back(s);
    }
    const std::size_t budget = net.active_parameter_count() / 2;
    const auto rule = pr::global_for_budget(net, st, budget);
    pr::prune_with(net, st, rule);
    CHECK(net.active_parameter_count() <= budget);
}

TEST_CASE("a pruned network keeps training (optimizer state follows the new shapes)") {
    sgp::trainer<net_t> t{sgp::sgd{.lr = 0.05f, .momentum = 0.9f, .nesterov = true}};
    auto& net = t.net();
    net.reserve(4);
    const auto x = sgp_test::random_vector(4 * 128, 5);
    const int labels[4] = {0, 1, 2, 0};
    std::copy(x.begin(), x.end(), net.input_buffer());
    t.train_step(labels, 4, 0.05f);
    auto p = pr::current_plan(net);
    p.layers[0].keep = {0, 1, 2};
    p.layers[1].keep = {2, 4};
    pr::apply(net, p);

    // Right after surgery the momentum buffers of the pruned tensors are stale (sized for the
    // old shapes): a checkpoint leaves them out instead of writing their first elements under
    // the new shapes, and the reloaded trainer restarts them like the original does.
    const std::string ckpt = "prune_stale_momentum.npz";
    t.save_checkpoint(ckpt);
    const auto saved = sgp::load_npz(ckpt);
    CHECK(saved.count("optimizer.0.weight.momentum_buffer") == 0);   // producer of group 0, pruned
    CHECK(saved.count("optimizer.13.weight.momentum_buffer") == 1);  // the classifier, untouched
    sgp::trainer<net_t> u{sgp::sgd{.lr = 0.05f, .momentum = 0.9f, .nesterov = true}};
    u.load_checkpoint(ckpt);
    std::remove(ckpt.c_str());
    u.net().reserve(4);
    std::copy(x.begin(), x.end(), net.input_buffer());
    std::copy(x.begin(), x.end(), u.net().input_buffer());
    CHECK(u.train_step(labels, 4, 0.05f).loss == t.train_step(labels, 4, 0.05f).loss);
    auto weights = [](net_t& n) {
        std::vector<float> w;
        n.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& r) {
            if (k == "0.weight") w.assign(r.value, r.value + r.size());
        });
        return w;
    };
    CHECK(weights(net) == weights(u.net()));

    double first = 0, last = 0;
    for (int s = 0; s < 30; ++s) {
        std::copy(x.begin(), x.end(), net.input_buffer());
        const double l = t.train_step(labels, 4, 0.05f).loss;
        (s == 0 ? first : last) = l;
    }
    CHECK(last < first);
}

// ---- Pruning over the graph: residual adds, projection shortcuts, depthwise convolutions, concat.

namespace graph_nets {
// A stem whose channels the first block's identity shortcut carries on (one coupled group with
// that block's conv2), then a stage change with a projection shortcut.
using res_t = sgp::sequential<
    sgp::input<2, 8, 8>, conv3x3<6>, batch_norm, relu,
    residual<named<"conv1", conv3x3<4>>, named<"bn1", batch_norm>, relu, named<"conv2", conv3x3<6>>,
             named<"bn2", batch_norm>>,
    residual<named<"conv1", conv2d<8, 3, 2, 1>>, named<"bn1", batch_norm>, relu, named<"conv2", conv3x3<8>>,
             named<"bn2", batch_norm>, shortcut<conv2d<8, 1, 2, 0>, batch_norm>>,
    global_avg_pool, flatten, linear<3>>;
// Inverted residual blocks: expansion, depthwise (following its producer), projection.
using dw_t = sgp::sequential<
    sgp::input<2, 6, 6>, conv1x1<6>, batch_norm, relu6, depthwise3x3<>, batch_norm, relu6, conv1x1<4>, batch_norm,
    linear_residual<conv1x1<8>, batch_norm, relu6, depthwise3x3<>, batch_norm, relu6, conv1x1<4>, batch_norm>,
    depthwise3x3<2>, batch_norm, relu, flatten, linear<3>>;
// Two branches joined along channels, read by one convolution as two segments.
using cat_t = sgp::sequential<sgp::input<2, 6, 6>, conv3x3<4>, batch_norm, relu,
                              concat<chain<conv1x1<3>, batch_norm, relu>, chain<conv3x3<5>, batch_norm, relu>>,
                              conv3x3<6>, batch_norm, relu, max_pool<2>, flatten, linear<3>>;

template <class Net>
Net random_net(std::uint64_t seed) {
    Net net(seed);
    net.for_each_node([&](std::size_t i, auto& l) {
        if constexpr (sgp::has_channel_scale_v<std::remove_cvref_t<decltype(l)>>) {
            sgp::rng r(seed + i);
            l.for_each_tensor([&](const sgp::tensor_ref& t) {
                if (!t.value) return;
                for (std::size_t c = 0; c < t.size(); ++c)
                    t.value[c] = t.name == "running_var" ? r.uniform(0.5f, 2.f) : r.uniform(-0.8f, 0.8f);
            });
        }
    });
    return net;
}

template <class Net>
std::vector<float> run(Net& net, const std::vector<float>& x, std::size_t n, bool training = false) {
    net.reserve(n);
    std::copy(x.begin(), x.end(), net.input_buffer());
    sgp::run_context cx;
    cx.training = training;
    const float* out = net.forward(n, cx);
    return {out, out + Net::output_shape.c * n};
}

// Zeroes gamma and beta, in every batch norm of group g, of the channels not in `keep`.
template <class Net>
void mask_group(Net& net, const pr::channel_group& g, const std::vector<std::size_t>& keep) {
    const auto w = net.class_widths();
    std::vector<std::size_t> drop;
    for (std::size_t c = 0; c < w[g.cls]; ++c)
        if (!std::binary_search(keep.begin(), keep.end(), c)) drop.push_back(c);
    for (auto id : g.scales)
        pr::detail::with_node(net, id, [&](auto& bn) {
            if constexpr (sgp::has_channel_scale_v<std::remove_cvref_t<decltype(bn)>>) {
                std::size_t at = 0;  // the group's channels may be one segment of the norm's input
                for (const auto& seg : Net::graph().nodes[id].in) {
                    if (Net::graph().root(seg.cls) == g.cls)
                        for (auto c : drop) bn.gamma()[at + c] = bn.beta()[at + c] = 0.f;
                    at += w[seg.cls];
                }
            }
        });
}

// Every group keeps a random subset; the pruned network equals the masked original bit for
// bit (evaluation and training mode), and its counted parameters equal the cost model's.
template <class Net>
void check_exact_surgery(std::uint64_t seed) {
    const std::size_t n = 3;
    const auto x = sgp_test::random_vector(n * Net::input_shape.size(), seed);
    auto pruned = random_net<Net>(seed), masked = random_net<Net>(seed);
    const auto& groups = pr::channel_groups<Net>();
    REQUIRE(!groups.empty());
    auto p = pr::current_plan(pruned);
    sgp::rng r(seed);
    for (std::size_t i = 0; i < groups.size(); ++i) {
        std::vector<std::size_t> keep;
        for (std::size_t c = 0; c < groups[i].capacity; ++c)
            if (r.next() % 3 != 0) keep.push_back(c);
        if (keep.empty()) keep.push_back(groups[i].capacity - 1);
        mask_group(masked, groups[i], keep);
        p.layers[i].keep = keep;
    }
    auto masked_copy = masked;  // training mode updates running statistics: use copies
    const auto train_before = run(masked_copy, x, n, true);
    pr::apply(pruned, p);
    CHECK(run(pruned, x, n) == run(masked, x, n));
    auto pruned_copy = pruned;
    CHECK(run(pruned_copy, x, n, true) == train_before);
    CHECK(pruned.active_parameter_count() == pruned.active_cost().parameters);
    CHECK(pruned.active_parameter_count() < Net::parameter_count);
    // The plan and the weights travel through a state_dict and re-apply.
    sgp_test::temp_dir d("graph-surgery");
    sgp::save_state_dict(pruned, d.file("w.npz"));
    Net loaded(seed + 100);
    sgp::load_state_dict(loaded, d.file("w.npz"));
    CHECK(loaded.class_widths() == pruned.class_widths());
    CHECK(run(loaded, x, n) == run(pruned, x, n));
}

}  // namespace graph_nets

TEST_CASE("groups over a residual network: the identity shortcut couples the stem with the block's output") {
    using ids = std::vector<std::size_t>;
    using net = graph_nets::res_t;
    const auto& g = pr::channel_groups<net>();
    // Nodes: 0 conv, 1 bn, 2 relu; block 1: 3 conv1, 4 bn1, 5 relu, 6 conv2, 7 bn2, 8 add;
    // block 2: 9 conv1, 10 bn1, 11 relu, 12 conv2, 13 bn2, 14 shortcut conv, 15 shortcut bn,
    // 16 add; 17 pool, 18 flatten, 19 linear.
    REQUIRE(g.size() == 4);
    CHECK((g[0].producers == ids{0, 6} && g[0].scales == ids{1, 7} && g[0].consumers == ids{3, 9, 14}));
    CHECK(g[0].residual);
    CHECK((g[1].producers == ids{3} && g[1].consumers == ids{6} && !g[1].residual));
    CHECK((g[2].producers == ids{9} && g[2].consumers == ids{12}));
    CHECK((g[3].producers == ids{12, 14} && g[3].scales == ids{13, 15} && g[3].consumers == ids{19}));
    CHECK(g[1].name == "3.conv1");
    CHECK(pr::channel_groups<net>(pr::residual_policy::keep_stream).size() == 2);
    CHECK(net::graph().nodes[8].kind == "add_relu");
}

TEST_CASE("groups over depthwise convolutions and a concat") {
    using ids = std::vector<std::size_t>;
    const auto& d = pr::channel_groups<graph_nets::dw_t>();
    // The expansion's channels: the depthwise conv and both batch norms follow them.
    CHECK((d[0].producers == ids{0} && d[0].followers == ids{1, 3, 4} && d[0].consumers == ids{6}));
    const auto& c = pr::channel_groups<graph_nets::cat_t>();
    REQUIRE(c.size() == 4);
    // Both branches read the stem; the convolution after the concat consumes both branches.
    CHECK((c[0].consumers == ids{3, 6}));
    CHECK((c[1].consumers == ids{10} && c[2].consumers == ids{10}));
    CHECK(graph_nets::cat_t::graph().nodes[10].in.size() == 2);
}

TEST_CASE("surgery is exact for every pattern: add, projection shortcut, depthwise, concat, flatten") {
    for (std::uint64_t seed : {1, 2, 3}) {
        graph_nets::check_exact_surgery<graph_nets::res_t>(seed);
        graph_nets::check_exact_surgery<graph_nets::dw_t>(seed);
        graph_nets::check_exact_surgery<graph_nets::cat_t>(seed);
    }
}

TEST_CASE("rules and scores run per group on a residual network, in both residual policies") {
    using net_t = graph_nets::res_t;
    auto net = graph_nets::random_net<net_t>(5);
    sgp::dataset data;
    data.channels = net_t::input_shape.c;
    data.height = data.width = 8;
    data.classes = 3;
    sgp::rng r(6);
    for (int i = 0; i < 16; ++i) {
        data.labels.push_back(static_cast<std::uint8_t>(i % 3));
        for (std::size_t p = 0; p < net_t::input_shape.size(); ++p)
            data.images.push_back(static_cast<std::uint8_t>(r.below(256)));
    }
    sgp::batch_loader calib(data, {.batch = 8, .shuffle = false});
    for (auto policy : {pr::residual_policy::coupled, pr::residual_policy::keep_stream}) {
        auto copy = net;
        const auto st = pr::collect_stats(copy, pr::scores::gamma_magnitude{}, calib, nullptr, 0, policy);
        CHECK(st.size() == pr::channel_groups<net_t>(policy).size());
        for (const auto& s : st) {
            CHECK(s.channels == s.group.capacity);
            CHECK(s.relu_zero_fraction > 0.0);  // ReLU outputs (and the add's ReLU for the stream)
        }
        const auto rep = pr::prune_with(copy, st, pr::rules::global_percentile{0.4});
        CHECK(rep.params_after < rep.params_before);
        CHECK(copy.active_parameter_count() == rep.params_after);
    }
}

TEST_CASE("the committed pruning plan's network signature is the current network's") {
    // Plans refuse another network by this string: a change to the description must not
    // change it for existing networks (docs/results holds a plan users apply).
    const std::string path = std::string(SGP_GOLDEN_DIR) + "/../../docs/results/sgp_vgg13bn_source_plan.json";
    const auto plan = sgp::parse_json(sgp::read_file_bytes(path), path);
    CHECK(plan.at("network", path).text(path) == pr::network_signature<sgp::models::vgg13bn_source<>>());
}

TEST_CASE("the filter-L1 score is each output channel's L1 norm over its producer's weights") {
    auto net = make_net();
    const sgp::dataset d = [] {
        sgp::dataset x;
        x.source = "calibration";
        x.channels = 2, x.height = x.width = 8, x.classes = 3;
        sgp::rng r(4);
        for (std::size_t i = 0; i < 8 * 128; ++i) x.images.push_back(static_cast<std::uint8_t>(r.below(256)));
        for (std::size_t i = 0; i < 8; ++i) x.labels.push_back(static_cast<std::uint8_t>(i % 3));
        return x;
    }();
    sgp::batch_loader calib(d, {.batch = 4, .shuffle = false});
    const auto st = pr::collect_stats(net, pr::scores::filter_l1{}, calib);
    REQUIRE(st.size() == 3);
    // Group 0: conv3x3<6> over 2 input channels (18 weights a filter); group 2: linear<7> over 20 features.
    const float* w0 = net.layer<0>().weight();
    for (std::size_t c = 0; c < 6; ++c) {
        double l1 = 0;
        for (std::size_t k = 0; k < 18; ++k) l1 += std::abs(w0[c * 18 + k]);
        CHECK(st[0].score[c] == doctest::Approx(l1).epsilon(1e-6));
    }
    const float* w2 = net.layer<9>().weight();
    for (std::size_t c = 0; c < 7; ++c) {
        double l1 = 0;
        for (std::size_t k = 0; k < 20; ++k) l1 += std::abs(w2[c * 20 + k]);
        CHECK(st[2].score[c] == doctest::Approx(l1).epsilon(1e-6));
    }
    // After a layer is pruned its filters are shorter: the score follows the active weights.
    auto p = pr::current_plan(net);
    p.layers[0].keep = {1, 3, 4};
    pr::apply(net, p);
    const auto after = pr::collect_stats(net, pr::scores::filter_l1{}, calib);
    const float* w1 = net.layer<4>().weight();
    for (std::size_t c = 0; c < 5; ++c) {
        double l1 = 0;
        for (std::size_t k = 0; k < 27; ++k) l1 += std::abs(w1[c * 27 + k]);
        CHECK(after[1].score[c] == doctest::Approx(l1).epsilon(1e-6));
    }
}

TEST_CASE("uniform fraction: the same share of every group, never a whole group") {
    const pr::rules::uniform_fraction r{0.5};
    const std::vector<pr::group_stats> g = {stats({0.3f, 0.1f, 0.2f, 0.4f}), stats({1, 2, 3, 4, 5, 6, 7}),
                                            stats({0.5f})};
    CHECK(r.remove_counts(g) == std::vector<std::size_t>{2, 3, 0});
    CHECK(pr::rules::uniform_fraction{1.0}.remove_counts(g) == std::vector<std::size_t>{3, 6, 0});
}

TEST_CASE("the controls at a parameter budget: L1-norm filters, uniform width, an architecture from scratch") {
    const sgp::dataset d = [] {
        sgp::dataset x;
        x.source = "calibration";
        x.channels = 2, x.height = x.width = 8, x.classes = 3;
        x.images.assign(4 * 128, 100);
        x.labels.assign(4, 0);
        return x;
    }();
    sgp::batch_loader calib(d, {.batch = 4, .shuffle = false});
    const std::size_t budget = net_t::parameter_count / 2;

    auto l1 = make_net();
    const auto scores = pr::collect_stats(l1, pr::scores::filter_l1{}, calib);
    const auto rep = pr::l1_filter_pruning(l1, budget, calib);
    CHECK(l1.active_parameter_count() <= budget);
    CHECK(rep.score == std::string("filter_l1"));
    // One rate for all layers, and the kept filters are each layer's largest in L1 norm.
    for (std::size_t i = 0; i < rep.layers.size(); ++i) {
        const auto& l = rep.layers[i];
        const auto keep = pr::top_channels(scores[i].score, l.channels_after);
        CHECK(pr::kept_channels(l1, pr::channel_groups<net_t>()[i]) == keep);
    }
    // The smallest fraction that meets the budget: a little less, and it does not.
    auto unpruned = make_net();
    const auto rule = pr::rule_for_budget<pr::rules::uniform_fraction>(unpruned, scores, budget);
    auto wider = make_net();
    pr::prune_with(wider, scores, pr::rules::uniform_fraction{rule.fraction - 0.05});
    CHECK(wider.active_parameter_count() > budget);

    // Uniform width: the same width fraction everywhere, fresh weights at the new fan-in.
    net_t u(5);
    pr::uniform_width(u, budget, 9);
    CHECK(u.active_parameter_count() <= budget);
    const auto w = u.class_widths();
    const auto& groups = pr::channel_groups<net_t>();
    const double f0 = static_cast<double>(w[groups[0].cls]) / groups[0].capacity;
    for (const auto& g : groups) CHECK(std::abs(static_cast<double>(w[g.cls]) / g.capacity - f0) < 0.25);
    // Redrawn at the active fan-in (layer 4 reads w(group 0) channels: Kaiming std sqrt(2 / (in * 9))),
    // not kept from net_t(5) at the declared 6 inputs (std sqrt(2 / 54)).
    const std::size_t in4 = w[groups[0].cls], out4 = w[groups[1].cls];
    REQUIRE(in4 < 6);
    double u2 = 0;
    for (std::size_t i = 0; i < out4 * in4 * 9; ++i) u2 += double(u.layer<4>().weight()[i]) * u.layer<4>().weight()[i];
    CHECK(std::sqrt(u2 / double(out4 * in4 * 9)) == doctest::Approx(std::sqrt(2.0 / double(in4 * 9))).epsilon(0.3));

    // An architecture from scratch: the plan's widths, weights drawn at the active fan-in
    // (Kaiming: std sqrt(2 / (in * 9))) and batch norms at their initial state.
    auto pruned = make_net();
    auto p = pr::current_plan(pruned);
    p.layers[0].keep = {0, 2};
    p.layers[1].keep = {1, 2, 3, 4};
    pr::apply(pruned, p);
    auto s = make_net(1);  // trained-looking batch norms: from_scratch must reset them
    pr::from_scratch(s, p, 21);
    CHECK(s.class_widths() == pruned.class_widths());
    CHECK(pr::to_json(pr::current_plan(s)) == pr::to_json(p));
    double sum2 = 0;
    const std::size_t n = 4 * 2 * 9;  // layer 4: 4 active filters over 2 active inputs
    for (std::size_t i = 0; i < n; ++i) sum2 += double(s.layer<4>().weight()[i]) * s.layer<4>().weight()[i];
    const double std_expected = std::sqrt(2.0 / (2 * 9));  // vs sqrt(2 / 54) at the declared 6 inputs
    CHECK(std::sqrt(sum2 / n) == doctest::Approx(std_expected).epsilon(0.25));
    for (std::size_t c = 0; c < 2; ++c) {
        CHECK(s.layer<1>().gamma()[c] == 1.f);
        CHECK(s.layer<1>().beta()[c] == 0.f);
    }
}
