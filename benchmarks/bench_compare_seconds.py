"""Fair seconds in a comparison: the same strategy twice, under two labels (issue 22).

``compare_strategies`` times each strategy's monthly fits; torch's first
calls in a process (allocator, kernels, autograd, the optimizer's state)
used to be charged to whichever strategy ran first. Here one comparison
runs ``naive`` and ``naive:max_epochs=E`` (E: the shared value, so the two
are the same fit) in a *fresh* process each round, so that the warm-up
happens inside it, and records the ratio of their ``seconds``: near 1 when
the warm-up is kept out of both, above 1 when the first one pays it. The
gradient-boosting reference (``reference="hgb"``) is timed too: its ratio
to a second identical reference fit is not measured here (one reference
per comparison), only its seconds. Not part of the test suite; no time is
asserted anywhere.

    python benchmarks/bench_compare_seconds.py [--quick] [--threads 1]
"""

import json
import os
import statistics
import subprocess
import sys

NAME = "compare_seconds"

_CHILD = r"""
import json, sys, torch
torch.set_num_threads({threads})
from sklearn_cf.compare import compare_strategies
from sklearn_cf.datasets import make_monthly_drift
X, y, months = make_monthly_drift(n_months={months}, n_samples_per_month={rows},
                                  random_state=0)
comp = compare_strategies(X, y, months, ["naive", "naive:max_epochs={epochs}"],
                          progress=False, estimator_params=dict(max_epochs={epochs},
                          hidden_units={hidden}, device={device!r}){extra})
res = comp.results
print(json.dumps({{"first": res["naive"].seconds,
                  "second": res["naive:max_epochs={epochs}"].seconds,
                  "first_month": res["naive"].seconds_per_month[0],
                  "second_month": res["naive:max_epochs={epochs}"].seconds_per_month[0]}}))
"""


def _one_round(months, rows, epochs, hidden, threads, device, extra):
    code = _CHILD.format(months=months, rows=rows, epochs=epochs, threads=threads,
                         device=device, extra=extra, hidden=hidden)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick=False, device="cpu", log=print, threads=1, extra=None):
    """``extra``: more ``compare_strategies`` keywords as source text, e.g.
    ``", reference='none'"`` (the default adds none, so the same script
    measures any version of the package)."""
    from _timing import print_table

    # Full: the CLI's synthetic stream and network (12 months of 2000 rows,
    # 10 epochs, 256x256).
    months, rows, epochs, hidden = (4, 500, 3, (64, 64)) if quick else (12, 2000, 10, (256, 256))
    repeats = 3 if quick else 5
    if extra is None:
        extra = ""
    rounds = []
    for r in range(repeats):
        rounds.append(_one_round(months, rows, epochs, hidden, threads, device, extra))
        log(f"[{NAME}] round {r + 1}/{repeats}: {rounds[-1]}")
    ratios = [x["first"] / x["second"] for x in rounds]
    month_ratios = [x["first_month"] / x["second_month"] for x in rounds]
    print_table(
        f"The same strategy twice in one comparison ({months} months x {rows} rows, "
        f"{epochs} epochs, fresh process per round)",
        ["round", "naive s", "naive again s", "ratio", "month 0 ratio"],
        [[i + 1, x["first"], x["second"], ratio, m]
         for i, (x, ratio, m) in enumerate(zip(rounds, ratios, month_ratios))],
        note=f"median ratio {statistics.median(ratios):.2f} (1.00 = fair); month 0 alone "
             f"{statistics.median(month_ratios):.2f}",
    )
    return {"rounds": rounds, "ratio_median": statistics.median(ratios),
            "month0_ratio_median": statistics.median(month_ratios)}


if __name__ == "__main__":
    import argparse

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    run(quick=args.quick, device=args.device, threads=args.threads)
