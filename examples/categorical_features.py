"""Categorical and text features: a ColumnTransformer in front of ContinualClassifier.

Run:  python examples/categorical_features.py

A synthetic flight-delay stream of 6 months, as a pandas DataFrame with two
numeric columns (``distance``, ``dep_hour``), a categorical one
(``carrier``; a new carrier starts flying in month 3) and a short free-text
remark. The target, ``delayed``, drifts: which carriers run late changes
from month to month.

ContinualClassifier takes a numeric matrix, so a ``ColumnTransformer`` turns
the frame into one:

* ``OneHotEncoder(handle_unknown="ignore")`` on the carrier: a carrier unseen
  when the encoder was fitted becomes all zeros instead of an error;
* ``HashingVectorizer`` on the remark: stateless, so words that first appear
  in later months still get a column (a ``TfidfVectorizer`` fitted on the
  first month would drop them);
* ``StandardScaler`` on the numbers.

Its output is dense (``sparse_threshold=0``) and keeps the same columns every
month, which is what continual training needs: the transformer is fitted
once, on the first month, and never again.

Two ways to train:

1. Month by month, as new data arrives (a Pipeline has no
   ``partial_fit_month``): fit the transformer on the first month, then
   ``clf.partial_fit_month(transformer.transform(X_month), y_month, month=m)``.
2. On a whole sequence at once: ``pipeline.fit(X, y,
   continualclassifier__months=months)``. The Pipeline fits the transformer
   on all the rows it is given (here every month's), so its scaling and
   categories differ a little from (1); refitting it later would change the
   columns under the trained network, so keep using this fitted pipeline for
   the months that follow (``pipeline[-1].partial_fit_month(
   pipeline[:-1].transform(X_month), y_month)``).
"""

import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_cf import ContinualClassifier

N_MONTHS = 6
ROWS_PER_MONTH = 600
FEATURES = ["distance", "dep_hour", "carrier", "remark"]
CARRIERS = ["AA", "DL", "UA", "WN"]
REMARKS = {
    0: ["on time", "boarding complete", "gate change", "light traffic"],
    1: ["weather hold", "crew late", "storm warning", "late inbound aircraft",
        "deicing queue", "maintenance check"],
}


def make_flights(random_state=0):
    """A DataFrame stream: numeric, categorical and text columns, a drifting target."""
    rng = np.random.default_rng(random_state)
    frames = []
    for month in range(N_MONTHS):
        carriers = CARRIERS + (["NK"] if month >= 3 else [])  # a new carrier in month 3
        # Which carriers run late drifts: one more carrier turns late each month.
        late = {c: (i + month) % len(carriers) < 2 for i, c in enumerate(carriers)}
        n = ROWS_PER_MONTH
        frame = pd.DataFrame({
            "distance": rng.gamma(4.0, 250.0, n),
            "dep_hour": rng.integers(5, 23, n),
            "carrier": rng.choice(carriers, n),
        })
        logit = (np.where(frame["carrier"].map(late), 1.5, -1.0)
                 + 0.12 * (frame["dep_hour"] - 14) + rng.normal(0, 0.8, n))
        delayed = (logit > 0).astype(int)
        # The remark agrees with the label four times out of five.
        truthful = rng.random(n) < 0.8
        label_words = np.where(truthful, delayed, 1 - delayed)
        frame["remark"] = [rng.choice(REMARKS[k]) for k in label_words]
        frame["month"] = month
        frame["delayed"] = delayed
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def make_transformer():
    return ColumnTransformer(
        [
            ("carrier", OneHotEncoder(handle_unknown="ignore"), ["carrier"]),
            # A 1-d column (a string, not a list): the vectorizer wants texts.
            ("remark", HashingVectorizer(n_features=64, alternate_sign=False), "remark"),
            ("numbers", StandardScaler(), ["distance", "dep_hour"]),
        ],
        sparse_threshold=0,  # dense output: ContinualClassifier takes arrays
    )


def make_classifier():
    return ContinualClassifier(strategy="replay", hidden_units=(32,), max_epochs=20,
                               random_state=0, verbose=0)


def score(clf, transformer, rows):
    """Accuracy of ``clf`` on a frame of rows, through the fitted transformer."""
    return clf.score(transformer.transform(rows[FEATURES]), rows["delayed"].to_numpy())


def main():
    start = time.perf_counter()
    data = make_flights()
    train, test = train_test_split(data, test_size=0.25, stratify=data["month"], random_state=0)
    print(f"{len(data)} rows, columns {FEATURES}, {N_MONTHS} months; 25% held out\n")

    # 1. Month by month: the transformer is fitted on the first month only.
    transformer = make_transformer()
    clf = make_classifier()
    print("month by month: accuracy on held-out rows")
    print(f"{'month':>5}  {'this month':>10}  {'next month':>10}")
    for month in range(N_MONTHS):
        rows = train[train["month"] == month]
        if month == 0:
            transformer.fit(rows[FEATURES])
        clf.partial_fit_month(transformer.transform(rows[FEATURES]), rows["delayed"].to_numpy(),
                              month=month)
        line = f"{month:>5}  {score(clf, transformer, test[test['month'] == month]):10.3f}"
        if month + 1 < N_MONTHS:  # the month the model is deployed on
            line += f"  {score(clf, transformer, test[test['month'] == month + 1]):10.3f}"
        print(line)

    # 2. A whole sequence at once, through a Pipeline.
    pipeline = make_pipeline(make_transformer(), make_classifier())
    pipeline.fit(train[FEATURES], train["delayed"],
                 continualclassifier__months=train["month"].to_numpy())
    scores = [pipeline.score(month[FEATURES], month["delayed"])
              for _, month in test.groupby("month")]
    print("\nPipeline.fit on all months, final model on each month:")
    print("  " + "  ".join(f"{m}: {s:.3f}" for m, s in enumerate(scores)))
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
