"""Running one month: the strategy's rows, the epochs (skorch's fit loop),
the divergence checks, consolidation, the snapshot and the month's cost; all
inside a :class:`~._transaction.MonthTransaction`."""

import math
import time
import weakref
from typing import NamedTuple

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import get_len, unpack_data
from skorch.history import History
from skorch.utils import to_tensor

from .._atomic import SigintWatch
from .._data import MonthData, as_tensor, nbytes
from .._mlp import MLP
from ..exceptions import TrainingDivergedError
from ..strategies import call_hook
from ._strategy_wiring import sync_strategy
from ._transaction import MonthTransaction, raised_by_early_stopping
from ._weights import month_class_weights

__all__ = [
    "MonthSnapshot",
    "batch_listeners",
    "compiled_module",
    "cpu_state",
    "raise_diverged",
    "run_epoch_quietly",
    "run_month",
    "runs_quietly",
]


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


def cpu_state(module):
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


def month_generators(net):
    """Per-month generators for batch order and dropout masks."""
    seeds = net.rng_.integers(np.iinfo(np.int64).max, size=3)
    batches = torch.Generator().manual_seed(int(seeds[0]))
    device = torch.device(net.device)
    dropout = torch.Generator(device=device).manual_seed(int(seeds[1]))
    return batches, dropout, int(seeds[2])


def month_data(net, X_t, y_t, w_t=None):
    data = call_hook(net.strategy_.month_data, net, X_t, y_t, w_t)
    if data is None:
        data = MonthData([(X_t, y_t)], weights=None if w_t is None else [w_t])
    elif not isinstance(data, MonthData):
        data = MonthData([tuple(data)])
    return data


def run_month(net, X, codes, label, start=None, position=None, sample_weight=None):
    """Train one month as a transaction: if anything goes wrong inside it
    (an exception, Ctrl-C, a diverging loss, a failed consolidation),
    everything it changed is put back and the error propagates."""
    with net.month_context():
        transaction = MonthTransaction(net)
        try:
            if start is not None:
                start()
            train_month(net, X, codes, label, sample_weight)
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()
    if net.verbose:
        print_month(net, len(X), position)


def month_goes_on_device(net, data):
    """Whether this month's rows move to the GPU once (month_on_device)."""
    device = torch.device(net.device)
    if device.type != "cuda" or net.month_on_device is False:
        return False
    if net.month_on_device is True:
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes(data.sources, data.weights) < free // 2


def optimizer_lrs(net):
    """The learning rate of each optimizer group as the hyperparameters
    configure it now (``lr``, ``optimizer__lr``, ``optimizer__param_groups``)."""
    args, kwargs = net.get_params_for_optimizer("optimizer", net.module_.named_parameters())
    return [group.get("lr", kwargs["lr"]) for group in args[0]]


def check_compile_available(net):
    """compile=True needs ``torch.compile`` (torch >= 2.0)."""
    if net.compile and not callable(getattr(torch, "compile", None)):
        raise RuntimeError(
            f"compile=True needs torch.compile, which torch {torch.__version__} does not "
            "have: upgrade torch to 2.0 or later, or set compile=False."
        )


#: net -> (module_, its compiled module): kept beside the estimator (never
#: pickled or cloned with it) and dropped with it; one compilation serves
#: every month that trains the same module object.
_COMPILED = weakref.WeakKeyDictionary()


def compiled_module(net):
    """The compiled ``module_`` (``compile=True``) that trains the batches:
    ``torch.compile(net.module_, **compile__params)``, made at the first
    training batch and kept while ``module_`` is the same object and the
    ``compile__`` options the same (a compilation takes seconds). It shares
    the module's parameters; ``module_`` itself stays the plain module."""
    options = net.get_params_for("compile")
    cached = _COMPILED.get(net)
    if cached is None or cached[0] is not net.module_ or cached[1] != options:
        check_compile_available(net)
        cached = (net.module_, options, torch.compile(net.module_, **options))
        _COMPILED[net] = cached
    return cached[2]


def train_month(net, X, codes, label, sample_weight=None):
    check_compile_available(net)
    start = time.perf_counter()
    first = not net.months_seen_
    strategy = net.strategy_
    X_t, y_t = as_tensor(X), as_tensor(codes.astype(np.int64))
    w_t = None if sample_weight is None else as_tensor(sample_weight)
    try:
        train_month_rows(net, X, X_t, y_t, w_t, label, first, strategy, start)
    finally:
        net.__dict__.pop("month_class_weight_", None)
        net.__dict__.pop("epoch_mean_weight_", None)


