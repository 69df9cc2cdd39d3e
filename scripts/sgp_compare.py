#!/usr/bin/env python3
"""Compares the methods of sgp_experiment runs over seeds: a Markdown table (mean and sample
standard deviation of each method's test and validation accuracy, parameters and multiply-adds
removed, training cost in full-network epochs), SGP's widths per round, and a plot of test
accuracy against parameters and against multiply-adds remaining for every method.

Usage: scripts/sgp_compare.py RUN.json [RUN.json ...] [--plot out.png] [--title TEXT]
Every run must be of the same model; each is one seed."""
import argparse
import json
import math
import sys

NAMES = {"baseline": "baseline (unpruned)", "sgp": "SGP", "ns": "Network Slimming (global threshold)",
         "l1": "L1-norm filter pruning", "uniform": "uniform width, from scratch",
         "scratch": "SGP's architecture, from scratch"}


def mean_sd(xs):
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def fmt(xs, scale=100, digits=2):
    m, s = mean_sd([scale * x for x in xs])
    return f"{m:.{digits}f}" + ("" if math.isnan(s) else f" ± {s:.{digits}f}")


def load(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        if "methods" not in d:
            sys.exit(f"{p}: no 'methods' (written by an sgp_experiment before the controls)")
        runs.append(d)
    models = {d["model"] for d in runs}
    if len(models) != 1:
        sys.exit(f"runs of different models: {sorted(models)}")
    return runs


def table(runs):
    order = [m["name"] for m in runs[0]["methods"]]
    seeds = ", ".join(str(d.get("seed", "?")) for d in runs)
    print(f"{runs[0]['model']}, seeds {seeds} (mean ± sample standard deviation over {len(runs)} runs; "
          f"CPU: {runs[0].get('cpu', '?')})\n")
    print("| method | test accuracy (%) | validation accuracy (%) | parameters removed (%) "
          "| multiply-adds removed (%) | training cost (full-network epochs) | epochs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in order:
        ms = [next(m for m in d["methods"] if m["name"] == name) for d in runs]
        print(f"| {NAMES.get(name, name)} | {fmt([m['test_accuracy'] for m in ms])} "
              f"| {fmt([m['validation_accuracy'] for m in ms])} "
              f"| {fmt([m['params_removed_percent'] for m in ms], 1, 2)} "
              f"| {fmt([m['macs_removed_percent'] for m in ms], 1, 2)} "
              f"| {fmt([m['training_cost_full_epochs'] for m in ms], 1, 2)} "
              f"| {', '.join(str(m.get('epochs', '?')) for m in ms)} |")
    print()
    base = [next(m for m in d["methods"] if m["name"] == "baseline")["test_accuracy"] for d in runs]
    for name in order[1:]:
        diffs = [next(m for m in d["methods"] if m["name"] == name)["test_accuracy"] - b for d, b in zip(runs, base)]
        print(f"- {NAMES.get(name, name)}: {fmt(diffs)} points against the baseline, per seed "
              + ", ".join(f"{100 * x:+.2f}" for x in diffs))
    sgp = [next(m for m in d["methods"] if m["name"] == "sgp")["test_accuracy"] for d in runs]
    for name in order[2:]:
        diffs = [s - next(m for m in d["methods"] if m["name"] == name)["test_accuracy"] for d, s in zip(runs, sgp)]
        wins = sum(x >= 0 for x in diffs)
        print(f"- SGP minus {NAMES.get(name, name)}: {fmt(diffs)} points (SGP at least as accurate in {wins} "
              f"of {len(diffs)} seeds)")
    print()


def widths(runs):
    for d in runs:
        rounds = d.get("round_reports", [])
        if not rounds:
            continue
        first = rounds[0]["pruning"]["layers"]
        print(f"SGP's widths per round, seed {d.get('seed', '?')} (validation accuracy after fine-tuning):\n")
        print("| round | " + " | ".join(l["name"] for l in first) + " | validation (%) |")
        print("| --- | " + " | ".join("---" for _ in first) + " | --- |")
        print("| declared | " + " | ".join(str(l["channels_before"]) for l in first) + " | |")
        for r in rounds:
            acc = r.get("validation_accuracy_finetuned", r.get("accuracy_finetuned"))
            print(f"| {r['round']}{' (undone)' if r['undone'] else ''} | "
                  + " | ".join(str(l["channels_after"]) for l in r["pruning"]["layers"]) + f" | {100 * acc:.2f} |")
        print()


def plot(runs, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    order = [m["name"] for m in runs[0]["methods"]]
    colors = {"baseline": "black", "sgp": "#d1495b", "ns": "#6a3d9a", "l1": "#2a9d8f", "uniform": "#e9c46a",
              "scratch": "#457b9d"}
    markers = {"baseline": "s", "sgp": "*", "ns": "D", "l1": "o", "uniform": "^", "scratch": "v"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    for ax, key, what in ((axes[0], "params_removed_percent", "parameters"),
                          (axes[1], "macs_removed_percent", "multiply-adds")):
        for name in order:
            ms = [next(m for m in d["methods"] if m["name"] == name) for d in runs]
            xs = [100 - m[key] for m in ms]
            ys = [100 * m["test_accuracy"] for m in ms]
            ax.scatter(xs, ys, color=colors.get(name, "gray"), marker=markers.get(name, "o"), alpha=0.35, s=30)
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            ax.scatter([mx], [my], color=colors.get(name, "gray"), marker=markers.get(name, "o"), s=110,
                       edgecolor="black", label=f"{NAMES.get(name, name)}: {my:.2f} %", zorder=3)
        ax.set_xlabel(f"{what} remaining (% of the declared network)")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].legend(fontsize=8, loc="lower left")
    fig.suptitle(title or f"{runs[0]['model']}: every method at SGP's parameter budget, {len(runs)} seeds "
                 "(small: each seed; large: mean)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--plot")
    ap.add_argument("--title")
    a = ap.parse_args()
    runs = load(a.runs)
    table(runs)
    widths(runs)
    if a.plot:
        plot(runs, a.plot, a.title)


if __name__ == "__main__":
    main()
