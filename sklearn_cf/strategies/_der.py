"""Dark Experience Replay: rehearse the network's own past outputs."""

import os

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_folder
from .._param_validation import Integer, Options, Real, Satisfies
from ._base import RowsKeeper
from ._class_balanced import MEMORY_POLICIES, check_memory_policy
from ._disk import remove_files, sequence_folder
from ._memory import AllRowsMemory
from ._memory_factory import make_memory, memory_from_state, memory_with_rows

__all__ = ["DER", "DERPlusPlus", "STORE_LOGITS"]

#: The values of ``store_logits``: when a row's logits enter memory.
STORE_LOGITS = ("first_seen", "month_end")

#: Bytes of (rows + logits) put into memory at a time at the end of a month,
#: so that a month larger than RAM never gets a full-size copy.
_CHUNK_BYTES = 256 << 20
_FORWARD_ROWS = 4096


def _draw_rows(rng, population, k):
    """k row indices of range(population): without replacement when possible."""
    if k <= population:
        return rng.choice(population, size=k, replace=False)
    return rng.integers(0, population, size=k)


def _gather(sources, weights, index):
    """Rows ``index`` of the virtual concatenation of ``sources`` (a list of
    ``(X, y)``) and their weights (None when no row is weighted), in order."""
    if len(sources) == 1:
        rows = torch.from_numpy(index)
        X, y = sources[0]
        w = None if weights is None or weights[0] is None else weights[0][rows]
        return X[rows], y[rows], w
    offsets = np.cumsum([0] + [len(y) for _, y in sources])
    which = np.searchsorted(offsets, index, side="right") - 1
    X0, y0 = sources[0]
    X = torch.empty((len(index), *X0.shape[1:]), dtype=X0.dtype)
    y = torch.empty((len(index), *y0.shape[1:]), dtype=y0.dtype)
    w = None if weights is None else torch.ones(len(index), dtype=torch.float32)
    for s in np.unique(which):
        at = torch.from_numpy(np.flatnonzero(which == s))
        rows = torch.from_numpy(index[at.numpy()] - offsets[s])
        X[at], y[at] = sources[s][0][rows], sources[s][1][rows]
        if w is not None and weights[s] is not None:
            w[at] = weights[s][rows]
    return X, y, w


def padded_logits(rows, n_features, n_outputs):
    """DER memory rows ``[X, logits]`` with the logits padded to ``n_outputs``
    entries, each new one the row's smallest stored logit.

    The logit-matching term is an MSE on logits, so the new entries must
    stay on the logits' own scale: a large negative target (-1e4) would
    dominate the loss and push the new unit's weights hard. The row's
    smallest logit says "no more likely than the least likely old class",
    which the network did believe of a class it had never seen.

    Examples
    --------
    >>> import torch
    >>> padded_logits(torch.tensor([[9.0, 2.0, -1.0]]), 1, 3)
    tensor([[ 9.,  2., -1., -1.]])
    """
    logits = rows[:, n_features:]
    extra = n_outputs - logits.shape[1]
    if extra <= 0:
        return rows
    low = logits.min(dim=1, keepdim=True).values.expand(-1, extra)
    return torch.cat([rows, low.to(rows.dtype)], dim=1)


def _n_inputs(net):
    """Width of the network's input, where a memory row's logits start: the
    preprocessor's output width when the model encodes raw rows."""
    return getattr(net, "n_inputs_", net.n_features_in_)


def _expected_weight_mean(values, weights, mean_weight):
    """The buffer batch's term: ``sum_i w_i v_i / (n * w_bar)``, ``w_bar``
    the mean weight of the memory the rows are drawn from (the expected
    weight of a drawn row), so that a weight of 2 counts as a row held
    twice at any buffer batch size (as the month's own loss does)."""
    if weights is None or mean_weight is None:
        return values.mean()
    return (values * weights).sum() / max(len(values) * mean_weight,
                                          torch.finfo(values.dtype).tiny)


def _memory_mean_weight(memory):
    """The mean weight of the rows in ``memory``, or None when no row has
    a weight."""
    if isinstance(memory, AllRowsMemory):
        weights = memory.weights()
        if weights is None or not len(memory):
            return None
        total = sum(float(len(y)) if w is None else float(w.double().sum())
                    for (_, y), w in zip(memory.chunks, weights))
        return total / len(memory)
    if memory.w is None or not len(memory):
        return None
    return float(memory.w[: memory.size].double().mean())


