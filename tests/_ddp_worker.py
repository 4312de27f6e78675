"""One process of a multi-process run, launched by tests/test_accelerate.py:

    torchrun --nproc_per_node 2 tests/_ddp_worker.py DATA.npz OUT_DIR RUNS.json

Every process trains AcceleratedContinualClassifier month by month on the
stream in DATA.npz (arrays X, y, months) for each run of RUNS.json (a list of
{"name", "params", "save_after"}), and writes OUT_DIR/<name>_rank<r>.npz:
after every month k, the weights (``m<k>/w/<param>``), the strategy's state
(EWC anchors and Fisher, replay memory, joint history), the generator state
and the rows trained; and at the end the predicted probabilities on all of X.
A run with "save_after": k also saves a checkpoint OUT_DIR/<name>.pt after
month k (every process calls save; the main process writes); one with
"poison": [k, value, n] first trains month k with its first n rows (3 when
n is left out) set to value,
recording the FloatingPointError that every process should raise
(``m<k>/failed``), then trains the clean month. One with "sample_weight":
true trains with the weights in DATA.npz (array w). At the end, every process
checks the package's all-reduce (OUT_DIR/collectives_rank<r>.json).
"""

import json
import os
import sys

import numpy as np
import torch


def _record(out, prefix, clf, X_month, y_month, rank, world_size):
    from sklearn_cf.accelerate import fisher_diagonal_sharded

    for name, t in clf.module_.state_dict().items():
        out[f"{prefix}/w/{name}"] = t.detach().cpu().numpy()
    parts = getattr(clf.strategy_, "parts", [clf.strategy_])
    for part in parts:
        for attr in ("anchors", "fisher_diag"):
            for name, t in (getattr(part, attr, None) or {}).items():
                out[f"{prefix}/{attr}/{name}"] = t.detach().cpu().numpy()
        for attr in ("memory", "history"):
            store = getattr(part, attr, None)
            if store is not None and len(store):
                sources = store.sources()
                out[f"{prefix}/{attr}/X"] = torch.cat([X for X, _ in sources]).numpy()
                out[f"{prefix}/{attr}/y"] = torch.cat([y for _, y in sources]).numpy()
                weights = store.weights() or [None] * len(sources)
                out[f"{prefix}/{attr}/w"] = torch.cat(
                    [torch.ones(len(y)) if w is None else w
                     for (_, y), w in zip(sources, weights)]).numpy()
    out[f"{prefix}/rng"] = np.array(str(clf.rng_.bit_generator.state))
    out[f"{prefix}/rows"] = np.array([c["rows"] for c in clf.cost_])
    out[f"{prefix}/months"] = np.array(clf.months_seen_)
    # The sharded Fisher on this month's rows at these weights, for an
    # oracle check against one process's fisher_diagonal.
    diag = fisher_diagonal_sharded(
        clf.module_, torch.from_numpy(X_month), torch.from_numpy(y_month.astype(np.int64)),
        rank=rank, world_size=world_size, kind="empirical", batch_size=50,
    )
    for name, t in diag.items():
        out[f"{prefix}/fisher_sharded/{name}"] = t.cpu().numpy()


def main(data_path, out_dir, runs_path):
    torch.set_num_threads(1)
    from accelerate import Accelerator

    from sklearn_cf.accelerate import AcceleratedContinualClassifier

    data = np.load(data_path)
    X, y, months = data["X"], data["y"], data["months"]
    with open(runs_path) as f:
        runs = json.load(f)
    accelerator = Accelerator(cpu=True)
    rank, world_size = accelerator.process_index, accelerator.num_processes
    for run in runs:
        clf = AcceleratedContinualClassifier(accelerator=accelerator, **run["params"])
        out = {"world_size": np.array(world_size),
               "distributed_type": np.array(str(accelerator.distributed_type))}
        weights = data["w"] if run.get("sample_weight") else None
        for k, month in enumerate(np.unique(months)):
            rows = months == month
            w = None if weights is None else weights[rows]
            if run.get("poison") and run["poison"][0] == k:
                # Three rows on a huge scale, in one process's slices or
                # Fisher block only: every process must fail and roll the
                # month back together, then train the clean month.
                poisoned = X[rows].copy()
                poisoned[:(run["poison"] + [3])[2]] = run["poison"][1]
                try:
                    clf.partial_fit_month(poisoned, y[rows], month=int(month))
                except FloatingPointError as exc:  # TrainingDivergedError is one
                    out[f"m{k}/failed"] = np.array(type(exc).__name__)
                    out[f"m{k}/message"] = np.array(str(exc))
            clf.partial_fit_month(X[rows], y[rows], month=int(month), sample_weight=w)
            _record(out, f"m{k}", clf, X[rows], y[rows], rank, world_size)
            if run.get("save_after") == k:
                clf.save(os.path.join(out_dir, f"{run['name']}.pt"))
        out["proba"] = clf.predict_proba(X)
        np.savez(os.path.join(out_dir, f"{run['name']}_rank{rank}.npz"), **out)
    _check_collectives(out_dir, rank)
    accelerator.wait_for_everyone()
    accelerator.end_training()


def _check_collectives(out_dir, rank, calls=200):
    """How often this package's all-reduce returned while gloo still held its
    tensor (must be never), and the sums it gave; written to
    OUT_DIR/collectives_rank<r>.json."""
    from sklearn_cf.accelerate import _all_reduce_sum

    held, sums = 0, set()
    for k in range(calls):
        t = torch.full((4,), float(k + rank))
        before = t._use_count()
        _all_reduce_sum(t)
        held += t._use_count() > before
        sums.add(float(t[0]) - 2 * k)
    with open(os.path.join(out_dir, f"collectives_rank{rank}.json"), "w") as f:
        json.dump({"calls": calls, "held": held, "sums": sorted(sums)}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
