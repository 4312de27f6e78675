"""Several strategies at once (``"replay+ewc"``), named by their parts' own
``name`` attributes, so this module needs no registry."""

from ._base import Strategy, call_hook

__all__ = ["Combined"]


class Combined(Strategy):
    """Several strategies at once: the first to choose the rows and the
    prediction wins, penalties add up, every one consolidates.

    Parameters
    ----------
    *parts : Strategy

    Attributes
    ----------
    parts : list of Strategy
        The parts, in order. Their parameters are ``<name>__<param>`` in
        :meth:`get_params` and :meth:`set_params`, ``<name>`` being the
        part's class attribute ``name`` (``part<k>`` for a part without a
        name, or when two parts share one).
    fresh_model, needs_log_likelihood : bool
        True when any part's is.
    shardable : bool
        True when every part's is.

    Examples
    --------
    >>> from sklearn_cf.strategies import Combined, Replay, EWC
    >>> Combined(Replay(rehearsal_ratio=0.5), EWC(reg_lambda=10.0))
    Combined(Replay(rehearsal_ratio=0.5, epoch_size=None, memory_size=None), EWC(reg_lambda=10.0, fisher='empirical'))
    """

    #: A combination has no name of its own; its parts name themselves.
    name = None

    #: The parts, in order (an instance attribute, set by the constructor;
    #: :attr:`Strategy.parts` is ``[self]`` for a single strategy).
    parts = ()

    def __init__(self, *parts):
        self.parts = list(parts)

    def _part_names(self):
        """Each part's key in :meth:`get_params`: its class's ``name``, or
        ``part<k>`` for a part without one or one whose name another part shares."""
        names = []
        for k, part in enumerate(self.parts):
            name = getattr(type(part), "name", None)
            names.append(name if isinstance(name, str) and name else f"part{k}")
        return [name if names.count(name) == 1 else f"part{k}" for k, name in enumerate(names)]

    def get_params(self, deep=True):
        """``{part name: part}`` and, with ``deep``, ``{part name}__{param}``
        for every part's parameter (e.g. ``ewc__reg_lambda``)."""
        params = dict(zip(self._part_names(), self.parts))
        if deep:
            for name, part in list(params.items()):
                params.update({f"{name}__{k}": v for k, v in part.get_params().items()})
        return params

    def set_params(self, **params):
        parts = dict(zip(self._part_names(), self.parts))
        by_part = {}
        for key, value in params.items():
            name, _, param = key.partition("__")
            if name not in parts or not param:
                raise ValueError(
                    f"Combined has no parameter {key!r}; use <part>__<param> with a part "
                    f"among {list(parts)}."
                )
            by_part.setdefault(name, {})[param] = value
        for name, values in by_part.items():  # every name checked before any is set
            unknown = sorted(set(values) - set(parts[name]._get_param_names()))
            if unknown:
                raise ValueError(
                    f"{type(parts[name]).__name__} has no parameter {unknown[0]!r}; its "
                    f"parameters are {parts[name]._get_param_names() or 'none'}."
                )
        for name, values in by_part.items():
            parts[name].set_params(**values)
        return self

    def check_params(self):
        for part in self.parts:
            part.check_params()

    def __sklearn_clone__(self):
        from sklearn.base import clone

        return type(self)(*(clone(part) for part in self.parts))

    @property
    def fresh_model(self):
        """Whether any part trains a new network every month."""
        return any(part.fresh_model for part in self.parts)

    @property
    def needs_log_likelihood(self):
        """Whether any part needs the network's log-likelihoods."""
        return any(part.needs_log_likelihood for part in self.parts)

    @property
    def shardable(self):
        """Whether every part can run under several processes."""
        return all(part.shardable for part in self.parts)

    def start(self, net):
        for part in self.parts:
            part.start(net)

    def check_month(self, X, y, classes):
        for part in self.parts:
            part.check_month(X, y, classes)

    def month_data(self, net, X, y, sample_weight=None):
        for part in self.parts:
            data = call_hook(part.month_data, net, X, y, sample_weight)
            if data is not None:
                return data
        return None

    def penalty(self, net):
        return _sum_terms(part.penalty(net) for part in self.parts)

    def _step_parts(self, hook):
        """Positions of the parts that can do something at ``hook`` (one of
        the per-step hooks: their class or the instance overrides it, or
        ``penalty`` for ``loss_penalty``), worked out once per list of
        parts: every training step calls the step hooks, and with a small
        network a call that returns None costs a few microseconds a step."""
        cache = self.__dict__.get("_step_parts_cache")
        if cache is None or cache[0] is not self.parts or cache[1] != len(self.parts):
            cache = (self.parts, len(self.parts), {
                name: tuple(k for k, part in enumerate(self.parts)
                            if any(_overrides(part, n) for n in names))
                for name, names in _STEP_HOOKS.items()})
            self.__dict__["_step_parts_cache"] = cache
        return cache[2][hook]

    def loss_penalty(self, net):
        parts = self.parts
        return _sum_terms(parts[k].loss_penalty(net) for k in self._step_parts("loss_penalty"))

    @property
    def reports_penalty(self):
        return any(part.reports_penalty for part in self.parts)

    def penalty_value(self, net):
        values = [part.penalty_value(net) for part in self.parts]
        values = [v for v in values if v is not None]
        return sum(values) if values else None

    def penalty_gradient(self, net):
        parts = self.parts
        for k in self._step_parts("penalty_gradient"):
            parts[k].penalty_gradient(net)

    def batch_penalty(self, net, X, y_pred, y_true):
        parts = self.parts
        return _sum_terms(parts[k].batch_penalty(net, X, y_pred, y_true)
                          for k in self._step_parts("batch_penalty"))

    def end_month(self, net, X, y, sample_weight=None):
        for part in self.parts:
            call_hook(part.end_month, net, X, y, sample_weight)

    def grow_classes(self, net, n_old, n_new):
        for part in self.parts:
            part.grow_classes(net, n_old, n_new)

    def predictive_states(self, net):
        for part in self.parts:
            states = part.predictive_states(net)
            if states is not None:
                return states
        return None

    def memory_files(self):
        """Every part's memory files (sorted, each once)."""
        return sorted({path for part in self.parts for path in part.memory_files()})

    def state_dict(self):
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state, net):
        for part, part_state in zip(self.parts, state["parts"]):
            part.load_state_dict(part_state, net)

    def savepoint(self):
        return [part.savepoint() for part in self.parts]

    def rollback(self, savepoint):
        for part, saved in zip(self.parts, savepoint):
            part.rollback(saved)

    def commit(self, savepoint):
        for part, saved in zip(self.parts, savepoint):
            part.commit(saved)

    def __repr__(self):
        return f"Combined({', '.join(map(repr, self.parts))})"


#: The per-step hooks and the methods whose override makes a part take part.
_STEP_HOOKS = {
    "loss_penalty": ("loss_penalty", "penalty"),
    "batch_penalty": ("batch_penalty",),
    "penalty_gradient": ("penalty_gradient",),
}


def _overrides(part, name):
    """Whether ``part`` (its class, or the instance itself) replaces the
    base :class:`Strategy`'s method ``name``."""
    return name in vars(part) or getattr(type(part), name) is not getattr(Strategy, name)


def _sum_terms(terms):
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else total + term
    return total
