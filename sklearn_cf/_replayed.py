"""A model's stored outputs on some rows, seen by a scikit-learn scorer as a
fitted classifier: the paired bootstrap of ``compare`` and the forgetting
gate of ``update`` score resamples of held-out rows without the model."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["ReplayedOutputs", "replay_outputs"]


class ReplayedOutputs(ClassifierMixin, BaseEstimator):
    """Stored class probabilities replayed by row number: ``X`` is a column
    (or a 1-d array) of row numbers into ``proba``, repeats allowed, and
    ``predict`` is the most probable class, as
    :meth:`ContinualClassifier.predict` computes it.

    Parameters
    ----------
    proba : ndarray of shape (n_rows, n_classes)
    classes : ndarray of shape (n_classes,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf._replayed import ReplayedOutputs
    >>> model = ReplayedOutputs(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array(["a", "b"]))
    >>> model.predict(np.array([[1], [1], [0]])).tolist()
    ['b', 'b', 'a']
    >>> model.predicted.tolist()
    ['a', 'b']
    """

    def __init__(self, proba, classes):
        self.proba = proba
        self.classes = classes

    @property
    def classes_(self):
        return self.classes

    @property
    def predicted(self):
        """The predicted class of every stored row."""
        return self.classes[self.proba.argmax(axis=1)]

    def __sklearn_is_fitted__(self):
        return True

    def predict_proba(self, X):
        return self.proba[np.asarray(X).ravel().astype(int)]

    def predict(self, X):
        return self.classes[self.predict_proba(X).argmax(axis=1)]


def replay_outputs(clf, X):
    """``clf``'s outputs on rows ``X``, kept as :class:`ReplayedOutputs`."""
    return ReplayedOutputs(clf.predict_proba(X), np.array(clf.classes_, copy=True))
