// The SGP experiment on Fashion-MNIST (padded to 32x32): baseline training, sparsity
// training, sparsity-gradient-based layer-wise pruning with fine-tuning in rounds, and the
// controls at the same parameter budget: Network Slimming's global threshold, L1-norm filter
// pruning, uniform width scaling and the SGP architecture trained from scratch.
//
// Every decision (stopping a training stage, undoing a round) is taken on a validation split
// held out of the training images; the test set is read once, at the end, for the report.
// Every stage checkpoints after every epoch and the run resumes where it stopped.
// Usage: sgp_experiment --help
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
                rule = "sparsity", score = "gamma", sparsity_at = "input", residual = "coupled", schedule = "cosine",
                augment = "crop-flip", controls = "ns,l1,uniform,scratch";
    std::size_t baseline_epochs = 3, sparse_epochs = 3, rounds = 4, finetune_epochs = 1, final_epochs = 0, batch = 64,
                threads = example::cores(), limit = 0, test_limit = 0, calib_images = 2048, round_to = 1,
                min_channels = 2, validation = 5000, patience = 3, lr_cuts = 2;
    std::uint64_t seed = 1;
    float lr = 0.05f, finetune_lr = 0.01f, final_lr = 0.01f, lambda = 1e-4f, finetune_lambda = 1e-4f, budget = 1.2f,
          round_budget = 1.2f, target_params = 0.f, target_macs = 0.f, min_delta = 0.1f, lr_factor = 0.1f;
    std::set<std::string> control_set;
    // The flags that shape the results, recorded in <dir>/state.json: a resumed run must match them.
    std::map<std::string, std::string> settings;
};

// Flags a resumed run may change: more rounds or epochs (every round records its own
// fine-tuning epochs), how fast, where the data is and where the results go.
// Controls run independently of each other, so they may be added or dropped too.
const std::set<std::string> may_change_on_resume = {
    "--rounds", "--finetune-epochs", "--final-epochs", "--threads", "--data", "--dir", "--json", "--controls"};
