"""ContinualClassifier: a skorch classifier that is updated month by month."""

import copy
import inspect
import math
import threading
import time
from typing import NamedTuple

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import get_len, unpack_data
from skorch.utils import to_numpy
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from torch.utils.data import DataLoader, Subset

from .._data import EpochIterator, MonthData, RowsDataset, SliceIterator, as_tensor, nbytes
from .._labels import check_month_label
from .._mlp import MLP
from .._threads import resolve_threads, torch_threads
from .._atomic import SigintWatch
from ._transaction import MonthTransaction, raised_by_early_stopping
from .._validation import check_class_weight, check_device, check_folder, check_features, check_months, check_no_missing, check_random_state_param, check_sample_weight, check_targets, group_by_month, take_rows
from .._param_validation import Integer, IntSequence, Options, Real, Satisfies, Verbosity, check_hyperparameters
from ..exceptions import TrainingDivergedError
from ..strategies import EWC, Combined, Strategy, make_strategy
from ..strategies._base import call_hook

__all__ = ["ContinualClassifier", "MonthSnapshot"]

# Building a user's module class draws from torch's process-wide RNG; the
# lock keeps two fits in threads from interleaving their seeded draws.
_GLOBAL_RNG_LOCK = threading.Lock()
_FISHER_KINDS = ("empirical", "true", "hessian")
_MIN_PREDICT_BATCH = 4096

#: Flat hyperparameters a named strategy's parts take by their signature.
_FLAT_STRATEGY_PARAMS = ("reg_lambda", "rehearsal_ratio", "epoch_size", "memory_size",
                         "memory_dir", "memory_policy", "fisher")
#: Strategy parameters that shape its state: fixed after the base fit.
_STRUCTURAL = ("memory_size", "memory_dir", "memory_policy")

#: What the fitted state is built on: fixed from the base fit until the next
#: ``fit`` (see ``ContinualClassifier._check_sequence_config``).
_SEQUENCE_PARAMS = ("strategy", "memory_size", "memory_dir", "memory_policy", "module",
                    "hidden_units", "dropout", "criterion", "device")


def _check_strategy_param(value, name):
    if not isinstance(value, Strategy):
        make_strategy(value)  # raises for unknown names and types


class MonthSnapshot(NamedTuple):
    """The weights that predicted after training through ``month``.

    ``states`` is a list of CPU state dicts whose predicted probabilities
    are averaged: one for most strategies, one per member for ensembles.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf import ContinualClassifier
    >>> X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    >>> clf = ContinualClassifier(strategy="ensemble", max_epochs=1, random_state=0)
    >>> clf = clf.fit(X, y, months=[0] * 30 + [1] * 30)
    >>> [(s.month, len(s.states)) for s in clf.snapshots_]
    [(0, 1), (1, 2)]
    """

    month: object
    states: list


class _EpochLog(PrintLog):
    """skorch's per-epoch table, shown only from ``verbose=2``."""

    def on_epoch_end(self, net, **kwargs):
        if net.verbose >= 2:
            super().on_epoch_end(net, **kwargs)


def _flat_defaults():
    parameters = inspect.signature(ContinualClassifier.__init__).parameters
    return {name: parameters[name].default for name in _FLAT_STRATEGY_PARAMS}


def _check_n_threads(value, name="n_threads"):
    if value is None or (isinstance(value, str) and value == "auto"):
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f'{name} must be "auto", an int >= 1 or None (torch\'s setting), got {value!r}.'
        )


def _cpu_state(module):
    """A host copy of the module's state. From a GPU: non-blocking copies
    into pinned memory, all in flight at once, then one wait."""
    state = module.state_dict()
    if all(v.device.type == "cpu" for v in state.values()):
        return {k: v.detach().clone() for k, v in state.items()}
    host = {k: torch.empty(v.shape, dtype=v.dtype, pin_memory=True).copy_(v.detach(),
                                                                          non_blocking=True)
            for k, v in state.items()}
    torch.cuda.synchronize()
    return host


