#pragma once
// One pruning step: measure (scores, activation sparsity), decide (a rule gives how many
// channels each group loses), apply options (minimum channels, rounding to the DPU's
// channel parallelism), and remove the channels for real (surgery). Returns a report with
// the per-layer and total figures before and after.
#include <algorithm>
#include <cstddef>
#include <numeric>
#include <string>
#include <vector>

#include "sgp/io/json.hpp"
#include "sgp/prune/cost.hpp"
#include "sgp/prune/plan.hpp"
#include "sgp/prune/rules.hpp"
#include "sgp/prune/scores.hpp"

namespace sgp::prune {

struct options {
    std::size_t min_channels = 2;                         // never keep fewer (the source work's floor)
    std::size_t round_to = 1;                             // round kept counts up to a multiple (8 or 16 suit the DPU)
    std::size_t calibration_batches = 0;                  // 0: the whole calibration loader
    residual_policy residual = residual_policy::coupled;  // or keep the residual stream at full width
};

struct layer_report {
    std::size_t layer = 0;      // the group's first producer (node id)
    std::string kind, name;     // its kind and path
    std::size_t producers = 1;  // layers creating the channels (several when residual adds join them)
    std::size_t channels_before = 0, channels_after = 0;
    double next_zero_fraction = 0, relu_zero_fraction = 0;
    bool emptied = false;       // the rule alone would have removed every channel
    std::vector<float> scores;  // every channel's score before the step (for the reports' histograms)
    float threshold = 0;        // the lowest kept score
};

struct report {
    std::string rule, score;
    std::size_t params_before = 0, params_after = 0, macs_before = 0, macs_after = 0;
    std::vector<layer_report> layers;
    std::size_t emptied_layers() const {
        return static_cast<std::size_t>(
            std::count_if(layers.begin(), layers.end(), [](const layer_report& l) { return l.emptied; }));
    }
};

// Kept count after the options, for a group of `channels` that the rule cuts to `keep`.
inline std::size_t apply_options(std::size_t keep, std::size_t channels, const options& o) {
    keep = std::max({keep, o.min_channels, std::size_t{1}});
    if (o.round_to > 1) keep = (keep + o.round_to - 1) / o.round_to * o.round_to;
    return std::min(keep, channels);
}

// Positions of the `keep` highest-scored channels (ties: lower index first), ascending.
inline std::vector<std::size_t> top_channels(const std::vector<float>& score, std::size_t keep) {
    std::vector<std::size_t> idx(score.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
    idx.resize(keep);
    std::sort(idx.begin(), idx.end());
    return idx;
}

// Removes channels from given statistics (no calibration pass).
template <class Net, class Rule>
report prune_with(Net& net, const std::vector<group_stats>& stats, const Rule& rule, const options& o = {},
                  const char* score_name = "") {
    report r;
    r.rule = Rule::name;
    r.score = score_name;
    const auto before = net.active_cost();
    r.params_before = before.parameters;
    r.macs_before = before.macs;
    const auto remove = rule.remove_counts(stats);
    for (std::size_t i = 0; i < stats.size(); ++i) {
        const auto& s = stats[i];
        layer_report l;
        l.layer = s.group.producer;
        l.kind = std::string(Net::graph().nodes[s.group.producer].kind);
        l.name = s.group.name;
        l.producers = s.group.producers.size();
        l.channels_before = s.channels;
        l.next_zero_fraction = s.next_zero_fraction;
        l.relu_zero_fraction = s.relu_zero_fraction;
        const std::size_t rule_keep = s.channels - std::min(remove[i], s.channels);
        l.emptied = rule_keep == 0 && s.channels > 0;
        const std::size_t keep = apply_options(rule_keep, s.channels, o);
        l.channels_after = keep;
        l.scores = s.score;
        const auto kept = top_channels(s.score, keep);
        l.threshold = kept.empty() ? 0.f : s.score[kept.front()];
        for (std::size_t k : kept) l.threshold = std::min(l.threshold, s.score[k]);
        if (keep < s.channels) detail::keep_active(net, s.group, kept);
        r.layers.push_back(l);
    }
    const auto after = net.active_cost();
    r.params_after = after.parameters;
    r.macs_after = after.macs;
    return r;
}

// Measures on the calibration set, then prunes.
template <class Net, class Rule, class Score = scores::gamma_magnitude>
report prune(Net& net, const Rule& rule, batch_loader& calib, const options& o = {}, Score score = {},
             thread_pool* pool = nullptr) {
    const auto stats = collect_stats(net, score, calib, pool, o.calibration_batches, o.residual);
    return prune_with(net, stats, rule, o, Score::name);
}

// A rule with a `fraction` (global_percentile, uniform_fraction) at the smallest fraction
// whose pruned network has at most `parameters` parameters (bisection): a control at the
// same parameter budget as another method.
template <class Rule, class Net>
Rule rule_for_budget(Net& net, const std::vector<group_stats>& stats, std::size_t parameters, const options& o = {}) {
    double lo = 0, hi = 1;
    for (int it = 0; it < 40; ++it) {
        const double mid = 0.5 * (lo + hi);
        const Rule rule{mid};
        const auto remove = rule.remove_counts(stats);
        auto w = net.class_widths();
        for (std::size_t i = 0; i < stats.size(); ++i)
            narrow<Net>(
                w, stats[i].group,
                apply_options(stats[i].channels - std::min(remove[i], stats[i].channels), stats[i].channels, o));
        (cost_at<Net>(w).parameters > parameters ? lo : hi) = mid;
    }
    return Rule{hi};
}

// Network Slimming's global threshold at a parameter budget.
template <class Net>
rules::global_percentile global_for_budget(Net& net, const std::vector<group_stats>& stats, std::size_t parameters,
                                           const options& o = {}) {
    return rule_for_budget<rules::global_percentile>(net, stats, parameters, o);
}

inline void write_json(json_writer& j, const report& r) {
    j.begin_object()
        .field("rule", r.rule)
        .field("score", r.score)
        .field("params_before", r.params_before)
        .field("params_after", r.params_after)
        .field("macs_before", r.macs_before)
        .field("macs_after", r.macs_after)
        .field("emptied_layers", r.emptied_layers());
    j.key("layers").begin_array();
    for (const auto& l : r.layers) {
        j.begin_object()
            .field("layer", l.layer)
            .field("name", std::to_string(l.layer) + " " + l.kind)
            .field("path", l.name)
            .field("producers", l.producers)
            .field("channels_before", l.channels_before)
            .field("channels_after", l.channels_after)
            .field("next_zero_fraction", l.next_zero_fraction)
            .field("relu_zero_fraction", l.relu_zero_fraction)
            .field("emptied", l.emptied)
            .field("threshold", static_cast<double>(l.threshold));
        j.key("scores").begin_array();
        for (float v : l.scores) j.value(static_cast<double>(v));
        j.end_array().end_object();
    }
    j.end_array().end_object();
}

}  // namespace sgp::prune
