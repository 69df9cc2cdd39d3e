#!/usr/bin/env python3
"""Layer-wise analysis plots from sgp's JSON reports (schema "sgp-report/1") and, optionally,
an sgp_experiment result (round reports, channel scores, Network Slimming).

Usage:
  scripts/plot_report.py --report after.json [--before before.json] [--experiment sgp.json]
                         --out DIR [--title TEXT]
  scripts/plot_report.py --selftest [--out DIR]

Writes DIR/<stem>.png (150 dpi) and DIR/<stem>.svg for each plot and prints the files written:
  layers_macs      multiply-adds per layer (rows with MACs > 0), before and after
  layers_cpu_time  measured CPU time per layer, fp32 bars, int8 markers where present
  layers_dpu_time  estimated DPU time per layer, coloured by what bounds it; MAC-array utilization
  layers_memory    int8 weight bytes per layer; fp32 activation output bytes and live bytes per row
  bn_scales        per pruned layer, histograms of its channel scores over the rounds, thresholds marked
                   (needs --experiment with "scores"; skipped with a note otherwise)
  rounds_accuracy  accuracy against parameters and MACs remaining over the rounds (needs --experiment)
  layers_sqnr      int8-vs-float SQNR (dB) per int8 op
Errors in the inputs (missing file, bad JSON, missing or mistyped keys) print one line naming the file
and exit 2. Needs Debian's python3-matplotlib and python3-numpy only.
"""
import argparse
import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import tempfile

import matplotlib

matplotlib.use("Agg")  # files only; no display on build machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import EngFormatter, FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

SCHEMA = "sgp-report/1"
DPI = 150

# Reruns must give byte-identical SVGs: fixed ids, no date; text kept as text (small, searchable).
plt.rcParams.update({
    "svg.hashsalt": "sgp-plot-report",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.titlesize": 9,
    "figure.titlesize": 11,
    "legend.fontsize": 8,
})

BEFORE_COLOR = "#b0b0b0"  # before: wide pale bar behind
AFTER_COLOR = "#1f5fa8"   # after: narrow dark bar in front, so both stay visible whichever is taller
INT8_COLOR = "#e07b00"
BOUND_COLORS = {"compute": "#1f5fa8", "memory": "#d1495b", "none": "#888888"}


class InputError(Exception):
    """A problem with one input file; printed as one line, exit 2."""


# ---------------------------------------------------------------------------------------------
# Reading and checking the inputs. Only the keys the plots use are required, each with its type,
# so a bad file fails here with its name and the key, not later inside matplotlib.

def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a JSON file")
    except PermissionError:
        raise InputError(f"{path}: permission denied")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: bad JSON at line {e.lineno} column {e.colno}: {e.msg}")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}")


