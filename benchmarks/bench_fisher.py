"""3. fisher_diagonal vs one training epoch, the backward floor, per-sample loops.

20k rows x 100 features, MLP 256-256, 2 classes, a network trained for one
epoch first. Alternated in one process:

* ``fisher_diagonal`` of each kind, at the batch size EWC passes
  (``max(batch_size, 1024)``);
* one training epoch over the same rows (hand-written loop, Adam,
  batch 256);
* the *floor*: one forward and backward pass of the mean loss over the same
  rows at a large batch (4096), i.e. what any exact per-sample Fisher must
  at least cost (it needs every row's forward and a backward signal);
* ``torch.func`` per-sample gradients (``vmap(grad)``, the package's fallback
  route for non-Linear modules), empirical kind, on 2000 rows, extrapolated;
* a naive per-sample loop (one backward per row, squares accumulated),
  timed on a subset of rows and extrapolated linearly to all rows.

Targets: empirical Fisher <= 1.0x one epoch, and <= 1.5x the floor.
"""

import numpy as np
import torch

from sklearn_cf import fisher_diagonal

from _common import make_rows, new_mlp, plain_epochs, plain_forward_backward, sync
from _timing import alternate, print_table, summary

NAME = "fisher"
TARGET_EPOCH = 1.0
TARGET_FLOOR = 1.5


def _per_sample_loop(model, X_t, y_t, device):
    crit = torch.nn.CrossEntropyLoss()
    params = [p for p in model.parameters()]
    sums = [torch.zeros_like(p) for p in params]
    model.eval()
    for i in range(len(y_t)):
        loss = crit(model(X_t[i : i + 1].to(device)), y_t[i : i + 1].to(device))
        grads = torch.autograd.grad(loss, params)
        for s, g in zip(sums, grads):
            s.add_(g.square())
    sync(device)
    return sums


def _func_fisher(model, X_t, y_t, batch_size):
    from sklearn_cf import _fisher as F

    trainable = list(model.named_parameters())
    return F._func_fisher(model, trainable, X_t, y_t, "empirical", batch_size, "logits", 2)


def run(quick=False, device="cpu", log=print):
    n, d = 20_000, 100
    fisher_batch = 1024
    floor_batch = 4096
    subset = 200 if quick else 1000
    vsub = 2000  # rows given to the torch.func route (extrapolated)
    repeats = 3 if quick else 5
    X, y = make_rows(n, d, seed=3)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    model = new_mlp(d, seed=0, device=device)
    plain_epochs(model, X_t, y_t, 256, 1, device)  # a trained-ish network
    epoch_model = new_mlp(d, seed=1, device=device)
    epoch_opt = torch.optim.Adam(epoch_model.parameters(), lr=1e-3)
    Xd, yd = X_t.to(device), y_t.to(device)

    def fisher(kind):
        def fn():
            fisher_diagonal(model, Xd, yd, kind=kind, batch_size=fisher_batch)
            sync(device)

        return fn

    def sampled(share):
        # EWC(fisher_rows=share * n): the empirical Fisher over a uniform
        # sample of the rows (drawn as EWC draws it, then gathered).
        def fn():
            rows = torch.from_numpy(np.sort(np.random.default_rng(0).choice(
                n, size=int(share * n), replace=False)))
            fisher_diagonal(model, Xd[rows.to(Xd.device)], yd[rows.to(yd.device)],
                            kind="empirical", batch_size=fisher_batch)
            sync(device)

        return fn

    candidates = {
        "fisher empirical": fisher("empirical"),
        "fisher empirical, fisher_rows = n/2": sampled(0.5),
        "fisher true": fisher("true"),
        "fisher hessian": fisher("hessian"),
        "train epoch (bs 256)": lambda: plain_epochs(epoch_model, X_t, y_t, 256, 1, device,
                                                     optimizer=epoch_opt),
        f"floor fwd+bwd (bs {floor_batch})": lambda: plain_forward_backward(
            model, X_t, y_t, floor_batch, device),
        f"fwd+bwd (bs {fisher_batch})": lambda: plain_forward_backward(
            model, X_t, y_t, fisher_batch, device),
        f"torch.func vmap(grad) empirical ({vsub} rows, x{n // vsub})": lambda: (
            _func_fisher(model, Xd[:vsub], yd[:vsub], fisher_batch), sync(device)) and None,
        f"per-sample loop ({subset} rows, x{n // subset})": lambda: (
            _per_sample_loop(model, X_t[:subset], y_t[:subset], device) and None),
    }
    log(f"[fisher] {n} rows x {d}, {repeats} alternated repeats")
    rec = alternate(candidates, repeats, warmup=1, log=log)
    # Extrapolate the per-sample loop to all rows.
    for prefix, rows in (("per-sample", subset), ("torch.func", vsub)):
        key = next(k for k in rec if k.startswith(prefix))
        for r in rec[key]:
            r["seconds_subset"] = r["seconds"]
            r["seconds"] = r["seconds"] * n / rows
            r["cpu_seconds"] = r["cpu_seconds"] * n / rows
    stats = {k: summary(v) for k, v in rec.items()}
    epoch_key = "train epoch (bs 256)"
    floor_key = f"floor fwd+bwd (bs {floor_batch})"
    results = {"rows": n, "features": d, "fisher_batch": fisher_batch, "floor_batch": floor_batch,
               "per_sample_subset": subset, "func_subset": vsub, "repeats": repeats, "candidates": {}}
    table = []
    for key, st in stats.items():
        vs_epoch = [a["seconds"] / b["seconds"] for a, b in zip(rec[key], rec[epoch_key])]
        vs_floor = [a["seconds"] / b["seconds"] for a, b in zip(rec[key], rec[floor_key])]
        info = {
            "seconds": st,
            "cpu_seconds": summary(rec[key], "cpu_seconds"),
            "x_epoch_best": st["best"] / stats[epoch_key]["best"],
            "x_epoch_paired_median": float(np.median(vs_epoch)),
            "x_floor_best": st["best"] / stats[floor_key]["best"],
            "x_floor_paired_median": float(np.median(vs_floor)),
            "raw": rec[key],
        }
        met = "-"
        if key == "fisher empirical":
            info["target_epoch_met"] = info["x_epoch_paired_median"] <= TARGET_EPOCH
            info["target_floor_met"] = info["x_floor_paired_median"] <= TARGET_FLOOR
            met = info["target_epoch_met"] and info["target_floor_met"]
        results["candidates"][key] = info
        table.append([key, st["best"], st["median"], info["x_epoch_paired_median"],
                      info["x_floor_paired_median"], info["x_floor_best"], met])
    print_table(
        f"3. fisher_diagonal ({n} rows x {d}, MLP 256-256, Fisher batch {fisher_batch}, "
        f"device={device})",
        ["what", "s (best)", "s (median)", "x epoch (paired med)", "x floor (paired med)",
         "x floor (best)", "targets met"],
        table,
        note=f"targets: empirical <= {TARGET_EPOCH}x one epoch and <= {TARGET_FLOOR}x the floor. "
             "The per-sample loop and torch.func rows are extrapolated linearly from their subsets.",
    )
    return results
