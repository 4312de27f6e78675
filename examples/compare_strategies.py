"""Fit every strategy on a small drifting stream and print one line each.

Run:  python examples/compare_strategies.py

Each strategy trains on 6 months of a synthetic malware-like stream
(:func:`sklearn_cf.datasets.make_monthly_drift`), with 20% of every month held
out. For each one the script prints the accuracy on the held-out rows of every
month after the last month of training, the backward transfer (negative =
forgetting), the training rows it cost relative to naive, and its seconds.
``sklearn-cf compare`` does the same with more strategies, repeated splits and
a report.
"""

import time

import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from sklearn_cf import ContinualClassifier
from sklearn_cf.datasets import make_monthly_drift
from sklearn_cf.strategies import STRATEGIES

N_MONTHS = 6


def main():
    X, y, months = make_monthly_drift(n_months=N_MONTHS, n_samples_per_month=1500, random_state=0)
    train, test = train_test_split(
        np.arange(len(y)), test_size=0.2, stratify=months * 2 + y, random_state=0
    )
    print(f"{len(y)} rows, {X.shape[1]} features, {N_MONTHS} months; 20% of each month held out\n")
    print(f"{'strategy':<11} {'final acc':>9} {'BWT':>7} {'rows':>6} {'seconds':>7}   acc per month")
    base = None
    for strategy in STRATEGIES:
        clf = ContinualClassifier(strategy=strategy, reg_lambda=100.0, max_epochs=5, random_state=0)
        start = time.perf_counter()
        clf.fit(X[train], y[train], months=months[train])
        seconds = time.perf_counter() - start
        rows = sum(c["rows"] for c in clf.cost_)
        # R[i, j]: accuracy on month j's held-out rows after training through month i.
        R = np.array([
            [accuracy_score(y[test][months[test] == j],
                            clf.classes_[clf.predict_proba_after(X[test][months[test] == j], i).argmax(1)])
             for j in range(N_MONTHS)]
            for i in range(N_MONTHS)
        ])
        bwt = np.mean([R[-1, j] - R[j, j] for j in range(N_MONTHS - 1)])
        base = base or rows
        per_month = " ".join(f"{a:.2f}" for a in R[-1])
        print(f"{strategy:<11} {R[-1].mean():>9.3f} {bwt:>+7.3f} {rows / base:>5.1f}x "
              f"{seconds:>7.1f}   {per_month}")


if __name__ == "__main__":
    main()
