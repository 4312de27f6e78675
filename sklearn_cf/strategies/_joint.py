"""Joint retraining: a fresh network on every month seen so far."""

from .._data import MonthData
from .._validation import check_folder
from .._param_validation import Satisfies
from ._base import RowsKeeper
from ._disk import sequence_folder
from ._memory import AllRowsMemory
from ._memory_factory import memory_from_state

__all__ = ["Joint"]


class Joint(RowsKeeper):
    """Retrain from a fresh initialization on all data seen so far.

    The study's goal line: the most accurate update, whose cost grows with
    every month (month ``k`` trains on ``k + 1`` months of rows). Uses ``lr``
    and ``max_epochs`` (not the fine-tune values) since it trains from scratch.

    Parameters
    ----------
    memory_dir : path-like or None, default=None
        None: the history in RAM. A folder: in memory-mapped ``.npy`` files
        in a new subfolder of it, so all history need not fit in RAM.

    Examples
    --------
    >>> from sklearn_cf.strategies import Joint
    >>> Joint().fresh_model
    True
    """

    name = "joint"
    fresh_model = True
    rows_attribute = "history"

    _parameter_constraints = {"memory_dir": Satisfies(check_folder)}

    def __init__(self, memory_dir=None):
        self.memory_dir = memory_dir

    def start(self, net):
        # Named now (memory_dir made absolute), created at the first write.
        folder = None if self.memory_dir is None else sequence_folder(self.memory_dir, "joint")
        self.history = AllRowsMemory(folder)

    def month_data(self, net, X, y, sample_weight=None):
        if not len(self.history):
            return None
        history = self.history.rows()
        sources = history.sources
        weights = [*(history.weights or [None] * len(sources)), sample_weight]
        return MonthData([*sources, (X, y)], weights=weights)

    def end_month(self, net, X, y, sample_weight=None):
        self.history.add(X, y, net.rng_, sample_weight=sample_weight)

    def grow_classes(self, net, n_old, n_new):
        """Nothing to change: the history keeps its rows and their class
        indices (new classes are appended), and every month trains a fresh
        network of the grown size."""

    def state_dict(self):
        return {"history": self.history.state_dict()}

    def load_state_dict(self, state, net):
        history = state["history"]
        if isinstance(history, list):  # written before the history was a memory
            history = {"kind": "all", "chunks": history}
        self.history = memory_from_state(history)

    def __repr__(self):
        return "Joint()" if self.memory_dir is None else f"Joint(memory_dir={self.memory_dir!r})"