class Checker:
    """Typed access to one file's JSON; every failure names the file and the key's path."""

    def __init__(self, path):
        self.path = path

    def fail(self, where, problem):
        raise InputError(f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}")

    def obj(self, value, where):
        if not isinstance(value, dict):
            self.fail(where, f"expected an object, found {type_name(value)}")
        return value

    def get(self, d, key, where, kind, nullable=False, optional=False):
        """d[key] checked to be of `kind` ("number", "int", "str", "bool", "list", "object")."""
        here = f"{where}.{key}" if where else key
        if key not in d:
            if optional:
                return None
            self.fail(where or "top level", f"missing key '{key}'")
        v = d[key]
        if v is None and (nullable or optional):
            return None
        ok = {
            "number": isinstance(v, (int, float)) and not isinstance(v, bool),
            "int": (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
            "str": isinstance(v, str),
            "bool": isinstance(v, bool),
            "list": isinstance(v, list),
            "object": isinstance(v, dict),
        }[kind]
        if not ok:
            self.fail(here, f"expected {kind}{' or null' if nullable else ''}, found {type_name(v)}")
        if kind == "int":
            v = int(v)
        if kind == "number" and not math.isfinite(v):
            self.fail(here, "not a finite number")
        return v


def type_name(v):
    if v is None:
        return "null"
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


def read_report(path):
    """The report's fields the plots use, as plain dicts; raises InputError naming the key."""
    c = Checker(path)
    d = c.obj(load_json(path), "")
    schema = c.get(d, "schema", "", "str")
    if schema != SCHEMA:
        c.fail("schema", f"is '{schema}', expected '{SCHEMA}'")
    r = {"path": path}
    for k in ("network", "state", "cpu", "weights"):
        r[k] = c.get(d, k, "", "str")
    for k in ("threads", "batch", "repeats"):
        r[k] = c.get(d, k, "", "int")
    dpu = c.get(d, "dpu", "", "object")
    r["dpu"] = {"name": c.get(dpu, "name", "dpu", "str")}
    for k in ("pp", "icp", "ocp", "clock_mhz", "ddr_gbytes_per_s", "overhead_us"):
        r["dpu"][k] = c.get(dpu, k, "dpu", "number")
    t = c.get(d, "totals", "", "object")
    r["totals"] = {}
    for k in ("parameters", "macs", "weight_bytes_int8", "peak_activation_bytes_fp32", "dpu_us", "dpu_compute_us",
              "dpu_memory_us"):
        r["totals"][k] = c.get(t, k, "totals", "number")
    # An .xmodel's report has no fp32 network behind it: its fp32 times are null.
    for k in ("cpu_fp32_ms", "cpu_fp32_ms_layers", "cpu_int8_ms", "cpu_int8_ms_layers"):
        r["totals"][k] = c.get(t, k, "totals", "number", nullable=True)
    layers = c.get(d, "layers", "", "list")
    if not layers:
        c.fail("layers", "empty array")
    rows = []
    seen = set()
    for i, raw in enumerate(layers):
        w = f"layers[{i}]"
        L = c.obj(raw, w)
        row = {"path": c.get(L, "path", w, "str"), "kind": c.get(L, "kind", w, "str"),
               "fused": c.get(L, "fused", w, "bool")}
        if row["path"] in seen:
            c.fail(f"{w}.path", f"'{row['path']}' appears twice")
        seen.add(row["path"])
        for k in ("parameters", "macs", "weight_bytes_int8", "activation_out_bytes_fp32", "live_bytes_fp32"):
            row[k] = c.get(L, k, w, "number")
        for k in ("cpu_fp32_ms", "cpu_int8_ms", "sqnr_db"):
            row[k] = c.get(L, k, w, "number", nullable=True)
        dp = c.get(L, "dpu", w, "object")
        wd = w + ".dpu"
        row["dpu"] = {"engine": c.get(dp, "engine", wd, "str"), "bound": c.get(dp, "bound", wd, "str"),
                      "fits": c.get(dp, "fits", wd, "bool"), "why": c.get(dp, "why", wd, "str")}
        for k in ("total_us", "compute_us", "memory_us", "utilization"):
            row["dpu"][k] = c.get(dp, k, wd, "number")
        rows.append(row)
    r["rows"] = rows
    return r


def read_experiment(path):
    """sgp_experiment's result: baseline, final point, rounds with optional scores, Network Slimming."""
    c = Checker(path)
    d = c.obj(load_json(path), "")
    e = {"path": path, "model": c.get(d, "model", "", "str")}
    for k in ("baseline_accuracy", "pruned_accuracy", "params_before", "macs_before", "params_after",
              "macs_after"):
        e[k] = c.get(d, k, "", "number")
    # Since the validation split, the rounds' decisions (and so this plot) are on validation
    # accuracy; older files measured everything on the test set.
    e["accuracy_kind"] = "test"
    if "baseline_validation_accuracy" in d:
        e["accuracy_kind"] = "validation"
        e["baseline_accuracy"] = c.get(d, "baseline_validation_accuracy", "", "number")
        e["pruned_accuracy"] = c.get(d, "pruned_validation_accuracy", "", "number")
    if e["params_before"] <= 0 or e["macs_before"] <= 0:
        c.fail("params_before" if e["params_before"] <= 0 else "macs_before", "must be positive")
    rounds = []
    for i, raw in enumerate(c.get(d, "round_reports", "", "list")):
        w = f"round_reports[{i}]"
        R = c.obj(raw, w)
        rr = {k: c.get(R, k, w, "number") for k in ("params_removed", "macs_removed")}
        for k in ("accuracy_finetuned", "accuracy_pruned"):
            rr[k] = c.get(R, "validation_" + k if "validation_" + k in R else k, w, "number")
        rr["accuracy_recalibrated"] = c.get(R, "accuracy_recalibrated", w, "number", optional=True)
        rr["undone"] = bool(c.get(R, "undone", w, "bool", optional=True))  # written by sgp_experiment
        P = c.get(R, "pruning", w, "object")
        rr["layers"] = []
        for j, rawl in enumerate(c.get(P, "layers", w + ".pruning", "list")):
            wl = f"{w}.pruning.layers[{j}]"
            L = c.obj(rawl, wl)
            lay = {"layer": c.get(L, "layer", wl, "int"), "name": c.get(L, "name", wl, "str"),
                   "channels_before": c.get(L, "channels_before", wl, "int"),
                   "channels_after": c.get(L, "channels_after", wl, "int"),
                   "threshold": c.get(L, "threshold", wl, "number", optional=True)}
            scores = c.get(L, "scores", wl, "list", optional=True)
            if scores is not None:
                for k, s in enumerate(scores):
                    if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
                        c.fail(f"{wl}.scores[{k}]", f"expected a finite number, found {type_name(s)}")
                lay["scores"] = [float(s) for s in scores]
            rr["layers"].append(lay)
        rounds.append(rr)
    e["rounds"] = rounds
    ns = c.get(d, "network_slimming", "", "object", optional=True)
    e["ns"] = None
    if ns is not None:
        e["ns"] = {k: c.get(ns, k, "network_slimming", "number") for k in ("accuracy", "params_after", "macs_after")}
    for i, m in enumerate(c.get(d, "methods", "", "list", optional=True) or []):
        w = f"methods[{i}]"
        M = c.obj(m, w)
        if c.get(M, "name", w, "str") == "ns":
            e["ns"] = {"accuracy": c.get(M, "validation_accuracy", w, "number"),
                       "params_after": c.get(M, "params", w, "number"), "macs_after": c.get(M, "macs", w, "number")}
    return e


# ---------------------------------------------------------------------------------------------
# Shared helpers for the per-layer plots.

def aligned_rows(before, after):
    """(path, before row or None, after row or None) in the after report's order; rows only in
    `before` follow. Rows are matched by path: both files describe the same graph."""
    b = {r["path"]: r for r in before["rows"]} if before else {}
    out = [(r["path"], b.get(r["path"]), r) for r in after["rows"]]
    known = {r["path"] for r in after["rows"]}
    out += [(r["path"], r, None) for r in (before["rows"] if before else []) if r["path"] not in known]
    return out


def value(row, get):
    """get(row) or nan when the row is absent or the value is null (a gap in the plot, not a 0)."""
    if row is None:
        return math.nan
    v = get(row)
    return math.nan if v is None else float(v)


def spans_decades(values, decades=2.0):
    """True when the positive values span more than `decades` powers of ten: then a log axis."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x) and x > 0])
    return v.size > 1 and v.max() / v.min() > 10 ** decades


def fig_width(n, per_row=0.13, lo=8.0, hi=22.0):
    """Wide enough that n rows of bars stay apart; capped so the PNG stays viewable (<= 3300 px)."""
    return min(hi, max(lo, 1.8 + per_row * n))


def label_rows(ax, labels, fig_w):
    """Path labels, rotated. Past ~40 rows only every k-th is labelled (minor ticks mark the rest)
    so 7 pt labels keep ~0.14 in apart; the axis title says so."""
    n = len(labels)
    axes_w = max(1.0, fig_w - 1.4)
    step = max(1, math.ceil(n * 0.14 / axes_w)) if n > 40 else 1
    ax.set_xticks(range(0, n, step))
    ax.set_xticklabels(labels[::step], rotation=90, fontsize=7 if n > 20 else 8)
    ax.set_xticks(range(n), minor=True)
    ax.tick_params(axis="x", which="minor", length=2)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_xlabel("layer (path)" + (f", 1 row in {step} labelled" if step > 1 else ""))
    return step


def set_value_scale(ax, values, unit=""):
    """Log y when values span > 2 decades (else small rows vanish); engineering-notation ticks."""
    log = spans_decades(values)
    if log:
        ax.set_yscale("log")
        pos = [v for v in values if math.isfinite(v) and v > 0]
        ax.set_ylim(min(pos) / 2, max(pos) * 2.5)
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(EngFormatter(unit=unit, sep=" " if unit else ""))
    ax.grid(axis="y", which="major", alpha=0.3)
    return log


def overlay_bars(ax, x, before_vals, after_vals, labels):
    """Before as a wide pale bar, after as a narrow solid bar in front of it at the same x:
    half the width of side-by-side bars, and both stay visible whichever is taller."""
    def named(label, how):  # "after (pruned): 1 ms" -> "after (pruned), narrow solid bars: 1 ms"
        name, sep, rest = label.partition(": ")
        return f"{name}, {how}{sep}{rest}"
    if before_vals is None:
        ax.bar(x, np.nan_to_num(after_vals), width=0.7, color=AFTER_COLOR, linewidth=0, zorder=3)
        return [Patch(color=AFTER_COLOR, label=labels[1])]
    ax.bar(x, np.nan_to_num(before_vals), width=0.84, color=BEFORE_COLOR, linewidth=0, zorder=2)
    ax.bar(x, np.nan_to_num(after_vals), width=0.42, color=AFTER_COLOR, linewidth=0, zorder=3)
    return [Patch(color=BEFORE_COLOR, label=named(labels[0], "wide pale bars")),
            Patch(color=AFTER_COLOR, label=named(labels[1], "narrow solid bars"))]


def legend_above(ax, handles, title, fig_w):
    """Legend in a band above the panel, headed by the panel's description: it never covers bars,
    and constrained layout makes room for it. As many columns as the width allows."""
    longest = max(len(h.get_label()) for h in handles)
    col_w = 0.6 + 0.062 * longest  # inches at 8 pt
    # A heading wider than the figure would squeeze the panel (constrained layout): wrap it.
    if title:
        title = "\n".join(textwrap.wrap(title, width=max(40, int((fig_w - 1.2) / 0.072))))
    ncol = max(1, min(len(handles), int((fig_w - 1.4) // col_w)))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=ncol, frameon=False,
              title=title, title_fontsize=9, alignment="left", borderaxespad=0.3)
    return ncol


def state_labels(before, after):
    def name(r):
        # A report of a network without trained weights says so: its SQNR says little.
        return r["state"] + (", initial weights" if not r.get("weights") else "")
    a = f"after ({name(after)})" if before else name(after)
    return (f"before ({name(before)})" if before else None), a


def si(x, unit=""):
    return EngFormatter(unit=unit, places=2, sep=" " if unit else "")(x).strip() if x is not None else "n/a"


def pct_of(a, b):
    return f" ({100.0 * a / b:.1f} %)" if b else ""


def heading(title, what):
    return f"{title}: {what}" if title else what


# ---------------------------------------------------------------------------------------------
# The plots. Each returns a figure, or None with a note when its data is absent.

def plot_layers_macs(before, after, title):
    rows = [r for r in aligned_rows(before, after)
            if value(r[1], lambda x: x["macs"]) > 0 or value(r[2], lambda x: x["macs"]) > 0]
    if not rows:
        return None, "no row has multiply-adds > 0"
    x = np.arange(len(rows))
    b = np.array([value(r[1], lambda x: x["macs"]) for r in rows]) if before else None
    a = np.array([value(r[2], lambda x: x["macs"]) for r in rows])
    w = fig_width(len(rows), per_row=0.16)
    fig, ax = plt.subplots(figsize=(w, 5.2), layout="constrained")
    lb, la = state_labels(before, after)
    ta = after["totals"]["macs"]
    la_t = f"{la}: {si(ta)} total"
    if before:
        tb = before["totals"]["macs"]
        la_t += pct_of(ta, tb) + " of before"
    handles = overlay_bars(ax, x, b, a, labels=(f"{lb}: {si(before['totals']['macs'])} total" if before else None,
                                                la_t))
    log = set_value_scale(ax, list(a) + (list(b) if before else []))
    label_rows(ax, [r[0] for r in rows], w)
    ax.set_ylabel("multiply-adds per image" + (" (log)" if log else ""))
    legend_above(ax, handles, f"{len(rows)} rows with multiply-adds > 0 (batch norms, ReLUs, pools etc. have none)", w)
    fig.suptitle(heading(title, "multiply-adds per layer"))
    return fig, None


def plot_layers_cpu_time(before, after, title):
    # Fused rows (batch norm / ReLU run inside the conv before) take ~0 time: omitted, counted.
    all_rows = aligned_rows(before, after)
    rows = [r for r in all_rows
            if not all(x is None or x["fused"] for x in r[1:])
            and any(value(x, lambda y: y[k]) > 0 for x in r[1:] for k in ("cpu_fp32_ms", "cpu_int8_ms"))]
    if not rows:
        return None, "no row has CPU time > 0"
    fused = sum(1 for r in all_rows if all(x is None or x["fused"] for x in r[1:]))
    x = np.arange(len(rows))
    fp = lambda x: x["cpu_fp32_ms"]  # noqa: E731
    i8 = lambda x: x["cpu_int8_ms"]  # noqa: E731
    b = np.array([value(r[1], fp) for r in rows]) if before else None
    a = np.array([value(r[2], fp) for r in rows])
    bi = np.array([value(r[1], i8) for r in rows]) if before else None
    ai = np.array([value(r[2], i8) for r in rows])
    w = fig_width(len(rows), per_row=0.16)
    fig, ax = plt.subplots(figsize=(w, 5.2), layout="constrained")
    lb, la = state_labels(before, after)

    def total(rep):
        t = rep["totals"]
        if t["cpu_fp32_ms"] is None or t["cpu_fp32_ms_layers"] is None:
            return "not measured"
        return f"{t['cpu_fp32_ms']:.3g} ms whole net, {t['cpu_fp32_ms_layers']:.3g} ms sum of rows"

    handles = overlay_bars(ax, x, b, a, labels=(f"{lb} fp32: {total(before)}" if before else None,
                                                f"{la} fp32: {total(after)}"))
    vals = list(a) + (list(b) if before else [])
    if before and np.isfinite(bi).any():
        ax.plot(x, bi, linestyle="none", marker="o", markersize=4, markerfacecolor="white",
                markeredgecolor=INT8_COLOR, zorder=4)
        t = before["totals"]["cpu_int8_ms"]
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white",
                              markeredgecolor=INT8_COLOR,
                              label=f"{lb} int8" + (f": {t:.3g} ms" if t is not None else "")))
        vals += list(bi)
    if np.isfinite(ai).any():
        ax.plot(x, ai, linestyle="none", marker="o", markersize=4, color=INT8_COLOR, zorder=5)
        t = after["totals"]["cpu_int8_ms"]
        handles.append(Line2D([], [], linestyle="none", marker="o", color=INT8_COLOR,
                              label=f"{la} int8" + (f": {t:.3g} ms" if t is not None else "")))
        vals += list(ai)
    log = set_value_scale(ax, vals)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    label_rows(ax, [r[0] for r in rows], w)
    ax.set_ylabel("time per batch (ms)" + (" (log)" if log else ""))

    def machine(rep):
        return (f"{rep['cpu']}, {rep['threads']} thread{'s' if rep['threads'] != 1 else ''}, "
                f"batch {rep['batch']}, {rep['repeats']} repeats")
    sub = "CPU: " + machine(after)
    if before and machine(before) != machine(after):
        sub = f"CPU after: {machine(after)}; before: {machine(before)}"
    sub += f"; {fused} fused rows (~0 time) omitted" if fused else ""
    legend_above(ax, handles, sub, w)
    fig.suptitle(heading(title, "measured CPU time per layer"))
    return fig, None


def plot_layers_dpu_time(before, after, title):
    rows = [r for r in aligned_rows(before, after)
            if value(r[1], lambda x: x["dpu"]["total_us"]) > 0 or value(r[2], lambda x: x["dpu"]["total_us"]) > 0]
    if not rows:
        return None, "no row has DPU time > 0"
    x = np.arange(len(rows))
    tot = lambda x: x["dpu"]["total_us"]  # noqa: E731
    b = np.array([value(r[1], tot) for r in rows]) if before else None
    a = np.array([value(r[2], tot) for r in rows])

    def bound_colors(side):
        return [BOUND_COLORS.get(r[side]["dpu"]["bound"], "#888888") if r[side] else "#888888" for r in rows]

    w = fig_width(len(rows), per_row=0.16)
    fig, (ax, au) = plt.subplots(2, 1, figsize=(w, 6.6), sharex=True, height_ratios=[3, 1], layout="constrained")
    ax.bar(x, np.nan_to_num(a), width=0.42 if before else 0.7, color=bound_colors(2), linewidth=0, zorder=3)
    if before:
        ax.bar(x, np.nan_to_num(b), width=0.84, color=bound_colors(1), alpha=0.3, linewidth=0, zorder=2)
    vals = list(a) + (list(b) if before else [])
    log = set_value_scale(ax, vals, unit="")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylabel("estimated time (µs)" + (" (log)" if log else ""))

    # Rows the model says do not fit on the DPU (they would run on the CPU): a cross above the bar.
    misfit = [i for i, r in enumerate(rows) if r[2] is not None and not r[2]["dpu"]["fits"]]
    if misfit:
        ax.plot(misfit, [a[i] * (1.6 if log else 1.05) for i in misfit], "x", color="black", markersize=6, zorder=6)
    misfit_b = [i for i, r in enumerate(rows) if before and r[1] is not None and not r[1]["dpu"]["fits"]]
    if misfit_b:
        ax.plot(misfit_b, [b[i] * (1.6 if log else 1.03) for i in misfit_b], "x", color="#888888", markersize=6,
                zorder=6)

    lb, la = state_labels(before, after)

    def total(rep):
        t = rep["totals"]
        return f"{t['dpu_us']:.4g} µs (compute {t['dpu_compute_us']:.4g}, memory {t['dpu_memory_us']:.4g})"
    handles = [Patch(color=BOUND_COLORS["compute"], label="compute-bound"),
               Patch(color=BOUND_COLORS["memory"], label="memory-bound")]
    if any(r[s] and r[s]["dpu"]["bound"] == "none" for r in rows for s in (1, 2)):
        handles.append(Patch(color=BOUND_COLORS["none"], label="bound: none"))
    if before:
        handles.append(Patch(facecolor="white", edgecolor="#555555", label=f"{lb}, wide pale bars: {total(before)}"))
        handles.append(Patch(facecolor="#555555", label=f"{la}, narrow solid bars: {total(after)}"))
    else:
        handles.append(Patch(facecolor="#555555", label=f"{la}: {total(after)}"))
    if misfit:
        handles.append(Line2D([], [], linestyle="none", marker="x", color="black",
                              label=f"{la} does not fit ({len(misfit)}): " + why(rows, misfit, 2)))
    if misfit_b:
        handles.append(Line2D([], [], linestyle="none", marker="x", color="#888888",
                              label=f"{lb} does not fit ({len(misfit_b)}): " + why(rows, misfit_b, 1)))
    d = after["dpu"]
    legend_above(ax, handles, f"DPU {d['name']} (PP {d['pp']:g}, ICP {d['icp']:g}, OCP {d['ocp']:g}), "
                 f"{d['clock_mhz']:g} MHz, DDR {d['ddr_gbytes_per_s']:g} GB/s, {d['overhead_us']:g} µs overhead "
                 f"per layer; {len(rows)} rows on a DPU engine", w)

    # Utilization of the MAC array: why narrow pruned widths do not save DPU time one for one.
    ut = lambda x: x["dpu"]["utilization"]  # noqa: E731
    uh = []
    if before:
        au.plot(x, [value(r[1], ut) for r in rows], linestyle="none", marker="o", markersize=3.5,
                markerfacecolor="white", markeredgecolor="#777777")
        uh.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="#777777",
                         label=lb))
    au.plot(x, [value(r[2], ut) for r in rows], linestyle="none", marker="o", markersize=3.5, color=AFTER_COLOR)
    uh.append(Line2D([], [], linestyle="none", marker="o", color=AFTER_COLOR, label=la))
    au.set_ylim(-0.03, 1.05)
    au.set_ylabel("utilization")
    au.grid(axis="y", alpha=0.3)
    legend_above(au, uh, "modelled utilization of the DPU engine (0 to 1; low where widths leave the array "
                 "partly idle)", w)
    label_rows(au, [r[0] for r in rows], w)

    fig.suptitle(heading(title, "DPU time per layer: estimate (model), not measured"))
    return fig, None


def why(rows, misfit, side):
    whys = sorted({rows[i][side]["dpu"]["why"] for i in misfit if rows[i][side]["dpu"]["why"]})
    s = "; ".join(whys[:2]) + ("; ..." if len(whys) > 2 else "")
    return s[:80] if s else "see report"


def plot_layers_memory(before, after, title):
    all_rows = aligned_rows(before, after)
    wrows = [r for r in all_rows
             if value(r[1], lambda x: x["weight_bytes_int8"]) > 0 or value(r[2], lambda x: x["weight_bytes_int8"]) > 0]
    lb, la = state_labels(before, after)
    ww = fig_width(len(wrows), per_row=0.16)
    wa = fig_width(len(all_rows), per_row=0.09)
    w = max(ww, wa)
    # Two panels with their own x: weights exist on a few rows, activations on every row.
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(w, 9.5), layout="constrained")

    if wrows:
        x = np.arange(len(wrows))
        wb = lambda x: x["weight_bytes_int8"]  # noqa: E731
        b = np.array([value(r[1], wb) for r in wrows]) if before else None
        a = np.array([value(r[2], wb) for r in wrows])
        lab_a = f"{la}: {si(after['totals']['weight_bytes_int8'], 'B')} total"
        lab_b = f"{lb}: {si(before['totals']['weight_bytes_int8'], 'B')} total" if before else None
        handles = overlay_bars(ax1, x, b, a, labels=(lab_b, lab_a))
        log = set_value_scale(ax1, list(a) + (list(b) if before else []), unit="B")
        label_rows(ax1, [r[0] for r in wrows], w)
        ax1.set_ylabel("int8 weight bytes" + (" (log)" if log else ""))
        legend_above(ax1, handles, f"int8 weights per layer ({len(wrows)} rows with weights)", w)

    x = np.arange(len(all_rows))
    ao = lambda x: x["activation_out_bytes_fp32"]  # noqa: E731
    lv = lambda x: x["live_bytes_fp32"]  # noqa: E731
    handles = []
    vals = []
    if before:
        b = np.array([value(r[1], ao) for r in all_rows])
        ax2.bar(x, np.nan_to_num(b), width=0.9, color=BEFORE_COLOR, linewidth=0, zorder=2)
        bl = np.array([value(r[1], lv) for r in all_rows])
        ax2.plot(x, bl, color="#555555", linestyle="--", linewidth=1.3, zorder=4)
        handles += [Patch(color=BEFORE_COLOR, label=f"{lb}: activation out (fp32)"),
                    Line2D([], [], color="#555555", linestyle="--",
                           label=f"{lb}: live bytes, peak {si(before['totals']['peak_activation_bytes_fp32'], 'B')}")]
        vals += list(b) + list(bl)
    a = np.array([value(r[2], ao) for r in all_rows])
    ax2.bar(x, np.nan_to_num(a), width=0.5 if before else 0.8, color=AFTER_COLOR, alpha=0.8, linewidth=0, zorder=3)
    al = np.array([value(r[2], lv) for r in all_rows])
    ax2.plot(x, al, color="#0b2a4f" if before else "#d1495b", linewidth=1.6, zorder=5)
    handles += [Patch(color=AFTER_COLOR, alpha=0.8, label=f"{la}: activation out (fp32)"),
                Line2D([], [], color="#0b2a4f" if before else "#d1495b",
                       label=f"{la}: live bytes, peak {si(after['totals']['peak_activation_bytes_fp32'], 'B')}")]
    vals += list(a) + list(al)
    log = set_value_scale(ax2, vals, unit="B")
    label_rows(ax2, [r[0] for r in all_rows], w)
    ax2.set_ylabel("bytes per batch" + (" (log)" if log else ""))
    legend_above(ax2, handles, f"activations, all {len(all_rows)} rows: each row's output (fp32), and the bytes "
                 "live while it runs", w)
    fig.suptitle(heading(title, "memory per layer"))
    return fig, None


def plot_bn_scales(exp, title):
    """One panel per pruned layer; the rounds overlaid as step histograms (early rounds light,
    late rounds dark), each round's threshold a dashed line in its colour."""
    rounds = exp["rounds"] if exp else []
    layers = {}  # layer id -> {"name", "rounds": [(round index, scores, threshold, before, after)]}
    for k, rr in enumerate(rounds):
        for L in rr["layers"]:
            if L.get("scores"):
                e = layers.setdefault(L["layer"], {"name": L["name"], "rounds": []})
                e["rounds"].append((k, np.asarray(L["scores"]), L["threshold"], L["channels_before"],
                                    L["channels_after"]))
    if not layers:
        return None, "no channel scores in the experiment (files before scores were written)"
    ids = sorted(layers)
    allpos = np.concatenate([s[s > 0] for i in ids for _, s, _, _, _ in layers[i]["rounds"]] or [np.zeros(0)])
    thr = [t for i in ids for _, _, t, _, _ in layers[i]["rounds"] if t is not None and t > 0]
    log = allpos.size > 1 and allpos.max() / allpos.min() > 100
    n = len(ids)
    ncols = min(5, n) if n <= 20 else 6
    nrows = math.ceil(n / ncols)
    fig = plt.figure(figsize=(2.9 * ncols + 0.4, 2.15 * nrows + 1.4), layout="constrained")
    # A strip on top for the rounds' legend (matplotlib 3.6 has no legend "outside" the axes).
    top, body = fig.subfigures(2, 1, height_ratios=[0.5, 2.15 * nrows])
    axes = body.subplots(nrows, ncols, squeeze=False)
    cmap = plt.get_cmap("viridis_r")
    nr = len(rounds)
    color = lambda k: cmap(0.12 + 0.8 * k / max(1, nr - 1))  # noqa: E731
    for ax, i in zip(axes.flat, ids):
        e = layers[i]
        scores = np.concatenate([s for _, s, _, _, _ in e["rounds"]])
        # ~2 sqrt(channels) bins: 64 channels get 16, 4096 get 40; fewer would hide the shape.
        bins = int(min(40, max(10, 2 * math.sqrt(max(len(s) for _, s, _, _, _ in e["rounds"])))))
        pos = scores[scores > 0]
        if log and pos.size:
            lo, hi = pos.min(), pos.max()
            lo = min(lo, min(thr, default=lo))
            hi = max(hi, max(thr, default=hi)) if thr else hi
            edges = np.geomspace(lo / 1.05, hi * 1.05, bins + 1)
        else:
            lo, hi = (scores.min(), scores.max()) if scores.size else (0, 1)
            if hi <= lo:
                hi = lo + 1
            edges = np.linspace(lo, hi, bins + 1)
        nonpos = 0
        for k, s, t, cb, ca in e["rounds"]:
            if log:
                nonpos += int((s <= 0).sum())
                s = s[s > 0]
            ax.hist(s, bins=edges, histtype="step", color=color(k), linewidth=1.2)
            if t is not None and (t > 0 or not log) and edges[0] <= t <= edges[-1] * 1.5:
                ax.axvline(t, color=color(k), linestyle="--", linewidth=0.9)
        if log:
            ax.set_xscale("log")
            ax.set_xlim(edges[0], edges[-1])
        # The widths the run kept: an undone round's cut did not stay.
        kept = [r for r in e["rounds"] if not rounds[r[0]]["undone"]]
        after = kept[-1][4] if kept else e["rounds"][0][3]
        ax.set_title(f"{e['name']}: {e['rounds'][0][3]} → {after} ch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # channel counts
        if nonpos:
            ax.text(0.02, 0.95, f"{nonpos} ≤ 0 not shown", transform=ax.transAxes, fontsize=6.5, va="top")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("channels", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("score" + (" (log)" if log else ""), fontsize=8)
    used = sorted({k for i in ids for k, _, _, _, _ in layers[i]["rounds"]})
    handles = [Line2D([], [], color=color(k), label=f"round {k + 1}" + (" (undone)" if rounds[k]["undone"] else ""))
               for k in used]
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=0.9, label="threshold (round's colour)"))
    top.legend(handles=handles, loc="center", ncol=min(len(handles), 11), fontsize=7.5, frameon=False)
    fig.suptitle(heading(title or exp["model"], "channel scores of each pruned layer over the rounds "
                 "(scores of the channels present before the round)"))
    return fig, None


def plot_rounds_accuracy(exp, title):
    if not exp:
        return None, "needs --experiment"
    rounds = exp["rounds"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), layout="constrained", sharey=True)
    pb, mb = exp["params_before"], exp["macs_before"]
    for ax, key, total, what in ((axes[0], "params_removed", pb, "parameters"),
                                 (axes[1], "macs_removed", mb, "multiply-adds")):
        kept = [r for r in rounds if not r["undone"]]
        xs = [100.0] + [100 * (1 - r[key]) for r in kept]
        ys = [100 * exp["baseline_accuracy"]] + [100 * r["accuracy_finetuned"] for r in kept]
        ax.plot(xs, ys, "-o", color=AFTER_COLOR, markersize=5, label="SGP round, after fine-tuning", zorder=4)
        ax.annotate("baseline", (xs[0], ys[0]), textcoords="offset points", xytext=(-3, 7), ha="left", fontsize=7)
        px = [100 * (1 - r[key]) for r in rounds]
        ax.plot(px, [100 * r["accuracy_pruned"] for r in rounds], "v", color="#d1495b", markersize=5,
                label="after surgery, before fine-tuning", zorder=3)
        # Thin verticals tie each round's surgery drop to its recovery.
        for r in rounds:
            xx = 100 * (1 - r[key])
            ax.plot([xx, xx], [100 * r["accuracy_pruned"], 100 * r["accuracy_finetuned"]], color="#cccccc",
                    linewidth=0.8, zorder=1)
        rec = [r for r in rounds if r["accuracy_recalibrated"] is not None]
        if rec:
            ax.plot([100 * (1 - r[key]) for r in rec], [100 * r["accuracy_recalibrated"] for r in rec], "^",
                    color=INT8_COLOR, markersize=5, label="after BN recalibration", zorder=3)
        undone = [r for r in rounds if r["undone"]]
        if undone:
            ax.plot([100 * (1 - r[key]) for r in undone], [100 * r["accuracy_finetuned"] for r in undone], "o",
                    markerfacecolor="white", markeredgecolor=AFTER_COLOR, markersize=6,
                    label="round undone (over the accuracy budget)", zorder=4)
        fin = exp["params_after"] / pb if key == "params_removed" else exp["macs_after"] / mb
        ax.plot([100 * fin], [100 * exp["pruned_accuracy"]], "*", color="black", markersize=11,
                label=f"SGP final (after last fine-tuning): {100 * exp['pruned_accuracy']:.2f} % at {100 * fin:.3g} % "
                      "remaining", zorder=5)
        allx = xs + px + [100 * fin]
        if exp["ns"]:
            ns = exp["ns"]
            nf = ns["params_after"] / pb if key == "params_removed" else ns["macs_after"] / mb
            ax.plot([100 * nf], [100 * ns["accuracy"]], "D", color="#6a3d9a", markersize=7,
                    label=f"Network Slimming, same budget: {100 * ns['accuracy']:.2f} % at {100 * nf:.3g} % remaining",
                    zorder=5)
            allx.append(100 * nf)
        log = spans_decades(allx, decades=1)  # later rounds crowd near 0 on a linear axis
        label_rounds(ax, [100 * (1 - r[key]) for r in rounds], [100 * r["accuracy_finetuned"] for r in rounds],
                     log, max(allx), min(allx))
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} %"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(max(allx) * 1.3, min(allx) / 1.6)
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} %"))
            ax.set_xlim(max(allx) + 3, max(0, min(allx) - 5))
        ax.set_xlabel(f"{what} remaining, of {si(total)} (more pruning →)")
        ax.grid(alpha=0.3)
        legend_above(ax, ax.get_legend_handles_labels()[0], None, 6.0 + 1.4)
    top = max([exp["baseline_accuracy"], exp["pruned_accuracy"]] + [r["accuracy_finetuned"] for r in rounds])
    axes[0].set_ylim(top=100 * top + 4)  # room for the point labels above the curve
    axes[0].set_ylabel(f"{exp['accuracy_kind']} accuracy (%)")
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    fig.suptitle(heading(title or exp["model"], f"accuracy over {len(rounds)} pruning rounds "
                 "(numbers: round; point 0: baseline)"))
    return fig, None


