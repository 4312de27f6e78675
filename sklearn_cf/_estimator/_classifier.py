"""ContinualClassifier: the public API, its parameters and skorch's seams.

What the class is made of lives beside it: the strategy wiring
(``_strategy_wiring``), row weights (``_weights``), running a month
(``_month``), prediction (``_prediction``) and the month transaction
(``_transaction``)."""

import contextlib
import copy
import os
import threading

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import get_len
from torch.utils.data import DataLoader, Subset

from .._compat import safe_indexing
from .._data import EpochIterator, MonthData, RowsDataset, SliceIterator
from .._fisher import fisher_diagonal
from .._labels import check_classes, check_month_label
from .._mlp import MLP
from .._param_validation import (
    Integer,
    IntSequence,
    Options,
    Real,
    Satisfies,
    Verbosity,
    check_hyperparameters,
)
from .._threads import resolve_threads, torch_threads
from .._validation import (
    check_class_weight,
    check_device,
    check_features,
    check_months,
    check_random_state_param,
    check_sample_weight,
    check_targets,
    group_by_month,
    month_label,
    take_rows,
)
from ..preprocessing import TableEncoder
from ..strategies import Strategy
from ._checkpoint import save
from ._growth import encode_labels, grow_classes, new_labels
from ._month import (
    MonthSnapshot,
    after_backward,
    batch_parts,
    compiled_module,
    raise_diverged,
    run_epoch_quietly,
    run_month,
    runs_quietly,
)
from ._prediction import (
    predict_batch_size,
    predict_proba,
    prediction_input,
    proba_from_states,
)
from ._strategy_wiring import (
    check_sequence_config,
    check_strategy_names,
    check_strategy_param,
    fitted_settings,
    flat_constraints,
    make_strategy_for,
    sequence_config,
    strategy_params,
)
from ._weights import (
    check_class_weight_labels,
    criterion_loss,
    epoch_mean_weight,
    row_weights,
    weighted_loss,
)

__all__ = ["ContinualClassifier", "MonthSnapshot"]

# Building a user's module class draws from torch's process-wide RNG; the
# lock keeps two fits in threads from interleaving their seeded draws.
_GLOBAL_RNG_LOCK = threading.Lock()


def fisher_outputs(net):
    """What the module returns, for the Fisher: "logits" or "proba"."""
    criterion = net.criterion_
    if isinstance(criterion, torch.nn.CrossEntropyLoss):
        return "logits"
    if isinstance(criterion, torch.nn.NLLLoss):
        return "proba"
    raise TypeError(
        f"EWC needs the log-likelihood of the classes, but the criterion is "
        f"{type(criterion).__name__}. Use criterion=torch.nn.CrossEntropyLoss "
        "(module returns logits) or torch.nn.NLLLoss (module returns probabilities)."
    )


#: torch optimizers with a multi-tensor (``foreach``) implementation on the
#: CPU that gives the bits of their per-parameter loop, and a fused one on CUDA.
_MULTI_TENSOR_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


def fast_optimizer_kwargs(optimizer, kwargs, device):
    """The optimizer's keyword arguments with its fastest implementation on
    ``device`` when the user chose none: ``fused=True`` on CUDA (one kernel
    for every parameter). Elsewhere torch's own default (on the CPU, the
    per-parameter loop): measured on the CPU inside a month's loop,
    ``foreach=True`` gave the same bits but cost about 50 us more per Adam
    step with a small network (MLP 8-16-2: 355 vs 303 us a step, minimum of
    15 alternated rounds) and nothing with a large one
    (docs/performance_log.md, section 15)."""
    if optimizer not in _MULTI_TENSOR_OPTIMIZERS or {"foreach", "fused"} & set(kwargs) \
            or kwargs.get("differentiable"):
        return kwargs
    if torch.device(device).type == "cuda":
        return {**kwargs, "fused": True}
    return kwargs


class _EpochLog(PrintLog):
    """skorch's per-epoch table, shown only from ``verbose=2``."""

    def on_epoch_end(self, net, **kwargs):
        if net.verbose >= 2:
            super().on_epoch_end(net, **kwargs)


def _check_n_threads(value, name="n_threads"):
    if value is None or (isinstance(value, str) and value == "auto"):
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f'{name} must be "auto", an int >= 1 or None (torch\'s setting), got {value!r}.'
        )


