"""Per-step cost of the strategies beyond the study, vs naive (issue 13).

Each strategy is fitted on three earlier months (anchors, accumulated
Fisher, teacher network or logit memory exist), then training steps on a
new month are interleaved between the strategies, many rounds, through
skorch's own ``run_single_epoch`` (as ``bench_penalties`` does). Reported:
median (over rounds) of the per-step time ratio to naive in the same round,
and the best. Targets: online EWC <= +15%; LwF and DER++ pay one extra
forward pass: <= +45%. Also the bytes DER's memory holds per row for the
stored logits.
"""

import copy

import numpy as np

from _common import BenchClassifier, classifier_stepper, make_rows
from _timing import interleave, print_table

NAME = "strategies"
TARGETS = {"online_ewc": 0.15, "replay+online_ewc": None, "lwf": 0.45, "replay+lwf": None,
           "der": 0.45, "der++": 0.45}


def _available():
    from sklearn_cf.strategies import STRATEGIES

    names = ["naive", "ewc"] + [name for name in TARGETS if name in STRATEGIES]
    if "der++" in names:
        # The paper's buffer batch is as large as the training batch; a
        # quarter of it is the cheaper setting docs/strategies.md mentions.
        names.append("der++ (buffer batch / 4)")
    return names


def _prepared(label, months, batch_size, device):
    strategy, extra = label, {}
    if label.endswith("(buffer batch / 4)"):
        strategy = label.split()[0]
        extra = {"strategy__buffer_batch_size": max(1, batch_size // 4)}
    clf = BenchClassifier(strategy=strategy, max_epochs=1, batch_size=batch_size,
                          random_state=0, device=device, **extra)
    (X0, y0), *rest = months
    clf.fit(X0, y0)
    for X, y in rest:
        clf.partial_fit_month(X, y)
    return clf


def _memory_bytes_per_row(clf):
    """Bytes per remembered row of a strategy's memory, and the share of
    them that stored logits take (DER)."""
    from sklearn_cf.strategies import Combined

    parts = clf.strategy_.parts if isinstance(clf.strategy_, Combined) else [clf.strategy_]
    for part in parts:
        memory = getattr(part, "memory", None)
        if memory is not None and len(memory):
            sources = memory.sources()
            X = sources[0][0]
            row = X.element_size() * X.shape[1] + sources[0][1].element_size()
            logits = X.shape[1] - clf.n_features_in_
            return {"bytes_per_row": row, "logit_bytes_per_row": X.element_size() * logits}
    return None


def run(quick=False, device="cpu", log=print):
    n, d = (20_480 if quick else 102_400), 100
    rounds = 10 if quick else 30
    batch_sizes = (256,) if quick else (256, 1024)
    history = [make_rows(n // 4, d, seed=10 + m, shift=float(m)) for m in range(3)]
    X_new, y_new = make_rows(n, d, seed=20, shift=3.0)
    names = _available()
    results = {"rows": n, "features": d, "rounds": rounds, "cases": {}}
    table = []
    for batch_size in batch_sizes:
        prepared = {name: _prepared(name, history, batch_size, device) for name in names}
        steps = max(4, 5120 // batch_size)
        log(f"[strategies] batch {batch_size}: {rounds} rounds x {steps} steps of {names}")
        steppers = {name: classifier_stepper(copy.deepcopy(clf), X_new, y_new)
                    for name, clf in prepared.items()}
        wall = interleave(steppers, steps, rounds, device=device)["wall"]
        base = wall["naive"]
        case = {}
        for name in names:
            ratios = [b / a for a, b in zip(base, wall[name])]
            median = float(np.median(ratios)) - 1.0
            best = min(wall[name]) / min(base) - 1.0
            target = TARGETS.get(name)
            memory = _memory_bytes_per_row(prepared[name])
            case[name] = {"overhead_paired_median": median, "overhead_best": best,
                          "target": target, "memory": memory,
                          "target_met": None if target is None else median <= target}
            table.append([batch_size, name, f"{median:+.1%}", f"{best:+.1%}",
                          "" if target is None else f"<= +{target:.0%}",
                          "" if target is None else ("met" if median <= target else "missed"),
                          "" if memory is None else
                          f"{memory['bytes_per_row']} B ({memory['logit_bytes_per_row']} logits)"])
        results["cases"][str(batch_size)] = case
    print_table(f"Per-step overhead vs naive, {n} x {d}, 3 months before",
                ["batch", "strategy", "median", "best", "target", "status", "memory/row"], table,
                note="median: of the per-round ratio to naive (interleaved); memory/row: "
                     "bytes per remembered row (DER: features + stored logits + label)")
    return results