def label_rounds(ax, xs, ys, log, hi, lo):
    """Round numbers beside the fine-tuned points; rounds closer than ~3 % of the axis to the
    first of their run share one label ("8-10") instead of printing over each other."""
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    span = (f(hi) - f(lo)) or 1.0
    groups = []
    for k, x in enumerate(xs):
        if groups and abs(f(x) - f(xs[groups[-1][0]])) / span < 0.03:
            groups[-1].append(k)
        else:
            groups.append([k])
    for g in groups:
        text = str(g[0] + 1) if len(g) == 1 else f"{g[0] + 1}–{g[-1] + 1}"
        ax.annotate(text, (xs[g[-1]], ys[g[-1]]), textcoords="offset points", xytext=(4, 4), fontsize=6.5,
                    color="#333333")


def plot_layers_sqnr(before, after, title):
    sq = lambda x: x["sqnr_db"]  # noqa: E731
    rows = [r for r in aligned_rows(before, after) if math.isfinite(value(r[1], sq)) or math.isfinite(value(r[2], sq))]
    if not rows:
        return None, "no row has sqnr_db (no int8 run in the reports)"
    x = np.arange(len(rows))
    w = fig_width(len(rows), per_row=0.16)
    fig, ax = plt.subplots(figsize=(w, 4.8), layout="constrained")
    lb, la = state_labels(before, after)
    handles = []
    if before:
        b = np.array([value(r[1], sq) for r in rows])
        ax.plot(x, b, linestyle="none", marker="o", markersize=5, markerfacecolor="white", markeredgecolor="#555555")
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="#555555",
                              label=f"{lb}: median {np.nanmedian(b):.1f} dB" if np.isfinite(b).any() else lb))
    a = np.array([value(r[2], sq) for r in rows])
    if before:  # a thin line from each op's before to its after value: the change per op
        both = np.isfinite(a) & np.isfinite(b)
        ax.vlines(x[both], np.minimum(a, b)[both], np.maximum(a, b)[both], color="#bbbbbb", linewidth=0.8, zorder=1)
    ax.plot(x, a, linestyle="none", marker="o", markersize=4.5, color=AFTER_COLOR)
    handles.append(Line2D([], [], linestyle="none", marker="o", color=AFTER_COLOR,
                          label=f"{la}: median {np.nanmedian(a):.1f} dB" if np.isfinite(a).any() else la))
    label_rows(ax, [r[0] for r in rows], w)
    ax.set_ylabel("SQNR (dB), higher is better")
    ax.grid(axis="y", alpha=0.3)
    legend_above(ax, handles, f"{len(rows)} rows with an int8 result (signal power over int8-minus-float error "
                 "power, in dB)", w)
    fig.suptitle(heading(title, "int8 vs float SQNR per int8 op"))
    return fig, None


