// The SGP experiment on Fashion-MNIST (padded to 32x32): baseline training, sparsity
// training, sparsity-gradient-based layer-wise pruning with fine-tuning in rounds, and
// Network Slimming's global threshold at the same parameter budget. Every stage checkpoints
// after every epoch and the run resumes where it stopped. Usage: sgp_experiment --help
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sgp/io/lock_file.hpp>
#include <sgp/sgp.hpp>
#include <string>
#include <thread>

#include "example_cli.hpp"

namespace {

struct options {
    std::string model = "vgg13bn-source", data = sgp::fashion_mnist_default_dir, dir = "runs/sgp", json,
                rule = "sparsity", score = "gamma", sparsity_at = "input", residual = "coupled";
    std::size_t baseline_epochs = 3, sparse_epochs = 3, rounds = 4, finetune_epochs = 1, final_epochs = 0, batch = 64,
                threads = example::cores(), limit = 0, test_limit = 0, calib_images = 2048, round_to = 1,
                min_channels = 2;
    std::uint64_t seed = 1;
    float lr = 0.05f, finetune_lr = 0.01f, final_lr = 0.01f, lambda = 1e-4f, finetune_lambda = 1e-4f, budget = 1.2f,
          round_budget = 1.2f, target_params = 0.f, target_macs = 0.f;
    // The flags that shape the results, recorded in <dir>/state.json: a resumed run must match them.
    std::map<std::string, std::string> settings;
};

// Flags a resumed run may change: more rounds or epochs (every round records its own
// fine-tuning epochs), how fast, where the data is and where the results go.
const std::set<std::string> may_change_on_resume = {
    "--rounds", "--finetune-epochs", "--final-epochs", "--threads", "--data", "--dir", "--json"};

options parse(int argc, char** argv) {
    options o;
    example::flags f(
        "sgp_experiment: baseline training, sparsity training, sparsity-gradient-based layer-wise pruning with "
        "fine-tuning in rounds, and Network Slimming's global threshold at the same parameter budget, on "
        "Fashion-MNIST; every stage checkpoints and a rerun resumes where it stopped");
    constexpr std::size_t many = 100000;
    f.choice("--model", o.model,
             "vgg13bn-source (512-4096-4096-10 classifier), vgg13bn, demo, resnet20, resnet56, resnet18, "
             "mobilenet-v1 or mobilenet-v2",
             example::any_model_names);
    f.text("--data", o.data, "Fashion-MNIST IDX files");
    f.text("--dir", o.dir, "checkpoints and stage results; rerun to resume (one run at a time: a lock file)");
    // Checked once --dir exists (run): the file may go into it, or a folder it creates.
    f.text("--json", o.json, "the results");
    f.choice("--rule", o.rule, "sparsity (the source work's rule), knee or energy", {"sparsity", "knee", "energy"});
    f.choice("--score", o.score, "gamma (|gamma|) or taylor (|gamma * dL/dgamma|)", {"gamma", "taylor"});
    f.choice("--sparsity-at", o.sparsity_at,
             "the sparsity rule's measuring point: input (of the next layer, as the source's code) or relu (the "
             "group's ReLU output, before any pool)",
             {"input", "relu"});
    f.size("--baseline-epochs", o.baseline_epochs, "unpruned baseline training", 0, many);
    f.size("--sparse-epochs", o.sparse_epochs, "sparsity training, L1 on BN gammas", 0, many);
    f.real("--lambda", o.lambda, "sparsity strength", 0, 1);
    f.size("--rounds", o.rounds, "at most N pruning rounds, each followed by --finetune-epochs", 0, 1000);
    f.size("--finetune-epochs", o.finetune_epochs, "fine-tuning epochs per round", 0, many);
    f.real("--finetune-lambda", o.finetune_lambda, "sparsity while fine-tuning (default: --lambda)", 0, 1);
    f.real("--target-params", o.target_params, "stop the rounds once P % of the parameters are removed (0: none)", 0,
           100);
    f.real("--target-macs", o.target_macs, "likewise for the multiply-adds", 0, 100);
    f.size("--final-epochs", o.final_epochs,
           "fine-tune the result N more epochs after the rounds, at --final-lr, cosine schedule, no sparsity", 0, many);
    f.real("--budget", o.budget, "accuracy budget of the result, points below the baseline", 0, 100);
    f.real("--round-budget", o.round_budget,
           "a round ending more than X points below the baseline is undone and ends the rounds (default: --budget)", 0,
           100);
    f.size("--round-to", o.round_to, "round kept channels up to a multiple of N", 1, 4096);
    f.size("--min-channels", o.min_channels, "never keep fewer channels per layer", 1, 4096);
    f.choice("--residual", o.residual,
             "channels joined by residual adds: coupled (one group, pruned together) or keep-stream (the stream "
             "keeps its width; only channels inside blocks are pruned)",
             {"coupled", "keep-stream"});
    f.real("--lr", o.lr, "learning rate of baseline and sparsity training (cosine schedule)", 0, 1e30);
    f.real("--finetune-lr", o.finetune_lr, "learning rate of the rounds' fine-tuning", 0, 1e30);
    f.real("--final-lr", o.final_lr, "learning rate of the final fine-tuning (default: --finetune-lr)", 0, 1e30);
    f.size("--batch", o.batch, "images per step", 2, 4096, "at least 2 for batch norm, at most 4096 (memory)");
    f.threads(o.threads, "threads (default: all cores)");
    f.u64("--seed", o.seed, "initial weights, shuffling and dropout", 0, std::numeric_limits<std::int64_t>::max());
    f.size("--limit", o.limit, "train on the first N images only (0: all)", 0, 1u << 30);
    f.size("--test-limit", o.test_limit, "test on the first N images only (0: all)", 0, 1u << 30);
    f.size("--calib-images", o.calib_images, "training images for the pruning statistics", 1, 1u << 30);
    f.parse(argc, argv);
    if (!f.given("--finetune-lambda")) o.finetune_lambda = o.lambda;
    if (!f.given("--round-budget")) o.round_budget = o.budget;
    if (!f.given("--final-lr")) o.final_lr = o.finetune_lr;
    o.settings = f.settings(may_change_on_resume);
    return o;
}

// Stage results survive interruptions in <dir>/state.json, one JSON value per key.
class stage_state {
public:
    explicit stage_state(std::string path) : path_(std::move(path)) {
        if (!std::filesystem::exists(path_)) return;
        std::ifstream in(path_);
        const std::string text((std::istreambuf_iterator<char>(in)), {});
        values_ = sgp::parse_json(text, path_).fields;
    }
    bool has(const std::string& k) const { return values_.count(k) > 0; }
    double number(const std::string& k) const { return value(k).number(path_ + ": " + k); }
    const sgp::json_value& value(const std::string& k) const {
        const auto it = values_.find(k);
        if (it == values_.end()) sgp::fail(path_, "no '" + k + "' (that stage has not run)");
        return it->second;
    }
    void set(const std::string& k, double v) {
        sgp::json_value j;
        j.kind = sgp::json_value::type::number;
        j.num = v;
        values_[k] = j;
        save();
    }
    void set_json(const std::string& k, const std::string& json) {
        values_[k] = sgp::parse_json(json, path_ + ": " + k);
        save();
    }

private:
    void save() const {
        sgp::json_value all;
        all.kind = sgp::json_value::type::object;
        all.fields = values_;
        sgp::write_file_atomic(path_, sgp::dump(all) + "\n");
    }
    std::string path_;
    std::map<std::string, sgp::json_value> values_;
};

template <class Net>
double batch1_latency_ms(Net& net, std::size_t repeats) {
    net.reserve(1);
    sgp::rng r(5);
    for (std::size_t i = 0; i < Net::input_shape.size(); ++i) net.input_buffer()[i] = r.normal();
    sgp::run_context cx;  // one thread, evaluation mode
    net.forward(1, cx);
    std::vector<double> ms;
    for (std::size_t k = 0; k < repeats; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        net.forward(1, cx);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

template <class Net>
int run(const options& o) {
    namespace pr = sgp::prune;
    std::filesystem::create_directories(o.dir);
    if (const auto why = o.json.empty() ? "" : example::writable_output(o.json); !why.empty()) sgp::fail("--json", why);
    // One run at a time in a folder; a lock left by a killed run is taken over.
    const sgp::lock_file lock(o.dir + "/lock");
    stage_state st(o.dir + "/state.json");
    if (st.has("settings"))
        example::require_same_settings(example::settings_of(st.value("settings"), o.dir + "/state.json"), o.settings,
                                       o.dir + "/state.json");
    else
        st.set_json("settings", example::settings_json(o.settings));
    const auto t_start = std::chrono::steady_clock::now();

    const auto train_set = sgp::load_fashion_mnist(o.data, true).head(o.limit);
    const auto test_set = sgp::load_fashion_mnist(o.data, false).head(o.test_limit);
    const auto lo = example::fashion_mnist_options(o.batch, o.seed, Net::input_shape.h);
    const auto eval_opts = example::for_evaluation(lo);
    sgp::batch_loader train(train_set, lo);
    sgp::batch_loader test(test_set, eval_opts);
    // Calibration: the first calib_images training images, unshuffled, no augmentation.
    const auto calib_set = train_set.head(o.calib_images);
    sgp::batch_loader calib(calib_set, eval_opts);

    const sgp::sgd opt{.lr = o.lr, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true};
    const sgp::trainer_options to{.threads = o.threads, .seed = o.seed};
    auto train_stage = [&](const std::string& name, std::size_t epochs, float lambda) {
        const std::string ckpt = o.dir + "/" + name + ".npz";
        auto t = std::make_unique<sgp::trainer<Net>>(opt, to);
        if (std::filesystem::exists(ckpt)) t->load_checkpoint(ckpt);
        if (!st.has(name + "_accuracy")) {
            std::cerr << "== " << name << " training, " << epochs << " epochs" << (lambda > 0 ? ", sparsity " : "")
                      << (lambda > 0 ? std::to_string(lambda) : "") << "\n";
            sgp::fit_options f;
            f.epochs = epochs;
            f.sparsity = lambda;
            f.schedule = sgp::schedules::cosine{static_cast<double>(epochs), 0.f};
            f.checkpoint = ckpt;
            t->fit(train, f, &test);
            st.set(name + "_accuracy", t->evaluate(test).accuracy);
        }
        return t;
    };

    // 1. The unpruned baseline and 2. sparsity training, both from scratch.
    const double baseline = train_stage("baseline", o.baseline_epochs, 0.f)->evaluate(test).accuracy;
    auto sparse = train_stage("sparse", o.sparse_epochs, o.lambda);
    const double sparse_acc = st.number("sparse_accuracy");
    const double latency_full = batch1_latency_ms(sparse->net(), 20);

    pr::options po{.min_channels = o.min_channels, .round_to = o.round_to};
    po.residual = o.residual == "coupled" ? pr::residual_policy::coupled : pr::residual_policy::keep_stream;
    pr::schedule_options so;
    so.max_rounds = o.rounds;
    so.finetune_epochs = o.finetune_epochs;
    so.target_params_removed = o.target_params / 100.0;
    so.target_macs_removed = o.target_macs / 100.0;
    so.reference_accuracy = baseline;
    so.accuracy_budget = o.round_budget / 100.0;
    so.fit.schedule = sgp::schedules::cosine{static_cast<double>(o.finetune_epochs), 0.f};
    so.fit.sparsity = o.finetune_lambda;

    // 3. SGP: rounds of layer-wise pruning and fine-tuning, from the sparsity-trained network.
    //    After every round the pruned network and its optimizer state are checkpointed
    //    (<dir>/sgp_round.npz, then the round's report in state.json), so the rounds resume.
    const std::string sgp_ckpt = o.dir + "/sgp.npz", round_ckpt = o.dir + "/sgp_round.npz",
                      final_ckpt = o.dir + "/sgp_final.npz";
    auto& net = sparse->net();
    std::size_t rounds_done = 0;
    while (st.has("sgp_round_" + std::to_string(rounds_done + 1))) ++rounds_done;
    if (!st.has("sgp_accuracy")) {
        sparse->optimizer().lr = o.finetune_lr;
        if (!st.has("sgp_rounds_finished") && std::filesystem::exists(round_ckpt)) {
            // The round checkpoint holds its round's number and report: a run killed after
            // writing it but before state.json recorded the round takes the report from it
            // instead of doing (and applying) that round a second time.
            const auto a = sgp::load_npz(round_ckpt);
            const auto it = a.find("experiment.round");
            // Without the entry (written before it existed), state.json's word is taken.
            const std::int64_t held = it != a.end()     ? it->second.to_int64(round_ckpt + ":experiment.round")
                                      : rounds_done > 0 ? static_cast<std::int64_t>(st.number("sgp_round_checkpoint"))
                                                        : 0;
            if (held > 0) sparse->load_checkpoint(a, round_ckpt);
            const auto report = sgp::text_of(a, "experiment.round_report", round_ckpt);
            if (held == static_cast<std::int64_t>(rounds_done) + 1 && !report.empty()) {
                st.set_json("sgp_round_" + std::to_string(++rounds_done), report);
                std::cerr << "== round " << rounds_done << "'s record recovered from " << round_ckpt << "\n";
            }
            if (held != static_cast<std::int64_t>(rounds_done))
                sgp::fail(round_ckpt,
                          "holds round " + std::to_string(held) + ", state.json " + std::to_string(rounds_done));
            if (rounds_done > 0) std::cerr << "== resuming SGP after round " << rounds_done << "\n";
        }
        // An undone round ended the rounds (prune_and_finetune stops there); a resumed run does too.
        const bool ended = rounds_done > 0 && st.value("sgp_round_" + std::to_string(rounds_done))
                                                  .at("undone", "state.json: sgp_round_" + std::to_string(rounds_done))
                                                  .b;
        if (!st.has("sgp_rounds_finished")) {
            so.rounds_done = rounds_done;
            if (ended) so.max_rounds = rounds_done;
            // SGP_TEST_STOP_AFTER_ROUND_CHECKPOINT=N: the process ends right after writing round
            // N's checkpoint, before state.json records it (a kill at the worst moment, for the tests).
            const char* stop_env = std::getenv("SGP_TEST_STOP_AFTER_ROUND_CHECKPOINT");
            const std::size_t stop_after = stop_env ? std::strtoull(stop_env, nullptr, 10) : 0;
            auto on_round = [&](const pr::round_report& r) {
                sgp::json_writer j;
                pr::write_json(j, r);
                sparse->save_checkpoint(
                    round_ckpt,  // after an undone round: the restored network
                    {{"experiment.round", sgp::npy_array::from_int64(static_cast<std::int64_t>(r.round))},
                     {"experiment.round_report", sgp::text_entry(j.str())}});
                if (r.round == stop_after) std::_Exit(3);
                st.set("sgp_round_checkpoint", static_cast<double>(r.round));
                st.set_json("sgp_round_" + std::to_string(r.round), j.str());
                std::fprintf(stderr,
                             "round %zu: %.2f %% parameters, %.2f %% multiply-adds removed; accuracy %.2f %% pruned, "
                             "%.2f %% fine-tuned%s\n",
                             r.round, 100 * r.params_removed, 100 * r.macs_removed, 100 * r.accuracy_pruned,
                             100 * r.accuracy_finetuned, r.undone ? " (over budget: undone)" : "");
            };
            auto run_rule = [&](const auto& rule) {
                if (o.score == "taylor")
                    return pr::prune_and_finetune(*sparse, rule, train, calib, test, so, po, pr::scores::taylor{},
                                                  on_round);
                return pr::prune_and_finetune(*sparse, rule, train, calib, test, so, po, pr::scores::gamma_magnitude{},
                                              on_round);
            };
            const auto site = o.sparsity_at == "relu" ? pr::rules::sparsity_site::relu_output
                                                      : pr::rules::sparsity_site::consumer_input;
            if (o.rule == "sparsity")
                run_rule(pr::rules::activation_sparsity{.at = site});
            else if (o.rule == "energy")
                run_rule(pr::rules::energy{});
            else
                run_rule(pr::rules::knee{});
            sparse->save_checkpoint(final_ckpt);
            st.set("sgp_final_origin", static_cast<double>(sparse->epochs_done()));
            st.set("sgp_rounds_finished", 1);
        }
        // The final fine-tuning of the pruned network, checkpointed per epoch, without sparsity.
        sparse->load_checkpoint(final_ckpt);
        if (!st.has("sgp_accuracy_rounds")) st.set("sgp_accuracy_rounds", sparse->evaluate(test).accuracy);
        if (o.final_epochs > 0) {
            const auto origin = static_cast<std::size_t>(st.number("sgp_final_origin"));
            std::cerr << "== final fine-tuning, " << o.final_epochs << " epochs\n";
            sparse->optimizer().lr = o.final_lr;
            sgp::fit_options f;
            f.schedule = sgp::schedules::cosine{static_cast<double>(o.final_epochs), 0.f};
            f.schedule_origin = origin;
            f.epochs = origin + o.final_epochs;
            f.checkpoint = final_ckpt;
            sparse->fit(train, f, &test);
        }
        sgp::save_state_dict(net, sgp_ckpt);
        st.set("sgp_accuracy", sparse->evaluate(test).accuracy);
    } else {
        sgp::load_state_dict(net, sgp_ckpt);  // re-applies the pruned widths
    }
    while (st.has("sgp_round_" + std::to_string(rounds_done + 1))) ++rounds_done;
    const double pruned_acc = st.number("sgp_accuracy");
    const std::size_t params_after = net.active_parameter_count(), macs_after = net.active_macs();
    const double latency_pruned = batch1_latency_ms(net, 200);
    pr::save_plan(pr::current_plan(net), o.dir + "/sgp_plan.json");

    // 4. Network Slimming's global threshold at the same parameter budget, from the same
    //    sparsity-trained network, fine-tuned (without sparsity, at --final-lr) for as many
    //    epochs as SGP had after sparsity training, in one cosine schedule; checkpointed per epoch.
    // The epochs that shaped SGP's result: kept rounds (an undone round's training was thrown
    // away with it). Every round records its own (a resumed run may change --finetune-epochs).
    std::size_t round_epochs = 0;
    for (std::size_t r = 1; r <= rounds_done; ++r) {
        const auto& rep = st.value("sgp_round_" + std::to_string(r));
        if (rep.at("undone", "state.json").b) continue;
        round_epochs += rep.fields.count("finetune_epochs") ? rep.at("finetune_epochs", "state.json").index("epochs")
                                                            : o.finetune_epochs;
    }
    const std::size_t sgp_epochs = std::max<std::size_t>(1, round_epochs + o.final_epochs);
    if (!st.has("ns_accuracy")) {
        const std::string ns_ckpt = o.dir + "/ns.npz";
        auto ns = std::make_unique<sgp::trainer<Net>>(opt, to);
        ns->optimizer().lr = o.finetune_lr;
        if (!st.has("ns_pruning")) {
            std::cerr << "== Network Slimming global threshold at " << params_after << " parameters\n";
            ns->load_checkpoint(o.dir + "/sparse.npz");
            const auto stats =
                pr::collect_stats(ns->net(), pr::scores::gamma_magnitude{}, calib, &ns->pool(), 0, po.residual);
            const auto rule = pr::global_for_budget(ns->net(), stats, params_after, po);
            const auto rep = pr::prune_with(ns->net(), stats, rule, po, "gamma_magnitude");
            st.set("ns_accuracy_pruned", ns->evaluate(test).accuracy);
            st.set("ns_origin", static_cast<double>(ns->epochs_done()));
            ns->save_checkpoint(ns_ckpt);
            sgp::json_writer j;
            pr::write_json(j, rep);
            st.set("ns_fraction", rule.fraction);
            st.set_json("ns_pruning", j.str());
        }
        ns->load_checkpoint(ns_ckpt);
        ns->optimizer().lr = o.final_lr;  // as SGP's final fine-tuning
        const auto origin = static_cast<std::size_t>(st.number("ns_origin"));
        std::cerr << "== Network Slimming fine-tuning, " << sgp_epochs << " epochs\n";
        sgp::fit_options f;
        f.schedule = sgp::schedules::cosine{static_cast<double>(sgp_epochs), 0.f};
        f.schedule_origin = origin;
        f.epochs = origin + sgp_epochs;
        f.checkpoint = ns_ckpt;
        ns->fit(train, f, &test);
        st.set("ns_accuracy", ns->evaluate(test).accuracy);
    }

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::printf(
        "baseline %.2f %%, sparsity-trained %.2f %%, SGP %.2f %% with %.2f %% of parameters and %.2f %% of "
        "multiply-adds "
        "removed; Network Slimming at the same budget %.2f %%; batch-1 latency %.3f ms -> %.3f ms (%.1fx)\n",
        100 * baseline, 100 * sparse_acc, 100 * pruned_acc,
        100.0 * (1 - static_cast<double>(params_after) / Net::parameter_count),
        100.0 * (1 - static_cast<double>(macs_after) / Net::macs), 100 * st.number("ns_accuracy"), latency_full,
        latency_pruned, latency_full / latency_pruned);
    // A run whose rounds were all undone (or cut nothing) has no pruned network to report: the
    // job failed, though every stage ran (its figures are still written, marked as a failure).
    const bool pruned_nothing = params_after == Net::parameter_count;
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("failed", pruned_nothing)
            .field("failure", pruned_nothing ? std::string("SGP removed no channel: every round was undone or cut "
                                                           "nothing")
                                             : std::string())
            .field("model", o.model)
            .field("cpu", sgp::cpu_model())
            .field("rule", o.rule == "sparsity" ? std::string("activation_sparsity") : o.rule)
            .field("sparsity_measured_at", o.sparsity_at == "relu" ? "relu_output" : "consumer_input")
            .field("score", o.score)
            .field("baseline_accuracy", baseline)
            .field("sparse_accuracy", sparse_acc)
            .field("pruned_accuracy", pruned_acc)
            .field("pruned_accuracy_before_final_finetuning", st.number("sgp_accuracy_rounds"))
            .field("accuracy_drop_points", 100 * (baseline - pruned_acc))
            .field("accuracy_budget_points", static_cast<double>(o.budget))
            .field("within_budget", 100 * (baseline - pruned_acc) <= o.budget)
            .field("params_before", Net::parameter_count)
            .field("params_after", params_after)
            .field("params_removed_percent", 100.0 * (1 - static_cast<double>(params_after) / Net::parameter_count))
            .field("macs_before", Net::macs)
            .field("macs_after", macs_after)
            .field("macs_removed_percent", 100.0 * (1 - static_cast<double>(macs_after) / Net::macs))
            .field("latency_batch1_ms_unpruned", latency_full)
            .field("latency_batch1_ms_pruned", latency_pruned)
            .field("speedup_batch1", latency_full / latency_pruned)
            .field("baseline_epochs", o.baseline_epochs)
            .field("sparse_epochs", o.sparse_epochs)
            .field("lambda", static_cast<double>(o.lambda))
            .field("finetune_epochs_rounds_total", round_epochs)
            .field("finetune_lambda", static_cast<double>(o.finetune_lambda))
            .field("rounds", rounds_done)
            .field("final_finetune_epochs", o.final_epochs)
            .field("finetune_lr", static_cast<double>(o.finetune_lr))
            .field("final_lr", static_cast<double>(o.final_lr))
            .field("min_channels", o.min_channels)
            .field("round_to", o.round_to)
            .field("residual", o.residual)
            .field("round_budget_points", static_cast<double>(o.round_budget))
            .field("target_params_removed_percent", static_cast<double>(o.target_params))
            .field("target_macs_removed_percent", static_cast<double>(o.target_macs))
            .field("train_images", train_set.size())
            .field("seconds_this_invocation", seconds);
        j.key("layers").begin_array();
        const auto w = net.class_widths();
        for (const auto& g : pr::channel_groups<Net>())
            j.begin_object()
                .field("name", std::to_string(g.producer) + " " + std::string(Net::graph().nodes[g.producer].kind))
                .field("channels_before", g.capacity)
                .field("channels_after", w[g.cls])
                .end_object();
        j.end_array();
        j.key("round_reports").begin_array();
        for (std::size_t r = 1; st.has("sgp_round_" + std::to_string(r)); ++r)
            j.value_raw(sgp::dump(st.value("sgp_round_" + std::to_string(r))));
        j.end_array();
        j.key("network_slimming")
            .begin_object()
            .field("fraction", st.number("ns_fraction"))
            .field("accuracy_pruned", st.number("ns_accuracy_pruned"))
            .field("accuracy", st.number("ns_accuracy"))
            .field("finetune_epochs", sgp_epochs)
            .field("params_after", st.value("ns_pruning").at("params_after", "ns_pruning").index("params_after"))
            .field("macs_after", st.value("ns_pruning").at("macs_after", "ns_pruning").index("macs_after"))
            .field("emptied_layers", st.value("ns_pruning").at("emptied_layers", "ns_pruning").index("emptied_layers"))
            .field("failed", st.value("ns_pruning").at("emptied_layers", "ns_pruning").index("emptied_layers") > 0);
        j.key("pruning").value_raw(sgp::dump(st.value("ns_pruning")));
        j.end_object().end_object();
        j.save(o.json);
    }
    if (pruned_nothing) {
        std::cerr << "error: SGP removed no channel: every round was undone (over --round-budget) or cut nothing; "
                     "the figures above are the unpruned network's, not a result\n";
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        const options o = parse(argc, argv);
        return example::with_any_model(o.model, [&]<class Net>() { return run<Net>(o); });
    });
}