def train_month_rows(net, X, X_t, y_t, w_t, label, first, strategy, start):
    if not first:
        sync_strategy(net)
    if not first and strategy.fresh_model:
        net.initialize_module()
        net.module_ = net.torch_compile(net.module_.to(net.device), name="module")
        net.initialize_optimizer()
    fine_tune = not first and not strategy.fresh_model
    epochs = net.max_epochs
    if fine_tune:
        if net.finetune_epochs is not None:
            epochs = net.finetune_epochs
        # Set on every fine-tune month, so that finetune_lr=None (or a new
        # lr) set between months takes effect too.
        lrs = optimizer_lrs(net)
        if len(lrs) != len(net.optimizer_.param_groups):  # groups changed by a callback
            lrs = [net.lr] * len(net.optimizer_.param_groups)
        for group, lr in zip(net.optimizer_.param_groups, lrs):
            group["lr"] = lr if net.finetune_lr is None else net.finetune_lr

    data = month_data(net, X_t, y_t, w_t).resample(net.rng_)
    net.month_class_weight_ = month_class_weights(net, data)
    if month_goes_on_device(net, data):
        data = data.to(net.device)
    net.batch_generator_, dropout_generator, global_seed = month_generators(net)
    own_mlp = isinstance(net.module_, MLP)
    if own_mlp:
        net.module_.set_generator(dropout_generator)
    net.rows_in_month_ = 0
    net.epochs_run_in_month_ = 0
    net.month_in_training_ = label
    try:
        device = torch.device(net.device)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=not own_mlp), \
                SigintWatch() as sigint:
            if not own_mlp:
                torch.manual_seed(global_seed)
            net.notify("on_train_begin", X=data, y=None)
            try:
                # The plan's labels let a user's train_split stratify.
                net.fit_loop(data, data.plan_labels(), epochs=epochs)
            except KeyboardInterrupt as exc:
                # skorch's EarlyStopping ends training by raising
                # KeyboardInterrupt: the month then ends normally with
                # the weights reached so far. A real Ctrl-C (or any other
                # KeyboardInterrupt) propagates and rolls the month back.
                if sigint.seen or not raised_by_early_stopping(exc):
                    raise
            net.notify("on_train_end", X=data, y=None)
    finally:
        if own_mlp:
            net.module_.set_generator(None)
        net.batch_generator_ = None
        del net.month_in_training_
    check_finite_weights(net, label, X)

    call_hook(strategy.end_month, net, X_t, y_t, w_t)
    take_snapshot(net, label)
    net.months_seen_.append(label)
    seconds = time.perf_counter() - start
    net.cost_.append(
        {"month": label, "rows": net.rows_in_month_, "epochs": epochs, "seconds": seconds,
         "threads": torch.get_num_threads()}
    )


def print_month(net, n_new, position=None):
    """One line per month trained (``verbose >= 1``), once it stands."""
    cost = net.cost_[-1]
    loss = net.history[-1, "train_loss"] if len(net.history) else float("nan")
    where = "" if position is None else f" ({position[0]}/{position[1]})"
    print(
        f"[{type(net).__name__}] month {cost['month']!r}{where}: "
        f"{n_new} new rows, {cost['rows']} trained in "
        f"{cost['epochs']} epochs, train loss {loss:.4f}, {cost['seconds']:.2f} s",
        flush=True,
    )


def check_finite_weights(net, label, X):
    """A month whose last steps produced non-finite weights is refused
    before consolidation (the loss check only sees the steps before)."""
    for name, p in net.module_.named_parameters():
        if not bool(torch.isfinite(p).all()):
            net.raise_diverged(f"the weights of {name!r} became NaN or infinite", X,
                               label=label)


def raise_diverged(net, what, X=None, label=None):
    """Raise TrainingDivergedError naming where and the likely causes."""
    if label is None:
        label = getattr(net, "month_in_training_", None)
    where = f"month {label!r}" if label is not None else "this month"
    epoch = getattr(net, "epochs_run_in_month_", 0)
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
    fine_tune = bool(net.months_seen_) and not net.strategy_.fresh_model
    lr = net.finetune_lr if fine_tune and net.finetune_lr is not None else net.lr
    causes.append(f"a learning rate too high for these data (now {lr:g}): lower lr"
                  + (" or finetune_lr" if fine_tune else ""))
    pulls = [part.reg_lambda for part in net.strategy_.parts
             if part.get_params(deep=False).get("reg_lambda") is not None]
    if net.months_seen_ and pulls:
        causes.append(f"reg_lambda too large (now {pulls[0]:g}): lower it")
    if scale is not None and 100 < scale <= 1e4:
        causes.append(f"features on a large scale (largest |value| {scale:.3g}): "
                      "standardize them")
    raise TrainingDivergedError(
        f"Training diverged in {where}: {what}. The month was rolled back: the "
        "model is exactly as it was before this call. Likely causes: "
        + "; ".join(causes) + "."
    )


