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
from ._memory_factory import make_memory, memory_from_state, memory_with_rows

__all__ = ["DER", "DERPlusPlus"]

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


def _weighted_mean(values, weights):
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(torch.finfo(values.dtype).tiny)


class DER(RowsKeeper):
    """Dark Experience Replay: match the logits the network had on past rows.

    Each month's training rows enter a memory at the end of the month,
    together with the logits the network gives them then. While the next
    months are fine-tuned, every training batch draws a buffer batch of as
    many rows from memory and adds to its loss::

        alpha * MSE(f(x_buf), z_buf)  +  beta * CE(f(x_buf), y_buf)

    ``z_buf`` being the stored logits and ``y_buf`` the labels. The first
    term (DER) keeps the network's function on past data, not only its
    decisions; the second (DER++, ``beta > 0``) also rehearses the labels.
    Each month trains on its own rows only (``cost_`` counts them); the
    buffer batch costs one more forward and backward pass per step.

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
        Rows of the buffer batch drawn at each step. None: as many as the
        training batch (the paper's setting), which about doubles the cost
        of a step (a forward and a backward pass over as many rows again);
        a quarter of the batch costs about a quarter more.

    Notes
    -----
    Buzzega, Boschini, Porrello, Abati & Calderara, "Dark Experience for
    General Continual Learning: a Strong, Simple Baseline", NeurIPS 2020.

    The paper stores a row's logits at the step at which the row entered
    memory. Here a month is the unit of update (and of a transaction): rows
    enter memory at the end of the month they were trained in, with the
    logits of the network as it is at the end of that month (computed in
    evaluation mode, without dropout), and those logits are never updated
    later. Rows are stored as ``[X, logits]`` in an ordinary replay memory,
    so undo logs, ``memory_dir`` and checkpoints are those of replay; each
    row keeps its sample weight, which weighs both terms (times the month's
    ``class_weight``, as for the month's own rows). MSE is the mean over
    rows and logits.

    Buffer rows are drawn uniformly from memory, without replacement when
    memory holds at least a batch, from a generator seeded from the
    estimator's ``random_state`` at the start of each month. The paper's
    DER++ draws a second, independent buffer batch for the cross-entropy
    term; here both terms use the same buffer batch, so DER++ costs no more
    than DER (one extra forward pass per step). Typical values in the
    paper's class-incremental experiments lie in 0.1..1 for ``alpha`` and
    0.5..1 for ``beta``; the defaults 0.5 (and 0.5 for DER++) are a middle.

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
    }

    def __init__(self, alpha=0.5, beta=0.0, memory_size=None, memory_dir=None,
                 memory_policy="reservoir", buffer_batch_size=None):
        self.alpha = alpha
        self.beta = beta
        self.memory_size = memory_size
        self.memory_dir = memory_dir
        self.memory_policy = memory_policy
        self.buffer_batch_size = buffer_batch_size

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

    def month_data(self, net, X, y, sample_weight=None):
        # A new generator for the buffer batches of each fine-tuned month,
        # seeded from the estimator's, so a run (and a resumed run) repeats.
        self.draws = None
        if len(self.memory):
            self.draws = np.random.default_rng(int(net.rng_.integers(np.iinfo(np.int64).max)))
        return None

    def batch_penalty(self, net, X, y_pred, y_true):
        if self.draws is None or (self.alpha == 0 and self.beta == 0):
            return None
        n_buffer = self.buffer_batch_size or len(y_true)
        index = _draw_rows(self.draws, len(self.memory), n_buffer)
        memory = self.memory.rows()
        rows, y_buf, w_buf = _gather(memory.sources, memory.weights, memory.rows_of(index))
        n_features = _n_inputs(net)
        device = y_pred.device
        x_buf = rows[:, :n_features].to(device)
        z_buf = rows[:, n_features:].to(device)
        weigh = getattr(net, "row_weights", None)
        w_buf = weigh(y_buf, w_buf) if weigh is not None else w_buf
        if w_buf is not None:
            w_buf = torch.as_tensor(w_buf).to(device=device, dtype=y_pred.dtype)
        out = net.module_(x_buf)
        out = out[0] if isinstance(out, tuple) else out
        term = None
        if self.alpha != 0:
            mse = (out - z_buf).pow(2).mean(dim=1)
            term = self.alpha * _weighted_mean(mse, w_buf)
        if self.beta != 0:
            ce = F.cross_entropy(out, y_buf.to(device), reduction="none")
            ce = self.beta * _weighted_mean(ce, w_buf)
            term = ce if term is None else term + ce
        return term

    def end_month(self, net, X, y, sample_weight=None):
        n_outputs = len(net.classes_)
        step = max(1, _CHUNK_BYTES // (4 * (X.shape[1] + n_outputs)))
        for start in range(0, len(y), step):
            stop = start + step
            X_chunk = X[start:stop]
            rows = torch.cat([X_chunk, self._logits(net, X_chunk)], dim=1)
            self.memory.add(rows, y[start:stop], net.rng_,
                            sample_weight=None if sample_weight is None
                            else sample_weight[start:stop])

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
        self.draws = None

    def __repr__(self):
        extra = ""
        if self.memory_dir is not None:
            extra += f", memory_dir={os.fspath(self.memory_dir)!r}"
        if self.memory_policy != "reservoir":
            extra += f", memory_policy={self.memory_policy!r}"
        if self.buffer_batch_size is not None:
            extra += f", buffer_batch_size={self.buffer_batch_size}"
        return (f"{type(self).__name__}(alpha={self.alpha}, beta={self.beta}, "
                f"memory_size={self.memory_size}{extra})")


class DERPlusPlus(DER):
    """DER++: Dark Experience Replay with the buffer rows' labels too.

    :class:`DER` with ``beta=0.5``: the loss adds
    ``alpha * MSE(f(x_buf), z_buf) + beta * CE(f(x_buf), y_buf)`` on a
    buffer batch drawn from memory. The label term corrects logits stored
    when the network was still wrong about a row, or before a drift.

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

    Notes
    -----
    Buzzega et al., "Dark Experience for General Continual Learning: a
    Strong, Simple Baseline", NeurIPS 2020 (DER++, their eq. 6). The paper
    draws a second buffer batch for the cross-entropy term; here both terms
    share one buffer batch. See :class:`DER` for when logits are stored.

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
                 memory_policy="reservoir", buffer_batch_size=None):
        super().__init__(alpha=alpha, beta=beta, memory_size=memory_size,
                         memory_dir=memory_dir, memory_policy=memory_policy,
                         buffer_batch_size=buffer_batch_size)