def _same(a, b):
    """Whether a hyperparameter still has the value it had at the base fit."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays or objects whose == is not a bool
        return False


def _strategy_parts(strategy):
    return strategy.parts if isinstance(strategy, Combined) else [strategy]


class ContinualClassifier(NeuralNetClassifier):
    """Neural network classifier updated month by month without forgetting.

    A skorch ``NeuralNetClassifier`` for tabular data that is trained on a
    base month and then updated with each new month of labelled rows by a
    chosen *strategy*: naive fine-tuning, joint retraining, model averaging,
    data rehearsal (replay), an L2 or Fisher-weighted (EWC) pull toward the
    previous weights, or replay combined with a pull. Its weights after
    every month are kept (on CPU) so that the forgetting matrix -- the score
    on every month after every month of training -- needs one fit.

    A float32 C-contiguous array or ``np.memmap`` is used in place, never
    copied, so a month may be larger than memory; any other dtype or layout
    (float64, ints, Fortran order, a DataFrame) is first converted into a new
    float32 array the size of the month (see docs/data.md).

    Parameters
    ----------
    module : torch module class, instance or None, default=None
        None builds an :class:`~sklearn_cf._mlp.MLP` sized from the data
        (``hidden_units``, ``dropout``) that returns logits. Any module
        accepted by skorch works (``module__*`` parameters reach it); with
        the default criterion it must return logits.
    strategy : str or Strategy, default="naive"
        How each month after the first updates the network:

        - ``"naive"``: keep training on the new month only (forgets).
        - ``"joint"``: retrain from a fresh initialization on every month
          seen so far (accurate; cost grows every month).
        - ``"ensemble"``: a separate network per month; probabilities are
          averaged.
        - ``"replay"``: mix rows drawn from memory into each fine-tune epoch.
        - ``"l2"``: add ``reg_lambda/2 * sum((theta - theta_prev)^2)``.
        - ``"ewc"``: add ``reg_lambda/2 * sum(F * (theta - theta_prev)^2)``.
        - ``"online_ewc"``: EWC with one anchor and a Fisher accumulated
          over months (``strategy__gamma``).
        - ``"lwf"``: distil last month's network on each batch
          (``strategy__alpha``, ``strategy__temperature``); keeps no rows.
        - ``"der"``, ``"der++"``: Dark Experience Replay; fine-tune on the
          new month while matching the logits stored with rows drawn from
          memory (and, for der++, their labels); ``strategy__alpha``,
          ``strategy__beta``.
        - ``"replay+l2"``, ``"replay+ewc"``, ``"replay+online_ewc"``,
          ``"replay+lwf"``: replay with a pull or distillation.

        The names are :data:`sklearn_cf.strategies.STRATEGIES`. A
        :class:`~sklearn_cf.strategies.Strategy` instance may be passed; it
        is cloned at each fit, and ``strategy__<param>`` reaches its
        hyperparameters (in ``set_params`` and grid searches). With a name,
        ``strategy__<param>`` sets a parameter of the named strategy that
        has no flat parameter here (see
        :func:`sklearn_cf.strategies.strategy_parameters`).
    reg_lambda : float >= 0 or None, default=None
        Strength of the l2/ewc pull. Larger: less forgetting, less learning
        of the new month. None: the strategy's own default (l2: 1.0, ewc:
        1e4, whose Fisher weights are small). Used by "l2", "ewc" and their
        replay combinations.
    rehearsal_ratio : float in [0, 1), default=0.5
        Share of past rows in each replay epoch. Larger: less forgetting,
        and with ``epoch_size=None`` a longer epoch (2x rows at 0.5).
    epoch_size : int or None, default=None
        Replay only. None: each epoch has every new row plus past rows in
        ``rehearsal_ratio``. int: exactly this many rows per fine-tune epoch,
        so the monthly cost is fixed.
    memory_size : int or None, default=None
        Replay and DER. None: remember every past training row. int: keep
        at most this many rows (bounded memory), chosen by ``memory_policy``.
    memory_policy : {"reservoir", "class_balanced"}, default="reservoir"
        Replay and DER, with an int ``memory_size``: which past rows the
        memory keeps. "reservoir": a uniform sample of all rows seen, so a
        class keeps its share of the stream (a 1% class about 1% of the
        memory). "class_balanced": class-balancing reservoir sampling
        (CBRS, Chrysakis & Moens 2020): a rare class keeps every row until
        it is as large as the largest class, and each class is a uniform
        sample of its own rows. Same memory size and cost per month; needs
        ``memory_size``.
    memory_dir : path-like or None, default=None
        Replay, DER and joint. None: past rows are kept in RAM. A folder: they
        are kept in memory-mapped ``.npy`` files in a new subfolder of it
        (one per fitted sequence), so history need not fit in RAM; the same
        ``random_state`` gives the same predictions either way. Checkpoints
        record the files' SHA-256 and refuse a memory that changed since.
    finetune_lr : float or None, default=None
        Learning rate of every month after the first for strategies that
        fine-tune (all but "joint" and "ensemble"); None keeps ``lr``. The
        study found a lower rate (e.g. 1e-4 after 1e-3) forgets less.
    finetune_epochs : int or None, default=None
        Epochs of every fine-tune month; None uses ``max_epochs``.
    fisher : {"empirical", "true", "hessian"}, default="empirical"
        EWC only: how the Fisher diagonal is estimated, see
        :func:`sklearn_cf.fisher_diagonal`.
    hidden_units : sequence of int, default=(256, 256)
        Hidden layer widths of the default MLP.
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden layer of the default MLP.
    max_snapshots : int or None, default=100
        How many per-month weight snapshots to keep (the most recent ones);
        None keeps all, 0 none. Each costs one copy of the weights in host
        memory (ensembles share member copies).
    random_state : int, RandomState instance or None, default=None
        Seeds initialization, shuffling, dropout and replay sampling. With an
        int, the same data give identical predictions on CPU, also for fits
        running in parallel threads (for the default MLP; a custom module
        that draws from torch's global RNG is seeded but not isolated).
    criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=1e-3
        Learning rate of the base fit and of fresh-model strategies.
    max_epochs : int, default=10
        Epochs per month (the base month, and others unless
        ``finetune_epochs`` is set).
    batch_size : int, default=256
        Training batch size. Prediction uses batches of at least 4096 rows
        unless ``iterator_valid__batch_size`` is set.
    train_split : callable or None, default=None
        skorch's internal validation split, off by default: evaluation
        belongs to :class:`~sklearn_cf.SequentialSplit`.
    verbose : int, default=0
        0: silent. 1: a line per month. 2: also skorch's table per epoch.
    device : str, default="cpu"
        Torch device, e.g. "cuda". Anchors, Fisher weights and penalties live
        there; replay memory and snapshots stay in host memory. Host batches
        reach a GPU through pinned memory with non-blocking copies, the next
        batch's copy overlapping the current step.
    month_on_device : {"auto", True, False}, default="auto"
        With a GPU ``device``: move the month's rows (and the replay rows it
        mixes in) to the device once, and gather batches there. "auto" does
        so when they take less than half the device's free memory; False
        keeps them on the host. Ignored on the CPU.
    classes : array-like or None, default=None
        All class labels, for a sequence of ``partial_fit_month`` calls
        whose first month lacks some of them.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the training loss, as in scikit-learn:
        None weighs every class 1; a dict maps class labels to weights
        (classes left out weigh 1); "balanced" gives class ``c`` the weight
        ``n_rows / (n_classes * n_rows_of_c)``, counted on the rows the
        month trains on (its first epoch: the new month and, for replay,
        the past rows mixed in; for joint, all history), so a rare class
        (malware) counts as much as the others. The weights multiply any
        ``sample_weight`` and also weigh the rows of the EWC Fisher.
    n_threads : "auto", int or None, default="auto"
        Torch CPU threads while training (torch's setting is restored after
        each call). "auto": torch's current count, less one for each thread
        of another process running when the call starts (on this process's
        share of the CPUs), at least 1: two threads trained a small MLP 1.3x
        faster than one on an idle 2-core machine, but 1.7x slower when
        another process held a core (threads wait for one another at every
        kernel; docs/performance.md, section 10). An int: that
        many. None: leave torch's setting alone. ``cost_`` records the
        count each month used. Torch's setting is process-wide: fits running
        at once in threads share it.
    **kwargs
        Other skorch parameters (``callbacks``, ``iterator_train__*``,
        ``optimizer__*``, ``module__*`` ...).

    Attributes
    ----------
    classes_ : ndarray
        Class labels, sorted.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    months_seen_ : list
        Labels of the months trained, in order.
    cost_ : list of dict
        Per month: ``month``, ``rows`` (training rows processed, all
        epochs), ``epochs``, ``seconds`` (including consolidation) and
        ``threads`` (torch CPU threads used, see ``n_threads``).
    snapshots_ : list of MonthSnapshot
        Weights after each month (see ``max_snapshots``).
    strategy_ : Strategy
        The fitted strategy object, with its month-to-month state.

    See Also
    --------
    SequentialSplit : hold out part of every month for evaluation.
    forgetting_matrix : score every snapshot on every month.

    Notes
    -----
    ``fit`` always starts from scratch; ``partial_fit_month`` continues.
    Month-to-month state is set up at the base fit, never in skorch's
    ``initialize`` (skorch fires ``on_train_begin`` on every month).

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=300, random_state=0)
    >>> clf = ContinualClassifier(strategy="replay", max_epochs=3, random_state=0)
    >>> clf = clf.fit(X, y, months=months)
    >>> clf.months_seen_
    [0, 1, 2]
    >>> clf.predict(X[:5]).shape
    (5,)
    >>> bool(clf.score(X, y) > 0.6)
    True
    """

    def __init__(
        self,
        module=None,
        *,
        strategy="naive",
        reg_lambda=None,
        rehearsal_ratio=0.5,
        epoch_size=None,
        memory_size=None,
        memory_dir=None,
        memory_policy="reservoir",
        finetune_lr=None,
        finetune_epochs=None,
        fisher="empirical",
        hidden_units=(256, 256),
        dropout=0.0,
        max_snapshots=100,
        random_state=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=10,
        batch_size=256,
        train_split=None,
        verbose=0,
        device="cpu",
        classes=None,
        month_on_device="auto",
        class_weight=None,
        n_threads="auto",
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            verbose=verbose,
            device=device,
            classes=classes,
            **kwargs,
        )
        self.strategy = strategy
        self.reg_lambda = reg_lambda
        self.rehearsal_ratio = rehearsal_ratio
        self.epoch_size = epoch_size
        self.memory_size = memory_size
        self.memory_dir = memory_dir
        self.memory_policy = memory_policy
        self.finetune_lr = finetune_lr
        self.finetune_epochs = finetune_epochs
        self.fisher = fisher
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.max_snapshots = max_snapshots
        self.random_state = random_state
        self.month_on_device = month_on_device
        self.class_weight = class_weight
        self.n_threads = n_threads

    # skorch keeps these through pickling with torch's map_location, so a
    # model fitted on a GPU loads on a CPU-only machine.
    cuda_dependent_attributes_ = NeuralNetClassifier.cuda_dependent_attributes_ + [
        "strategy_"
    ]
    # strategy__<param>: a hyperparameter of the strategy (see set_params).
    prefixes_ = NeuralNetClassifier.prefixes_ + ["strategy"]

    #: Every hyperparameter's accepted values, checked at each call that
    #: trains (so a change between months is checked too) and at load.
    _hyperparameter_constraints = {
        "strategy": Satisfies(_check_strategy_param),
        "reg_lambda": Real(0, np.inf, none=True),
        "rehearsal_ratio": Real(0, 1, high_open=True),
        "epoch_size": Integer(1, none=True),
        "memory_size": Integer(1, none=True),
        "memory_dir": Satisfies(check_folder),
        "memory_policy": Options("reservoir", "class_balanced"),
        "finetune_lr": Real(0, np.inf, low_open=True, none=True),
        "finetune_epochs": Integer(1, none=True),
        "fisher": Options(*_FISHER_KINDS),
        "hidden_units": IntSequence(1),
        "dropout": Real(0, 1, high_open=True),
        "max_snapshots": Integer(0, none=True),
        "random_state": Satisfies(check_random_state_param),
        "lr": Real(0, np.inf, low_open=True),
        "max_epochs": Integer(1),
        "batch_size": Integer(1, also=(-1,)),
        "verbose": Verbosity(),
        "device": Satisfies(check_device),
        "month_on_device": Options("auto", True, False),
        "class_weight": Satisfies(check_class_weight),
        "n_threads": Satisfies(_check_n_threads),
    }

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("print_log", _EpochLog()),
        ]

    @property
    def classes_(self):
        try:
            return self.classes_inferred_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no classes_ before it is fitted."
            ) from None

    @property
    def fisher_negative_share_(self):
        """Share of negative Hessian-diagonal entries per month (EWC with
        ``fisher="hessian"``), before they were clipped to 0."""
        for part in _strategy_parts(getattr(self, "strategy_", None) or Strategy()):
            if isinstance(part, EWC) and part.fisher == "hessian":
                return np.asarray(part.negative_shares)
        raise AttributeError(
            "fisher_negative_share_ exists only for a fitted EWC strategy with "
            "fisher='hessian'."
        )

    def __sklearn_is_fitted__(self):
        return bool(getattr(self, "months_seen_", None))

    def _get_param_names(self):
        # skorch lists its internal set ``_params_to_validate`` as a
        # hyperparameter; it is rebuilt from the keyword arguments instead.
        return [k for k in super()._get_param_names() if k != "_params_to_validate"]

    # ------------------------------------------------------------------
    # Public training API
    # ------------------------------------------------------------------
    def fit(self, X, y, months=None, sample_weight=None):
        """Train from scratch: on one base month, or on a whole sequence.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any sortable type). ``classes_`` are taken from all
            of ``y`` (or the ``classes`` parameter).
        months : array-like of shape (n_samples,), default=None
            Month label of each row (ints, strings, datetimes, pandas
            Periods: anything sortable). The months are trained in sorted
            order: the first is the base fit, each later one goes through
            :meth:`partial_fit_month`. None: all rows are one base month.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the training loss: each batch's
            loss is the weighted mean ``sum_i w_i l_i / sum_i w_i`` (torch's
            meaning for class weights, so repeating a row equals weighing it
            2), and the EWC Fisher is weighted the same way. Replay and joint
            keep the weights with the rows they remember. None: every row
            weighs 1.

        Returns
        -------
        self : ContinualClassifier
        """
        # Everything is checked before the fitted model is touched: a refit
        # that is rejected leaves the old model as it was.
        X_arr, names = check_features(X)
        y_arr = check_targets(y, len(X_arr))
        weights = check_sample_weight(sample_weight, len(X_arr))
        self._check_hyperparameters()
        classes = self._resolve_classes(y_arr, self.classes)
        self._check_class_weight_labels(classes)
        if months is None:
            labels, rows = [0], [np.arange(len(X_arr))]
        else:
            labels, rows = group_by_month(check_months(months, len(X_arr)))
            labels = [check_month_label(label, "months") for label in labels]
        codes = np.searchsorted(classes, y_arr)
        strategy = self._make_strategy()
        for idx in rows:
            strategy.check_month(take_rows(X_arr, idx), codes[idx], classes)

        def start():
            self._start_sequence(X_arr.shape[1], names, classes, strategy)

        # Each month is a transaction; the base month's includes setting up
        # the new sequence, so a failure there restores the old model.
        with torch_threads(resolve_threads(self.n_threads)):
            for k, (label, idx) in enumerate(zip(labels, rows)):
                self._run_month(take_rows(X_arr, idx), codes[idx], label,
                                start=start if k == 0 else None,
                                position=(k + 1, len(labels)),
                                sample_weight=None if weights is None else weights[idx])
        return self

    def partial_fit_month(self, X, y, classes=None, month=None, sample_weight=None):
        """Update the model with one new month, as the strategy says.

        On an unfitted estimator this is the base fit.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, default=None
            Every class label, needed at the first call when later months
            bring labels the first lacks (or use the ``classes`` parameter).
        month : object, default=None
            Label of this month, which must sort after the months already
            seen. None: the next integer (0 for the base fit).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the training loss; see
            :meth:`fit`.

        Returns
        -------
        self : ContinualClassifier

        Examples
        --------
        >>> from sklearn_cf import ContinualClassifier
        >>> from sklearn_cf.datasets import make_monthly_drift
        >>> X, y, months = make_monthly_drift(n_months=2, n_samples_per_month=200, random_state=0)
        >>> clf = ContinualClassifier(strategy="l2", reg_lambda=10.0, max_epochs=2, random_state=0)
        >>> clf = clf.partial_fit_month(X[months == 0], y[months == 0], month="2024-01")
        >>> clf = clf.partial_fit_month(X[months == 1], y[months == 1], month="2024-02")
        >>> clf.months_seen_, [c["rows"] for c in clf.cost_]
        (['2024-01', '2024-02'], [400, 400])
        """
        first = not self.__sklearn_is_fitted__()
        if first:
            X_arr, names = check_features(X)
            y_arr = check_targets(y, len(X_arr))
            weights = check_sample_weight(sample_weight, len(X_arr))
            self._check_hyperparameters()
            given = classes if classes is not None else self.classes
            fitted_classes = self._resolve_classes(y_arr, given)
            label = 0 if month is None else check_month_label(month, "month")
        else:
            X_arr, names = check_features(
                X,
                n_features=self.n_features_in_,
                feature_names=getattr(self, "feature_names_in_", None),
            )
            y_arr = check_targets(y, len(X_arr))
            weights = check_sample_weight(sample_weight, len(X_arr))
            self._check_hyperparameters()
            fitted_classes = self.classes_
            if classes is not None:
                check_no_missing(classes, "classes")
                if not np.array_equal(np.unique(classes), fitted_classes):
                    raise ValueError(
                        f"classes={list(np.unique(classes))} differs from the classes "
                        f"fixed at the base fit, {list(fitted_classes)}."
                    )
            label = self._next_month_label(month)
            self._check_sequence_config()
        self._check_class_weight_labels(fitted_classes)
        codes = self._encode(y_arr, fitted_classes)
        strategy = self._make_strategy() if first else self.strategy_
        strategy.check_month(X_arr, codes, fitted_classes)

        def start():
            self._start_sequence(X_arr.shape[1], names, fitted_classes, strategy)

        with torch_threads(resolve_threads(self.n_threads)):
            self._run_month(X_arr, codes, label, start=start if first else None,
                            sample_weight=weights)
        return self

    def partial_fit(self, X, y=None, classes=None, sample_weight=None, **fit_params):
        """Alias of :meth:`partial_fit_month`: each call is one new month."""
        if fit_params:
            raise TypeError(
                f"partial_fit got unexpected arguments {sorted(fit_params)}; "
                "use partial_fit_month(X, y, classes=..., month=..., sample_weight=...)."
            )
        return self.partial_fit_month(X, y, classes=classes, sample_weight=sample_weight)

    def save(self, path):
        """Write the fitted model and its month-to-month state to ``path``.

        The file holds only tensors and plain data and is read back with
        ``torch.load(weights_only=True)`` by :func:`sklearn_cf.load`, so
        loading it cannot run code. It records the package version, the
        hyperparameters, the weights, the optimizer state, the strategy's
        state (anchors, Fisher, memory, members), the snapshots and the
        random generator, so that a sequence continued after loading gives
        the same predictions as one that was never interrupted. skorch's
        training ``history`` is not kept.

        The file is replaced atomically (a temporary file in the same folder,
        flushed, fsynced and renamed over ``path``): a save that fails part-way
        (a full disk, Ctrl-C) raises and leaves a previous file at ``path`` as
        it was.

        Parameters
        ----------
        path : str or path-like
        """
        from ._checkpoint import save

        save(self, path)

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------
    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        X_t = self._prediction_input(X)
        states = self.strategy_.predictive_states(self)
        if states is not None:
            return self._proba_from_states(X_t, states)
        # skorch's predict_proba keeps every batch's output and concatenates
        # them (the output twice); batches are written into one array here.
        nonlinearity = self._get_predict_nonlinearity()
        proba, start = None, 0
        for out in self.forward_iter(X_t, training=False):
            out = out[0] if isinstance(out, tuple) else out
            part = to_numpy(nonlinearity(out))
            if proba is None:
                proba = np.empty((len(X_t), *part.shape[1:]), dtype=part.dtype)
            proba[start : start + len(part)] = part
            start += len(part)
        return proba

    def predict(self, X):
        """Predicted class labels (values of ``classes_``, not indices).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def predict_proba_after(self, X, month):
        """Probabilities of the model as it was after training through ``month``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        month : object
            A label in ``months_seen_`` whose snapshot is kept.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_cf import ContinualClassifier
        >>> from sklearn_cf.datasets import make_monthly_drift
        >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
        >>> clf = ContinualClassifier(max_epochs=2, random_state=0).fit(X, y, months=months)
        >>> bool(np.array_equal(clf.predict_proba_after(X, 2), clf.predict_proba(X)))
        True
        """
        X_t = self._prediction_input(X)
        for snapshot in self.snapshots_:
            if snapshot.month == month:
                return self._proba_from_states(X_t, snapshot.states)
        if month in self.months_seen_:
            raise ValueError(
                f"The snapshot of month {month!r} was dropped (max_snapshots="
                f"{self.max_snapshots}); refit with a larger max_snapshots."
            )
        raise ValueError(f"Month {month!r} was not trained; months_seen_={self.months_seen_}.")

    # ------------------------------------------------------------------
    # skorch seams
    # ------------------------------------------------------------------
    def initialize_module(self):
        self.module_ = self._new_module()
        return self

    def check_data(self, X, y=None):
        # Inputs are validated before training starts (see fit); skorch's
        # check would re-infer the classes from a single month.
        pass

    def get_split_datasets(self, X, y=None, **fit_params):
        if not (self.train_split and isinstance(X, MonthData)):
            return super().get_split_datasets(X, y, **fit_params)
        train, valid = super().get_split_datasets(X, y, **fit_params)
        if not (isinstance(valid, Subset) and valid.dataset is X):
            raise TypeError(
                f"train_split={self.train_split!r} returned {type(valid).__name__}; "
                "ContinualClassifier needs a split that returns torch Subsets of the "
                "dataset it is given (as skorch's ValidSplit does), so that it can keep "
                "the validation rows out of every later epoch."
            )
        # The split indexes positions of the current epoch's plan, which is
        # redrawn every epoch (replay): hold the rows themselves out instead,
        # so validation rows never reach training in any epoch.
        held = X.hold_out(X.plan[torch.as_tensor(np.asarray(valid.indices))].numpy())
        return X, held

    def get_dataset(self, X, y=None):
        if isinstance(X, torch.Tensor) and y is None:
            return RowsDataset(X)
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        if training:
            kwargs = self.get_params_for("iterator_train")
            if (
                isinstance(dataset, MonthData)
                and self.iterator_train is DataLoader
                and set(kwargs) <= {"batch_size", "shuffle"}
            ):
                batch_size = kwargs.get("batch_size", self.batch_size)
                if batch_size == -1:
                    batch_size = len(dataset)
                return EpochIterator(
                    dataset, batch_size, kwargs.get("shuffle", True), self.batch_generator_,
                    device=self.device,
                )
            # Any other set-up (a train_split's Subset, DataLoader options):
            # skorch's iterator, still shuffled by default and seeded.
            kwargs.setdefault("batch_size", self.batch_size)
            if kwargs["batch_size"] == -1:
                kwargs["batch_size"] = len(dataset)
            kwargs.setdefault("shuffle", True)
            if kwargs["shuffle"] and self.iterator_train is DataLoader:
                kwargs.setdefault("generator", self.batch_generator_)
            return self.iterator_train(dataset, **kwargs)
        kwargs = self.get_params_for("iterator_valid")
        if (
            isinstance(dataset, MonthData)
            and self.iterator_valid is DataLoader
            and set(kwargs) <= {"batch_size"}
        ):
            return EpochIterator(dataset, self._predict_batch_size(len(dataset)), shuffle=False)
        if (
            isinstance(dataset, RowsDataset)
            and self.iterator_valid is DataLoader
            and set(kwargs) <= {"batch_size"}
        ):
            return SliceIterator(dataset, self._predict_batch_size(len(dataset)))
        return super().get_iterator(dataset, training=False)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        data = dataset_train.dataset if isinstance(dataset_train, Subset) else dataset_train
        if isinstance(data, MonthData):
            if self.epochs_run_in_month_ > 0:
                data.resample(self.rng_)
            self.epochs_run_in_month_ += 1

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        # A closed-form penalty (L2/EWC pull) adds only its gradient at each
        # step; its value is computed here, once per epoch, for the history.
        strategy = getattr(self, "strategy_", None)
        if strategy is not None and strategy.reports_penalty:
            value = strategy.penalty_value(self)
            if value is not None:
                self.history.record("train_penalty", value)

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        # skorch reads every batch's loss with .item() anyway; checking it
        # here stops a diverging month before the optimizer steps on it.
        loss = float(step["loss"].detach())
        if not math.isfinite(loss):
            self._raise_diverged(f"the training loss became {loss}", unpack_data(batch)[0])
        if getattr(self, "strategy_", None) is not None:
            # Closed-form penalties (L2, EWC) add their gradient after the
            # backward pass, far cheaper than differentiating them.
            self.strategy_.penalty_gradient(self)
        self.rows_in_month_ += get_len(unpack_data(batch)[1])
        return step

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weights = None
        if isinstance(y_true, (tuple, list)):  # weighted rows: (y, w)
            y_true, weights = y_true
        weights = self.row_weights(y_true, weights)
        if weights is None:
            loss = super().get_loss(y_pred, y_true, X=X, training=training)
        else:
            total, weight_sum, reduction = self._weighted_loss(
                y_pred, y_true, weights, X, training)
            # The weighted mean (torch's meaning for class weights): a batch
            # of zero-weight rows has loss 0, not 0/0.
            loss = total if reduction == "sum" else total / weight_sum.clamp_min(
                torch.finfo(weight_sum.dtype).tiny)
        if training:
            terms = self._strategy_terms(X, y_pred, y_true)
            if terms is not None:
                loss = loss + terms
        return loss

    def _strategy_terms(self, X, y_pred, y_true):
        """The strategy's terms of a training batch's loss (its autograd
        penalty and its batch penalty), or None."""
        strategy = getattr(self, "strategy_", None)
        if strategy is None:
            return None
        total = strategy.loss_penalty(self)
        term = strategy.batch_penalty(self, X, y_pred, y_true)
        if term is not None:
            total = term if total is None else total + term
        return total

    def _weighted_loss(self, y_pred, y_true, weights, X, training):
        """``(sum_i w_i l_i, sum_i w_i, reduction)`` of the batch, from the
        criterion's per-row losses (its ``reduction`` set to "none" for the
        call): the loss is their ratio, the weighted mean (or the weighted
        sum for a criterion with ``reduction="sum"``)."""
        criterion = self.criterion_
        if getattr(criterion, "reduction", None) not in ("mean", "sum", "none"):
            raise TypeError(
                f"sample_weight and class_weight need per-row losses, but the criterion "
                f"{type(criterion).__name__} has no reduction='none' mode. Use a torch "
                "loss (e.g. torch.nn.CrossEntropyLoss), or fit without weights."
            )
        reduction = criterion.reduction
        criterion.reduction = "none"
        try:
            rows = super().get_loss(y_pred, y_true, X=X, training=training)
        finally:
            criterion.reduction = reduction
        weights = torch.as_tensor(weights).to(device=rows.device, dtype=rows.dtype)
        if rows.shape != weights.shape:
            raise ValueError(
                f"The criterion returned per-row losses of shape {tuple(rows.shape)} for "
                f"{len(weights)} weighted rows; sample_weight and class_weight need one "
                "loss per row."
            )
        return (rows * weights).sum(), weights.sum(), reduction

    def _month_class_weights(self, data):
        """The class weights of this month as a tensor on the device (one per
        class index), or None: ``class_weight`` resolved on the rows of the
        month's first epoch."""
        class_weight = self.class_weight
        if class_weight is None:
            return None
        n_classes = len(self.classes_)
        if class_weight == "balanced":
            labels = data.plan_labels().cpu()
            counts = torch.bincount(labels, minlength=n_classes).double()
            vector = len(labels) / (n_classes * counts.clamp_min(1))
            # A class absent from the month's rows has no balanced weight;
            # 1 keeps its rows elsewhere (DER's buffer) at their plain weight.
            vector[counts == 0] = 1.0
        else:
            vector = torch.ones(n_classes, dtype=torch.float64)
            for label, weight in class_weight.items():
                vector[int(np.searchsorted(self.classes_, label))] = float(weight)
        return vector.to(device=self.device, dtype=torch.float32)

    def _check_class_weight_labels(self, classes):
        if isinstance(self.class_weight, dict):
            unknown = [k for k in self.class_weight if not np.any(classes == k)]
            if unknown:
                raise ValueError(
                    f"class_weight has labels {unknown[:10]} that are not classes of y "
                    f"({classes.tolist()}); use the labels of y as its keys."
                )

    def row_weights(self, y, sample_weight=None):
        """Per-row loss weights of rows with class indices ``y`` in the month
        being trained (``sample_weight`` times the month's class weights),
        or None when rows are not weighted; on the device of the class
        weights. The loss of every batch uses it, and strategies weigh the
        rows of what they compute from a month with it (the EWC Fisher)."""
        class_weights = self.__dict__.get("month_class_weight_")
        if class_weights is None:
            return sample_weight
        per_row = class_weights[torch.as_tensor(y).to(class_weights.device)]
        if sample_weight is None:
            return per_row
        return torch.as_tensor(sample_weight).to(per_row.device) * per_row

    # ------------------------------------------------------------------
    # Month bookkeeping
    # ------------------------------------------------------------------
    def _check_sequence_config(self):
        """The strategy, its memory, the network and its device are fixed from
        the base fit on: the fitted weights and the strategy's state are built
        on them."""
        fixed = self.sequence_config_
        changed = [name for name, value in fixed.items() if not _same(getattr(self, name), value)]
        details = [f"{n}={fixed[n]!r} -> {getattr(self, n)!r}" for n in changed]
        if not changed:
            # The same, set as strategy__<param> or on a strategy object:
            # the strategy the settings give now against the fitted one.
            fresh = _strategy_parts(self._make_strategy())
            for new, old in zip(fresh, _strategy_parts(self.strategy_)):
                for name in _STRUCTURAL:
                    if name in new._get_param_names() and not _same(
                            getattr(new, name), getattr(old, name, None)):
                        details.append(f"the strategy's {name}={getattr(old, name)!r} -> "
                                       f"{getattr(new, name)!r}")
        if details:
            detail = ", ".join(details)
            raise ValueError(
                f"{detail} changed after the base fit; the fitted network and the state "
                "kept between months depend on it. Set it back to continue this "
                "sequence, or call fit to start a new one (on "
                "sklearn.base.clone(model).set_params(...) to keep this model)."
            )

    def _strategy_params(self):
        """The ``strategy__<param>`` values set on this estimator."""
        return {key[len("strategy__"):]: value for key, value in vars(self).items()
                if key.startswith("strategy__")}

    def _sync_strategy(self):
        """Apply the current hyperparameters to the fitted strategy, so that
        set_params(reg_lambda=...) or set_params(strategy__alpha=...) between
        months takes effect (the structural ones are fixed, see
        _check_sequence_config)."""
        if isinstance(self.strategy, Strategy):
            params = self.strategy.get_params(deep=True)
            if isinstance(self.strategy, Combined):
                params = {k: v for k, v in params.items() if "__" in k}
            self.strategy_.set_params(**{k: v for k, v in params.items()
                                         if k.rpartition("__")[2] not in _STRUCTURAL})
            return
        given = {**self._flat_strategy_params(), **self._strategy_params()}
        for part in _strategy_parts(self.strategy_):
            defaults = type(part).param_defaults()
            for name in part._get_param_names():
                if name in _STRUCTURAL:
                    continue
                # Set, or set back to the default: the part's own default.
                setattr(part, name, given.get(name, defaults[name]))

    def set_params(self, **params):
        fitted = self.__sklearn_is_fitted__()
        rebuilt = sorted(k for k in params if k.startswith(("module__", "criterion__")))
        if fitted and rebuilt:
            # Refused before anything is set: the model stays as it was.
            raise ValueError(
                f"set_params({', '.join(rebuilt)}) would re-initialize the network of a "
                "fitted model (skorch rebuilds it), leaving months_seen_, snapshots_ "
                "and the strategy's state about other weights. Set them before fit, "
                "or call fit afterwards on a clone."
            )
        strategy_params = {k: params.pop(k) for k in list(params) if k.startswith("strategy__")}
        strategy = params.pop("strategy", self.strategy)
        if strategy_params and isinstance(strategy, Strategy):
            # Routed to the user's object, as sklearn does for nested
            # estimators (the fitted copy follows at the next month); the
            # object checks every name before it sets any.
            strategy.set_params(**{k[len("strategy__"):]: v for k, v in strategy_params.items()})
        # "strategy" is also skorch's prefix of strategy__*; skorch's own
        # set_params would take it for a module to re-initialize.
        self.strategy = strategy
        if strategy_params and not isinstance(strategy, Strategy):
            # Kept like skorch's module__ parameters; skorch's own set_params
            # would try to re-initialize a "strategy" module.
            vars(self).update(strategy_params)
            self._params_to_validate.update(strategy_params)
        if fitted:
            # skorch rebuilds module_/criterion_ as soon as these change, which
            # would replace the fitted network (and the criterion_ that decides
            # predict_proba's nonlinearity). As in sklearn, the new value waits
            # for the next fit; partial_fit_month refuses it meanwhile.
            for name in ("module", "criterion"):
                if name in params:
                    setattr(self, name, params.pop(name))
        return super().set_params(**params)

    def _check_hyperparameters(self):
        """Check every hyperparameter (declared in ``_hyperparameter_constraints``)
        and the combinations a strategy needs; called by every method that
        trains, before anything changes."""
        check_hyperparameters(self, self._hyperparameter_constraints)
        self._make_strategy()  # the strategy's own parameters, by its constraints
        if not isinstance(self.strategy, Strategy):
            if "ewc" in self.strategy:
                criterion = self.criterion
                kind = criterion if isinstance(criterion, type) else type(criterion)
                if not issubclass(kind, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)):
                    raise TypeError(
                        f"strategy={self.strategy!r} needs the log-likelihood of the "
                        f"classes, but criterion is {kind.__name__}. Use "
                        "torch.nn.CrossEntropyLoss (module returns logits) or "
                        "torch.nn.NLLLoss (module returns probabilities)."
                    )
        self._check_device_available()

    def _check_device_available(self):
        device = str(self.device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r} was requested but CUDA is not available "
                f"to this torch build ({torch.__version__}); use device='cpu' or "
                "install a CUDA build of torch on a machine with a GPU."
            )

    @staticmethod
    def _resolve_classes(y, given):
        if given is not None and len(given):
            check_no_missing(np.asarray(given).reshape(-1), "classes")
            classes = np.unique(np.asarray(given))
            unknown = np.setdiff1d(np.unique(y), classes)
            if len(unknown):
                raise ValueError(
                    f"y contains labels {unknown[:10].tolist()} that are not in "
                    f"classes={classes.tolist()}; add them to classes."
                )
        else:
            classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"The base fit needs at least 2 classes, got one class: {classes.tolist()}. "
                "If later months bring other labels, pass classes=[...] with all of them."
            )
        return classes

    @staticmethod
    def _encode(y, classes):
        codes = np.searchsorted(classes, y)
        codes = np.clip(codes, 0, len(classes) - 1)
        unseen = classes[codes] != y
        if np.any(unseen):
            raise ValueError(
                f"y contains labels {np.unique(y[unseen])[:10].tolist()} not seen at "
                f"the base fit (classes_={classes.tolist()}). Pass every label up "
                "front with classes=[...] at the first partial_fit_month call or "
                "in the constructor."
            )
        return codes

    def _next_month_label(self, month):
        if month is not None:
            month = check_month_label(month, "month")
        last = self.months_seen_[-1]
        if month is None:
            if isinstance(last, (int, np.integer)) and not isinstance(last, bool):
                return int(last) + 1
            raise ValueError(
                f"Months so far are labelled like {last!r}; pass month=... to "
                "partial_fit_month."
            )
        try:
            in_order = bool(month > last)
        except TypeError:
            raise ValueError(
                f"month={month!r} cannot be compared with the previous month {last!r}; "
                "use labels of one sortable type."
            ) from None
        if not in_order:
            raise ValueError(
                f"month={month!r} does not come after the last month trained, {last!r}; "
                "months must arrive in increasing order."
            )
        return month

    def _flat_strategy_params(self):
        """The flat hyperparameters set away from their defaults, which reach
        a named strategy's parts (at their defaults, a part keeps its own,
        and ``strategy__<param>`` may set it instead)."""
        defaults = _flat_defaults()
        return {name: getattr(self, name) for name in _FLAT_STRATEGY_PARAMS
                if not _same(getattr(self, name), defaults[name])}

    def _make_strategy(self):
        return make_strategy(self.strategy, self._flat_strategy_params(),
                             self._strategy_params())

    def _start_sequence(self, n_features, names, classes, strategy=None):
        """Forget everything and set up the state of a new sequence of months."""
        self.n_features_in_ = n_features
        if names is not None:
            self.feature_names_in_ = names
        elif "feature_names_in_" in vars(self):
            del self.feature_names_in_
        self.classes_inferred_ = classes
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        self.rng_ = np.random.default_rng(seed)
        self.months_seen_ = []
        self.cost_ = []
        self.snapshots_ = []
        self.batch_generator_ = None
        self.strategy_ = strategy if strategy is not None else self._make_strategy()
        # What cannot change until the next fit (see _check_sequence_config).
        self.sequence_config_ = {name: getattr(self, name) for name in _SEQUENCE_PARAMS}
        self.initialize()
        self.strategy_.start(self)

    def _new_module(self):
        """A freshly initialized module, seeded from ``rng_``."""
        if not hasattr(self, "rng_"):
            raise NotFittedError(
                f"{type(self).__name__} builds its module from the data: call fit "
                "or partial_fit_month instead of initialize()."
            )
        seed = int(self.rng_.integers(np.iinfo(np.int64).max))
        kwargs = self.get_params_for("module")
        if self.module is None:
            params = {"hidden_units": self.hidden_units, "dropout": self.dropout, **kwargs}
            module = MLP(self.n_features_in_, len(self.classes_), **params)
            return module.reset_parameters(torch.Generator().manual_seed(seed))
        if isinstance(self.module, torch.nn.Module) and not kwargs:
            # Never train the user's object itself; a copy also gives
            # fresh-model strategies the same starting weights every month.
            return copy.deepcopy(self.module)
        with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.initialized_instance(self.module, kwargs)

    def _month_generators(self):
        """Per-month generators for batch order and dropout masks."""
        seeds = self.rng_.integers(np.iinfo(np.int64).max, size=3)
        batches = torch.Generator().manual_seed(int(seeds[0]))
        device = torch.device(self.device)
        dropout = torch.Generator(device=device).manual_seed(int(seeds[1]))
        return batches, dropout, int(seeds[2])

    def _month_data(self, X_t, y_t, w_t=None):
        data = call_hook(self.strategy_.month_data, self, X_t, y_t, w_t)
        if data is None:
            data = MonthData([(X_t, y_t)], weights=None if w_t is None else [w_t])
        elif not isinstance(data, MonthData):
            data = MonthData([tuple(data)])
        return data

    def _run_month(self, X, codes, label, start=None, position=None, sample_weight=None):
        """Train one month as a transaction: if anything goes wrong inside it
        (an exception, Ctrl-C, a diverging loss, a failed consolidation),
        everything it changed is put back and the error propagates."""
        transaction = MonthTransaction(self)
        try:
            if start is not None:
                start()
            self._train_month(X, codes, label, sample_weight)
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()
        if self.verbose:
            self._print_month(len(X), position)

    def _month_goes_on_device(self, data):
        """Whether this month's rows move to the GPU once (month_on_device)."""
        device = torch.device(self.device)
        if device.type != "cuda" or self.month_on_device is False:
            return False
        if self.month_on_device is True:
            return True
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes(data.sources, data.weights) < free // 2

    def _optimizer_lrs(self):
        """The learning rate of each optimizer group as the hyperparameters
        configure it now (``lr``, ``optimizer__lr``, ``optimizer__param_groups``)."""
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        return [group.get("lr", kwargs["lr"]) for group in args[0]]

    def _train_month(self, X, codes, label, sample_weight=None):
        start = time.perf_counter()
        first = not self.months_seen_
        strategy = self.strategy_
        X_t, y_t = as_tensor(X), as_tensor(codes.astype(np.int64))
        w_t = None if sample_weight is None else as_tensor(sample_weight)
        try:
            self._train_month_rows(X, X_t, y_t, w_t, label, first, strategy, start)
        finally:
            self.__dict__.pop("month_class_weight_", None)

    def _train_month_rows(self, X, X_t, y_t, w_t, label, first, strategy, start):

        if not first:
            self._sync_strategy()
        if not first and strategy.fresh_model:
            self.initialize_module()
            self.module_ = self.torch_compile(self.module_.to(self.device), name="module")
            self.initialize_optimizer()
        fine_tune = not first and not strategy.fresh_model
        epochs = self.max_epochs
        if fine_tune:
            if self.finetune_epochs is not None:
                epochs = self.finetune_epochs
            # Set on every fine-tune month, so that finetune_lr=None (or a new
            # lr) set between months takes effect too.
            lrs = self._optimizer_lrs()
            if len(lrs) != len(self.optimizer_.param_groups):  # groups changed by a callback
                lrs = [self.lr] * len(self.optimizer_.param_groups)
            for group, lr in zip(self.optimizer_.param_groups, lrs):
                group["lr"] = lr if self.finetune_lr is None else self.finetune_lr

        data = self._month_data(X_t, y_t, w_t).resample(self.rng_)
        self.month_class_weight_ = self._month_class_weights(data)
        if self._month_goes_on_device(data):
            data = data.to(self.device)
        self.batch_generator_, dropout_generator, global_seed = self._month_generators()
        own_mlp = isinstance(self.module_, MLP)
        if own_mlp:
            self.module_.set_generator(dropout_generator)
        self.rows_in_month_ = 0
        self.epochs_run_in_month_ = 0
        self.month_in_training_ = label
        try:
            device = torch.device(self.device)
            devices = [device.index or 0] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices, enabled=not own_mlp), \
                    SigintWatch() as sigint:
                if not own_mlp:
                    torch.manual_seed(global_seed)
                self.notify("on_train_begin", X=data, y=None)
                try:
                    # The plan's labels let a user's train_split stratify.
                    self.fit_loop(data, data.plan_labels(), epochs=epochs)
                except KeyboardInterrupt as exc:
                    # skorch's EarlyStopping ends training by raising
                    # KeyboardInterrupt: the month then ends normally with
                    # the weights reached so far. A real Ctrl-C (or any other
                    # KeyboardInterrupt) propagates and rolls the month back.
                    if sigint.seen or not raised_by_early_stopping(exc):
                        raise
                self.notify("on_train_end", X=data, y=None)
        finally:
            if own_mlp:
                self.module_.set_generator(None)
            self.batch_generator_ = None
            del self.month_in_training_
        self._check_finite_weights(label, X)

        call_hook(strategy.end_month, self, X_t, y_t, w_t)
        self._take_snapshot(label)
        self.months_seen_.append(label)
        seconds = time.perf_counter() - start
        self.cost_.append(
            {"month": label, "rows": self.rows_in_month_, "epochs": epochs, "seconds": seconds,
             "threads": torch.get_num_threads()}
        )

    def _print_month(self, n_new, position=None):
        """One line per month trained (``verbose >= 1``), once it stands."""
        cost = self.cost_[-1]
        loss = self.history[-1, "train_loss"] if len(self.history) else float("nan")
        where = "" if position is None else f" ({position[0]}/{position[1]})"
        print(
            f"[{type(self).__name__}] month {cost['month']!r}{where}: "
            f"{n_new} new rows, {cost['rows']} trained in "
            f"{cost['epochs']} epochs, train loss {loss:.4f}, {cost['seconds']:.2f} s",
            flush=True,
        )

    def _check_finite_weights(self, label, X):
        """A month whose last steps produced non-finite weights is refused
        before consolidation (the loss check only sees the steps before)."""
        for name, p in self.module_.named_parameters():
            if not bool(torch.isfinite(p).all()):
                self._raise_diverged(f"the weights of {name!r} became NaN or infinite", X,
                                     label=label)

    def _raise_diverged(self, what, X=None, label=None):
        """Raise TrainingDivergedError naming where and the likely causes."""
        if label is None:
            label = getattr(self, "month_in_training_", None)
        where = f"month {label!r}" if label is not None else "this month"
        epoch = getattr(self, "epochs_run_in_month_", 0)
        if epoch:
            where += f", epoch {epoch}"
        causes = []
        scale = None
        if X is not None and len(X):
            X_t = X if isinstance(X, torch.Tensor) else as_tensor(X)
            # In chunks: the month may be larger than memory.
            scale = max(float(X_t[i:i + 65536].detach().abs().max())
                        for i in range(0, len(X_t), 65536))
        if scale is not None and scale > 1e4:
            causes.append(
                f"features on a very large scale (largest |value| {scale:.3g}): "
                "standardize them, e.g. StandardScaler in a Pipeline"
            )
        fine_tune = bool(self.months_seen_) and not self.strategy_.fresh_model
        lr = self.finetune_lr if fine_tune and self.finetune_lr is not None else self.lr
        causes.append(f"a learning rate too high for these data (now {lr:g}): lower lr"
                      + (" or finetune_lr" if fine_tune else ""))
        pulls = [part.reg_lambda for part in _strategy_parts(self.strategy_)
                 if hasattr(part, "anchors") and hasattr(part, "reg_lambda")]
        if self.months_seen_ and pulls:
            causes.append(f"reg_lambda too large (now {pulls[0]:g}): lower it")
        if scale is not None and 100 < scale <= 1e4:
            causes.append(f"features on a large scale (largest |value| {scale:.3g}): "
                          "standardize them")
        raise TrainingDivergedError(
            f"Training diverged in {where}: {what}. The month was rolled back: the "
            "model is exactly as it was before this call. Likely causes: "
            + "; ".join(causes) + "."
        )

    def _take_snapshot(self, label):
        if self.max_snapshots == 0:
            return
        states = self.strategy_.predictive_states(self)
        if states is None:
            states = [_cpu_state(self.module_)]
        self.snapshots_.append(MonthSnapshot(label, list(states)))
        if self.max_snapshots is not None and len(self.snapshots_) > self.max_snapshots:
            del self.snapshots_[0]

    # ------------------------------------------------------------------
    # Prediction helpers
    # ------------------------------------------------------------------
    def _predict_batch_size(self, n_rows=None):
        size = self.get_params_for("iterator_valid").get("batch_size", None)
        if size == -1:
            return max(n_rows or 1, 1)
        if size is not None:
            return size
        return max(self.batch_size, _MIN_PREDICT_BATCH)

    def _prediction_input(self, X):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                "or 'partial_fit_month' first."
            )
        # A float32 C-contiguous array or memmap is used in place (no copy).
        X_arr, _ = check_features(
            X,
            n_features=self.n_features_in_,
            feature_names=getattr(self, "feature_names_in_", None),
        )
        return as_tensor(X_arr)

    def _proba_from_states(self, X_t, states):
        """Mean predicted probabilities of the given state dicts.

        Batch by batch and member by member, summed into one
        (n_rows, n_classes) array: no per-member or per-batch list of outputs
        for all rows is kept.
        """
        nonlinearity = self._get_predict_nonlinearity()
        scratch = copy.deepcopy(self.module_).eval()
        total = None
        batch_size = self._predict_batch_size(len(X_t))
        with torch.no_grad():
            for k, state in enumerate(states):
                scratch.load_state_dict(state)
                for start in range(0, len(X_t), batch_size):
                    out = scratch(X_t[start : start + batch_size].to(self.device))
                    out = out[0] if isinstance(out, tuple) else out
                    proba = to_numpy(nonlinearity(out))
                    if total is None:
                        total = np.empty((len(X_t), *proba.shape[1:]), dtype=proba.dtype)
                    if k == 0:
                        total[start : start + len(proba)] = proba
                    else:
                        total[start : start + len(proba)] += proba
        total /= len(states)
        return total