def take_snapshot(net, label):
    if net.max_snapshots == 0:
        return
    states = net.strategy_.predictive_states(net)
    if states is None:
        states = [cpu_state(net.module_)]
    net.snapshots_.append(MonthSnapshot(label, list(states)))
    if net.max_snapshots is not None and len(net.snapshots_) > net.max_snapshots:
        del net.snapshots_[0]


# ----------------------------------------------------------------------
# The tight month loop
# ----------------------------------------------------------------------
#: skorch's per-batch events: a callback (or a subclass of the estimator)
#: that overrides one of them listens to batches.
BATCH_EVENTS = ("on_batch_begin", "on_batch_end", "on_grad_computed")


def batch_listeners(net):
    """The names of the callbacks of ``net`` that listen to batches (override
    one of skorch's per-batch no-ops), and ``"the estimator"`` when its class
    does; an empty list when none does."""
    names = [
        name for name, callback in net.callbacks_
        if any(getattr(type(callback), event, None) is not getattr(Callback, event)
               for event in BATCH_EVENTS)
    ]
    if any(getattr(type(net), event) is not getattr(NeuralNet, event)
           for event in BATCH_EVENTS):
        names.append("the estimator")
    return names


def runs_quietly(net, step_fn):
    """Whether an epoch of ``step_fn`` (the net's own ``train_step`` or
    ``validation_step``) may run without skorch's per-batch notifications:
    nothing listens to batches and neither step is overridden."""
    if not getattr(net, "_tight_loop", True):
        return False
    func = getattr(step_fn, "__func__", None)
    if getattr(step_fn, "__self__", None) is not net or func not in (
            NeuralNet.train_step, NeuralNet.validation_step):
        return False
    if type(net).train_step is not NeuralNet.train_step:
        return False
    return not batch_listeners(net)


def defers_loss_check(net):
    """Whether training batches' losses are checked once per epoch rather
    than at every step: on a GPU, where reading a loss waits for the step's
    kernels (one host round trip per step)."""
    return torch.device(net.device).type == "cuda"


def after_backward(net, loss, X, y):
    """What every training step does once its loss is differentiated: the
    loss is checked (unless the tight loop checks the epoch's losses at its
    end, on a GPU), the strategy's closed-form penalty adds its gradient,
    and the batch's rows (``X``, labels ``y``) are counted."""
    state = vars(net)
    if not state.get("loss_check_deferred_"):
        # skorch reads every batch's loss anyway; checking it here stops a
        # diverging month before the optimizer steps on it.
        value = float(loss.detach())
        if not math.isfinite(value):
            net.raise_diverged(f"the training loss became {value}", X)
    strategy = state.get("strategy_")
    if strategy is not None:
        # Closed-form penalties (L2, EWC) add their gradient after the
        # backward pass, far cheaper than differentiating them.
        strategy.penalty_gradient(net)
    if isinstance(y, (tuple, list)):  # weighted rows: (y, w)
        y = y[0]
    # Set in the instance dict: skorch's __setattr__ has bookkeeping of its
    # own (for torch modules) that a plain count does not need.
    state["rows_in_month_"] += len(y) if isinstance(y, torch.Tensor) else get_len(y)


