"""1. One naive fine-tune month of ContinualClassifier vs a hand-written loop.

Same MLP (d=100, hidden 256-256, 2 classes), Adam lr 1e-3, the same rows
as CPU tensors, shuffled every epoch. Two measurements, both alternated:

* whole month (the target's number): ``partial_fit_month`` with E epochs
  (input checks, data plan, epochs, snapshot, bookkeeping) vs E epochs of
  the plain loop; the epochs alone (skorch's ``fit_loop``) are timed too,
  so the month's fixed overhead is reported separately;
* steady state: chunks of training steps of each, interleaved over many
  rounds (robust to bursts of load from other processes).

An extra candidate, ``optimizer__fused=True`` (torch's fused CPU/GPU Adam
kernel), shows what the optimizer option is worth for the classifier.
Target: rows/s ratio >= 0.9.
"""

import copy

import numpy as np
import torch

from _common import BenchClassifier, classifier_stepper, make_rows, new_mlp, plain_epochs, \
    plain_stepper
from _timing import Timer, alternate, interleave, print_table, summary

NAME = "throughput"
TARGET = 0.9


def run(quick=False, device="cpu", log=print):
    n = 20_480 if quick else 102_400
    d = 100
    epochs = 2
    repeats = 5 if quick else 7
    rounds = 20 if quick else 40
    X, y = make_rows(n, d, seed=0)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    X0, y0 = make_rows(2_048, d, seed=1)
    results = {"rows": n, "features": d, "epochs": epochs, "repeats": repeats,
               "rounds": rounds, "cases": {}}
    table = []
    # A GPU wants larger batches (the targets: 1024 and 4096).
    for batch_size in ((1024, 4096) if device.startswith("cuda") else (256, 1024)):
        clfs = {}
        for label, extra in (("classifier", {}), ("classifier fused Adam",
                                                  {"optimizer__fused": True})):
            clf = BenchClassifier(max_epochs=1, finetune_epochs=epochs, batch_size=batch_size,
                                  lr=1e-3, random_state=0, device=device, **extra)
            clfs[label] = clf.fit(X0, y0)  # base month (untimed)
        model = new_mlp(d, seed=0, device=device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def plain():
            out = plain_epochs(model, X_t, y_t, batch_size, epochs, device, optimizer=opt)
            return {**out, "rows": n * epochs}

        def month(label):
            clf = clfs[label]

            def fn():
                with Timer(device) as t:
                    clf.partial_fit_month(X, y)
                cost = clf.cost_[-1]
                return {"seconds": t.seconds, "cpu_seconds": t.cpu_seconds,
                        "rows": cost["rows"], "epoch_seconds": clf.bench_fit_seconds_,
                        "epoch_cpu_seconds": clf.bench_fit_cpu_seconds_,
                        "month_seconds": cost["seconds"],
                        "snapshot_seconds": clf.bench_snapshot_seconds_}

            return fn

        log(f"[throughput] batch {batch_size}: {n} rows x {epochs} epochs, "
            f"{repeats} alternated repeats")
        rec = alternate({"plain": plain, "classifier": month("classifier"),
                         "classifier fused Adam": month("classifier fused Adam")},
                        repeats, warmup=1, log=log)
        steps = max(4, 5120 // batch_size)
        log(f"[throughput] batch {batch_size}: steady state, {rounds} rounds x {steps} steps")
        inter = interleave({
            "plain": plain_stepper(new_mlp(d, seed=0, device=device), X, y, batch_size, device),
            "classifier": classifier_stepper(copy.deepcopy(clfs["classifier"]), X, y),
        }, steps, rounds, device=device)
        rows = n * epochs
        p = summary(rec["plain"])
        c = summary(rec["classifier"])
        cf = summary(rec["classifier fused Adam"])
        ce = summary(rec["classifier"], "epoch_seconds")
        paired_month = [a["seconds"] / b["seconds"]
                        for a, b in zip(rec["plain"], rec["classifier"])]
        fixed = [b["seconds"] - b["epoch_seconds"] for b in rec["classifier"]]
        snap = [b["snapshot_seconds"] for b in rec["classifier"]]
        pw, cw = np.array(inter["wall"]["plain"]), np.array(inter["wall"]["classifier"])
        case = {
            "batch_size": batch_size,
            "plain_rows_per_s": {"best": rows / p["best"], "median": rows / p["median"]},
            "classifier_rows_per_s": {"best": rows / c["best"], "median": rows / c["median"]},
            "ratio_month_best": p["best"] / c["best"],
            "ratio_month_median_paired": float(np.median(paired_month)),
            "ratio_month_cpu_best": summary(rec["plain"], "cpu_seconds")["best"]
            / summary(rec["classifier"], "cpu_seconds")["best"],
            "ratio_epochs_best": p["best"] / ce["best"],
            "ratio_steady_paired_median": float(np.median(pw / cw)),
            "ratio_steady_best": float(pw.min() / cw.min()),
            "fused_adam_speedup_best": c["best"] / cf["best"],
            "fixed_overhead_seconds_median": float(np.median(fixed)),
            "fixed_overhead_share_median": float(np.median(fixed) / c["median"]),
            "snapshot_seconds_median": float(np.median(snap)),
            "raw": rec,
            "steady_state": inter,
        }
        case["target_met"] = case["ratio_month_best"] >= TARGET
        results["cases"][str(batch_size)] = case
        table.append([
            batch_size, case["plain_rows_per_s"]["best"], case["classifier_rows_per_s"]["best"],
            case["ratio_month_best"], case["ratio_month_median_paired"],
            case["ratio_month_cpu_best"], case["ratio_epochs_best"],
            case["ratio_steady_paired_median"], case["fixed_overhead_seconds_median"],
            case["fixed_overhead_share_median"], case["fused_adam_speedup_best"],
            case["target_met"],
        ])
    print_table(
        f"1. naive fine-tune month vs plain loop ({n} rows x {d}, {epochs} epochs, "
        f"device={device})",
        ["batch", "plain rows/s", "clf rows/s", "ratio (best)", "ratio (med, paired)",
         "ratio (CPU)", "epochs-only", "steady state (med)", "fixed s/month", "fixed share",
         "fused Adam x", f">= {TARGET}"],
        table,
        note="ratio = classifier rows/s / plain rows/s for one whole partial_fit_month (best of "
             "the alternated runs; 'med, paired' = median of same-round ratios; 'CPU' from "
             "process CPU seconds); 'epochs-only' leaves the month's fixed overhead out; "
             "'steady state' = interleaved chunks of steps. 'fused Adam x' = classifier speed-up "
             "with optimizer__fused=True.",
    )
    return results
