#!/usr/bin/env python3
"""Markdown tables of an sgp_experiment run from its <dir>/state.json: one row per pruning
round, the kept channels per layer, and Network Slimming's widths at the same budget.
Usage: scripts/sgp_tables.py RUN_DIR/state.json"""
import json
import sys


def pct(x):
    return f"{100 * x:.2f} %"


def acc(x, key):
    """A round's accuracy: on the validation split since it exists, on the test set before."""
    return x.get("validation_" + key, x.get(key))


def main(path):
    s = json.load(open(path))
    rounds = []
    r = 1
    while f"sgp_round_{r}" in s:
        rounds.append(s[f"sgp_round_{r}"])
        r += 1
    print("(accuracies on the validation split; on the test set in runs before it existed)\n")
    print("| round | fine-tuning epochs | parameters | multiply-adds | parameters removed | multiply-adds removed "
          "| acc. after surgery | acc. after fine-tuning |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for x in rounds:
        p = x["pruning"]
        print(f"| {x['round']} | {x.get('finetune_epochs', '?')} | {p['params_before']:,} -> {p['params_after']:,} "
              f"| {p['macs_before']:,} -> {p['macs_after']:,} | {pct(x['params_removed'])} | {pct(x['macs_removed'])} "
              f"| {pct(acc(x, 'accuracy_pruned'))} | {pct(acc(x, 'accuracy_finetuned'))}"
              f"{' (undone)' if x['undone'] else ''} |")
    kept = [x for x in rounds if not x["undone"]]
    if not kept:
        return
    last = kept[-1]["pruning"]["layers"]
    first = rounds[0]["pruning"]["layers"]
    print()
    print("| layer | " + " | ".join(l["name"] for l in first) + " |")
    print("| --- | " + " | ".join("---" for _ in first) + " |")
    print("| declared | " + " | ".join(str(l["channels_before"]) for l in first) + " |")
    print("| SGP kept | " + " | ".join(str(l["channels_after"]) for l in last) + " |")
    if "ns_pruning" in s:
        print("| Network Slimming kept | " + " | ".join(str(l["channels_after"]) for l in s["ns_pruning"]["layers"]) + " |")
    print("| ReLU zero fraction, round 1 | " + " | ".join(f"{l.get('relu_zero_fraction', 0):.2f}" for l in first) + " |")
    print("| next-input zero fraction, round 1 | " + " | ".join(f"{l['next_zero_fraction']:.2f}" for l in first) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
