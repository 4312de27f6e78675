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

