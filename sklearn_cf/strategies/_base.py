"""The hooks a continual-learning strategy implements."""

import copy
import inspect

import torch

from .._param_validation import check_hyperparameters

__all__ = ["Strategy", "RowsKeeper", "attribute_savepoint", "call_hook"]


def _accepts_sample_weight(method):
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return "sample_weight" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def call_hook(method, net, X, y, sample_weight=None):
    """Call ``month_data`` or ``end_month`` with the month's sample weights
    when there are any and the hook takes a ``sample_weight`` argument (a
    strategy written without one still works on unweighted months).

    Parameters
    ----------
    method : callable
        A strategy's bound ``month_data`` or ``end_month``.
    net : ContinualClassifier
    X, y : Tensor
        The month's rows and their class indices.
    sample_weight : Tensor or None, default=None
        The month's sample weights, if any.

    Returns
    -------
    What ``method`` returns.

    Raises
    ------
    TypeError
        When the month has sample weights and ``month_data`` returns rows of
        its own but cannot receive the weights.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cf.strategies import Strategy, call_hook
    >>> class Seen(Strategy):
    ...     def end_month(self, net, X, y, sample_weight=None):
    ...         self.weighted = sample_weight is not None
    >>> class Plain(Strategy):
    ...     def end_month(self, net, X, y):
    ...         self.called = True
    >>> X, y, w = torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.ones(2)
    >>> seen, plain = Seen(), Plain()
    >>> call_hook(seen.end_month, None, X, y, w), seen.weighted
    (None, True)
    >>> call_hook(plain.end_month, None, X, y, w), plain.called
    (None, True)
    """
    if sample_weight is None:
        return method(net, X, y)
    if _accepts_sample_weight(method):
        return method(net, X, y, sample_weight=sample_weight)
    result = method(net, X, y)
    if method.__name__ == "month_data" and result is not None:
        owner = type(getattr(method, "__self__", None)).__name__
        raise TypeError(
            f"{owner}.month_data chooses the rows to train on but takes no "
            "sample_weight, so the month's sample weights would be lost. Add a "
            "sample_weight=None parameter to month_data (and end_month) and return "
            "MonthData(..., weights=...), or fit without sample_weight."
        )
    return result


def attribute_savepoint(strategy):
    """A cheap savepoint for a strategy whose hooks only *rebind* its
    attributes or *append* to its lists and dicts, never change a tensor in
    place: the attributes, with lists and dicts copied one level deep (their
    items are shared, not copied)."""
    return {
        name: copy.copy(value) if isinstance(value, (list, dict)) else value
        for name, value in vars(strategy).items()
    }