def batch_parts(batch):
    """``(X, y)`` of a batch (``y`` None for unlabelled rows)."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    return unpack_data(batch)


#: Optimizers whose ``step(closure)`` calls the closure exactly once, before
#: the update: for them ``zero_grad``, the step's forward and backward passes
#: then ``step()`` is what skorch's closure does, to the bit. torch's
#: ``LBFGS`` (several calls) and user-written optimizers (sharpness-aware
#: ones call it twice) keep skorch's closure.
_ONE_CALL_OPTIMIZERS = tuple(
    getattr(torch.optim, name) for name in (
        "SGD", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "RMSprop", "NAdam",
        "RAdam", "ASGD", "Rprop")
    if hasattr(torch.optim, name))


def lean_step_applies(net, fit_params, base):
    """Whether :func:`lean_train_step` does what ``quiet_train_step`` would:
    ``base``'s (the estimator class's) own ``train_step_single`` and
    ``infer`` and skorch's optimizer calls (no subclass overrides them; a
    ``get_loss`` of a subclass is called as usual), no fit parameters, no
    compiled module, and one optimizer whose step calls its closure once."""
    cls = type(net)
    if base is None or fit_params or getattr(net, "compile", False):
        return False
    if any(getattr(cls, name) is not getattr(base, name)
           for name in ("train_step_single", "infer", "get_train_step_accumulator",
                        "_zero_grad_optimizer", "_step_optimizer")):
        return False
    optimizers = getattr(net, "_optimizers", None)
    if optimizers is None or list(optimizers) != ["optimizer"]:
        return False
    return type(getattr(net, "optimizer_", None)) in _ONE_CALL_OPTIMIZERS


def lean_train_step(net, batch, device):
    """One training step with what skorch's step does between the batch and
    the optimizer, and nothing else (:func:`lean_step_applies` says when):
    the same calls on the same tensors, so the same bits. ``device``: the
    net's, as a ``torch.device``. With a small network skorch's layers (the
    closure, the step accumulator, ``infer``'s conversions) cost about a
    tenth of a step (benchmarks/bench_step.py). Returns the loss."""
    Xi, yi = batch_parts(batch)
    optimizer = net.optimizer_
    optimizer.zero_grad()
    # skorch's infer: the batch moved to the net's device, then the module.
    x = Xi if isinstance(Xi, torch.Tensor) and Xi.device == device \
        else to_tensor(Xi, device=net.device)
    y_pred = net.module_(x)
    loss = net.get_loss(y_pred, yi, X=Xi, training=True)
    loss.backward()
    after_backward(net, loss, Xi, yi)
    optimizer.step()
    return loss


def quiet_train_step(net, batch, fit_params):
    """skorch's ``train_step`` (the same closure, optimizer calls and step
    accumulator) without the ``on_grad_computed`` notification."""
    accumulator = net.get_train_step_accumulator()

    def closure():
        net._zero_grad_optimizer()
        step = net.train_step_single(batch, **fit_params)
        accumulator.store_step(step)
        return step["loss"]

    net._step_optimizer(closure)
    return accumulator.get_step()


def run_epoch_quietly(net, iterator, training, prefix, fit_params, lean_base=None):
    """One epoch of training or validation batches without per-batch
    notifications, recording skorch's history as ``run_single_epoch`` does.

    Every batch's step is skorch's (same batches, same arithmetic; with
    ``lean_base``, the estimator class, the lean step of
    :func:`lean_train_step` where :func:`lean_step_applies`); its loss
    stays a tensor until the epoch ends, when all of them are read at once
    and the epoch's batch records (``<prefix>_loss``, ``<prefix>_batch_size``,
    the values skorch writes at every batch) and ``<prefix>_batch_count``
    are written. On a GPU (:func:`defers_loss_check`) the training losses
    are checked for NaN/infinity then, once per epoch: a diverging month is
    still refused and rolled back, at the end of the epoch in which its loss
    first became non-finite rather than at that step.
    """
    losses, sizes = [], []
    deferred = training and defers_loss_check(net)
    if deferred:
        net.loss_check_deferred_ = True
    # The modules' train/eval mode, set once for the epoch (each step's
    # _set_training then returns at once).
    net._set_training(training)
    net.epoch_mode_ = training
    lean = training and lean_step_applies(net, fit_params, lean_base)
    device = torch.device(net.device)
    try:
        for batch in iterator:
            if lean:
                loss = lean_train_step(net, batch, device)
            elif training:
                loss = quiet_train_step(net, batch, fit_params)["loss"]
            else:
                loss = net.validation_step(batch, **fit_params)["loss"]
            losses.append(loss.detach())
            X = batch[0] if isinstance(batch, (tuple, list)) else batch
            sizes.append(len(X) if isinstance(X, torch.Tensor) else get_len(X))
    finally:
        del net.epoch_mode_
        if deferred:
            del net.loss_check_deferred_
    # One read of the epoch's losses (one device synchronisation).
    values = torch.stack(losses).tolist() if losses else []
    if deferred:
        for k, value in enumerate(values):
            if not math.isfinite(value):
                data = getattr(iterator, "data", None)
                X = data.sources[0][0] if data is not None and data.sources else None
                net.raise_diverged(
                    f"the training loss became {value} (at batch {k + 1} of the epoch)", X)
    loss_key, size_key = prefix + "_loss", prefix + "_batch_size"
    history = net.history
    if type(history) is History:
        history[-1]["batches"].extend(
            {loss_key: value, size_key: size} for value, size in zip(values, sizes))
    else:  # another history (skorch's DistributedHistory): its own API
        for value, size in zip(values, sizes):
            history.new_batch()
            history.record_batch(loss_key, value)
            history.record_batch(size_key, size)
    history.record(prefix + "_batch_count", len(values))
