"""What a forkserver child of tests/test_store_faults.py runs.

Imported once by the forkserver (``set_forkserver_preload``), which then forks
every child from it: the import also warms torch, skorch and the scorers up
with one tiny fit, save and load on a single thread (no OpenMP pool exists
to be broken by the forks), so that a child costs tens of milliseconds.
"""

import os
import sys
import tempfile

import numpy as np
import torch

from sklearn_cf import _atomic
from sklearn_cf.cli import main

torch.set_num_threads(1)


def _warm_up():
    from sklearn.metrics import get_scorer

    import sklearn_cf
    from sklearn_cf import ContinualClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = ContinualClassifier(strategy="replay", max_epochs=1, hidden_units=(4,),
                              random_state=0).fit(X, y)
    clf.partial_fit_month(X, y)
    for name in ("accuracy", "roc_auc", "balanced_accuracy"):
        get_scorer(name)(clf, X, y)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.pt")
        clf.save(path)
        sklearn_cf.load(path).predict(X)


_warm_up()


def run(argv, cwd, pause, out):
    """Run ``sklearn-cf ARGV`` in ``cwd`` with its output in the file ``out``,
    paused where ``pause`` (``K:MARKER``) says; exit with its status."""
    os.chdir(cwd)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if pause:
        os.environ[_atomic.PAUSE_ENV] = pause
    _atomic._faults.update(count=0, config=None)
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)



def as_user(uid, model, features, out):
    """As user ``uid`` (the test runs as root, which no file mode stops):
    load ``model``, write its probabilities on ``features`` to ``out``, then
    try to train a month; exit 0 when that is refused naming the folder."""
    os.setgid(uid)
    os.setuid(uid)
    import sklearn_cf

    clf = sklearn_cf.load(model)
    X = np.load(features)
    np.save(out, clf.predict_proba(X))
    try:
        clf.partial_fit_month(X, clf.predict(X))
    except ValueError as exc:
        os._exit(0 if "memory" in str(exc) and "writ" in str(exc) else 3)
    os._exit(4)  # trained into a folder it cannot write
