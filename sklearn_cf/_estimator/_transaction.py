"""A month is a transaction: what it may change, and how to put it back.

One month of training changes the module's weights and buffers, the
optimizer's state, the strategy's state (anchors, Fisher, replay memory,
ensemble members), the random generator, the snapshots, ``months_seen_``,
``cost_`` and skorch's ``history``. :class:`MonthTransaction` records what is
needed to undo each of them *before* the month starts, and either puts all of
it back (:meth:`~MonthTransaction.rollback`) or lets the month stand
(:meth:`~MonthTransaction.commit`).

What is recorded is kept small: the weights and the optimizer state are
copied (they are of the size of the network), the lists are copied as lists
of references, and the strategy decides how to undo its own state -- the
built-in replay memory keeps an undo log of the slots a month overwrites
instead of a copy of the memory (see ``Strategy.savepoint``).

Telling a real Ctrl-C from skorch's ``EarlyStopping``
------------------------------------------------------
skorch's ``EarlyStopping`` ends training by raising ``KeyboardInterrupt``
from its ``on_epoch_end``, the exception a real Ctrl-C raises. A month ends
normally after an early stop, but a real interrupt rolls it back and
propagates. Two facts separate them: the early stop is raised by an
``EarlyStopping`` instance's own frame (read from the traceback), and a real
SIGINT in the main thread goes through :class:`SigintWatch`, which notes that
it happened before Python raises ``KeyboardInterrupt`` as usual.
"""

import copy

from skorch.callbacks import EarlyStopping

__all__ = ["MonthTransaction", "raised_by_early_stopping"]


def _clone_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class MonthTransaction:
    """Everything one month of ``net`` may change, recorded before it starts.

    Parameters
    ----------
    net : ContinualClassifier
        Fitted or not. For an unfitted estimator (a base fit) rolling back
        returns it to its unfitted state; for a refit, to the old model,
        whose objects a new sequence replaces rather than changes.
    """

    _LISTS = ("months_seen_", "cost_", "snapshots_")

    def __init__(self, net):
        self.net = net
        # References: restores every attribute the month rebinds (a fresh
        # module or optimizer, a new strategy, rng_ at a base fit...).
        self.attributes = dict(vars(net))
        self.fitted = net.__sklearn_is_fitted__()
        history = getattr(net, "history_", None)
        # skorch clears the history in place at initialize() and appends
        # one row per epoch; earlier rows are not changed.
        self.history = None if history is None else list(history)
        if not self.fitted:
            return
        self.lists = {name: list(getattr(net, name)) for name in self._LISTS}
        self.module_state = _clone_state(net.module_)
        self.optimizer_state = copy.deepcopy(net.optimizer_.state_dict())
        self.rng_state = net.rng_.bit_generator.state
        self.strategy_savepoint = net.strategy_.savepoint()

    def rollback(self):
        """Put back everything the month changed."""
        net = self.net
        if self.fitted:
            # In-place state of the objects the month may have trained.
            module, optimizer = self.attributes["module_"], self.attributes["optimizer_"]
            module.load_state_dict(self.module_state)
            optimizer.load_state_dict(self.optimizer_state)
            self.attributes["rng_"].bit_generator.state = self.rng_state
            self.attributes["strategy_"].rollback(self.strategy_savepoint)
        vars(net).clear()
        vars(net).update(self.attributes)
        if self.fitted:
            for name, items in self.lists.items():
                getattr(net, name)[:] = items
        if self.history is not None:
            net.history_[:] = self.history

    def commit(self):
        """The month stands: release what the rollback would have needed."""
        if self.fitted:
            self.attributes["strategy_"].commit(self.strategy_savepoint)
        self.attributes = self.module_state = self.optimizer_state = None


def raised_by_early_stopping(exc):
    """Whether ``exc`` was raised inside an ``EarlyStopping`` callback's own
    code (its innermost frame belongs to an ``EarlyStopping`` instance)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return isinstance(tb.tb_frame.f_locals.get("self"), EarlyStopping)
