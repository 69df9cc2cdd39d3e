#pragma once
// The stopping rule of a training run, on validation accuracy (never the test set): when the
// accuracy has not improved by at least `min_delta` over its best for `patience` epochs (a
// plateau), the learning rate is multiplied by `lr_factor`; the plateau after `reductions`
// such cuts ends training, and so does the cap on epochs (fit_options::epochs). The best
// epoch's weights are restored at the end. With lr_factor 1 and reductions 0 this is plain
// early stopping. The state is saved in every checkpoint, so an interrupted run resumes it.
#include <cmath>
#include <cstddef>
#include <string>

#include "sgp/core/error.hpp"
#include "sgp/io/json.hpp"
#include "sgp/io/json_reader.hpp"

namespace sgp {

struct stopping_rule {
    std::size_t patience = 3;    // epochs without progress that make a plateau
    double min_delta = 0.001;    // progress: accuracy (0-1) above the best, by at least this
    float lr_factor = 0.1f;      // the learning rate's factor at each plateau
    std::size_t reductions = 2;  // plateaus that cut the rate; the next one stops
    bool restore_best = true;    // end with the best epoch's weights

    void check(const std::string& where) const {
        if (patience == 0) fail(where, "the stopping rule's patience must be at least 1 epoch");
        if (!(min_delta >= 0 && min_delta < 1)) fail(where, "the stopping rule's min_delta must be in [0, 1)");
        if (!(lr_factor > 0 && lr_factor <= 1)) fail(where, "the stopping rule's lr_factor must be in (0, 1]");
    }
};

// Where a run stands under its rule. `origin` (the fit's schedule origin) and `parameters`
// (the network's active parameters when it began) tie it to one fit: a fit of the same
// trainer with another origin, or after pruning, starts a fresh state.
struct stopping_state {
    std::size_t origin = 0;
    std::size_t parameters = 0;
    double best = -1;            // best validation accuracy so far (-1: none yet)
    std::size_t best_epoch = 0;  // the epoch (1-based, trainer's count) that reached it
    std::size_t since = 0;       // epochs since the last progress
    std::size_t reductions = 0;  // plateaus so far that cut the rate
    bool stopped = false;
    std::size_t stopped_at = 0;  // the epoch after which the rule stopped
    bool finished = false;       // the run is over and the network holds its result

    float lr_scale(const stopping_rule& r) const { return std::pow(r.lr_factor, static_cast<float>(reductions)); }

    // After epoch `epoch` reached validation accuracy `acc`; true when it is the best so far
    // (its weights are the ones to keep).
    bool observe(const stopping_rule& r, double acc, std::size_t epoch) {
        const bool first = best < 0;
        const bool better = first || acc > best;
        const bool progress = better && (first || acc >= best + r.min_delta);
        if (better) {
            best = acc;
            best_epoch = epoch;
        }
        if (progress) {
            since = 0;
        } else if (++since >= r.patience) {
            since = 0;
            if (reductions < r.reductions)
                ++reductions;
            else {
                stopped = true;
                stopped_at = epoch;
            }
        }
        return better;
    }

    std::string to_json() const {
        json_writer j;
        j.begin_object()
            .field("origin", origin)
            .field("parameters", parameters)
            .field("best", best)
            .field("best_epoch", best_epoch)
            .field("since", since)
            .field("reductions", reductions)
            .field("stopped", stopped)
            .field("stopped_at", stopped_at)
            .field("finished", finished)
            .end_object();
        return j.str();
    }
    static stopping_state from_json(const std::string& text, const std::string& where) {
        const auto v = parse_json(text, where);
        stopping_state s;
        s.origin = v.at("origin", where).index("origin");
        s.parameters = v.at("parameters", where).index("parameters");
        s.best = v.at("best", where).number(where + ": best");
        s.best_epoch = v.at("best_epoch", where).index("best_epoch");
        s.since = v.at("since", where).index("since");
        s.reductions = v.at("reductions", where).index("reductions");
        auto flag = [&](const char* k) {
            const auto& x = v.at(k, where);
            if (x.kind != json_value::type::boolean) fail(where, std::string("'") + k + "' is not true or false");
            return x.b;
        };
        s.stopped = flag("stopped");
        s.stopped_at = v.at("stopped_at", where).index("stopped_at");
        s.finished = flag("finished");
        if (!(s.best >= -1 && s.best <= 1)) fail(where, "the stopping state's best accuracy is out of range");
        return s;
    }
};

}  // namespace sgp