# ---------------------------------------------------------------------------------------------

def save(fig, out, stem):
    png, svg = os.path.join(out, stem + ".png"), os.path.join(out, stem + ".svg")
    fig.savefig(png, dpi=DPI)
    fig.savefig(svg, metadata={"Date": None})
    plt.close(fig)
    return [png, svg]


def run(report, before_path, experiment_path, out, title):
    """Reads every input first (all errors before any file is written), then draws and saves."""
    after = read_report(report)
    before = read_report(before_path) if before_path else None
    exp = read_experiment(experiment_path) if experiment_path else None
    if title is None:
        title = after["network"]
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create the output directory: {e.strerror}")
    plots = [("layers_macs", lambda: plot_layers_macs(before, after, title)),
             ("layers_cpu_time", lambda: plot_layers_cpu_time(before, after, title)),
             ("layers_dpu_time", lambda: plot_layers_dpu_time(before, after, title)),
             ("layers_memory", lambda: plot_layers_memory(before, after, title)),
             ("bn_scales", lambda: plot_bn_scales(exp, title) if exp else (None, "needs --experiment")),
             ("rounds_accuracy", lambda: plot_rounds_accuracy(exp, title)),
             ("layers_sqnr", lambda: plot_layers_sqnr(before, after, title))]
    written = []
    for stem, draw in plots:
        fig, note = draw()
        if fig is None:
            print(f"skipped {stem}: {note}")
            continue
        files = save(fig, out, stem)
        for f in files:
            print(f)
        written += files
    return written