class Strategy:
    """Base class of a monthly update rule.

    A strategy decides three things and *returns* them; the classifier applies
    them, so a strategy never reaches into the training loop:

    * :meth:`month_data`: which rows to train on this month,
    * :meth:`penalty`: a term added to the training loss,
    * :meth:`end_month`: what to remember once a month is trained.

    Month-to-month state lives on the strategy object; the classifier keeps a
    private copy (``strategy_``) that :meth:`start` resets at every base fit.

    A strategy says what it needs through *capabilities*, class attributes
    (``fresh_model``, ``needs_log_likelihood``, ``shardable``) that the
    classifier and :mod:`sklearn_cf.accelerate` read, never its name or type.

    Attributes
    ----------
    name : str or None
        The strategy's registry name (``"replay"``, ``"der++"``), a class
        attribute; it names the strategy's parameters inside a
        :class:`Combined` (``replay__rehearsal_ratio``). None for a strategy
        without one (then ``part<k>``).
    parts : list of Strategy
        The strategies this one is made of: ``[self]``, or a
        :class:`Combined`'s parts. Code that looks at each part (its
        capabilities, its parameters) iterates over it.
    fresh_model : bool, default=False
        True when every month trains a newly initialized network (joint
        retraining, ensembles); such months use ``lr`` and ``max_epochs``
        rather than ``finetune_lr`` and ``finetune_epochs``.
    needs_log_likelihood : bool, default=False
        True when the strategy needs the network's outputs as
        log-likelihoods of the classes (the Fisher of EWC): the criterion
        must then be one whose outputs can be read so.
    shardable : bool, default=True
        Whether the strategy can run under several processes
        (:mod:`sklearn_cf.accelerate`): False for one that runs the network
        outside the distributed forward pass (DER's replayed logits).

    Examples
    --------
    A strategy that trains each month on the new rows plus the previous
    month's is a few lines:

    >>> import torch
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.strategies import Strategy
    >>> class LastTwoMonths(Strategy):
    ...     def start(self, net):
    ...         self.previous = None
    ...     def month_data(self, net, X, y):
    ...         if self.previous is None:
    ...             return None
    ...         return torch.cat([self.previous[0], X]), torch.cat([self.previous[1], y])
    ...     def end_month(self, net, X, y):
    ...         self.previous = (X.clone(), y.clone())
    >>> X = torch.randn(60, 3).numpy(); y = (X[:, 0] > 0).astype(int)
    >>> clf = ContinualClassifier(strategy=LastTwoMonths(), max_epochs=2, random_state=0)
    >>> clf = clf.fit(X, y, months=[0] * 20 + [1] * 20 + [2] * 20)
    >>> [c["rows"] for c in clf.cost_]
    [40, 80, 80]
    """

    name = None
    fresh_model = False
    needs_log_likelihood = False
    shardable = True

    @property
    def parts(self):
        """The strategies this one is made of: ``[self]`` (a
        :class:`Combined` has its own ``parts``).

        Examples
        --------
        >>> from sklearn_cf.strategies import Naive
        >>> naive = Naive()
        >>> naive.parts == [naive]
        True
        """
        return [self]

    #: Accepted values of each constructor parameter (``_validation``'s
    #: constraint objects), checked by :meth:`check_params` before a fit.
    _parameter_constraints = {}

    # -- Parameters, as a scikit-learn estimator's ------------------------------
    @classmethod
    def _get_param_names(cls):
        """The constructor's named parameters: the strategy's hyperparameters."""
        init = cls.__init__
        if init is object.__init__:
            return []
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return sorted(p.name for p in inspect.signature(init).parameters.values()
                      if p.name != "self" and p.kind not in skip)

    @classmethod
    def param_defaults(cls):
        """``{name: default}`` of the constructor's parameters."""
        if cls.__init__ is object.__init__:
            return {}
        parameters = inspect.signature(cls.__init__).parameters
        return {name: parameters[name].default for name in cls._get_param_names()}

    def get_params(self, deep=True):
        """The strategy's hyperparameters (its constructor's arguments), so
        that ``sklearn.base.clone`` and ``strategy__param`` grids work."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set hyperparameters; an unknown name is an error naming the valid ones."""
        valid = self._get_param_names()
        for name in params:  # every name checked before any is set
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; its parameters are "
                    f"{valid or 'none'}."
                )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def check_params(self):
        """Raise ``TypeError``/``ValueError`` for a hyperparameter outside
        :attr:`_parameter_constraints`."""
        check_hyperparameters(self, self._parameter_constraints)

    def start(self, net):
        """Forget every month: called before the base fit."""

    def check_month(self, X, y, classes):
        """Reject a month this strategy cannot use, before anything changes.

        Raise ``ValueError`` naming the problem and the fix. ``X`` is a
        float32 array, ``y`` the class indices into ``classes``.
        """

    def month_data(self, net, X, y):
        """Rows to train on this month, or None for the new month's rows.

        A strategy that keeps rows and supports sample weights declares a
        ``sample_weight=None`` keyword here and in :meth:`end_month`; it
        receives the month's weights (a float32 tensor) when the user gave
        any, and returns a ``MonthData`` with ``weights=``.

        Parameters
        ----------
        net : ContinualClassifier
        X : Tensor of shape (n_rows, n_features)
            The new month's rows (float32, CPU). It may share memory with
            the caller's array: clone what you keep.
        y : Tensor of shape (n_rows,)
            Their labels as class indices (int64, CPU).

        Returns
        -------
        None, a pair ``(X, y)`` of tensors, or a :class:`sklearn_cf.strategies.MonthData`.
        """
        return None

    def penalty(self, net):
        """Tensor added to every training batch's loss, or None."""
        return None

    #: True when :meth:`penalty_gradient` adds the penalty's gradient in
    #: closed form; :meth:`penalty` is then never evaluated at a step: its
    #: value is recorded once per epoch (``history``'s ``train_penalty``).
    closed_form_penalty = False

    def loss_penalty(self, net):
        """What the classifier adds to every training batch's loss: the
        penalty through autograd, or None for a closed-form penalty (whose
        gradient :meth:`penalty_gradient` adds, and whose value nobody needs
        at every step)."""
        if self.closed_form_penalty:
            return None
        return self.penalty(net)

    @property
    def reports_penalty(self):
        """Whether the classifier records :meth:`penalty_value` at the end of
        each epoch (closed-form penalties, left out of the step's loss)."""
        return bool(self.closed_form_penalty)

    def penalty_value(self, net):
        """The closed-form penalty's current value as a float (no autograd),
        or None: computed on request, never at every step."""
        if not self.closed_form_penalty:
            return None
        with torch.no_grad():
            value = self.penalty(net)
        return None if value is None else float(value)

    def penalty_gradient(self, net):
        """Closed-form route, called after ``loss.backward()`` on every
        training batch: add the penalty's gradient to the parameters'
        ``.grad`` in place."""

    def batch_penalty(self, net, X, y_pred, y_true):
        """Tensor added to a training batch's loss that depends on the batch,
        or None (distillation, replayed logits...).

        Parameters
        ----------
        net : ContinualClassifier
        X : Tensor of shape (n_rows, n_features)
            The batch's inputs.
        y_pred : Tensor of shape (n_rows, n_classes)
            The network's outputs on them (logits with the default
            criterion), part of the autograd graph.
        y_true : Tensor of shape (n_rows,)
            Their labels as class indices.
        """
        return None

    def end_month(self, net, X, y):
        """Consolidate after a month is trained (anchors, Fisher, memory...)."""

    def predictive_states(self, net):
        """State dicts whose probabilities are averaged to predict, or None
        to predict with the network as it is."""
        return None

    def grow_classes(self, net, n_old, n_new):
        """The network's output layer grew from ``n_old`` to ``n_new`` units
        (new classes, appended after the old ones): make the state fit it.

        Called inside the month's transaction, after ``net.module_`` (and its
        optimizer) grew and before the month trains; a failure rolls the
        month back. Class indices ``0 .. n_old - 1`` keep their meaning, so
        labels stored as indices need no change. Rebind attributes rather
        than change tensors in place, so that :meth:`savepoint` and
        :meth:`rollback` keep working (:func:`grow_parameters` pads a
        per-parameter dict, :func:`silent_state` a state dict).

        A strategy whose state does not depend on the number of classes
        overrides it with an empty method. The default raises
        ``NotImplementedError``: a strategy that does not say how its state
        follows new classes cannot take them.

        Parameters
        ----------
        net : ContinualClassifier
            With its module already grown.
        n_old, n_new : int
            The number of output units before and after.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement grow_classes(net, n_old, n_new), "
            f"so its state cannot follow new classes ({n_old} -> {n_new} outputs). "
            "Implement it (an empty method when the state does not depend on the "
            "classes), or declare every class up front with classes=[...]."
        )

    def memory_files(self):
        """Absolute paths of the files outside the checkpoint that the
        strategy's state references now (memory kept in ``memory_dir``):
        exactly those loading its :meth:`state_dict` opens. A strategy
        that keeps files of its own overrides it; the default is ``[]``."""
        return []

    def state_dict(self):
        """Month-to-month state for a checkpoint: tensors, numbers, strings
        and lists/dicts of them (anything ``torch.load(weights_only=True)``
        reads back). The default returns the attributes set by :meth:`start`
        and the hooks; override it together with :meth:`load_state_dict` if
        they hold other objects."""
        return dict(vars(self))

    def load_state_dict(self, state, net):
        """Restore what :meth:`state_dict` returned, on ``net``'s device."""
        vars(self).update(state)

    # -- A month is a transaction -------------------------------------------
    def savepoint(self):
        """Record what :meth:`rollback` needs to undo the month about to start.

        Called before every month after the base fit. The default is a deep
        copy of the strategy's attributes: always exact, and as large as the
        state. A strategy with a large state overrides it with something
        cheaper (the built-in replay memory keeps an undo log of the slots a
        month overwrites; strategies that only rebind attributes or append to
        lists use :func:`attribute_savepoint`).
        """
        return copy.deepcopy(vars(self))

    def rollback(self, savepoint):
        """The month failed: return to the state recorded by :meth:`savepoint`."""
        vars(self).clear()
        vars(self).update(savepoint)

    def commit(self, savepoint):
        """The month stands: release what :meth:`savepoint` recorded."""



class RowsKeeper(Strategy):
    """A strategy whose large state is one memory of rows (replay's memory,
    joint's history), attribute ``rows_attribute``: a month's savepoint is
    the memory's undo log, never a copy of the memory."""

    rows_attribute = "memory"

    def savepoint(self):
        return attribute_savepoint(self), getattr(self, self.rows_attribute).begin()

    def rollback(self, savepoint):
        attributes, log = savepoint
        attributes[self.rows_attribute].undo(log)
        super().rollback(attributes)

    def commit(self, savepoint):
        attributes, log = savepoint
        attributes[self.rows_attribute].end(log)

    def memory_files(self):
        """The files of the memory of rows (none in RAM)."""
        rows = getattr(self, self.rows_attribute, None)
        return [] if rows is None else list(rows.memory_files())