def _slot_shadow(memory):
    """A copy of a bounded memory's slots in RAM whose rows are one number,
    a row id: ``-1 - k`` for the row in slot ``k`` of ``memory``, ``i >= 0``
    for the i-th row of the month. Labels, weights, counts and the policy
    (reservoir or class-balanced) are the memory's, so adding the month's
    ids to it makes the memory's own choice of slots, step by step, while
    the memory itself is only written at the end of the month."""
    shadow = type(memory)(memory.capacity)
    if hasattr(memory, "class_seen"):
        shadow.class_seen = memory.class_seen.copy()
        shadow.class_full = memory.class_full.copy()
    shadow.n_seen = memory.n_seen
    if memory.y is not None:
        shadow._allocate(torch.empty((0, 1), dtype=torch.float64), memory.y[:0])
        n = memory.size
        shadow._X[:n, 0] = -1.0 - torch.arange(n, dtype=torch.float64)
        shadow.y[:n] = memory.y[:n]
        shadow.w = None if memory.w is None else memory.w.clone()
        shadow.size = n
    return shadow


class _MonthBuffer:
    """The buffer as the steps of a month see it with
    ``store_logits="first_seen"``: the memory at the start of the month, and
    the rows the month's first epoch trained so far, each entered (or not)
    at the step that trained it, by the memory's own policy.

    The rows of the month (with their logits and weights) are kept in RAM
    during the month and written to the memory by :meth:`flush`, which
    makes the same choice of slots from the same random draws (a seeded
    generator), so the memory on disk gets one write per month, not one
    per step, and a failed month never touches it.
    """

    def __init__(self, memory, n_rows, width, seed):
        self.memory = memory
        self.view = memory.rows() if len(memory) else None
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.rows = torch.empty((n_rows, width), dtype=torch.float32)
        self.y = torch.empty(n_rows, dtype=torch.int64)
        self.w = None
        self.n = 0
        if isinstance(memory, AllRowsMemory):
            self.slots = None
            self.n_old = len(memory)
            mean = _memory_mean_weight(memory)
            self.old_weight = None if mean is None else mean * self.n_old
        else:
            self.slots = _slot_shadow(memory)

    def __len__(self):
        return self.n_old + self.n if self.slots is None else len(self.slots)

    def add(self, X, logits, y, weights):
        """Rows just trained for the first time, with the network's outputs
        on them at that step; the memory's policy decides now which enter."""
        k, start = len(y), self.n
        if start + k > len(self.rows):
            raise RuntimeError(
                f"DER's first epoch trained {start + k} rows, more than the month's "
                f"{len(self.rows)}: its epoch must train every row once."
            )
        n_inputs = X.shape[1]
        self.rows[start:start + k, :n_inputs] = X.detach().to("cpu", torch.float32)
        self.rows[start:start + k, n_inputs:] = logits.detach().to("cpu", torch.float32)
        self.y[start:start + k] = y.detach().cpu()
        if weights is not None:
            if self.w is None:
                self.w = torch.ones(len(self.rows), dtype=torch.float32)
            self.w[start:start + k] = torch.as_tensor(weights).detach().to("cpu", torch.float32)
        self.n += k
        if self.slots is not None:
            ids = torch.arange(start, start + k, dtype=torch.float64)[:, None]
            self.slots.add(ids, self.y[start:start + k], self.rng,
                           sample_weight=None if self.w is None else self.w[start:start + k])

    def mean_weight(self):
        """The mean weight of the rows in the buffer now (None: unweighted)."""
        if self.slots is not None:
            if self.slots.w is None or not len(self.slots):
                return None
            return float(self.slots.w[: self.slots.size].double().mean())
        if self.old_weight is None and self.w is None:
            return None
        old = float(self.n_old) if self.old_weight is None else self.old_weight
        new = float(self.n) if self.w is None else float(self.w[: self.n].double().sum())
        return (old + new) / max(len(self), 1)

    def gather(self, slots):
        """Rows (``[X, logits]``), labels and weights (or None) of buffer
        slots ``slots`` (an int array), in that order."""
        if self.slots is None:
            new = slots - self.n_old
        else:
            new = self.slots._X[torch.from_numpy(slots), 0].numpy().astype(np.int64)
        old = new < 0
        rows = torch.empty((len(slots), self.rows.shape[1]), dtype=torch.float32)
        y = torch.empty(len(slots), dtype=torch.int64)
        w = torch.ones(len(slots), dtype=torch.float32)
        weighted = self.w is not None
        if old.any():
            at = torch.from_numpy(np.flatnonzero(old))
            index = slots[old] if self.slots is None else -1 - new[old]
            X_old, y_old, w_old = _gather(self.view.sources, self.view.weights,
                                          self.view.rows_of(index))
            rows[at], y[at] = X_old.to(torch.float32), y_old.to(torch.int64)
            if w_old is not None:
                w[at] = w_old.to(torch.float32)
                weighted = True
        if not old.all():
            at = torch.from_numpy(np.flatnonzero(~old))
            pick = torch.from_numpy(new[~old])
            rows[at], y[at] = self.rows[pick], self.y[pick]
            if self.w is not None:
                w[at] = self.w[pick]
        return rows, y, (w if weighted else None)

    def flush(self):
        """Write the month's rows to the memory, in the order they were
        trained, with the draws :meth:`add` used (the same slots)."""
        if not self.n:
            return
        rng = np.random.default_rng(self.seed)
        step = max(1, _CHUNK_BYTES // (4 * self.rows.shape[1]))
        for start in range(0, self.n, step):
            stop = min(start + step, self.n)
            self.memory.add(self.rows[start:stop], self.y[start:stop], rng,
                            sample_weight=None if self.w is None else self.w[start:stop])


class DER(RowsKeeper):
    """Dark Experience Replay: match the logits the network had on past rows.

    Every row the network trains on is offered to a memory together with
    the logits the network gave it in the step that first trained it (the
    paper's algorithm; ``store_logits="first_seen"``), or at the end of its
    month (``store_logits="month_end"``). Every training step then draws
    buffer batches from memory and adds to its loss::

        alpha * MSE(f(x'), z')  +  beta * CE(f(x''), y'')

    ``(x', z')`` a buffer batch with its stored logits, ``(x'', y'')`` a
    second, independent buffer batch with its labels. The first term (DER)
    keeps the network's function on past data, not only its decisions; the
    second (DER++, ``beta > 0``) also rehearses the labels. Each month
    trains on its own rows only (``cost_`` counts them); each buffer batch
    costs one more forward and backward pass over its rows per step.

    Parameters
    ----------
    alpha : float >= 0, default=0.5
        Weight of the logit-matching term. Larger: less forgetting, less
        learning of the new month; 0 turns it off.
    beta : float >= 0, default=0.0
        Weight of the cross-entropy on the buffer rows' labels (DER++ when
        > 0; see :class:`DERPlusPlus`, whose default is 0.5).
    memory_size : int or None, default=None
        None: remember every past training row (and its logits); memory
        grows with history. int: keep at most this many rows, chosen by
        ``memory_policy``.
    memory_dir : path-like or None, default=None
        None: memory in RAM. A folder: in memory-mapped ``.npy`` files in a
        new subfolder of it, never changed once written (each month writes
        new ones); the same draws and predictions as in RAM.
    memory_policy : {"reservoir", "class_balanced"}, default="reservoir"
        Which rows a bounded memory keeps: a uniform reservoir sample, or a
        class-balanced one (CBRS, see
        :class:`~sklearn_cf.strategies.ClassBalancedMemory`), which keeps
        rare classes; needs ``memory_size``.
    buffer_batch_size : int or None, default=None
        Rows of each buffer batch drawn at each step. None: as many as the
        training batch (the paper's setting), which about doubles the cost
        of a step for DER (triples it for DER++); a quarter of the batch
        costs about a quarter more per buffer batch.
    store_logits : {"first_seen", "month_end"}, default="first_seen"
        When a row and its logits enter memory. "first_seen" (the paper):
        in the step that first trains the row (the month's first epoch),
        with the network's outputs in that step (training mode, as the
        paper), the memory's choice of slot made then; rows of the month
        can be drawn from the next step on, the base month included.
        "month_end": at the end of the row's month, with the logits of the
        network trained on the whole month (evaluation mode, no dropout);
        the buffer term starts with the second month. Targets stored at
        month end are those of a better-trained network on the month's
        rows, so they pull harder toward the end-of-month function.
        "first_seen" keeps the rows its month trained, with their logits,
        in RAM until the month ends (about one copy of the month);
        "month_end" reads them in chunks, for months larger than RAM.

    Notes
    -----
    Buzzega, Boschini, Porrello, Abati & Calderara, "Dark Experience for
    General Continual Learning: a Strong, Simple Baseline", NeurIPS 2020,
    Algorithm 1: at every step, draw ``(x', z')`` from memory (and, for
    DER++, an independent ``(x'', y'')``), add the terms above to the
    cross-entropy of the batch, take the optimizer step, and offer the
    batch's rows to the reservoir with the logits of that step's forward
    pass. With the default ``store_logits="first_seen"`` this is that
    algorithm, step for step (``tests/test_der_reference.py`` checks it
    against a plain torch loop); a row is offered once, in the month's
    first epoch, as in the paper's single pass over the stream. The
    month's rows are kept in RAM during the month and written to the
    memory (RAM or ``memory_dir``) at its end, with the same slots.

    Rows are stored as ``[X, logits]`` in an ordinary replay memory, so
    undo logs, ``memory_dir`` and checkpoints are those of replay. Each row
    keeps the loss weight it had in its own month (its sample weight times
    its month's ``class_weight``), which weighs both terms; like the
    month's loss, each term is divided by its expected weight (the buffer
    batch's rows times the memory's mean weight), so a weight of 2 counts
    as the row held twice. MSE is the mean over logits.

    Buffer rows are drawn uniformly from memory, without replacement when
    memory holds at least a batch, from a generator seeded from the
    estimator's ``random_state`` at the start of each month. Typical values
    in the paper's class-incremental experiments lie in 0.1..1 for
    ``alpha`` and 0.5..1 for ``beta``; the defaults 0.5 (and 0.5 for
    DER++) are a middle.

    The network's outputs must be logits: the criterion must be
    ``torch.nn.CrossEntropyLoss`` (the default).

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
    >>> clf = ContinualClassifier(strategy="der", strategy__alpha=0.3, memory_size=300,
    ...                           max_epochs=1, random_state=0).fit(X, y, months=months)
    >>> clf.strategy_
    DER(alpha=0.3, beta=0.0, memory_size=300)
    >>> len(clf.strategy_.memory), [c["rows"] for c in clf.cost_]
    (300, [200, 200, 200])
    """

    name = "der"
    #: Runs the network on replayed rows outside the distributed forward
    #: pass, which DDP cannot average.
    shardable = False

    _parameter_constraints = {
        "alpha": Real(0, np.inf),
        "beta": Real(0, np.inf),
        "memory_size": Integer(1, none=True),
        "memory_dir": Satisfies(check_folder),
        "memory_policy": Options(*MEMORY_POLICIES),
        "buffer_batch_size": Integer(1, none=True),
        "store_logits": Options(*STORE_LOGITS),
    }

    def __init__(self, alpha=0.5, beta=0.0, memory_size=None, memory_dir=None,
                 memory_policy="reservoir", buffer_batch_size=None, store_logits="first_seen"):
        self.alpha = alpha
        self.beta = beta
        self.memory_size = memory_size
        self.memory_dir = memory_dir
        self.memory_policy = memory_policy
        self.buffer_batch_size = buffer_batch_size
        self.store_logits = store_logits

    def check_params(self):
        super().check_params()
        check_memory_policy(self.memory_policy, self.memory_size)

    def start(self, net):
        criterion = getattr(net, "criterion_", None)
        if criterion is not None and not isinstance(criterion, torch.nn.CrossEntropyLoss):
            raise TypeError(
                f"{type(self).__name__} matches and stores the network's logits, but the "
                f"criterion is {type(criterion).__name__}. Use "
                "criterion=torch.nn.CrossEntropyLoss with a module that returns logits."
            )
        # Named now (memory_dir made absolute), created at the first write.
        folder = None if self.memory_dir is None else sequence_folder(self.memory_dir, "der")
        self.memory = make_memory(self.memory_size, folder, self.memory_policy)
        self.draws = None
        self.month_buffer = None
        self.mean_weight = None

    def month_data(self, net, X, y, sample_weight=None):
        # New generators for the buffer batches (and the memory's choices)
        # of each month, seeded from the estimator's, so a run (and a
        # resumed run) repeats.
        self.draws = self.month_buffer = self.mean_weight = None
        if self.store_logits == "first_seen":
            seeds = net.rng_.integers(np.iinfo(np.int64).max, size=2)
            self.draws = np.random.default_rng(int(seeds[0]))
            self.month_buffer = _MonthBuffer(self.memory, len(y),
                                             _n_inputs(net) + len(net.classes_), int(seeds[1]))
        elif len(self.memory):
            self.draws = np.random.default_rng(int(net.rng_.integers(np.iinfo(np.int64).max)))
            self.mean_weight = _memory_mean_weight(self.memory)
        return None

    def _buffer_rows(self, slots):
        """``[X, logits]``, labels and weights of buffer slots ``slots``."""
        if self.month_buffer is not None:
            return self.month_buffer.gather(slots)
        memory = self.memory.rows()
        return _gather(memory.sources, memory.weights, memory.rows_of(slots))

    def batch_penalty(self, net, X, y_pred, y_true):
        buffer = self.month_buffer
        n_memory = len(buffer) if buffer is not None else (
            len(self.memory) if self.draws is not None else 0)
        term = None
        if n_memory and (self.alpha != 0 or self.beta != 0):
            term = self._buffer_terms(net, y_pred, len(y_true), n_memory)
        if buffer is not None and getattr(net, "epochs_run_in_month_", 1) <= 1:
            # The paper's reservoir step, after the buffer draws: the
            # batch's rows with this step's outputs and their loss weights.
            buffer.add(X, y_pred, y_true, net.__dict__.get("batch_row_weights_"))
        return term

    def _buffer_terms(self, net, y_pred, n_batch, n_memory):
        n_buffer = self.buffer_batch_size or n_batch
        # Independent draws for the two terms (DER++, the paper's eq. 6),
        # the logit batch first.
        draws = [_draw_rows(self.draws, n_memory, n_buffer) if weight != 0 else None
                 for weight in (self.alpha, self.beta)]
        slots = np.concatenate([d for d in draws if d is not None])
        rows, y_buf, w_buf = self._buffer_rows(slots)
        mean_weight = (self.month_buffer.mean_weight() if self.month_buffer is not None
                       else self.mean_weight)
        n_features = _n_inputs(net)
        device = y_pred.device
        if w_buf is not None:
            w_buf = w_buf.to(device=device, dtype=y_pred.dtype)
        # One forward pass over both buffer batches.
        out = net.module_(rows[:, :n_features].to(device))
        out = out[0] if isinstance(out, tuple) else out
        term, at = None, 0
        for k, (weight, drawn) in enumerate(zip((self.alpha, self.beta), draws)):
            if drawn is None:
                continue
            part = slice(at, at + len(drawn))
            at += len(drawn)
            if k == 0:
                z_buf = rows[part, n_features:].to(device)
                values = (out[part] - z_buf).pow(2).mean(dim=1)
            else:
                values = F.cross_entropy(out[part], y_buf[part].to(device), reduction="none")
            value = weight * _expected_weight_mean(
                values, None if w_buf is None else w_buf[part], mean_weight)
            term = value if term is None else term + value
        return term

    def end_month(self, net, X, y, sample_weight=None):
        if self.store_logits == "first_seen":
            if self.month_buffer is not None:
                self.month_buffer.flush()
            self.month_buffer = None
            return
        # Each row keeps the loss weight of its own month (its class weight
        # now, while the month's class weights are set).
        weights = net.row_weights(y, sample_weight) if hasattr(net, "row_weights") \
            else sample_weight
        if weights is not None:
            weights = torch.as_tensor(weights).to("cpu", torch.float32)
        n_outputs = len(net.classes_)
        step = max(1, _CHUNK_BYTES // (4 * (X.shape[1] + n_outputs)))
        for start in range(0, len(y), step):
            stop = start + step
            X_chunk = X[start:stop]
            rows = torch.cat([X_chunk, self._logits(net, X_chunk)], dim=1)
            self.memory.add(rows, y[start:stop], net.rng_,
                            sample_weight=None if weights is None else weights[start:stop])

    @staticmethod
    def _logits(net, X):
        """The network's outputs on ``X`` as it is now (evaluation mode), on the CPU."""
        module = net.module_
        was_training = module.training
        module.eval()
        try:
            outputs = []
            with torch.no_grad():
                for start in range(0, len(X), _FORWARD_ROWS):
                    out = module(X[start:start + _FORWARD_ROWS].to(net.device))
                    out = out[0] if isinstance(out, tuple) else out
                    outputs.append(out.detach().to("cpu", torch.float32))
        finally:
            module.train(was_training)
        return torch.cat(outputs)

    def grow_classes(self, net, n_old, n_new):
        """The memory keeps its rows and labels; each row's stored logits
        get one more entry per new class, equal to the row's smallest
        stored logit (:func:`padded_logits`). The memory is rewritten once
        (new files on disk), the old one left as it was for a rollback."""
        if not len(self.memory):
            return
        n_features = _n_inputs(net)
        self.memory = memory_with_rows(
            self.memory, lambda rows: padded_logits(rows, n_features, n_new))

    def rollback(self, savepoint):
        grown = self.memory
        super().rollback(savepoint)
        if grown is not self.memory:  # a memory rewritten by grow_classes
            kept = set(self.memory.memory_files())
            remove_files([path for path in grown.memory_files() if path not in kept])

    def state_dict(self):
        return {"memory": self.memory.state_dict()}

    def load_state_dict(self, state, net):
        self.memory = memory_from_state(state["memory"])
        self.draws = self.month_buffer = self.mean_weight = None

    def __repr__(self):
        extra = ""
        if self.memory_dir is not None:
            extra += f", memory_dir={os.fspath(self.memory_dir)!r}"
        if self.memory_policy != "reservoir":
            extra += f", memory_policy={self.memory_policy!r}"
        if self.buffer_batch_size is not None:
            extra += f", buffer_batch_size={self.buffer_batch_size}"
        if self.store_logits != "first_seen":
            extra += f", store_logits={self.store_logits!r}"
        return (f"{type(self).__name__}(alpha={self.alpha}, beta={self.beta}, "
                f"memory_size={self.memory_size}{extra})")


class DERPlusPlus(DER):
    """DER++: Dark Experience Replay with the buffer rows' labels too.

    :class:`DER` with ``beta=0.5``: the loss adds
    ``alpha * MSE(f(x'), z') + beta * CE(f(x''), y'')`` on two buffer
    batches drawn independently from memory. The label term corrects
    logits stored when the network was still wrong about a row, or before a
    drift.

    Parameters
    ----------
    alpha : float >= 0, default=0.5
        Weight of the logit-matching term.
    beta : float >= 0, default=0.5
        Weight of the cross-entropy on the buffer rows' labels.
    memory_size : int or None, default=None
        None: every past row; int: at most this many (``memory_policy``).
    memory_dir : path-like or None, default=None
        None: memory in RAM; a folder: memory-mapped files there.
    memory_policy : {"reservoir", "class_balanced"}, default="reservoir"
        Uniform or class-balanced (CBRS) choice of the rows kept.
    buffer_batch_size : int or None, default=None
        Rows of each of the two buffer batches; None: the training batch's.
    store_logits : {"first_seen", "month_end"}, default="first_seen"
        When a row's logits are stored: in the step that first trains it
        (the paper), or at the end of its month. See :class:`DER`.

    Notes
    -----
    Buzzega et al., "Dark Experience for General Continual Learning: a
    Strong, Simple Baseline", NeurIPS 2020 (DER++, their eq. 6 and
    Algorithm 1): the two terms use two independent buffer batches, as in
    the paper; one forward pass runs over both. See :class:`DER` for when
    logits are stored.

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
    >>> clf = ContinualClassifier(strategy="der++", memory_size=300, max_epochs=1,
    ...                           random_state=0).fit(X, y, months=months)
    >>> clf.strategy_
    DERPlusPlus(alpha=0.5, beta=0.5, memory_size=300)
    >>> bool(clf.score(X, y) > 0.5)
    True
    """

    name = "der++"

    def __init__(self, alpha=0.5, beta=0.5, memory_size=None, memory_dir=None,
                 memory_policy="reservoir", buffer_batch_size=None, store_logits="first_seen"):
        super().__init__(alpha=alpha, beta=beta, memory_size=memory_size,
                         memory_dir=memory_dir, memory_policy=memory_policy,
                         buffer_batch_size=buffer_batch_size, store_logits=store_logits)
