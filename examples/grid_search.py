"""Tune lambda and the rehearsal ratio with GridSearchCV; plot the forgetting matrix.

Run:  python examples/grid_search.py [OUT_DIR]

A plain GridSearchCV over a ContinualClassifier with SequentialSplit and the
forgetting scorer: one fit per candidate and split, each scored on every month
after every month of training. The best candidate's forgetting matrix on the
held-out rows is saved as a heatmap, next to the per-month scores of the final
models of naive fine-tuning and of the best candidate.
"""

import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.model_selection import GridSearchCV

from sklearn_cf import ContinualClassifier, SequentialSplit, forgetting_matrix, make_forgetting_scorer
from sklearn_cf.datasets import make_monthly_drift


def main(out_dir="grid_search_out"):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    X, y, months = make_monthly_drift(n_months=6, n_samples_per_month=800, random_state=0)
    sklearn.set_config(enable_metadata_routing=True)

    cv = SequentialSplit(n_splits=2, test_size=0.2, random_state=0)
    search = GridSearchCV(
        ContinualClassifier(strategy="replay+ewc", max_epochs=5, random_state=0
                            ).set_fit_request(months=True),
        {"reg_lambda": [1.0, 100.0], "rehearsal_ratio": [0.25, 0.5]},
        cv=cv,
        scoring=make_forgetting_scorer("accuracy"),
        refit="average_accuracy",
        n_jobs=2,
    ).fit(X, y, months=months)

    print(f"{'reg_lambda':>10} {'ratio':>6} {'avg acc':>8} {'BWT':>7} {'forgetting':>10}")
    r = search.cv_results_
    # The scorer returns forgetting negated, as every key is higher-is-better.
    forgetting = -r["mean_test_neg_forgetting"]
    for k, params in enumerate(r["params"]):
        print(f"{params['reg_lambda']:>10} {params['rehearsal_ratio']:>6} "
              f"{r['mean_test_average_accuracy'][k]:>8.3f} "
              f"{r['mean_test_backward_transfer'][k]:>+7.3f} {forgetting[k]:>10.3f}")
    print("best:", search.best_params_)

    # The forgetting matrix of the best candidate and of naive fine-tuning, on
    # the held-out rows of the first split.
    train, test = next(cv.split(X, y, months=months))
    matrices = {}
    for name, params in [("naive", {"strategy": "naive"}), ("best", search.best_params_)]:
        clf = ContinualClassifier(strategy="replay+ewc", max_epochs=5, random_state=0)
        clf.set_params(**params).fit(X[train], y[train], months=months[train])
        matrices[name] = forgetting_matrix(clf, X[test], y[test], months[test])
        print(f"{name}: {matrices[name].summary()}")

    import matplotlib

    matplotlib.use("Agg")
    from sklearn_cf.plotting import plot_forgetting_matrix, plot_month_scores

    ax = plot_forgetting_matrix(matrices["best"], title=f"best: {search.best_params_}")
    ax.figure.savefig(out / "forgetting_matrix.png", dpi=120, bbox_inches="tight")
    ax = plot_month_scores(matrices, title="accuracy of the final model per month")
    ax.figure.savefig(out / "month_scores.png", dpi=120, bbox_inches="tight")
    print(f"figures written to {out}/")
    return np.array([m.summary()["average_accuracy"] for m in matrices.values()])


if __name__ == "__main__":
    main(*sys.argv[1:])