# ---------------------------------------------------------------------------------------------
# Self-test: synthetic inputs that follow the schema exactly, every plot drawn and checked.

def synth_report(state, arch, widths, seed):
    """A report for `arch` (list of (path, kind, param)) at channel widths `widths` (conv path ->
    active width); numbers follow simple cost models so the plots look like real ones."""
    rng = np.random.default_rng(seed)
    dpu = {"name": "B4096", "pp": 8, "icp": 16, "ocp": 16, "clock_mhz": 300, "ddr_gbytes_per_s": 12.8,
           "overhead_us": 2.0}
    layers = []
    c, h, wd = 3, 32, 32
    declared_c = 3
    skip_bytes = 0
    for i, (path, kind, p) in enumerate(arch):
        cin, hin, win, dcin = c, h, wd, declared_c
        params = macs = 0
        fused = False
        engine, bound = "none", "none"
        sqnr = i8 = None
        if kind == "conv2d":
            declared_c, stride = p
            c = widths.get(path, declared_c)
            h, wd = h // stride, wd // stride
            params = cin * c * 9 + c
            macs = cin * c * 9 * h * wd
            engine = "conv"
        elif kind == "linear":
            declared_c = p
            c = p if i == len(arch) - 1 else widths.get(path, p)
            params = cin * hin * win * c + c
            macs = cin * hin * win * c
            h = wd = 1
            engine = "conv"
        elif kind in ("batch_norm", "relu"):
            fused = True
            params = 2 * c if kind == "batch_norm" else 0
        elif kind == "max_pool":
            h, wd = h // 2, wd // 2
            engine = "pool"
        elif kind in ("add", "add_relu"):
            engine = "eltwise"
        elif kind == "flatten":
            c, h, wd = c * h * wd, 1, 1
        a_in = 4 * cin * hin * win
        a_out = 4 * c * h * wd
        if kind == "conv2d" and path.endswith("conv1"):
            skip_bytes = a_in  # the residual's input stays live across its block
        if kind in ("add", "add_relu"):
            skip_bytes = 0
        cpu = 0.0 if fused else (macs / 4e9 * 1e3 + a_out / 2e10 * 1e3 + 0.002) * rng.uniform(0.85, 1.2)
        if macs:
            i8 = cpu * rng.uniform(0.3, 0.6)
            sqnr = float(rng.uniform(24, 42))
        compute = memory = util = 0.0
        if engine != "none":
            if engine == "conv":
                padded = math.ceil(cin / 16) * 16 * math.ceil(c / 16) * 16 * math.ceil(h * wd / 8) * 8
                util = (cin * c * h * wd) / padded
                compute = macs / (dpu["pp"] * dpu["icp"] * dpu["ocp"]) / util / dpu["clock_mhz"]
            else:
                compute = c * h * wd / (dpu["pp"] * dpu["icp"]) / dpu["clock_mhz"]
            memory = (params + a_in / 4 + a_out / 4) / (dpu["ddr_gbytes_per_s"] * 1e3)
            bound = "compute" if compute >= memory else "memory"
        fits = not (kind == "linear" and params > 2_000_000)
        total = max(compute, memory) + dpu["overhead_us"] if engine != "none" else 0.0
        layers.append({
            "id": i, "path": path, "kind": kind, "in": [cin, hin, win], "out": [c, h, wd],
            "declared_in": dcin, "declared_out": declared_c, "parameters": params, "macs": macs,
            "gop": 2 * macs / 1e9, "weight_bytes_fp32": 4 * params, "weight_bytes_int8": params,
            "activation_in_bytes_fp32": a_in, "activation_out_bytes_fp32": a_out,
            "live_bytes_fp32": a_in + a_out + skip_bytes, "fused": fused,
            "cpu_fp32_ms": cpu, "cpu_fp32_share": 0.0, "cpu_int8_ms": i8, "sqnr_db": sqnr,
            "dpu": {"engine": engine, "total_us": total, "compute_us": compute, "memory_us": memory,
                    "bound": bound, "utilization": util, "fits": fits,
                    "why": "" if fits else "weights exceed the on-chip weight bank"}})
    fp32 = sum(L["cpu_fp32_ms"] for L in layers)
    for L in layers:
        L["cpu_fp32_share"] = L["cpu_fp32_ms"] / fp32
    tot = lambda k: sum(L[k] for L in layers)  # noqa: E731
    return {"schema": SCHEMA, "network": "synthetic", "state": state, "weights": f"synthetic-{state}.npz",
            "cpu": "AMD EPYC 9B45", "threads": 1, "batch": 1, "repeats": 31, "dpu": dpu,
            "totals": {"parameters": tot("parameters"), "macs": tot("macs"), "gop": 2 * tot("macs") / 1e9,
                       "weight_bytes_fp32": tot("weight_bytes_fp32"), "weight_bytes_int8": tot("weight_bytes_int8"),
                       "peak_activation_bytes_fp32": max(L["live_bytes_fp32"] for L in layers),
                       "peak_activation_bytes_int8": max(L["live_bytes_fp32"] for L in layers) // 4,
                       "cpu_fp32_ms": fp32 * 1.04, "cpu_fp32_ms_layers": fp32,
                       "cpu_int8_ms": sum(L["cpu_int8_ms"] or 0 for L in layers) * 1.05,
                       "cpu_int8_ms_layers": sum(L["cpu_int8_ms"] or 0 for L in layers),
                       "dpu_us": sum(L["dpu"]["total_us"] for L in layers),
                       "dpu_compute_us": sum(L["dpu"]["compute_us"] for L in layers),
                       "dpu_memory_us": sum(L["dpu"]["memory_us"] for L in layers)},
            "layers": layers}


