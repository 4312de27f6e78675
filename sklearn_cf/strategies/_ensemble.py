"""Model averaging: one network per month, probabilities averaged."""

import numpy as np

from .._validation import month_label
from ._base import Strategy, attribute_savepoint
from ._growth import silent_state

__all__ = ["Ensemble"]


class Ensemble(Strategy):
    """Train a separate network on each month and average their predictions.

    ``predict_proba`` is the mean of the members' class probabilities. Each
    member trains from scratch on its own month with ``lr`` and
    ``max_epochs``; prediction cost grows with the number of months.

    Attributes
    ----------
    members : list of dict
        One CPU state dict per month trained. A member is loaded onto the
        estimator's device when it predicts.

    Examples
    --------
    >>> from sklearn_cf.strategies import Ensemble
    >>> Ensemble().fresh_model
    True
    """

    name = "ensemble"
    fresh_model = True

    def start(self, net):
        self.members = []

    def check_month(self, X, y, classes):
        if len(np.unique(y)) < 2:
            label = month_label(classes[int(y[0])])  # a plain Python value to print
            raise ValueError(
                f"strategy='ensemble' trains a separate network on each month, but "
                f"this month holds only class {label!r}; such a member could only "
                "predict that class. Merge the month with its neighbour, or use "
                "another strategy."
            )

    def end_month(self, net, X, y):
        self.members.append(
            {k: v.detach().to("cpu", copy=True) for k, v in net.module_.state_dict().items()}
        )

    def grow_classes(self, net, n_old, n_new):
        """Members trained before the new classes give them probability 0
        (output weights 0, bias -inf; their other probabilities unchanged)
        until a month trains a member of the grown size."""
        reference = net.module_.state_dict()
        self.members = [silent_state(member, reference) for member in self.members]

    def predictive_states(self, net):
        return list(self.members) if self.members else None

    # Hooks rebind attributes or append to lists: no tensor changes in place.
    savepoint = attribute_savepoint

    def __repr__(self):
        return "Ensemble()"
