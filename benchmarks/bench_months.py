"""4. End to end over 12 months: rows processed and seconds per strategy.

``make_monthly_drift(12 months, 100 features)``. Every strategy has its own
classifier; the stream is fed month by month with ``partial_fit_month``
(the first call is the base fit), and at every month the strategies take
their turn one after the other (the order rotated every month and round),
so each month's timings are side by side. Several rounds. Reported:
training rows processed (``cost_``), seconds (sum over the months, wall and
process CPU), relative to naive and to joint, and the median over the
fine-tune months (2-12) of each month's time relative to naive's in the
same month. Target: replay with ``epoch_size`` fixed (= rows of a month)
costs per month within 10% of naive.
"""

import time

import numpy as np

from sklearn_cf import ContinualClassifier
from sklearn_cf.datasets import make_monthly_drift

from _timing import print_table, sync

NAME = "months"
TARGET = 0.10


def run(quick=False, device="cpu", log=print):
    n_months = 12
    n_per_month = 2_000 if quick else 10_000
    d = 100
    epochs = 2 if quick else 3
    repeats = 2 if quick else 3
    X, y, months = make_monthly_drift(n_months=n_months, n_samples_per_month=n_per_month,
                                      n_features=d, random_state=0)
    stream = [(X[months == m], y[months == m]) for m in np.unique(months)]
    common = dict(max_epochs=epochs, batch_size=256, reg_lambda=100.0, rehearsal_ratio=0.5,
                  random_state=0, device=device, classes=np.unique(y))
    configs = {
        "naive": (ContinualClassifier, {"strategy": "naive"}),
        "replay": (ContinualClassifier, {"strategy": "replay"}),
        "replay epoch_size": (ContinualClassifier, {"strategy": "replay",
                                                    "epoch_size": n_per_month}),
        "l2": (ContinualClassifier, {"strategy": "l2"}),
        "ewc": (ContinualClassifier, {"strategy": "ewc"}),
        "joint": (ContinualClassifier, {"strategy": "joint"}),
        "ensemble": (ContinualClassifier, {"strategy": "ensemble"}),
        "replay+ewc": (ContinualClassifier, {"strategy": "replay+ewc"}),
    }
    labels = list(configs)
    # Untimed warm-up (lazy initialisation, allocator, first-call costs).
    warm = ContinualClassifier(max_epochs=1, random_state=0, classes=np.unique(y))
    for Xm, ym in stream[:2]:
        warm.partial_fit_month(Xm, ym)

    log(f"[months] {n_months} months x {n_per_month} rows x {d}, {epochs} epochs, "
        f"{repeats} rounds, strategies interleaved month by month")
    # wall[label][round][month], cpu likewise; rows[label][month]
    wall = {k: [] for k in labels}
    cpu = {k: [] for k in labels}
    rows = {}
    turn = 0
    for r in range(repeats):
        clfs = {k: cls(**common, **params) for k, (cls, params) in configs.items()}
        for k in labels:
            wall[k].append([])
            cpu[k].append([])
        for m, (Xm, ym) in enumerate(stream):
            shift = turn % len(labels)
            turn += 1
            for k in labels[shift:] + labels[:shift]:
                sync(device)
                c0, t0 = time.process_time(), time.perf_counter()
                clfs[k].partial_fit_month(Xm, ym)
                sync(device)
                wall[k][-1].append(time.perf_counter() - t0)
                cpu[k][-1].append(time.process_time() - c0)
        for k in labels:
            rows[k] = [c["rows"] for c in clfs[k].cost_]
        log(f"  round {r + 1}/{repeats}: " + ", ".join(
            f"{k} {sum(wall[k][-1]):.1f}s" for k in labels))

    W = {k: np.array(v) for k, v in wall.items()}  # (rounds, months)
    C = {k: np.array(v) for k, v in cpu.items()}
    total_rows = {k: int(sum(v)) for k, v in rows.items()}
    results = {"months": n_months, "rows_per_month": n_per_month, "features": d,
               "epochs": epochs, "repeats": repeats, "strategies": {}}
    table = []
    for k in labels:
        tot = W[k].sum(1)
        tot_cpu = C[k].sum(1)
        # Month-by-month ratios to naive over the fine-tune months, all rounds.
        month_ratio = np.median(W[k][:, 1:] / W["naive"][:, 1:])
        month_ratio_cpu = np.median(C[k][:, 1:] / C["naive"][:, 1:])
        info = {
            "rows": total_rows[k],
            "rows_per_month": rows[k],
            "seconds_median": float(np.median(tot)),
            "seconds_best": float(tot.min()),
            "cpu_seconds_median": float(np.median(tot_cpu)),
            "rows_x_naive": total_rows[k] / total_rows["naive"],
            "rows_x_joint": total_rows[k] / total_rows["joint"],
            "seconds_x_naive": float(np.median(tot / W["naive"].sum(1))),
            "cpu_seconds_x_naive": float(np.median(tot_cpu / C["naive"].sum(1))),
            "seconds_x_joint": float(np.median(tot / W["joint"].sum(1))),
            "finetune_month_seconds_median": float(np.median(W[k][:, 1:])),
            "finetune_month_x_naive": float(month_ratio),
            "finetune_month_x_naive_cpu": float(month_ratio_cpu),
            "month_seconds": wall[k],
            "month_cpu_seconds": cpu[k],
        }
        if k.startswith("replay epoch_size"):
            info["target_met"] = info["finetune_month_x_naive"] <= 1 + TARGET
        results["strategies"][k] = info
        table.append([k, info["rows"], info["rows_x_naive"], info["seconds_median"],
                      info["seconds_x_naive"], info["cpu_seconds_x_naive"],
                      info["seconds_x_joint"], info["finetune_month_seconds_median"],
                      info["finetune_month_x_naive"], info["finetune_month_x_naive_cpu"],
                      info.get("target_met", "-")])
    print_table(
        f"4. end to end, {n_months} months x {n_per_month} rows x {d} features, "
        f"{epochs} epochs/month, batch 256 (device={device})",
        ["strategy", "rows", "rows x naive", "s (med)", "s x naive", "CPU s x naive",
         "s x joint", "s/fine-tune month", "month x naive", "month x naive (CPU)",
         f"<= {1 + TARGET:.2f}"],
        table,
        note="totals: sum over the 12 months of partial_fit_month (includes the end-of-month "
             "Fisher/memory work), median over rounds of the per-round ratio; 'month x naive' = "
             "median over fine-tune months and rounds of the same-month ratio.",
    )
    return results