def _check_classes_param(value, name="classes"):
    if value is not None:
        check_classes(value, name)


def _check_preprocessor(value, name="preprocessor"):
    if value is not None and not isinstance(value, TableEncoder):
        raise TypeError(
            f"{name} must be None or a sklearn_cf.preprocessing.TableEncoder (whose "
            f"fitted state a checkpoint stores), got {value!r}. Put another "
            "transformer in a sklearn Pipeline in front of the classifier instead."
        )


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
        (one per fitted sequence, created at its first write), so history
        need not fit in RAM; the same ``random_state`` keeps the same rows
        either way (the same predictions, to float rounding for replay with
        ``memory_size``). Files are never changed once written: each month
        writes new ones, so every checkpoint keeps loading after later
        months; :meth:`memory_files` lists those the model references.
        Checkpoints record the files' SHA-256 and refuse a memory that
        changed since.
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
        SGD, Adam and AdamW run their multi-tensor implementation unless
        ``optimizer__foreach`` or ``optimizer__fused`` is set: ``foreach``
        on the CPU (the same bits as torch's default per-parameter loop),
        ``fused`` on CUDA.
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
        All class labels (a 1-d array-like of labels of one type: all
        numbers or all strings), for a sequence of ``partial_fit_month``
        calls whose first month lacks some of them.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the training loss, as in scikit-learn:
        None weighs every class 1; a dict maps class labels to weights
        (classes left out weigh 1); "balanced" gives class ``c`` the weight
        ``n_rows / (n_classes * n_rows_of_c)``, counted on the rows the
        month trains on (its first epoch: the new month and, for replay,
        the past rows mixed in; for joint, all history), so a rare class
        (malware) counts as much as the others. The weights multiply any
        ``sample_weight`` and also weigh the rows of the EWC Fisher.
    preprocessor : TableEncoder or None, default=None
        What turns raw table rows into the network's inputs (column schema,
        one-hot categories, standardization), part of the model: a clone is
        fitted on the *first* month's rows only (the base fit; in
        ``fit(..., months=...)`` the rows of the first month) and applied to
        every month trained and every row predicted or scored. Later months
        never change it, so each input keeps its meaning; a category first
        seen later is encoded as zeros and noted (see
        :class:`~sklearn_cf.preprocessing.TableEncoder`). Checkpoints store
        its fitted state, so ``sklearn_cf.load(path).predict(raw_rows)``
        encodes as training did. Fixed from the base fit on. None: rows are
        numeric and used as they are.
    n_threads : "auto", int or None, default="auto"
        Torch CPU threads while training (torch's setting is restored after
        each call). "auto": torch's current count, less one for each thread
        of another process running when the call starts (on this process's
        share of the CPUs), at least 1: two threads trained a small MLP 1.3x
        faster than one on an idle 2-core machine, but 1.7x slower when
        another process held a core (threads wait for one another at every
        kernel; docs/performance_log.md, section 10). An int: that
        many. None: leave torch's setting alone. ``cost_`` records the
        count each month used. Torch's setting is process-wide: fits running
        at once in threads share it.
    compile : bool, default=False
        Train through ``torch.compile(module_, **compile__options)`` (skorch's
        parameter; ``compile__mode`` etc. are passed on). ``module_`` stays
        the plain module (snapshots, checkpoints and the Fisher see it); one
        compilation serves every month that trains the same module. The
        first month pays the compilation (about 35 s on a 2-core CPU); on
        the CPU a compiled step was no faster (docs/performance.md), so it
        is meant for a GPU. Results agree with eager training to float32
        rounding, not to the bit.
    **kwargs
        Other skorch parameters (``callbacks``, ``iterator_train__*``,
        ``optimizer__*``, ``module__*`` ...).

    Attributes
    ----------
    classes_ : ndarray
        Class labels, sorted.
    n_features_in_ : int
        Columns of the rows the model takes (with a ``preprocessor``, the
        raw table's).
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    n_inputs_ : int
        Width of the network's input: ``n_features_in_``, or the fitted
        ``preprocessor``'s output width.
    preprocessor_ : TableEncoder
        The fitted ``preprocessor`` (only when one is given).
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
        preprocessor=None,
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
        self.preprocessor = preprocessor

    # skorch keeps these through pickling with torch's map_location, so a
    # model fitted on a GPU loads on a CPU-only machine.
    cuda_dependent_attributes_ = NeuralNetClassifier.cuda_dependent_attributes_ + [
        "strategy_"
    ]
    # strategy__<param>: a hyperparameter of the strategy (see set_params).
    prefixes_ = NeuralNetClassifier.prefixes_ + ["strategy"]

    #: The flat strategy parameters (reg_lambda, rehearsal_ratio, ...): those
    #: of the constructor that a built-in strategy declares, as it declares them.
    _flat_constraints = flat_constraints(__init__)

    #: Every hyperparameter's accepted values, checked at each call that
    #: trains (so a change between months is checked too) and at load.
    _hyperparameter_constraints = {
        "strategy": Satisfies(check_strategy_param),
        **_flat_constraints,
        "finetune_lr": Real(0, np.inf, low_open=True, none=True),
        "finetune_epochs": Integer(1, none=True),
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
        "compile": Options(False, True),
        "class_weight": Satisfies(check_class_weight),
        "n_threads": Satisfies(_check_n_threads),
        "classes": Satisfies(_check_classes_param),
        "preprocessor": Satisfies(_check_preprocessor),
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
            classes = self.classes_inferred_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no classes_ before it is fitted."
            ) from None
        # Sorted, as scikit-learn's; the output units may differ once a
        # month added classes (output_classes_).
        order = np.argsort(classes, kind="stable")
        return classes if np.array_equal(order, np.arange(len(order))) else classes[order]

    @property
    def output_classes_(self):
        """The class of each output unit of the network, in order: the base
        fit's classes sorted, then those each later month added
        (``allow_new_classes``), sorted within a month. Equal to ``classes_``
        until a month adds a class; ``predict_proba``'s columns always
        follow ``classes_``."""
        try:
            return self.classes_inferred_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no output_classes_ before it is fitted."
            ) from None

    @property
    def fisher_negative_share_(self):
        """Share of negative Hessian-diagonal entries per month (EWC with
        ``fisher="hessian"``), before they were clipped to 0."""
        for part in (getattr(self, "strategy_", None) or Strategy()).parts:
            if getattr(part, "fisher", None) == "hessian" and hasattr(part, "negative_shares"):
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
            Non-negative weight of each row in the training loss, as in
            scikit-learn: a weight of 2 equals the row repeated, in
            expectation at any batch size (each batch's loss is
            ``sum_i w_i l_i / (n_batch * w_bar)``, ``w_bar`` the mean weight
            of the epoch's rows), and the EWC Fisher is weighted the same way. Replay and joint
            keep the weights with the rows they remember. None: every row
            weighs 1.

        Returns
        -------
        self : ContinualClassifier
        """
        # Everything is checked before the fitted model is touched: a refit
        # that is rejected leaves the old model as it was.
        X_arr, names, preprocessor = self._base_inputs(X, months)
        y_arr = check_targets(y, len(X_arr))
        weights = check_sample_weight(sample_weight, len(X_arr))
        self._check_hyperparameters()
        classes = self._resolve_classes(y_arr, self.classes)
        check_class_weight_labels(self, classes)
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
            self._start_sequence(X_arr.shape[1], names, classes, strategy,
                                 preprocessor=preprocessor)

        # Each month is a transaction; the base month's includes setting up
        # the new sequence, so a failure there restores the old model.
        with torch_threads(resolve_threads(self.n_threads)):
            for k, (label, idx) in enumerate(zip(labels, rows)):
                run_month(self, take_rows(X_arr, idx), codes[idx], label,
                                start=start if k == 0 else None,
                                position=(k + 1, len(labels)),
                                sample_weight=None if weights is None else weights[idx])
        return self

    def partial_fit_month(self, X, y, classes=None, month=None, sample_weight=None,
                          allow_new_classes=False):
        """Update the model with one new month, as the strategy says.

        On an unfitted estimator this is the base fit.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            After the base fit, the base fit's columns: their number, and
            for a DataFrame their names in the same order, checked as
            scikit-learn checks them (with its warning when only one of X
            and the base fit has names).
        y : array-like of shape (n_samples,)
        classes : array-like, default=None
            Every class label, a 1-d array-like of labels of one type (all
            numbers or all strings), needed at the first call when later
            months bring labels the first lacks (or use the ``classes``
            parameter). At a later call it must hold every label of
            ``classes_``; labels beyond them are new classes (see
            ``allow_new_classes``).
        month : object, default=None
            Label of this month, which must sort after the months already
            seen. None: the next integer (0 for the base fit).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row in the training loss; see
            :meth:`fit`.
        allow_new_classes : bool, default=False
            After the base fit: whether labels of ``y`` (or of ``classes``)
            that are not classes yet may be added. False refuses such a
            month with a ``ValueError`` naming them, before anything
            changes. True grows the network's output layer by one unit per
            new class (the old units' weights kept exactly, the new ones
            initialized as a fresh layer's), extends the optimizer's state
            and the strategy's (see docs/strategies.md, "New classes"), and
            appends the labels to ``output_classes_``; ``classes_`` stays
            sorted. Needs the default module.

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
        preprocessor = None
        added = ()  # labels that become classes this month
        codes = None  # the output unit of each row's label, once known
        if first:
            X_arr, names, preprocessor = self._base_inputs(X, None)
            y_arr = check_targets(y, len(X_arr))
            weights = check_sample_weight(sample_weight, len(X_arr))
            self._check_hyperparameters()
            given = classes if classes is not None else self.classes
            fitted_classes = self._resolve_classes(y_arr, given)
            label = 0 if month is None else check_month_label(month, "month")
        else:
            X_arr, names = self._month_inputs(X)
            y_arr = check_targets(y, len(X_arr))
            weights = check_sample_weight(sample_weight, len(X_arr))
            self._check_hyperparameters()
            fitted_classes = self.output_classes_
            given = None
            if classes is not None:
                given = check_classes(classes)
                lost = np.setdiff1d(fitted_classes, given)
                if len(lost):
                    raise ValueError(
                        f"classes={given.tolist()} lacks {lost[:10].tolist()}, classes of "
                        f"the model ({self.classes_.tolist()}); a class is never removed."
                    )
            label = self._next_month_label(month)
            check_sequence_config(self)
            added, codes = new_labels(y_arr, fitted_classes, given)
            if len(added):
                self._check_new_classes(added, allow_new_classes)
                fitted_classes = np.concatenate([fitted_classes, added])
        check_class_weight_labels(self, fitted_classes)
        if codes is None:
            codes = self._encode(y_arr, fitted_classes)
        strategy = self._make_strategy() if first else self.strategy_
        strategy.check_month(X_arr, codes, fitted_classes)

        def start():
            if first:
                self._start_sequence(X_arr.shape[1], names, fitted_classes, strategy,
                                     preprocessor=preprocessor)
            else:  # inside the month's transaction: a failure undoes the growth too
                grow_classes(self, added)

        with torch_threads(resolve_threads(self.n_threads)):
            run_month(self, X_arr, codes, label,
                      start=start if first or len(added) else None,
                      sample_weight=weights)
        return self

    def _check_new_classes(self, added, allow):
        """Refuse labels that are not classes yet unless ``allow``."""
        if allow:
            return
        shown = [month_label(label) for label in added[:10]]
        raise ValueError(
            f"This month has {'a label' if len(added) == 1 else 'labels'} {shown} that "
            f"the model has never seen (its classes: {self.classes_.tolist()}). Pass "
            "allow_new_classes=True to add "
            f"{'it as a new class' if len(added) == 1 else 'them as new classes'} (the "
            "output layer grows), or declare every class up front with classes=[...] at the base "
            "fit. Nothing was changed."
        )

    def partial_fit(self, X, y=None, classes=None, sample_weight=None,
                    allow_new_classes=False, **fit_params):
        """Alias of :meth:`partial_fit_month`: each call is one new month."""
        if fit_params:
            raise TypeError(
                f"partial_fit got unexpected arguments {sorted(fit_params)}; "
                "use partial_fit_month(X, y, classes=..., month=..., sample_weight=...)."
            )
        return self.partial_fit_month(X, y, classes=classes, sample_weight=sample_weight,
                                      allow_new_classes=allow_new_classes)

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

        Only a model that :func:`sklearn_cf.load` can read back is saved:
        the hyperparameters are checked as load checks them (a value set
        after the base fit, a ``strategy__<param>`` set around
        ``set_params``, a strategy no longer registered), and a refusal
        raises before anything is written. A setting changed after the base
        fit (``memory_size``, ``strategy``...) is stored with the settings
        the model was fitted with, so the loaded model refuses to continue
        with it exactly as this one does.

        Parameters
        ----------
        path : str or path-like

        Raises
        ------
        ValueError, TypeError
            ``"Cannot save to <path>: ..."`` when load would refuse the
            checkpoint; a previous file at ``path`` is left as it was.
        """
        save(self, path)

    def memory_files(self):
        """The files outside the checkpoint that the fitted model needs now.

        With ``memory_dir``, replay memory and joint's history live in
        ``.npy`` files that are never changed once written: each month
        writes new ones, and a bounded memory stops referencing some older
        ones (they stay on disk for older checkpoints). This lists exactly
        the files the model references at this moment: those a checkpoint
        saved now records and :func:`sklearn_cf.load` would open. Files of
        the folder that no kept checkpoint lists can be deleted.

        Returns
        -------
        list of str
            Absolute paths, sorted; empty when the memory is in RAM or the
            strategy keeps none.

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_cf import ContinualClassifier
        >>> from sklearn_cf.datasets import make_monthly_drift
        >>> X, y, months = make_monthly_drift(n_months=2, n_samples_per_month=50,
        ...                                   random_state=0)
        >>> folder = tempfile.mkdtemp()
        >>> clf = ContinualClassifier(strategy="replay", memory_dir=folder, max_epochs=1,
        ...                           random_state=0).fit(X, y, months=months)
        >>> files = clf.memory_files()
        >>> len(files), all(os.path.isfile(f) and f.startswith(folder) for f in files)
        (4, True)
        >>> ContinualClassifier(max_epochs=1, random_state=0).fit(X, y).memory_files()
        []
        """
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                "or 'partial_fit_month' first."
            )
        return sorted({os.path.abspath(path) for path in self.strategy_.memory_files()})

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------
    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            At least one row, with the base fit's columns: checked, and
            worded, as scikit-learn's estimators check them (``check_array``
            for no rows; ``feature_names_in_`` for a DataFrame, with its
            warning when only one of X and the base fit has names).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return predict_proba(self, X)

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
        X_t = prediction_input(self, X)
        for snapshot in self.snapshots_:
            if snapshot.month == month:
                return proba_from_states(self, X_t, snapshot.states)
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

    def torch_compile(self, module, name):
        # module_ and criterion_ stay the plain modules (their state dicts,
        # snapshots, the Fisher and checkpoints see them as they are);
        # compile=True compiles the training forward pass (see infer).
        return module

    def infer(self, x, **fit_params):
        if self.compile and self.module_.training and not fit_params \
                and isinstance(x, torch.Tensor):
            return compiled_module(self)(x.to(self.device))
        return super().infer(x, **fit_params)

    def get_params_for_optimizer(self, prefix, named_parameters):
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        optimizer = getattr(self, prefix, None)
        return args, fast_optimizer_kwargs(optimizer, kwargs, self.device)

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
            return EpochIterator(dataset, predict_batch_size(self, len(dataset)), shuffle=False)
        if (
            isinstance(dataset, RowsDataset)
            and self.iterator_valid is DataLoader
            and set(kwargs) <= {"batch_size"}
        ):
            return SliceIterator(dataset, predict_batch_size(self, len(dataset)))
        return super().get_iterator(dataset, training=False)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        data = dataset_train.dataset if isinstance(dataset_train, Subset) else dataset_train
        if isinstance(data, MonthData):
            if self.epochs_run_in_month_ > 0:
                data.resample(self.rng_)
            self.epochs_run_in_month_ += 1
        # What every training batch's weighted loss is divided by, per row
        # (see get_loss); None outside a month's rows: the weighted mean.
        self.epoch_mean_weight_ = (epoch_mean_weight(self, data)
                                   if isinstance(data, MonthData) else None)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        # A closed-form penalty (L2/EWC pull) adds only its gradient at each
        # step; its value is computed here, once per epoch, for the history.
        strategy = getattr(self, "strategy_", None)
        if strategy is not None and strategy.reports_penalty:
            value = strategy.penalty_value(self)
            if value is not None:
                self.history.record("train_penalty", value)

    #: Whether epochs may run in the tight loop when nothing listens to
    #: batches (see run_single_epoch); False forces skorch's per-batch path.
    _tight_loop = True

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # When no callback listens to batches, the epoch runs without
        # skorch's per-batch notifications and records (the same steps, the
        # same history, written once per epoch): see run_epoch_quietly.
        if iterator is None or not runs_quietly(self, step_fn):
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        # The lean step (skorch's step without its layers) when nothing this
        # class adds to them is overridden (see lean_step_applies).
        return run_epoch_quietly(self, iterator, training, prefix, fit_params,
                                 lean_base=ContinualClassifier)

    def _set_training(self, training=True):
        # Within a tight-loop epoch the modules' mode is set once, at its
        # start (run_epoch_quietly): module.train() walks every submodule,
        # which costs as much as a small network's forward pass at each step.
        mode = self.__dict__.get("epoch_mode_")
        if mode is training:
            return
        super()._set_training(training)
        if mode is not None:
            self.epoch_mode_ = training

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        # The loss check, the closed-form penalty's gradient, the row count.
        after_backward(self, step["loss"], *batch_parts(batch))
        return step

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weights = None
        if isinstance(y_true, (tuple, list)):  # weighted rows: (y, w)
            y_true, weights = y_true
        weights = self.row_weights(y_true, weights)
        if weights is None:
            loss = criterion_loss(self, y_pred, y_true)
        else:
            total, weight_sum, reduction = self.weighted_loss(
                y_pred, y_true, weights, X, training)
            expected = self.__dict__.get("epoch_mean_weight_") if training else None
            if reduction == "sum":
                loss = total
            elif expected is not None:
                # Divided by the batch's *expected* weight (its rows times
                # the epoch's mean weight), so that a weight of 2 is a
                # repeated row in expectation at any batch size; the
                # batch's own weight would cancel weights at batch_size=1.
                loss = total / max(get_len(y_true) * expected, torch.finfo(total.dtype).tiny)
            else:
                # Validation and scoring: the weighted mean of the rows. A
                # batch of zero-weight rows has loss 0, not 0/0.
                loss = total / weight_sum.clamp_min(torch.finfo(weight_sum.dtype).tiny)
        if training:
            # The batch's loss weights, for a strategy that keeps the rows
            # it trains on with their weight (DER's buffer). Set in the
            # instance dict: skorch's __setattr__/__delattr__ bookkeeping
            # (for torch modules) cost ~10 us a step for a plain value.
            state = vars(self)
            state["batch_row_weights_"] = weights
            try:
                terms = self.strategy_terms(X, y_pred, y_true)
            finally:
                state.pop("batch_row_weights_", None)
            if terms is not None:
                loss = loss + terms
        return loss






    # ------------------------------------------------------------------
    # Month bookkeeping
    # ------------------------------------------------------------------



    # ------------------------------------------------------------------
    # Hooks for subclasses and strategies (public, documented)
    # ------------------------------------------------------------------
    def row_weights(self, y, sample_weight=None):
        """Per-row loss weights of rows with class indices ``y`` in the month
        being trained: ``sample_weight`` times the month's class weights, or
        None when rows are not weighted.

        Every batch's loss uses it, and strategies weigh the rows of what they
        compute from a month with it (the EWC Fisher).

        Parameters
        ----------
        y : Tensor of shape (n_rows,)
            Class indices.
        sample_weight : Tensor of shape (n_rows,) or None

        Returns
        -------
        Tensor of shape (n_rows,) or None
        """
        return row_weights(self, y, sample_weight)

    def weighted_loss(self, y_pred, y_true, weights, X, training):
        """``(sum_i w_i l_i, sum_i w_i, reduction)`` of a batch from the
        criterion's per-row losses; the loss is their ratio (the weighted
        mean), or the weighted sum for a criterion with ``reduction="sum"``."""
        return weighted_loss(self, y_pred, y_true, weights, X, training)

    def strategy_terms(self, X, y_pred, y_true):
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

    def month_fisher(self, X, y, *, kind="empirical", sample_weight=None):
        """The diagonal Fisher of the trained network over a month's rows,
        each weighed as it weighed in the month's loss (:meth:`row_weights`).

        EWC strategies call it at the end of a month;
        :class:`~sklearn_cf.accelerate.AcceleratedContinualClassifier`
        overrides it to sum the Fisher over the processes' blocks of rows.

        Parameters
        ----------
        X : Tensor of shape (n_rows, n_features)
        y : Tensor of shape (n_rows,)
            Class indices.
        kind : {"empirical", "true", "hessian"}, default="empirical"
            See :func:`sklearn_cf.fisher_diagonal`.
        sample_weight : Tensor of shape (n_rows,) or None

        Returns
        -------
        dict of str -> Tensor
            One tensor per trainable parameter, shaped like it.
        """
        return fisher_diagonal(
            self.module_, X, y, kind=kind,
            batch_size=max(self.batch_size, 1024) if self.batch_size > 0 else 1024,
            outputs=fisher_outputs(self),
            sample_weight=self.row_weights(y, sample_weight),
        )

    def process_shard(self):
        """``(rank, world_size)`` when this process trains one shard of every
        batch among several processes, else None (one process)."""
        return None

    def month_context(self):
        """A context manager around each month's transaction (a subclass may
        silence output or undo its own bookkeeping when the month fails)."""
        return contextlib.nullcontext()

    def on_sequence_begin(self):
        """Called when a new sequence of months starts (at the base fit and
        at load), after the state is set up and before the strategy starts;
        a subclass may synchronise its random state here."""

    def raise_diverged(self, what, X=None, label=None):
        """Raise :class:`~sklearn_cf.exceptions.TrainingDivergedError`
        naming the month, the epoch, ``what`` happened and the likely causes
        (feature scale read from ``X``, the learning rate, ``reg_lambda``)."""
        raise_diverged(self, what, X, label)

    def _make_strategy(self):
        return make_strategy_for(self)

    def set_params(self, **params):
        """Set hyperparameters, as scikit-learn's ``set_params``.

        Every name is checked before any value is set: an unknown name, a
        ``strategy__<param>`` that the strategy does not have, or a change
        that would rebuild a fitted network raises ``ValueError`` and leaves
        the estimator as it was. Values are checked by the next call that
        trains (and by :meth:`save`), as in scikit-learn.

        With a strategy name, ``strategy__<param>`` sets a parameter of its
        parts (one of another known strategy is accepted and ignored, so a
        search over ``strategy`` may set ``strategy__alpha`` for ``"lwf"``
        only); with a strategy object, it reaches the object's own
        ``set_params``. On a fitted model a new ``module`` or ``criterion``,
        or a change of ``strategy`` or of the memory (``memory_size``,
        ``memory_dir``, ``memory_policy``), waits for the next :meth:`fit`:
        :meth:`partial_fit_month` refuses it meanwhile, also after
        :meth:`save` and :func:`sklearn_cf.load`.

        Parameters
        ----------
        **params : dict
            Estimator parameters, ``strategy__<param>``, skorch's prefixed
            parameters (``optimizer__*``, ``iterator_train__*`` ...).

        Returns
        -------
        self : ContinualClassifier

        Raises
        ------
        ValueError
            ``"Invalid parameter 'name' for estimator ..."`` for a name the
            estimator or its strategy does not have.

        Examples
        --------
        >>> from sklearn_cf import ContinualClassifier
        >>> clf = ContinualClassifier(strategy="replay")
        >>> clf.set_params(strategy__memory_size=1000).get_params()["strategy__memory_size"]
        1000
        >>> clf.set_params(reg_lambda=10.0, strategy__memroy_size=5)
        Traceback (most recent call last):
        ...
        ValueError: Invalid parameter 'strategy__memroy_size' for estimator ContinualClassifier: ...
        >>> clf.reg_lambda is None
        True
        """
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
        own = {k[len("strategy__"):]: v for k, v in strategy_params.items()}
        strategy = params.pop("strategy", self.strategy)
        valid = self._get_param_names()
        for name in params:
            if "__" not in name and name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self}. "
                    f"Valid parameters are: {valid!r}."
                )
        check_strategy_names(strategy, own, type(self).__name__)
        # skorch checks its prefixed parameters as it sets them: what it
        # refuses puts the attributes back too.
        before = {k: set(v) if isinstance(v, set) else v for k, v in vars(self).items()}
        try:
            # "strategy" is also skorch's prefix of strategy__*; skorch's own
            # set_params would take it for a module to re-initialize.
            self.strategy = strategy
            if isinstance(strategy, Strategy):
                # Kept in step with the object (a value given to the constructor).
                vars(self).update((k, v) for k, v in strategy_params.items() if k in vars(self))
            elif strategy_params:
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
            super().set_params(**params)
            if own and isinstance(strategy, Strategy):
                # Routed to the user's object, as sklearn does for nested
                # estimators (the fitted copy follows at the next month).
                strategy.set_params(**own)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise
        return self

    def _check_hyperparameters(self):
        """Check every hyperparameter (declared in ``_hyperparameter_constraints``)
        and the combinations a strategy needs; called by every method that
        trains, before anything changes."""
        check_hyperparameters(self, self._hyperparameter_constraints)
        check_strategy_names(self.strategy, strategy_params(self), type(self).__name__)
        # The strategy's own parameters, by its constraints; and what it needs.
        strategy = self._make_strategy()
        if strategy.needs_log_likelihood:
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
        given = None if given is None else check_classes(given)
        if given is not None and len(given):
            classes = given
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
        """Output-unit index of each label (``classes``: ``output_classes_``)."""
        codes, unseen = encode_labels(y, classes)
        if codes is None:
            raise ValueError(
                f"y contains labels {unseen[:10].tolist()} that are not classes "
                f"({np.sort(classes).tolist()}); pass allow_new_classes=True to add them."
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



    def _base_inputs(self, X, months):
        """The base fit's rows as the network's inputs, the column names, and
        the fitted clone of ``preprocessor`` (None without one), fitted on
        the first month's rows (all rows when ``months`` is None)."""
        if self.preprocessor is None:
            return (*check_features(X), None)
        _check_preprocessor(self.preprocessor)
        n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
        first = None
        if months is not None:
            _, rows = group_by_month(check_months(months, n_rows))
            first = rows[0]
        preprocessor = clone(self.preprocessor).fit(
            X if first is None or len(first) == n_rows else safe_indexing(X, first))
        X_arr, _ = check_features(preprocessor.transform(X))
        return X_arr, None, preprocessor

    def _month_inputs(self, X, training=True):
        """A later month's (or a prediction's) rows as the network's inputs:
        through the fitted ``preprocessor_``, which checks the columns, or
        checked against the base fit's columns."""
        preprocessor = getattr(self, "preprocessor_", None)
        if preprocessor is None:
            return check_features(X, fitted=self, training=training)
        return check_features(preprocessor.transform(X), training=training)

    def _start_sequence(self, n_features, names, classes, strategy=None, fitted_params=None,
                        preprocessor=None):
        """Forget everything and set up the state of a new sequence of months.

        ``n_features``: the network's input width. ``fitted_params``: the
        settings of :func:`sequence_config` that a
        checkpoint was fitted with; the network, the strategy and
        ``sequence_config_`` are built on them, while the estimator keeps
        its own parameters (a change made after the base fit stays refused).
        ``preprocessor``: the fitted encoder of raw rows, whose columns are
        then ``n_features_in_`` and ``feature_names_in_``.
        """
        self.n_inputs_ = n_features
        if preprocessor is not None:
            self.preprocessor_ = preprocessor
            n_features = preprocessor.n_features_in_
            names = getattr(preprocessor, "feature_names_in_", None)
        elif "preprocessor_" in vars(self):
            del self.preprocessor_
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
        with fitted_settings(self, fitted_params):
            self.strategy_ = strategy if strategy is not None else self._make_strategy()
            # What cannot change until the next fit (see check_sequence_config).
            self.sequence_config_ = sequence_config(self)
            self.initialize()
            self.on_sequence_begin()
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
            module = MLP(self.n_inputs_, len(self.classes_), **params)
            return module.reset_parameters(torch.Generator().manual_seed(seed))
        if isinstance(self.module, torch.nn.Module) and not kwargs:
            # Never train the user's object itself; a copy also gives
            # fresh-model strategies the same starting weights every month.
            return copy.deepcopy(self.module)
        with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.initialized_instance(self.module, kwargs)












    # ------------------------------------------------------------------
    # Prediction helpers
    # ------------------------------------------------------------------


