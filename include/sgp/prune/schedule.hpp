#pragma once
// Iterative pruning: prune -> fine-tune -> prune ... until a target of parameters or
// multiply-adds removed is reached, a round ends over the accuracy budget (that round is then
// undone), or the rule removes nothing more. One report per round. A final, longer
// fine-tuning of the result is the caller's (trainer::fit), so that it checkpoints per epoch.
// Every accuracy here is measured on a validation split held out of the training images
// (data/split.hpp): undoing a round is a decision, and the test set takes no part in one.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "sgp/prune/prune.hpp"
#include "sgp/train/recalibrate.hpp"
#include "sgp/train/trainer.hpp"

namespace sgp::prune {

struct schedule_options {
    std::size_t max_rounds = 5;
    std::size_t finetune_epochs = 2;
    double target_params_removed = 0;  // fraction of the declared parameters; 0: no target
    double target_macs_removed = 0;    // fraction of the declared multiply-adds; 0: no target
    double reference_accuracy = -1;    // the unpruned validation accuracy (0-1); < 0: no accuracy budget
    double accuracy_budget = 0.012;    // largest allowed drop below the reference after a round (0-1)
    fit_options fit{};                 // fine-tuning options (schedule restarts every round)
    std::size_t rounds_done = 0;       // rounds already done (resuming): numbering continues after them
    // Batches of the calibration loader that re-estimate the batch norms' running statistics
    // after surgery (train/recalibrate.hpp); 0: none.
    std::size_t recalibration_batches = 20;

    bool target_reached(double params_removed, double macs_removed) const {
        const bool any = target_params_removed > 0 || target_macs_removed > 0;
        return any && params_removed >= target_params_removed && macs_removed >= target_macs_removed;
    }
};

struct round_report {
    std::size_t round = 0;
    std::size_t finetune_epochs = 0;
    report pruning;
    // Validation accuracies:
    double accuracy_surgery = 0;  // right after surgery
    double accuracy_pruned = 0;   // after surgery and BN recalibration, before fine-tuning
    bool recalibrated = false;
    double accuracy_finetuned = 0;                // after fine-tuning
    double params_removed = 0, macs_removed = 0;  // fractions of the declared network
    bool undone = false;                          // exceeded the accuracy budget and was reverted
};

template <class Net, class Rule, class Score = scores::gamma_magnitude>
std::vector<round_report> prune_and_finetune(trainer<Net>& t, const Rule& rule, batch_loader& train,
                                             batch_loader& calib, validation_loader& validation,
                                             const schedule_options& s, const options& o = {}, Score score = {},
                                             const std::function<void(const round_report&)>& on_round = {}) {
    std::vector<round_report> rounds;
    auto& net = t.net();
    auto removed = [&](std::size_t now, std::size_t declared) {
        return 1.0 - static_cast<double>(now) / static_cast<double>(declared);
    };
    for (std::size_t r = s.rounds_done + 1; r <= s.max_rounds; ++r) {
        if (s.target_reached(removed(net.active_parameter_count(), Net::parameter_count),
                             removed(net.active_macs(), Net::macs)))
            break;
        const auto widths = net.class_widths();
        Net backup = net;
        const sgd_state optimizer_backup = t.optimizer_state();
        round_report rr;
        rr.round = r;
        rr.finetune_epochs = s.finetune_epochs;
        rr.pruning = prune(net, rule, calib, o, score, &t.pool());
        if (net.class_widths() == widths) break;  // the rule has nothing left to remove
        rr.accuracy_surgery = t.evaluate(validation).accuracy;
        if (s.recalibration_batches > 0) {
            // Surgery leaves every batch norm's running statistics those of the wider network:
            // re-estimated on calibration batches, the accuracy after surgery means something.
            recalibrate_batch_norm(net, calib, s.recalibration_batches, &t.pool());
            rr.recalibrated = true;
            rr.accuracy_pruned = t.evaluate(validation).accuracy;
        } else {
            rr.accuracy_pruned = rr.accuracy_surgery;
        }
        fit_options f = s.fit;
        f.schedule_origin = t.epochs_done();
        f.epochs = t.epochs_done() + s.finetune_epochs;
        t.fit(train, f, nullptr);
        rr.accuracy_finetuned = t.evaluate(validation).accuracy;
        rr.params_removed = removed(rr.pruning.params_after, Net::parameter_count);
        rr.macs_removed = removed(rr.pruning.macs_after, Net::macs);
        if (s.reference_accuracy >= 0 && rr.accuracy_finetuned < s.reference_accuracy - s.accuracy_budget) {
            net = std::move(backup);
            t.optimizer_state() = optimizer_backup;
            rr.undone = true;
        }
        rounds.push_back(rr);
        if (on_round) on_round(rr);
        if (rr.undone) break;
    }
    return rounds;
}

inline void write_json(json_writer& j, const round_report& r) {
    j.begin_object()
        .field("round", r.round)
        .field("finetune_epochs", r.finetune_epochs)
        .field("validation_accuracy_surgery", r.accuracy_surgery)
        .field("recalibrated", r.recalibrated)
        .field("validation_accuracy_pruned", r.accuracy_pruned)
        .field("validation_accuracy_finetuned", r.accuracy_finetuned)
        .field("params_removed", r.params_removed)
        .field("macs_removed", r.macs_removed)
        .field("undone", r.undone);
    j.key("pruning");
    write_json(j, r.pruning);
    j.end_object();
}

}  // namespace sgp::prune