def vgg_arch():
    """VGG13-BN-like: 10 convs with BN and ReLU, 5 pools, classifier: 40 rows."""
    arch, i = [], 0
    for stage, ch in enumerate((64, 128, 256, 512, 512)):
        for _ in range(2):
            arch += [(str(i), "conv2d", (ch, 1)), (str(i + 1), "batch_norm", None), (str(i + 2), "relu", None)]
            i += 3
        arch.append((str(i), "max_pool", None))
        i += 1
    arch += [(str(i), "flatten", None), (str(i + 1), "linear", 4096), (str(i + 2), "relu", None),
             (str(i + 3), "dropout", None), (str(i + 4), "linear", 10)]
    return arch


def resnet_arch(blocks=16):
    """ResNet-like with named paths, 3 stages x `blocks` blocks x 6 rows: ~300 rows."""
    arch = [("conv1", "conv2d", (16, 1)), ("bn1", "batch_norm", None), ("relu", "relu", None)]
    for s, ch in enumerate((16, 32, 64)):
        for b in range(blocks):
            p = f"layer{s + 1}.{b}."
            stride = 2 if (s > 0 and b == 0) else 1
            arch += [(p + "conv1", "conv2d", (ch, stride)), (p + "bn1", "batch_norm", None),
                     (p + "relu1", "relu", None), (p + "conv2", "conv2d", (ch, 1)),
                     (p + "bn2", "batch_norm", None), (p + "add_relu", "add_relu", None)]
    arch += [("avgpool", "max_pool", None), ("flatten", "flatten", None), ("linear", "linear", 10)]
    return arch


