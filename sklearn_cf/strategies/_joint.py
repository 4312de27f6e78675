"""Joint retraining: a fresh network on every month seen so far."""

from .._data import MonthData
from ._base import Strategy, attribute_savepoint

__all__ = ["Joint"]


class Joint(Strategy):
    """Retrain from a fresh initialization on all data seen so far.

    The study's goal line: the most accurate update, whose cost grows with
    every month (month ``k`` trains on ``k + 1`` months of rows). Uses ``lr``
    and ``max_epochs`` (not the fine-tune values) since it trains from scratch.

    Examples
    --------
    >>> from sklearn_cf.strategies import Joint
    >>> Joint().fresh_model
    True
    """

    fresh_model = True

    def start(self, net):
        self.history = []

    def month_data(self, net, X, y):
        if not self.history:
            return None
        return MonthData([*self.history, (X, y)])

    def end_month(self, net, X, y):
        self.history.append((X.clone(), y.clone()))

    def load_state_dict(self, state, net):
        self.history = [tuple(pair) for pair in state["history"]]

    # Hooks rebind attributes or append to lists: no tensor changes in place.
    savepoint = attribute_savepoint

    def __repr__(self):
        return "Joint()"