const std::vector<std::string> control_names = {"ns", "l1", "uniform", "scratch"};

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
    f.size("--baseline-epochs", o.baseline_epochs,
           "at most N epochs of unpruned baseline training (fewer when the stopping rule ends it); also the cap of "
           "the controls trained from scratch",
           1, many);
    f.size("--sparse-epochs", o.sparse_epochs, "at most N epochs of sparsity training, L1 on BN gammas", 1, many);
    f.choice("--schedule", o.schedule,
             "learning rate of every training stage: cosine (annealed over the stage's cap; the stopping rule only "
             "ends it early) or plateau (constant; cut by --lr-factor at each plateau, --lr-cuts times, and the "
             "next plateau ends the stage)",
             {"cosine", "plateau"});
    f.size("--patience", o.patience, "epochs without progress on the validation split that make a plateau", 1, many);
    f.real("--min-delta", o.min_delta, "progress: validation accuracy above its best by at least X points", 0, 100);
    f.size("--lr-cuts", o.lr_cuts, "plateau schedule: learning-rate cuts before a plateau ends the stage", 0, 100);
    f.real("--lr-factor", o.lr_factor, "plateau schedule: the learning rate's factor at each cut", 1e-6, 1);
    f.choice("--augment", o.augment, "training images: crop-flip (random crop from padding 4, horizontal flip) or none",
             {"crop-flip", "none"});
    f.size("--validation", o.validation,
           "training images held out (drawn by --seed, before --limit applies) for every decision: stopping, "
           "undoing a round; the test set is read once, at the end",
           100, 50000);
    f.text("--controls", o.controls,
           "comma-separated controls at SGP's parameter budget: ns (Network Slimming's global threshold), l1 "
           "(L1-norm filter pruning), uniform (uniform width, from scratch), scratch (SGP's architecture from "
           "scratch); none: no control");
    f.real("--lambda", o.lambda, "sparsity strength", 0, 1);
    f.size("--rounds", o.rounds, "at most N pruning rounds, each followed by --finetune-epochs", 0, 1000);
    f.size("--finetune-epochs", o.finetune_epochs, "fine-tuning epochs per round", 0, many);
    f.real("--finetune-lambda", o.finetune_lambda, "sparsity while fine-tuning (default: --lambda)", 0, 1);
    f.real("--target-params", o.target_params, "stop the rounds once P % of the parameters are removed (0: none)", 0,
           100);
    f.real("--target-macs", o.target_macs, "likewise for the multiply-adds", 0, 100);
    f.size("--final-epochs", o.final_epochs,
           "fine-tune the result at most N more epochs after the rounds, at --final-lr, no sparsity (also the cap of "
           "the pruned controls' fine-tuning, with the rounds' epochs)",
           0, many);
    f.real("--budget", o.budget, "accuracy budget of the result, points below the baseline (reported)", 0, 100);
    f.real("--round-budget", o.round_budget,
           "a round ending more than X points below the baseline's validation accuracy is undone and ends the rounds "
           "(default: --budget)",
           0, 100);
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
    f.size("--limit", o.limit, "train on the first N of the images left after --validation (0: all)", 0, 1u << 30);
    f.size("--test-limit", o.test_limit, "test on the first N images only (0: all)", 0, 1u << 30);
    f.size("--calib-images", o.calib_images, "training images for the pruning statistics", 1, 1u << 30);
    f.parse(argc, argv);
    if (!f.given("--finetune-lambda")) o.finetune_lambda = o.lambda;
    if (!f.given("--round-budget")) o.round_budget = o.budget;
    if (!f.given("--final-lr")) o.final_lr = o.finetune_lr;
    if (o.controls != "none") {
        std::size_t at = 0;
        while (at <= o.controls.size()) {
            const auto comma = std::min(o.controls.find(',', at), o.controls.size());
            const std::string c = o.controls.substr(at, comma - at);
            if (std::find(control_names.begin(), control_names.end(), c) == control_names.end())
                throw sgp::error("--controls: unknown control '" + c + "' (ns, l1, uniform, scratch, or none)");
            o.control_set.insert(c);
            at = comma + 1;
        }
    }
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

// One method's result: its network's size, its validation and test accuracy, and what its
// training cost in epochs of the full network (each epoch weighted by the multiply-adds of the
// network it trained, against the declared network's).
struct method_result {
    std::string name, description;
    std::size_t params = 0, macs = 0;
    double validation = 0, test = 0, cost_epochs = 0;
    std::size_t epochs = 0;  // its own training epochs (after the stage it started from)
    bool failed = false;
    std::string pruning_json;  // the pruning report, where the method pruned
};