def pruned_widths(arch, seed, keep=(0.15, 0.7)):
    rng = np.random.default_rng(seed)
    out = {}
    for path, kind, p in arch:
        if kind == "conv2d":
            out[path] = max(8, int(round(p[0] * rng.uniform(*keep) / 8)) * 8)
        elif kind == "linear":
            out[path] = max(8, int(round(p * rng.uniform(0.002, 0.02) / 8)) * 8)
    return out


def synth_experiment(with_scores=True, n_layers=15, n_rounds=10, seed=5):
    """10 rounds x 15 layers of scores shrinking toward 0 as sparsity training goes on."""
    rng = np.random.default_rng(seed)
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512, 4096, 4096][:n_layers]
    paths = [str(3 * k) for k in range(n_layers)]
    cur = list(widths)
    removed_p = removed_m = 0.0
    rounds = []
    for r in range(n_rounds):
        layers = []
        thr = float(10 ** (-3 + 2.0 * r / n_rounds))
        for k, (w, p) in enumerate(zip(widths, paths)):
            before = cur[k]
            scores = rng.lognormal(mean=math.log(0.02 * (1 + k % 4)), sigma=1.6, size=before)
            if k == 3 and r == 0:
                scores[:3] = 0.0  # exact zeros, as after strong L1: not drawable on a log axis
            after = max(8, int((scores >= thr).sum()) // 8 * 8)
            L = {"layer": 3 * k, "name": f"{p} conv2d", "path": p, "channels_before": before,
                 "channels_after": after}
            if with_scores and not (r == 0 and k == 5):  # one entry without scores, like old files
                L["scores"] = [round(float(s), 6) for s in scores]
                L["threshold"] = thr
            layers.append(L)
            cur[k] = after
        removed_p = 1 - (1 - removed_p) * rng.uniform(0.45, 0.75)
        removed_m = 1 - (1 - removed_m) * rng.uniform(0.5, 0.8)
        rr = {"accuracy_finetuned": 0.925 - 0.004 * r - 0.02 * (r > 7), "accuracy_pruned": float(rng.uniform(0.1, 0.6)),
              "params_removed": removed_p, "macs_removed": removed_m, "pruning": {"layers": layers}}
        if r % 3 != 2:
            rr["accuracy_recalibrated"] = rr["accuracy_pruned"] + 0.25
        rounds.append(rr)
    pb, mb = 28346698, 313733120
    return {"model": "vgg13bn-source", "baseline_accuracy": 0.927, "pruned_accuracy": 0.905, "params_before": pb,
            "macs_before": mb, "params_after": int(pb * (1 - removed_p)), "macs_after": int(mb * (1 - removed_m)),
            "round_reports": rounds,
            "network_slimming": {"accuracy": 0.68, "params_after": int(pb * (1 - removed_p) * 1.05),
                                 "macs_after": int(mb * (1 - removed_m) * 0.8)}}


def selftest(out):
    out = out or tempfile.mkdtemp(prefix="plot_report_selftest_")
    tmp = tempfile.mkdtemp(prefix="plot_report_inputs_")
    failures = []

    def write(name, data, raw=None):
        p = os.path.join(tmp, name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(raw if raw is not None else json.dumps(data))
        return p

    def check(files, expect):
        for stem in expect:
            for ext in ("png", "svg"):
                f = os.path.join(os.path.dirname(files[0]) if files else "", f"{stem}.{ext}")
                if f not in files or not os.path.isfile(f) or os.path.getsize(f) == 0:
                    failures.append(f"{f}: missing or empty")

    all_stems = ["layers_macs", "layers_cpu_time", "layers_dpu_time", "layers_memory", "bn_scales",
                 "rounds_accuracy", "layers_sqnr"]
    va = vgg_arch()
    vb, vp = write("vgg_before.json", synth_report("declared", va, {}, 1)), \
        write("vgg_after.json", synth_report("pruned", va, pruned_widths(va, 2), 3))
    ex = write("experiment.json", synth_experiment())
    files = run(vp, vb, ex, os.path.join(out, "vgg"), "synthetic VGG13-BN")
    check(files, all_stems)

    ra = resnet_arch()
    rb, rp = write("resnet_before.json", synth_report("declared", ra, {}, 4)), \
        write("resnet_after.json", synth_report("pruned", ra, pruned_widths(ra, 5, keep=(0.3, 0.9)), 6))
    files = run(rp, rb, None, os.path.join(out, "resnet"), "synthetic ResNet, 300 rows")
    check(files, [s for s in all_stems if s not in ("bn_scales", "rounds_accuracy")])

    # After only, and an experiment without scores: bn_scales skipped, the rest drawn.
    ex2 = write("experiment_noscores.json", synth_experiment(with_scores=False, n_rounds=3))
    files = run(vp, None, ex2, os.path.join(out, "after_only"), None)
    check(files, [s for s in all_stems if s != "bn_scales"])
    if os.path.exists(os.path.join(out, "after_only", "bn_scales.png")):
        failures.append("bn_scales drawn without scores")

    # Reruns give identical SVGs.
    with contextlib.redirect_stdout(io.StringIO()):  # the rerun's file list is noise
        again = run(vp, vb, ex, os.path.join(tmp, "rerun"), "synthetic VGG13-BN")
    for f in again:
        if f.endswith(".svg"):
            g = os.path.join(out, "vgg", os.path.basename(f))
            if open(f, "rb").read() != open(g, "rb").read():
                failures.append(f"{f}: differs from {g} on rerun")

    # Bad inputs: exit 2, one line naming the file, no traceback.
    broken = synth_report("pruned", va, {}, 7)
    del broken["layers"][4]["dpu"]["bound"]
    wrong = synth_report("pruned", va, {}, 7)
    wrong["totals"]["macs"] = "many"
    bad_exp = synth_experiment(n_rounds=2)
    bad_exp["round_reports"][1]["pruning"]["layers"][2]["scores"][7] = "0.5"
    no_pruning = synth_experiment(n_rounds=2)
    del no_pruning["round_reports"][0]["pruning"]
    nope = os.path.join(tmp, "nope.json")
    bad = [("missing report", ["--report", nope], nope),
           ("missing --before", ["--report", vp, "--before", nope], nope),
           ("bad JSON", ["--report", write("bad.json", None, raw='{"schema": "sgp-report/1", "layers": [}')], None),
           ("missing key", ["--report", write("missing.json", broken)], None),
           ("wrong type", ["--report", write("wrong.json", wrong)], None),
           ("wrong schema", ["--report", write("schema.json", {"schema": "sgp-report/2"})], None),
           ("experiment, bad score", ["--report", vp, "--experiment", write("bad_exp.json", bad_exp)], None),
           ("experiment, no pruning", ["--report", vp, "--experiment", write("no_pruning.json", no_pruning)], None)]
    for what, args, path in bad:
        path = path or args[-1]
        p = subprocess.run([sys.executable, os.path.abspath(__file__), *args, "--out", os.path.join(tmp, "bad")],
                           capture_output=True, text=True)
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or path not in lines[0] or "Traceback" in p.stderr:
            failures.append(f"{what}: exit {p.returncode}, stderr {p.stderr.strip()!r}")
        else:
            print(f"ok, {what}: {lines[0]}")
    shutil.rmtree(tmp, ignore_errors=True)

    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    print(f"self-test {'FAILED' if failures else 'passed'}; plots in {out}")
    return 1 if failures else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] + " (see the module docstring for the plots)")
    ap.add_argument("--report", help="the report to plot (after pruning), schema sgp-report/1")
    ap.add_argument("--before", help="the report before pruning (declared widths), drawn beside it")
    ap.add_argument("--experiment", help="sgp_experiment's result JSON: rounds, scores, Network Slimming")
    ap.add_argument("--out", help="output directory (created)")
    ap.add_argument("--title", help="title prefix (default: the report's network name)")
    ap.add_argument("--selftest", action="store_true", help="draw every plot from synthetic inputs and check them")
    a = ap.parse_args(argv)
    if a.selftest:
        return selftest(a.out)
    if not a.report or not a.out:
        ap.error("--report and --out are required (or --selftest)")
    try:
        run(a.report, a.before, a.experiment, a.out, a.title)
    except InputError as e:
        print(f"plot_report.py: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a case the checks missed: still one line, naming the inputs
        files = ", ".join(f for f in (a.report, a.before, a.experiment) if f)
        print(f"plot_report.py: {files}: cannot plot: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