template <class Net>
int run(const options& o) {
    namespace pr = sgp::prune;
    std::filesystem::create_directories(o.dir);
    if (const auto why = o.json.empty() ? "" : example::writable_output(o.json); !why.empty()) sgp::fail("--json", why);
    // One run at a time in a folder; a lock left by a killed run is taken over.
    const sgp::lock_file lock(o.dir + "/lock");
    stage_state st(o.dir + "/state.json");
    // Protocol 2: decisions on a validation split, stopping rule, controls. A folder of an earlier
    // run holds stages measured otherwise: mixing them would give a result of neither protocol.
    if (st.has("settings") && !st.has("protocol"))
        sgp::fail(o.dir + "/state.json",
                  "was written by an sgp_experiment before the validation split (its stages decided on the test "
                  "set); start afresh in another --dir");
    if (st.has("settings"))
        example::require_same_settings(example::settings_of(st.value("settings"), o.dir + "/state.json"), o.settings,
                                       o.dir + "/state.json");
    else
        st.set_json("settings", example::settings_json(o.settings));
    if (!st.has("protocol")) st.set("protocol", 2);
    const auto t_start = std::chrono::steady_clock::now();

    // The validation split comes out of all training images first, so that --limit changes
    // only what is trained on.
    const auto split = sgp::hold_out(sgp::load_fashion_mnist(o.data, true), o.validation, o.seed);
    const auto train_set = split.train.head(o.limit);
    const auto test_set = sgp::load_fashion_mnist(o.data, false).head(o.test_limit);
    auto lo = example::fashion_mnist_options(o.batch, o.seed, Net::input_shape.h);
    if (o.augment == "crop-flip") {
        lo.crop_padding = 4;
        lo.flip = true;
    }
    const auto eval_opts = example::for_evaluation(lo);
    sgp::batch_loader train(train_set, lo);
    sgp::validation_loader validation(split.validation, eval_opts);
    // Calibration: the first calib_images training images, unshuffled, no augmentation.
    const auto calib_set = train_set.head(o.calib_images);
    sgp::batch_loader calib(calib_set, eval_opts);

    const sgp::sgd opt{.lr = o.lr, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true};
    const sgp::trainer_options to{.threads = o.threads, .seed = o.seed};
    const bool plateau = o.schedule == "plateau";
    const sgp::stopping_rule stop{.patience = o.patience,
                                  .min_delta = o.min_delta / 100.0,
                                  .lr_factor = plateau ? o.lr_factor : 1.f,
                                  .reductions = plateau ? o.lr_cuts : 0};
    auto macs_fraction = [](Net& net) { return static_cast<double>(net.active_macs()) / Net::macs; };

    // Trains t for at most `cap` epochs after `origin` under the stopping rule, checkpointed in
    // <dir>/<name>.npz, and records the stage's validation accuracy, epochs and cost. A stage
    // already done only has its best weights put back (fit returns at once).
    auto fit_stage = [&](const std::string& name, sgp::trainer<Net>& t, std::size_t origin, std::size_t cap, float lr,
                         float lambda) {
        t.optimizer().lr = lr;
        sgp::fit_options f;
        f.epochs = origin + cap;
        f.schedule_origin = origin;
        f.sparsity = lambda;
        if (plateau)
            f.schedule = sgp::schedules::constant{};
        else
            f.schedule = sgp::schedules::cosine{static_cast<double>(cap), 0.f};
        f.stop = stop;
        f.checkpoint = o.dir + "/" + name + ".npz";
        // Done: its checkpoint, already loaded, holds the result. (Not fitted again: a resumed
        // run with a larger cap would train it past what state.json recorded.)
        if (st.has(name + "_validation")) return;
        std::cerr << "== " << name << ": at most " << cap << " epochs" << (lambda > 0 ? ", sparsity " : "")
                  << (lambda > 0 ? std::to_string(lambda) : "") << "\n";
        t.fit(train, f, &validation);
        {
            const auto epochs = t.epochs_done() - origin;
            st.set(name + "_cap", static_cast<double>(cap));
            st.set(name + "_epochs", static_cast<double>(epochs));
            st.set(name + "_cost", static_cast<double>(epochs) * macs_fraction(t.net()));
            st.set(name + "_best_epoch", static_cast<double>(t.stopping().best_epoch - origin));
            st.set(name + "_validation", t.evaluate(validation).accuracy);
        }
    };
    // A trainer from a stage's checkpoint (its result once the stage is done), or fresh; a
    // stage state.json has records must have its checkpoint.
    auto trainer_from = [&](const std::string& ckpt, bool required = false) {
        auto t = std::make_unique<sgp::trainer<Net>>(opt, to);
        if (std::filesystem::exists(ckpt))
            t->load_checkpoint(ckpt);
        else if (required)
            sgp::fail(ckpt, "missing, but " + o.dir + "/state.json records its stage: restore it or start afresh");
        return t;
    };

    // 1. The unpruned baseline and 2. sparsity training, both from scratch.
    auto base = trainer_from(o.dir + "/baseline.npz", st.has("baseline_validation"));
    fit_stage("baseline", *base, 0, o.baseline_epochs, o.lr, 0.f);
    const double baseline_val = st.number("baseline_validation");
    auto sparse = trainer_from(o.dir + "/sparse.npz", st.has("sparse_validation"));
    fit_stage("sparse", *sparse, 0, o.sparse_epochs, o.lr, o.lambda);
    const double latency_full = batch1_latency_ms(sparse->net(), 20);

    pr::options po{.min_channels = o.min_channels, .round_to = o.round_to};
    po.residual = o.residual == "coupled" ? pr::residual_policy::coupled : pr::residual_policy::keep_stream;
    pr::schedule_options so;
    so.max_rounds = o.rounds;
    so.finetune_epochs = o.finetune_epochs;
    so.target_params_removed = o.target_params / 100.0;
    so.target_macs_removed = o.target_macs / 100.0;
    so.reference_accuracy = baseline_val;
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
    if (!st.has("sgp_validation")) {
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
                             "round %zu: %.2f %% parameters, %.2f %% multiply-adds removed; validation accuracy "
                             "%.2f %% pruned, %.2f %% fine-tuned%s\n",
                             r.round, 100 * r.params_removed, 100 * r.macs_removed, 100 * r.accuracy_pruned,
                             100 * r.accuracy_finetuned, r.undone ? " (over budget: undone)" : "");
            };
            auto run_rule = [&](const auto& rule) {
                if (o.score == "taylor")
                    return pr::prune_and_finetune(*sparse, rule, train, calib, validation, so, po, pr::scores::taylor{},
                                                  on_round);
                return pr::prune_and_finetune(*sparse, rule, train, calib, validation, so, po,
                                              pr::scores::gamma_magnitude{}, on_round);
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
        // The final fine-tuning of the pruned network, under the stopping rule, without sparsity.
        sparse->load_checkpoint(final_ckpt);
        if (!st.has("sgp_validation_rounds")) st.set("sgp_validation_rounds", sparse->evaluate(validation).accuracy);
        const auto origin = static_cast<std::size_t>(st.number("sgp_final_origin"));
        if (o.final_epochs > 0) {
            fit_stage("sgp_final", *sparse, origin, o.final_epochs, o.final_lr, 0.f);
            // fit_stage's checkpoint is <dir>/sgp_final.npz: the rounds' result is replaced by
            // the final one, which a resumed run then loads (and fit leaves as it is).
        }
        sgp::save_state_dict(net, sgp_ckpt);
        st.set("sgp_validation", sparse->evaluate(validation).accuracy);
    } else {
        sgp::load_state_dict(net, sgp_ckpt);  // re-applies the pruned widths
    }
    while (st.has("sgp_round_" + std::to_string(rounds_done + 1))) ++rounds_done;
    const std::size_t params_after = net.active_parameter_count(), macs_after = net.active_macs();
    const double latency_pruned = batch1_latency_ms(net, 200);
    const auto sgp_plan = pr::current_plan(net);
    pr::save_plan(sgp_plan, o.dir + "/sgp_plan.json");

    // SGP's fine-tuning: the rounds' epochs (an undone round's training is thrown away with it,
    // but it was paid for: its cost counts), then the final fine-tuning.
    std::size_t round_epochs = 0, round_epochs_all = 0;
    double rounds_cost = 0;
    for (std::size_t r = 1; r <= rounds_done; ++r) {
        const auto& rep = st.value("sgp_round_" + std::to_string(r));
        const std::size_t e = rep.fields.count("finetune_epochs")
                                  ? rep.at("finetune_epochs", "state.json").index("epochs")
                                  : o.finetune_epochs;
        rounds_cost += static_cast<double>(e) * (1 - rep.at("macs_removed", "state.json").number("macs_removed"));
        round_epochs_all += e;
        if (!rep.at("undone", "state.json").b) round_epochs += e;
    }
    const double final_cost = st.has("sgp_final_cost") ? st.number("sgp_final_cost") : 0;
    // The pruned controls are fine-tuned for at most as many epochs as SGP had after sparsity training.
    // Recorded once: a resumed run with another --final-epochs keeps the controls' cap.
    if (!st.has("controls_finetune_cap"))
        st.set("controls_finetune_cap", static_cast<double>(std::max<std::size_t>(1, round_epochs + o.final_epochs)));
    const auto finetune_cap = static_cast<std::size_t>(st.number("controls_finetune_cap"));

    // 4. The controls at SGP's parameter budget, each its own stage with its own checkpoint.
    //    Pruned from a trained network: Network Slimming (from the sparsity-trained one, as SGP)
    //    and L1-norm filter pruning (from the baseline), then fine-tuned at --final-lr.
    auto pruned_control = [&](const std::string& name, const std::string& from, auto&& prune_it) {
        // Until state.json records the pruning, the stage starts over from `from`'s result (a
        // checkpoint written before a kill is not trusted to be pruned once only).
        const std::string ckpt = o.dir + "/" + name + ".npz";
        auto t = st.has(name + "_pruning") ? trainer_from(ckpt, true) : trainer_from(o.dir + "/" + from + ".npz", true);
        if (!st.has(name + "_pruning")) {
            std::cerr << "== " << name << ": pruned to at most " << params_after << " parameters\n";
            const pr::report rep = prune_it(*t);
            if (rep.params_after == Net::parameter_count) sgp::fail(name, "pruned nothing");
            t->save_checkpoint(ckpt);
            st.set(name + "_origin", static_cast<double>(t->epochs_done()));
            st.set(name + "_validation_pruned", t->evaluate(validation).accuracy);
            sgp::json_writer j;
            pr::write_json(j, rep);
            st.set_json(name + "_pruning", j.str());
        }
        fit_stage(name, *t, static_cast<std::size_t>(st.number(name + "_origin")), finetune_cap, o.final_lr, 0.f);
        return t;
    };
    //    Trained from scratch (the baseline's recipe): uniform width, and SGP's architecture.
    auto scratch_control = [&](const std::string& name, auto&& shape_it) {
        const std::string ckpt = o.dir + "/" + name + ".npz";
        auto t = st.has(name + "_pruning") ? trainer_from(ckpt, true) : std::make_unique<sgp::trainer<Net>>(opt, to);
        if (!st.has(name + "_pruning")) {
            std::cerr << "== " << name << ": from scratch at " << params_after << " parameters or fewer\n";
            const std::string rep = shape_it(*t);
            t->save_checkpoint(ckpt);
            st.set_json(name + "_pruning", rep);
        }
        fit_stage(name, *t, 0, o.baseline_epochs, o.lr, 0.f);
        return t;
    };
    std::map<std::string, std::unique_ptr<sgp::trainer<Net>>> controls;
    // Nothing pruned: no budget to compare at (the run fails below).
    const bool pruned_nothing = params_after == Net::parameter_count;
    auto wanted = [&](const std::string& c) { return !pruned_nothing && o.control_set.count(c) > 0; };
    if (wanted("ns"))
        controls["ns"] = pruned_control("ns", "sparse", [&](sgp::trainer<Net>& t) {
            const auto stats =
                pr::collect_stats(t.net(), pr::scores::gamma_magnitude{}, calib, &t.pool(), 0, po.residual);
            const auto rule = pr::global_for_budget(t.net(), stats, params_after, po);
            st.set("ns_fraction", rule.fraction);
            return pr::prune_with(t.net(), stats, rule, po, "gamma_magnitude");
        });
    if (wanted("l1"))
        controls["l1"] = pruned_control("l1", "baseline", [&](sgp::trainer<Net>& t) {
            return pr::l1_filter_pruning(t.net(), params_after, calib, po, &t.pool());
        });
    if (wanted("uniform"))
        controls["uniform"] = scratch_control("uniform", [&](sgp::trainer<Net>& t) {
            sgp::json_writer j;
            pr::write_json(j, pr::uniform_width(t.net(), params_after, o.seed, po));
            return j.str();
        });
    if (wanted("scratch"))
        controls["scratch"] = scratch_control("scratch", [&](sgp::trainer<Net>& t) {
            pr::from_scratch(t.net(), sgp_plan, o.seed);
            return pr::to_json(pr::current_plan(t.net()));
        });

    // 5. The test set, read once per method, for the report (decisions were all taken above).
    auto test_of = [&](const std::string& name, sgp::trainer<Net>& t) {
        if (!st.has(name + "_test")) {
            sgp::batch_loader test(test_set, eval_opts);
            st.set(name + "_test", t.evaluate(test).accuracy);
        }
        return st.number(name + "_test");
    };
    std::vector<method_result> methods;
    auto add = [&](const std::string& name, const std::string& what, sgp::trainer<Net>& t, double cost) {
        method_result m;
        m.name = name;
        m.description = what;
        m.params = t.net().active_parameter_count();
        m.macs = t.net().active_macs();
        m.validation = st.number(name + "_validation");
        m.test = test_of(name, t);
        m.cost_epochs = cost;
        m.epochs = st.has(name + "_epochs") ? static_cast<std::size_t>(st.number(name + "_epochs")) : 0;
        if (st.has(name + "_pruning")) {
            m.pruning_json = sgp::dump(st.value(name + "_pruning"));
            const auto& p = st.value(name + "_pruning");
            if (p.fields.count("emptied_layers")) m.failed = p.at("emptied_layers", name).index(name) > 0;
        }
        methods.push_back(m);
    };
    const double sparse_cost = st.number("sparse_cost"), baseline_cost = st.number("baseline_cost");
    add("baseline", "the unpruned network", *base, baseline_cost);
    add("sgp", "SGP: layer-wise rule, rounds of pruning and fine-tuning, final fine-tuning", *sparse,
        sparse_cost + rounds_cost + final_cost);
    methods.back().epochs =  // every round's fine-tuning (undone ones too), then the final one
        round_epochs_all + (st.has("sgp_final_epochs") ? static_cast<std::size_t>(st.number("sgp_final_epochs")) : 0);
    const std::map<std::string, std::pair<std::string, double>> what = {
        {"ns",
         {"Network Slimming: one global threshold on |gamma| of the sparsity-trained network, fine-tuned",
          sparse_cost}},
        {"l1", {"L1-norm filter pruning: one rate for all layers on the baseline, fine-tuned", baseline_cost}},
        {"uniform", {"uniform width scaling, trained from scratch", 0}},
        {"scratch", {"SGP's architecture trained from scratch", 0}}};
    for (auto& [name, t] : controls)
        add(name, what.at(name).first, *t, what.at(name).second + st.number(name + "_cost"));

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    const double baseline_test = methods[0].test, pruned_test = methods[1].test;
    std::printf("baseline %.2f %%, SGP %.2f %% with %.2f %% of parameters and %.2f %% of multiply-adds removed",
                100 * baseline_test, 100 * pruned_test,
                100.0 * (1 - static_cast<double>(params_after) / Net::parameter_count),
                100.0 * (1 - static_cast<double>(macs_after) / Net::macs));
    for (std::size_t i = 2; i < methods.size(); ++i)
        std::printf("; %s %.2f %%", methods[i].name.c_str(), 100 * methods[i].test);
    std::printf(" (test accuracy); batch-1 latency %.3f ms -> %.3f ms (%.1fx)\n", latency_full, latency_pruned,
                latency_full / latency_pruned);
    // A run whose rounds were all undone (or cut nothing) has no pruned network to report: the
    // job failed, though every stage ran (its figures are still written, marked as a failure).
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("failed", pruned_nothing)
            .field("failure", pruned_nothing ? std::string("SGP removed no channel: every round was undone or cut "
                                                           "nothing")
                                             : std::string())
            .field("model", o.model)
            .field("cpu", sgp::cpu_model())
            .field("seed", static_cast<long long>(o.seed))
            .field("rule", o.rule == "sparsity" ? std::string("activation_sparsity") : o.rule)
            .field("sparsity_measured_at", o.sparsity_at == "relu" ? "relu_output" : "consumer_input")
            .field("score", o.score)
            .field("baseline_accuracy", baseline_test)
            .field("baseline_validation_accuracy", baseline_val)
            .field("sparse_validation_accuracy", st.number("sparse_validation"))
            .field("pruned_accuracy", pruned_test)
            .field("pruned_validation_accuracy", st.number("sgp_validation"))
            .field("pruned_validation_accuracy_before_final_finetuning", st.number("sgp_validation_rounds"))
            .field("accuracy_drop_points", 100 * (baseline_test - pruned_test))
            .field("accuracy_budget_points", static_cast<double>(o.budget))
            .field("within_budget", 100 * (baseline_test - pruned_test) <= o.budget)
            .field("params_before", Net::parameter_count)
            .field("params_after", params_after)
            .field("params_removed_percent", 100.0 * (1 - static_cast<double>(params_after) / Net::parameter_count))
            .field("macs_before", Net::macs)
            .field("macs_after", macs_after)
            .field("macs_removed_percent", 100.0 * (1 - static_cast<double>(macs_after) / Net::macs))
            .field("latency_batch1_ms_unpruned", latency_full)
            .field("latency_batch1_ms_pruned", latency_pruned)
            .field("speedup_batch1", latency_full / latency_pruned)
            .field("baseline_epochs_cap", o.baseline_epochs)
            .field("baseline_epochs", static_cast<std::size_t>(st.number("baseline_epochs")))
            .field("sparse_epochs_cap", o.sparse_epochs)
            .field("sparse_epochs", static_cast<std::size_t>(st.number("sparse_epochs")))
            .field("lambda", static_cast<double>(o.lambda))
            .field("finetune_epochs_rounds_total", round_epochs)
            .field("finetune_lambda", static_cast<double>(o.finetune_lambda))
            .field("rounds", rounds_done)
            .field("final_finetune_epochs_cap",
                   st.has("sgp_final_cap") ? static_cast<std::size_t>(st.number("sgp_final_cap")) : o.final_epochs)
            .field("controls_finetune_epochs_cap", static_cast<std::size_t>(st.number("controls_finetune_cap")))
            .field("final_finetune_epochs",
                   st.has("sgp_final_epochs") ? static_cast<std::size_t>(st.number("sgp_final_epochs")) : 0)
            .field("lr", static_cast<double>(o.lr))
            .field("finetune_lr", static_cast<double>(o.finetune_lr))
            .field("final_lr", static_cast<double>(o.final_lr))
            .field("schedule", o.schedule)
            .field("stopping_patience", o.patience)
            .field("stopping_min_delta_points", static_cast<double>(o.min_delta))
            .field("lr_cuts", plateau ? o.lr_cuts : 0)
            .field("lr_factor", plateau ? static_cast<double>(o.lr_factor) : 1.0)
            .field("augmentation", o.augment)
            .field("min_channels", o.min_channels)
            .field("round_to", o.round_to)
            .field("residual", o.residual)
            .field("round_budget_points", static_cast<double>(o.round_budget))
            .field("target_params_removed_percent", static_cast<double>(o.target_params))
            .field("target_macs_removed_percent", static_cast<double>(o.target_macs))
            .field("train_images", train_set.size())
            .field("validation_images", split.validation.size())
            .field("test_images", test_set.size())
            .field("seconds_this_invocation", seconds);
        j.key("methods").begin_array();
        for (const auto& m : methods) {
            j.begin_object()
                .field("name", m.name)
                .field("description", m.description)
                .field("params", m.params)
                .field("macs", m.macs)
                .field("params_removed_percent", 100.0 * (1 - static_cast<double>(m.params) / Net::parameter_count))
                .field("macs_removed_percent", 100.0 * (1 - static_cast<double>(m.macs) / Net::macs))
                .field("validation_accuracy", m.validation)
                .field("test_accuracy", m.test)
                .field("training_cost_full_epochs", m.cost_epochs)
                .field("epochs", m.epochs)
                .field("failed", m.failed);
            if (!m.pruning_json.empty()) j.key("pruning").value_raw(m.pruning_json);
            j.end_object();
        }
        j.end_array();
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
        j.end_object();
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
