"""Diagonal curvature (Fisher information / Hessian) of a classifier's loss.

Elastic weight consolidation (EWC, Kirkpatrick et al., 2017) penalises a
parameter's move away from last month's value in proportion to how much the
old data's log-likelihood curves along it. That weight is the diagonal of a
curvature matrix of the per-row loss ``l_n(c) = -log p(c | x_n)``; this
module computes three such diagonals, all exact means over the rows:

``"empirical"``
    The empirical Fisher ``mean_n (grad l_n(y_n))**2``: squared
    *per-sample* gradients at the observed labels.
``"true"``
    The Fisher information ``mean_n sum_c p(c|x_n) (grad l_n(c))**2``, the
    exact expectation under the model's own predictive distribution. For a
    softmax output it equals the generalised Gauss-Newton (GGN) diagonal.
``"hessian"``
    The diagonal of the Hessian ``mean_n diag(hess l_n(y_n))``. For a
    network of ``Linear`` layers and piecewise-linear activations (ReLU) it
    equals the GGN diagonal and is never negative; curved activations
    (tanh, sigmoid, ELU, GELU, ...) add a term that may be negative.

Four computational routes are tried in order:

1. *Linear hooks* ("empirical", "true"): when every trainable parameter sits
   in an ``nn.Linear`` called once per forward on a 2-D batch (checked at run
   time through hook counts and the autograd graph), the per-sample gradient
   of ``W`` is the outer product ``g_n x_n^T`` of the gradient at the layer's
   output and its input, so its square sums to ``(g**2).T @ x**2``.
   Cost: one backward pass ("empirical") or K passes ("true").
2. *Chain curvature backpropagation* ("hessian"): for a chain of ``Linear``
   layers and elementwise activations (``nn.Sequential``, or a module such
   as :class:`~sklearn_cf._mlp.MLP` whose ``forward`` is its ``.layers``
   chain, which is verified on the first batch), a signed symmetric factor
   of the Hessian w.r.t. each layer's output is propagated backwards
   (Martens et al., 2012; Dangel et al., 2020). Cost: about K backward
   passes for ReLU chains and for curved chains with at most two hidden
   layers; deeper curved chains pay an extra O(width**2) per row for each
   hidden layer beyond the second.
3. *torch.func* (any kind, any vmap-compatible module): per-sample gradients
   by ``vmap(grad(...))`` and per-sample Hessian diagonals by one-hot
   Hessian-vector products. Exact but slow (the Hessian needs one product
   per parameter entry and row); meant for small modules.
4. *Autograd loop* (any kind, any module): where ``torch.func`` cannot
   transform the module (Python control flow on tensor values, ``.item()``,
   or a double-backward formula that ``vmap`` cannot batch, as for
   ``nn.LayerNorm`` in the Hessian), plain ``torch.autograd.grad``: one
   backward pass per row ("empirical") or per row and class ("true"), and
   for "hessian" one double-backward pass per parameter entry and batch.
   Exact, and the slowest route; a warning says so when it needs more than
   100,000 passes.

All routes assume that row n of the module's output depends on row n of
its input only.
"""

import math
import numbers
import warnings

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vjp, vmap

from ._data import as_tensor
from ._mlp import GeneratorDropout

__all__ = ["fisher_diagonal"]

_KINDS = ("empirical", "true", "hessian")
_OUTPUTS = ("logits", "proba")

# Upper bound on the elements of the largest temporary that the heavy routes
# (per-sample gradients, Hessian factors) build at once: 2**25 elements is
# 128 MiB in float32. Batches are split further when they would exceed it.
_MAX_TEMP_ELEMENTS = 2**25

# Rows of X checked for NaN/inf at a time (the check's temporary is one
# boolean per entry of these rows, not of the whole month).
_FINITE_CHECK_ROWS = 65536

# Backward passes above which the autograd loop (route 4) warns that it is
# slow: at 0.2-1 ms a pass on a CPU, about a minute or more.
_SLOW_LOOP_PASSES = 100_000

# Slack allowed when checking that outputs="proba" are probabilities: on each
# value (rounding of a softmax), and on each row's sum (at least, so that
# the rounding of a sum over many classes in low precision passes).
_PROBA_VALUE_SLACK = 1e-6
_PROBA_SUM_SLACK = 1e-3

# Elementwise layers that pass values through unchanged in eval mode.
_PASSTHROUGH = (nn.Identity, nn.Dropout, nn.AlphaDropout, GeneratorDropout)
# Piecewise-linear activations: zero second derivative almost everywhere.
_PIECEWISE_LINEAR = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, nn.Hardsigmoid)
# Elementwise activations with curvature.
_CURVED = (
    nn.Tanh,
    nn.Sigmoid,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Softsign,
    nn.LogSigmoid,
    nn.Tanhshrink,
    nn.Hardswish,
)


def fisher_diagonal(
    module, X, y, *, kind="empirical", batch_size=512, outputs="logits",
    sample_weight=None,
):
    """Diagonal Fisher information or Hessian of a classifier's mean loss.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a 2-D float tensor of shape ``(n, d)`` to class scores of shape
        ``(n, K)``. Row ``n`` of the output must depend on row ``n`` of the
        input only (true of any network in eval mode without cross-row
        operations).
    X : array-like or torch.Tensor of shape (n, d)
        Input rows; converted to the dtype and device of the module's first
        parameter.
    y : array-like or torch.Tensor of shape (n,)
        Integer class indices in ``[0, K)``.
    kind : {"empirical", "true", "hessian"}, default="empirical"
        Which curvature diagonal to compute (see Notes).
    batch_size : int, default=512
        Rows processed at once; bounds the memory used. The result does not
        depend on it (up to floating-point rounding).
    outputs : {"logits", "proba"}, default="logits"
        ``"logits"``: ``log p = log_softmax(module(x))``; a module that
        returns log-probabilities (ends in ``LogSoftmax``) belongs here too,
        since ``log_softmax`` leaves them unchanged. ``"proba"``: the
        module returns probabilities and ``log p = log(clamp(p, min=tiny))``
        with ``tiny`` the smallest normal number of the dtype; every batch
        of outputs is checked to lie in ``[0, 1]`` and sum to 1 over the
        classes.
    sample_weight : array-like of shape (n,) or None, default=None
        Non-negative weight of each row's loss, not all zero: the result is
        the weighted mean ``sum_n w_n f_n / sum_n w_n`` of the rows' terms
        (the curvature of the weighted mean loss a weighted fit minimises).
        None: every row weighs 1.

    Returns
    -------
    dict of str to torch.Tensor
        One entry per trainable parameter (``requires_grad=True``), keyed by
        its name in ``module.named_parameters()``, with that parameter's
        shape, dtype and device, detached from any graph.

    Raises
    ------
    ValueError
        For an unknown ``kind`` or ``outputs``, ``batch_size < 1``, an empty
        or non 2-D ``X`` or one holding NaN or inf, ``y`` of another length
        than ``X`` or with labels outside ``[0, K)``, a module whose output
        is not ``(n, K)``, or ``outputs="proba"`` with outputs that are not
        probabilities (values outside ``[0, 1]`` up to ``1e-6``, or rows
        that do not sum to 1 up to ``1e-3``): log-probabilities would
        otherwise give all zeros.
    FloatingPointError
        If the result holds NaN or infinite entries: the module's outputs
        overflow (e.g. on features of a very large scale), or its parameters
        are not finite.

    Notes
    -----
    With the per-row loss :math:`\\ell_n(c) = -\\log p_\\theta(c \\mid x_n)`
    and :math:`N` rows, the three kinds are

    .. math::

        F_{\\mathrm{emp}} &= \\frac{1}{N} \\sum_n
            \\left(\\nabla_\\theta \\ell_n(y_n)\\right)^2, \\\\
        F &= \\frac{1}{N} \\sum_n \\sum_c p_\\theta(c \\mid x_n)
            \\left(\\nabla_\\theta \\ell_n(c)\\right)^2, \\\\
        H &= \\frac{1}{N} \\sum_n
            \\operatorname{diag} \\nabla^2_\\theta \\ell_n(y_n),

    with squares taken elementwise. :math:`F_{\\mathrm{emp}}` squares
    per-sample gradients: squaring mini-batch gradients instead would
    underestimate it by about the batch size. :math:`F` is the exact
    expectation over the model's predictive distribution (no sampled
    labels), hence deterministic; it is the diagonal of the generalised
    Gauss-Newton matrix :math:`J^\\top (\\operatorname{diag} p - p p^\\top) J`.
    :math:`F_{\\mathrm{emp}}` is only a crude approximation of :math:`F`
    away from a perfect fit (Kunstner et al., 2019; Martens, 2020).

    :math:`H` adds to the Gauss-Newton part the network's own curvature
    weighted by the backpropagated gradient. That term vanishes for a
    network of ``Linear`` layers and piecewise-linear activations (ReLU), so
    there :math:`H = F` and is non-negative; curved activations (tanh,
    sigmoid, ELU, GELU) make it indefinite and some entries may be negative.
    They are returned as they are: clip them if a penalty needs them
    non-negative.

    The computation runs in eval mode (dropout off). The ``training`` flags,
    ``requires_grad`` and the ``.grad`` of every parameter are left as they
    were. The fast routes are chosen automatically and checked at run time
    (see the module docstring): Linear hooks for "empirical" and "true"
    when every trainable parameter belongs to an ``nn.Linear``, curvature
    backpropagation for "hessian" on a chain of ``Linear`` layers and
    elementwise activations. Other modules use ``torch.func``; the Hessian
    there needs one Hessian-vector product per parameter entry and row, so
    it is meant for small modules only. Where ``torch.func`` fails on the
    module (e.g. "hessian" with ``nn.LayerNorm``, or Python control flow
    on tensor values), a plain autograd loop computes the same exact
    result, slower still: one backward pass per row (and class, for
    "true"), or for "hessian" one double-backward pass per parameter entry
    and batch, so a larger ``batch_size`` makes it faster. It warns when it
    needs more than 100,000 passes.

    References
    ----------
    Kirkpatrick et al. (2017). Overcoming catastrophic forgetting in neural
    networks. PNAS 114(13).
    Kunstner, Hennig and Balles (2019). Limitations of the empirical Fisher
    approximation for natural gradient descent. NeurIPS.
    Martens (2020). New insights and perspectives on the natural gradient
    method. JMLR 21(146).
    Martens, Sutskever and Swersky (2012). Estimating the Hessian by
    back-propagating curvature. ICML.
    Dangel, Kunstner and Hennig (2020). BackPACK: packing more into
    backprop. ICLR.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cf._mlp import MLP
    >>> from sklearn_cf._fisher import fisher_diagonal
    >>> _ = torch.manual_seed(0)
    >>> net = MLP(n_features=4, n_classes=3, hidden_units=(8,)).double()
    >>> X = torch.randn(50, 4, dtype=torch.float64)
    >>> y = torch.randint(0, 3, (50,))
    >>> F = fisher_diagonal(net, X, y, kind="true")
    >>> sorted(F)
    ['layers.0.bias', 'layers.0.weight', 'layers.2.bias', 'layers.2.weight']
    >>> F["layers.0.weight"].shape
    torch.Size([8, 4])
    >>> H = fisher_diagonal(net, X, y, kind="hessian")
    >>> all(torch.allclose(H[k], F[k]) for k in F)  # ReLU network: H == F
    True
    """
    _check_options(kind, outputs, batch_size)
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    X, y = _as_tensors(module, X, y)
    w = _as_weights(sample_weight, X.shape[0], X.dtype, X.device)
    all_params = list(module.parameters())
    with _eval_mode(module), _grads_preserved(all_params):
        n_classes = _probe_n_classes(module, X, y)
        if not trainable:
            return {}
        sums = _dispatch(module, trainable, X, y, kind, batch_size, outputs, n_classes, w)
    # The mean over rows; with weights, the weighted mean.
    n_rows = X.shape[0] if w is None else w.sum()
    result = {
        name: (sums[name] / n_rows).to(dtype=p.dtype, device=p.device).detach()
        for name, p in trainable
    }
    # Checked after the cast: float64 sums can be finite and still overflow
    # a float32 parameter's dtype.
    _check_finite(result, kind, all_params)
    return result


def _dispatch(module, trainable, X, y, kind, batch_size, outputs, n_classes, w=None):
    """Run the fastest applicable route; return per-parameter sums over rows
    (each row's term times its weight in ``w``, a tensor or None)."""
    if kind == "hessian":
        layers = _as_chain(module, trainable, outputs)
        if layers is not None:
            sums = _chain_hessian(
                module, layers, trainable, X, y, batch_size, outputs, n_classes, w
            )
            if sums is not None:
                return sums
        args = (module, trainable, X, y, batch_size, outputs, n_classes, w)
        passes = _loop_passes(trainable, X.shape[0], kind, batch_size, n_classes)
        return _func_or_loop(_func_hessian, _loop_hessian, args, kind, passes)
    owners = _linear_owners(module, trainable)
    if owners is not None:
        sums = _linear_hook_fisher(
            module, trainable, owners, X, y, kind, batch_size, outputs, n_classes, w
        )
        if sums is not None:
            return sums
    args = (module, trainable, X, y, kind, batch_size, outputs, n_classes, w)
    passes = _loop_passes(trainable, X.shape[0], kind, batch_size, n_classes)
    return _func_or_loop(_func_fisher, _loop_fisher, args, kind, passes)


# --------------------------------------------------------------------------
# Input checks and shared helpers
# --------------------------------------------------------------------------


def _check_options(kind, outputs, batch_size):
    if kind not in _KINDS:
        raise ValueError(
            f"Unknown kind {kind!r}; expected one of {', '.join(map(repr, _KINDS))}."
        )
    if outputs not in _OUTPUTS:
        raise ValueError(
            f"Unknown outputs {outputs!r}; expected one of "
            f"{', '.join(map(repr, _OUTPUTS))}."
        )
    if (
        not isinstance(batch_size, numbers.Integral)
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}.")


def _as_tensors(module, X, y):
    """X's rows in the module's dtype/device and y as int64 on that device.

    X is converted batch by batch (see :class:`_ConvertedRows`) when its
    dtype or device differs from the module's, so a month is never copied
    whole to the device or to another dtype.
    """
    first = next(module.parameters(), None)
    dtype = first.dtype if first is not None else torch.get_default_dtype()
    device = first.device if first is not None else torch.device("cpu")
    if not isinstance(X, torch.Tensor):
        X = np.asarray(X)
        if X.dtype.kind in "biufc" and X.flags.c_contiguous:
            X = as_tensor(X)  # zero-copy, also for a read-only memmap
    X = torch.as_tensor(X).detach()
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_rows, n_features); got shape {tuple(X.shape)}."
        )
    if X.shape[0] == 0:
        raise ValueError("X is empty: at least one row is needed.")
    # Before the cast: values that only overflow the module's dtype are a
    # scale problem, reported as such by _check_finite.
    if X.is_floating_point() or X.is_complex():
        n_bad = sum(
            int((~torch.isfinite(X[start : start + _FINITE_CHECK_ROWS])).sum())
            for start in range(0, X.shape[0], _FINITE_CHECK_ROWS)
        )
        if n_bad:
            raise ValueError(
                f"X contains NaN or infinite values ({n_bad} entries); impute or "
                "drop them first."
            )
    if X.dtype != dtype or X.device != torch.device(device):
        X = _ConvertedRows(X, dtype, device)
    if not isinstance(y, torch.Tensor):
        y = np.asarray(y)
    y = torch.as_tensor(y).detach()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D class indices; got shape {tuple(y.shape)}.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have different lengths: {X.shape[0]} rows in X, "
            f"{y.shape[0]} labels in y."
        )
    if y.dtype.is_complex or (
        y.dtype.is_floating_point and not torch.equal(y, y.round())
    ):
        raise ValueError("y must hold integer class indices; got non-integer values.")
    return X, y.to(dtype=torch.int64, device=device)


def _probe_n_classes(module, X, y):
    """Run one row to learn K and check that every label lies in [0, K)."""
    with torch.no_grad():
        out = module(X[:1])
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
        raise ValueError(
            f"module must map (n, d) inputs to (n, K) scores; got {shape} for one row."
        )
    n_classes = out.shape[1]
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= n_classes:
        raise ValueError(
            f"y must contain class indices in [0, {n_classes}) for a module with "
            f"{n_classes} outputs; got labels in [{low}, {high}]."
        )
    return n_classes


def _check_scores(out, n_rows, n_classes, outputs):
    """Check a batch of module outputs: its shape, and probabilities if "proba"."""
    if out.ndim != 2 or out.shape != (n_rows, n_classes):
        raise ValueError(
            f"module must map (n, d) inputs to (n, {n_classes}) scores; got "
            f"{tuple(out.shape)} for {n_rows} rows."
        )
    if outputs == "proba":
        _check_proba(out.detach())


def _check_proba(out):
    """Raise unless a batch of outputs are probabilities (rows summing to 1).

    log(clamp(p, tiny)) is flat wherever p < tiny, so log-probabilities
    or logits taken for probabilities would give an all-zero curvature
    without any error. NaN passes here and is reported as non-finite at the
    end, with the likely cause.
    """
    fix = (
        "Use outputs='logits' (log_softmax is applied; log-probabilities pass "
        "through it unchanged) or make the module end in Softmax."
    )
    low, high = float(out.min()), float(out.max())
    if low < -_PROBA_VALUE_SLACK:
        raise ValueError(
            f"outputs='proba' but the module returns values outside [0, 1] "
            f"(min {low:.3g}): it looks like log-probabilities or logits. {fix}"
        )
    if high > 1 + _PROBA_VALUE_SLACK:
        raise ValueError(
            f"outputs='proba' but the module returns values outside [0, 1] "
            f"(max {high:.3g}): it looks like logits or unnormalized scores. {fix}"
        )
    n_classes = out.shape[1]
    tol = max(_PROBA_SUM_SLACK, n_classes * torch.finfo(out.dtype).eps)
    row_sums = out.sum(1)
    worst = int((row_sums - 1).abs().argmax())
    if abs(float(row_sums[worst]) - 1) > tol:
        raise ValueError(
            f"outputs='proba' but the module's rows do not sum to 1 (row "
            f"{worst} of a batch sums to {float(row_sums[worst]):.6g}): they "
            f"look like unnormalized scores. {fix}"
        )


def _check_finite(result, kind, params):
    """Raise FloatingPointError, with the likely cause, if a result is not finite.

    X was checked to be finite (before its cast to the module's dtype), so
    NaN/inf come from the parameters or from an overflow in the forward or
    backward pass.
    """
    bad = [name for name, v in result.items() if not bool(torch.isfinite(v).all())]
    if not bad:
        return
    if not all(bool(torch.isfinite(p).all()) for p in params):
        cause = (
            "the module's parameters hold NaN or inf (did training diverge?); "
            "lower the learning rate or clip gradients."
        )
    else:
        cause = (
            "the module's outputs or gradients overflowed; features on a very "
            "large scale? Standardize them (e.g. sklearn.preprocessing."
            "StandardScaler)."
        )
    raise FloatingPointError(
        f"The Fisher diagonal (kind={kind!r}) is not finite (NaN or inf in "
        f"{', '.join(map(repr, bad))}): {cause}"
    )


def _log_proba(out, outputs):
    """log p(c|x) from the module's outputs, as documented for ``outputs``."""
    if outputs == "logits":
        return torch.log_softmax(out, dim=1)
    # log(clamp(p, tiny)), written with two where()s: on the flat part
    # p < tiny the log is taken of 1, so no 1/tiny (nor 1/tiny**2, inf) is
    # ever multiplied by the zero mask there, in a double backward either
    # (the autograd loop), where it could give 0 * inf = NaN.
    # NaN counts as alive so that it propagates to the finiteness check.
    tiny = torch.finfo(out.dtype).tiny
    alive = ~(out < tiny)
    safe = torch.where(alive, out, torch.ones_like(out))
    return torch.where(alive, safe.log(), math.log(tiny))


class _ConvertedRows:
    """The rows of a tensor, converted to a dtype and device a slice at a
    time: ``X[a:b]`` is a converted copy of those rows only.

    Stands for X in the routes, which read only ``shape``, ``dtype``,
    ``device`` and row slices.
    """

    def __init__(self, source, dtype, device):
        self.source = source
        self.shape = source.shape
        self.dtype = dtype
        self.device = torch.device(device)

    def __getitem__(self, rows):
        return self.source[rows].to(dtype=self.dtype, device=self.device)


def _batches(X, y, size, w=None):
    """``(xb, yb, wb)`` batches; ``wb`` is None when ``w`` is."""
    for start in range(0, X.shape[0], size):
        rows = slice(start, start + size)
        yield X[rows], y[rows], None if w is None else w[rows]


def _as_weights(sample_weight, n_rows, dtype, device):
    """Row weights as a 1-D tensor on the rows' device, or None."""
    if sample_weight is None:
        return None
    w = torch.as_tensor(np.asarray(sample_weight) if not isinstance(sample_weight, torch.Tensor)
                        else sample_weight).detach().to(dtype=dtype, device=device)
    if w.shape != (n_rows,):
        raise ValueError(
            f"sample_weight must have shape ({n_rows},) like the rows of X; got "
            f"{tuple(w.shape)}."
        )
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("sample_weight must be finite and non-negative.")
    if n_rows and not bool((w > 0).any()):
        raise ValueError("sample_weight is zero for every row: the weighted mean is undefined.")
    return w


def _times(weights, wb):
    """Per-row weights of a pass (None or a tensor) times the rows' own."""
    if wb is None:
        return weights
    return wb if weights is None else weights * wb


def _rows_per_chunk(batch_size, elements_per_row):
    """Rows that keep a per-row temporary under the memory budget."""
    return max(1, min(batch_size, _MAX_TEMP_ELEMENTS // max(1, elements_per_row)))


def _zeros_accumulator(p):
    # Sum in float64 (where the device has it) so that millions of rows of
    # float32 contributions do not lose precision.
    dtype = torch.float64 if p.device.type != "mps" else p.dtype
    return torch.zeros(p.shape, dtype=dtype, device=p.device)


class _eval_mode:
    """Switch every submodule to eval; restore each one's own flag after."""

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.flags = [(m, m.training) for m in self.module.modules()]
        self.module.eval()

    def __exit__(self, *exc):
        for m, flag in self.flags:
            m.training = flag


class _grads_preserved:
    """Put back the exact ``.grad`` objects the parameters had on entry.

    None of the routes calls ``.backward()`` (they use ``torch.autograd.grad``
    or ``torch.func``), so this is a guard, not a necessity.
    """

    def __init__(self, params):
        self.params = params

    def __enter__(self):
        self.saved = [(p, p.grad) for p in self.params]

    def __exit__(self, *exc):
        for p, g in self.saved:
            p.grad = g


# --------------------------------------------------------------------------
# Route 1: Linear hooks ("empirical", "true")
# --------------------------------------------------------------------------


def _linear_owners(module, trainable):
    """Map each trainable parameter name to its (Linear, attribute) owner.

    Returns None unless every trainable parameter is the weight or bias of
    exactly one plain ``nn.Linear`` (subclasses may change ``forward``).
    """
    by_id = {}
    for m in module.modules():
        if type(m) is not nn.Linear:
            continue
        for attr in ("weight", "bias"):
            p = getattr(m, attr)
            if p is None or not p.requires_grad:
                continue
            if id(p) in by_id:  # tied between two Linears
                return None
            by_id[id(p)] = (m, attr)
    owners = {}
    for name, p in trainable:
        if id(p) not in by_id:
            return None
        owners[name] = by_id[id(p)]
    return owners


def _parameter_use_counts(root):
    """Count the autograd edges into each leaf tensor reachable from root."""
    counts, seen, stack = {}, {root}, [root]
    while stack:
        node = stack.pop()
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            leaf = getattr(nxt, "variable", None)  # AccumulateGrad nodes
            if leaf is not None:
                counts[id(leaf)] = counts.get(id(leaf), 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return counts


def _hooks_are_exact(captured, linears, trainable, out, n_rows):
    """Check at run time what the outer-product formula needs.

    Each hooked Linear ran exactly once on a 2-D batch of ``n_rows`` rows,
    and each trainable parameter enters the graph once (so it is not also
    used outside its Linear, e.g. by weight tying through ``F.linear``).
    """
    for lin in linears:
        calls = captured.get(lin, [])
        if len(calls) != 1:
            return False
        x, a = calls[0]
        if x.ndim != 2 or x.shape[0] != n_rows or a.ndim != 2:
            return False
    if out.grad_fn is None:
        return False
    counts = _parameter_use_counts(out.grad_fn)
    return all(counts.get(id(p), 0) == 1 for _, p in trainable)


def _linear_hook_fisher(
    module, trainable, owners, X, y, kind, batch_size, outputs, n_classes, w=None
):
    """Exact empirical/true Fisher from Linear inputs and output gradients.

    Returns None (the caller falls back) when a run-time check fails.
    """
    linears = list(dict.fromkeys(lin for lin, _ in owners.values()))
    wanted = {lin: {} for lin in linears}
    for name, (lin, attr) in owners.items():
        wanted[lin][attr] = name
    sums = {name: _zeros_accumulator(p) for name, p in trainable}
    captured = {}

    def make_hook(lin):
        def hook(_module, inputs, output):
            captured.setdefault(lin, []).append((inputs[0].detach(), output))
            # Hand a copy downstream so that an in-place op that follows
            # (``ReLU(inplace=True)``) cannot rebase the captured output.
            return output.clone()

        return hook

    handles = [lin.register_forward_hook(make_hook(lin)) for lin in linears]
    try:
        for xb, yb, wb in _batches(X, y, batch_size, w):
            captured.clear()
            with torch.enable_grad():
                out = module(xb)
            _check_scores(out, xb.shape[0], n_classes, outputs)
            if not _hooks_are_exact(captured, linears, trainable, out, xb.shape[0]):
                return None
            inputs_sq = [captured[lin][0][0].square() for lin in linears]
            pre = [captured[lin][0][1] for lin in linears]
            with torch.enable_grad():
                logp = _log_proba(out, outputs)
            for losses, weights, last in _class_losses(logp, yb, kind):
                grads = torch.autograd.grad(
                    losses.sum(), pre, retain_graph=not last, allow_unused=True
                )
                for lin, x_sq, g in zip(linears, inputs_sq, grads):
                    if g is not None:
                        _add_outer_squares(sums, wanted[lin], x_sq, g, _times(weights, wb))
    finally:
        for h in handles:
            h.remove()
    return sums


def _class_losses(logp, yb, kind):
    """Yield (per-row losses, per-row weights of their squared grads, last).

    "empirical": one pass on the observed labels. "true": one pass per
    class c on l_n(c), with squares weighted by p(c|x_n) (detached).
    """
    if kind == "empirical":
        yield -logp.gather(1, yb[:, None]).squeeze(1), None, True
        return
    proba = logp.detach().exp()
    n_classes = logp.shape[1]
    for c in range(n_classes):
        yield -logp[:, c], proba[:, c], c == n_classes - 1


def _add_outer_squares(sums, names, x_sq, g, weights):
    # Per-sample gradient of W is g_n x_n^T, so sum_n of its square is
    # (g**2).T @ (x**2); the bias gradient is g_n itself.
    g_sq = g.square()
    if weights is not None:
        g_sq = g_sq * weights[:, None]
    if "weight" in names:
        sums[names["weight"]] += g_sq.T @ x_sq
    if "bias" in names:
        sums[names["bias"]] += g_sq.sum(0)


# --------------------------------------------------------------------------
# Route 2: Hessian backpropagation through a Linear/activation chain
# --------------------------------------------------------------------------


def _flatten_sequential(seq):
    for layer in seq:
        if isinstance(layer, nn.Sequential):
            yield from _flatten_sequential(layer)
        else:
            yield layer


def _as_chain(module, trainable, outputs):
    """The module's layers as a flat list, or None if it is not a chain.

    A chain is an ``nn.Sequential`` (or a module whose ``.layers`` is one)
    of plain ``nn.Linear`` layers and known elementwise activations, holding
    every trainable parameter; with ``outputs="proba"`` it must end in
    ``nn.Softmax`` over the class dimension, which is dropped here. That the
    module's forward really is this chain is checked on the first batch.
    """
    if isinstance(module, nn.Sequential):
        seq = module
    elif isinstance(getattr(module, "layers", None), nn.Sequential):
        seq = module.layers
    else:
        return None
    layers = list(_flatten_sequential(seq))
    if outputs == "proba":
        if not layers or not _is_class_softmax(layers[-1]):
            return None
        layers = layers[:-1]
    known = (nn.Linear,) + _PASSTHROUGH + _PIECEWISE_LINEAR + _CURVED
    if not all(type(layer) in known for layer in layers):
        return None
    in_chain = {id(p) for layer in layers for p in layer.parameters()}
    if not all(id(p) in in_chain for _, p in trainable):
        return None
    return layers


def _is_class_softmax(layer):
    return type(layer) is nn.Softmax and layer.dim in (1, -1)


def _chain_forward(layers, x):
    """Return the input of every layer and the chain's output."""
    inputs = []
    for layer in layers:
        inputs.append(x)
        # An in-place activation would overwrite the stored pre-activation.
        x = layer(x.clone() if getattr(layer, "inplace", False) else x)
    return inputs, x


def _chain_hessian(module, layers, trainable, X, y, batch_size, outputs, n_classes,
                   w=None):
    """Exact Hessian diagonal of a chain; None if module(X) is not the chain."""
    names = {id(p): name for name, p in trainable}
    first = min(i for i, layer in enumerate(layers) if _has_trainable(layer, names))
    factor_size = _max_factor_size(layers, first, X.shape[1], n_classes)
    rows = _rows_per_chunk(batch_size, factor_size)
    sums = {name: _zeros_accumulator(p) for name, p in trainable}
    checked = False
    with torch.no_grad():
        for xb, yb, wb in _batches(X, y, rows, w):
            inputs, logits = _chain_forward(layers, xb)
            if not checked:
                out = module(xb)
                _check_scores(out, xb.shape[0], n_classes, outputs)
                chain_out = logits.softmax(1) if outputs == "proba" else logits
                if not torch.equal(out, chain_out):
                    return None
                checked = True
            factor, grad_out = _output_curvature(logits, yb, outputs)
            if wb is not None:
                # A row's loss times w_n: its Hessian (factor squared, and
                # the gradient-weighted curvature) times w_n.
                factor = factor * wb.sqrt()[:, None, None]
                grad_out = grad_out * wb[:, None]
            _backprop_curvature(layers, inputs, first, factor, grad_out, names, sums)
    return sums


def _has_trainable(layer, names):
    return any(id(p) in names for p in layer.parameters())


def _max_factor_size(layers, first, n_features, n_classes):
    """Columns x width of the largest per-row factor _backprop_curvature builds.

    Mirrors its rule: a curved activation adds a dense block of the Linear
    below it as wide as that Linear's output, unless the next Linear down
    is the lowest trainable one.
    """
    linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
    widest = max([n_features, n_classes] + [lin.out_features for lin in linears])
    columns, curved_above = n_classes, False
    for index in range(len(layers) - 1, first, -1):
        layer = layers[index]
        if type(layer) in _CURVED:
            curved_above = True
        elif isinstance(layer, nn.Linear) and curved_above:
            if _next_linear_below(layers, index) != first:
                columns += layer.out_features
                curved_above = False
    return widest * columns


def _output_curvature(logits, yb, outputs):
    """Factor of the loss Hessian w.r.t. the logits, and the loss gradient.

    With p = softmax(logits), the Hessian of -log p_y is diag(p) - p p^T =
    S^T S for the K x K matrix S[c] = sqrt(p_c) (e_c - p) (rows are factor
    columns here). It does not depend on y; the gradient p - e_y does.
    """
    proba = logits.softmax(1)
    eye = torch.eye(proba.shape[1], dtype=proba.dtype, device=proba.device)
    factor = proba.sqrt()[:, :, None] * (eye - proba[:, None, :])
    grad_out = proba - eye[yb]
    if outputs == "proba":
        # log(clamp(p, tiny)) is constant where p_y < tiny: no gradient and
        # no curvature from those rows.
        alive = proba.gather(1, yb[:, None]) >= torch.finfo(proba.dtype).tiny
        factor = factor * alive[:, :, None]
        grad_out = grad_out * alive
    return factor, grad_out


def _backprop_curvature(layers, inputs, first, factor, grad_out, names, sums):
    """Propagate the Hessian w.r.t. each layer's output backwards.

    The Hessian w.r.t. the current layer's output is kept as
    H = sum_c sign_c f_c f_c^T + diag(d): signed factor rows f_c (tensor
    ``factor`` of shape (rows, columns, width), ``signs`` of shape (rows,
    columns), None when all are +1) plus a diagonal term d (``diagonal``).

    * Through z = s(a): H_a = s'(a) H_z s'(a) + diag(s''(a) dl/dz); factor
      rows and d are scaled by s' and s'**2, the residual adds to d.
    * At a Linear a = W z + b: the weight's Hessian diagonal is
      diag(H_a)_i z_j**2 and the bias's is diag(H_a)_i. Below it, H_z =
      W^T H_a W: factor rows map as f W, and diag(d) becomes the dense
      block of rows sqrt|d_i| W[i] with signs sign(d_i).

    The dense block costs O(width**2) per row and is only needed to go
    through a second Linear. When the next Linear down is the last one
    with trainable parameters, only diagonals are used below, and
    diag(W^T diag(d) W) = (W**2)^T d keeps d a cheap vector. So curvature
    residuals cost O(width**2) per row only in chains with three or more
    trainable Linears below a curved activation.
    """
    signs, diagonal = None, None
    for index in range(len(layers) - 1, first - 1, -1):
        layer, z = layers[index], inputs[index]
        if isinstance(layer, nn.Linear):
            diag = _signed_square_sum(factor, signs)
            if diagonal is not None:
                diag = diag + diagonal
            _add_linear_hessian(layer, z, diag, names, sums)
            if index == first:
                break
            weight = layer.weight
            factor, grad_out = factor @ weight, grad_out @ weight
            if diagonal is not None:
                if _next_linear_below(layers, index) == first:
                    # Only the diagonal of W^T diag(d) W is ever read below.
                    diagonal = diagonal @ weight.square()
                else:
                    factor, signs = _append_block(factor, signs, diagonal, weight)
                    diagonal = None
        elif not isinstance(layer, _PASSTHROUGH):
            curved = type(layer) in _CURVED
            d1, d2 = _activation_derivatives(layer, z, second=curved)
            factor = factor * d1[:, None, :]
            if diagonal is not None:
                diagonal = diagonal * d1.square()
            if curved:
                # grad_out is still dl/dz here, as the residual needs.
                residual = d2 * grad_out
                if bool(residual.any()):
                    diagonal = residual if diagonal is None else diagonal + residual
            grad_out = grad_out * d1


def _signed_square_sum(factor, signs):
    """diag(sum_c sign_c f_c f_c^T), i.e. signed squares summed over columns."""
    sq = factor.square()
    return sq.sum(1) if signs is None else (sq * signs[:, :, None]).sum(1)


def _next_linear_below(layers, index):
    return max(
        (i for i in range(index) if isinstance(layers[i], nn.Linear)), default=None
    )


def _add_linear_hessian(layer, z, diag, names, sums):
    if layer.weight.requires_grad and id(layer.weight) in names:
        sums[names[id(layer.weight)]] += diag.T @ z.square()
    if layer.bias is not None and id(layer.bias) in names:
        sums[names[id(layer.bias)]] += diag.sum(0)


def _append_block(factor, signs, diagonal, weight):
    """Add W^T diag(d) W as factor rows sqrt|d_i| W[i] with signs sign(d_i)."""
    n_rows, n_cols, _ = factor.shape
    if signs is None:
        signs = factor.new_ones(n_rows, n_cols)
    block = diagonal.abs().sqrt()[:, :, None] * weight  # (rows, out, in)
    return torch.cat([factor, block], dim=1), torch.cat([signs, diagonal.sign()], dim=1)


def _activation_derivatives(layer, a, *, second):
    """First (and second) derivative of an elementwise activation at a."""
    with torch.enable_grad():
        leaf = a.detach().requires_grad_(True)
        # Clone so that an in-place activation does not modify a leaf.
        z = layer(leaf.clone())
        (d1,) = torch.autograd.grad(z.sum(), leaf, create_graph=second)
        if not second or not d1.requires_grad:
            return d1.detach(), torch.zeros_like(a) if second else None
        (d2,) = torch.autograd.grad(d1.sum(), leaf, allow_unused=True)
    return d1.detach(), torch.zeros_like(a) if d2 is None else d2


# --------------------------------------------------------------------------
# Route 3: torch.func fallback (any vmap-compatible module)
# --------------------------------------------------------------------------


def _row_loss(module, outputs):
    """Loss of one row, -sum_c w_c log p(c|x) for a one-hot weight vector w.

    The module's output row comes back as auxiliary output so that the
    batch can be checked (``_check_scores``) without another forward pass.
    """

    def loss(params, x, w):
        out = functional_call(module, params, (x.unsqueeze(0),))
        return -(_log_proba(out, outputs)[0] * w).sum(), out[0]

    return loss


def _func_fisher(module, trainable, X, y, kind, batch_size, outputs, n_classes, w=None):
    params = {name: p.detach() for name, p in trainable}
    per_row_grads = vmap(
        grad(_row_loss(module, outputs), has_aux=True), in_dims=(None, 0, 0)
    )
    numel = sum(p.numel() for p in params.values())
    sums = {name: _zeros_accumulator(p) for name, p in trainable}
    eye = torch.eye(n_classes, dtype=X.dtype, device=X.device)
    for xb, yb, wb in _batches(X, y, _rows_per_chunk(batch_size, numel), w):
        if kind == "empirical":
            passes = [(eye[yb], None)]
        else:
            with torch.no_grad():
                out = module(xb)
            _check_scores(out, xb.shape[0], n_classes, outputs)
            proba = _log_proba(out, outputs).exp()
            passes = [
                (eye[c].expand(xb.shape[0], -1), proba[:, c]) for c in range(n_classes)
            ]
        for onehot, weights in passes:
            grads, out = per_row_grads(params, xb, onehot)
            if weights is None:  # "empirical": no forward pass outside vmap
                _check_scores(out, xb.shape[0], n_classes, outputs)
            weights = _times(weights, wb)
            for name, g in grads.items():
                g_sq = g.square()
                if weights is not None:
                    g_sq = g_sq * weights.reshape(-1, *([1] * (g.ndim - 1)))
                sums[name] += g_sq.sum(0)
    return sums


def _func_hessian(module, trainable, X, y, batch_size, outputs, n_classes, w=None):
    """Per-row exact Hessian diagonal: one-hot Hessian-vector products.

    For each parameter tensor and chunk of its entries, the rows e_j^T H_n of
    the per-row Hessian come from a vector-Jacobian product of the per-row
    gradient (reverse over reverse), vmapped over the one-hot vectors e_j and
    over the rows; entry j of row e_j^T H_n is the diagonal element.
    """
    params = {name: p.detach() for name, p in trainable}
    loss = _row_loss(module, outputs)
    eye = torch.eye(n_classes, dtype=X.dtype, device=X.device)
    largest = max(p.numel() for p in params.values())
    rows = _rows_per_chunk(batch_size, largest)
    sums = {name: _zeros_accumulator(p) for name, p in trainable}
    for xb, yb, wb in _batches(X, y, rows, w):
        onehot = eye[yb] if wb is None else eye[yb] * wb[:, None]
        for i, name in enumerate(params):
            diag, out = _func_hessian_diag_sum(loss, params, name, xb, onehot)
            if i == 0:
                _check_scores(out, xb.shape[0], n_classes, outputs)
            sums[name] += diag
    return sums


def _func_hessian_diag_sum(loss, params, name, xb, onehot):
    """Sum over the rows of xb of the Hessian diagonal for params[name].

    Also returns the module's outputs on xb, from the first chunk.
    """
    theta = params[name]
    numel = theta.numel()

    def grad_wrt_theta(t, x, w):
        return grad(lambda v: loss({**params, name: v}, x, w), has_aux=True)(t)

    def hessian_rows(x, w, tangents):
        _, vjp_fn, out = vjp(lambda t: grad_wrt_theta(t, x, w), theta, has_aux=True)
        return vmap(vjp_fn)(tangents)[0], out

    batched = vmap(hessian_rows, in_dims=(0, 0, None))
    n_rows = xb.shape[0]
    chunk = max(1, _MAX_TEMP_ELEMENTS // max(1, n_rows * numel))
    diag = torch.zeros(numel, dtype=theta.dtype, device=theta.device)
    first_out = None
    for start in range(0, numel, chunk):
        index = torch.arange(start, min(start + chunk, numel), device=theta.device)
        tangents = theta.new_zeros(len(index), numel)
        tangents[torch.arange(len(index)), index] = 1.0
        hess_rows, out = batched(
            xb, onehot, tangents.reshape(len(index), *theta.shape)
        )
        first_out = out if first_out is None else first_out
        hess_rows = hess_rows.reshape(n_rows, len(index), numel)
        diag[index] = hess_rows[:, torch.arange(len(index)), index].sum(0)
    return diag.reshape(theta.shape), first_out


# --------------------------------------------------------------------------
# Route 4: autograd loop, where torch.func cannot transform the module
# --------------------------------------------------------------------------


def _loop_passes(trainable, n_rows, kind, batch_size, n_classes):
    """Backward passes the autograd loop needs (see _loop_fisher, _loop_hessian)."""
    if kind == "hessian":
        n_batches = -(-n_rows // batch_size)
        return n_batches * sum(p.numel() for _, p in trainable)
    return n_rows * (1 if kind == "empirical" else n_classes)


def _func_or_loop(func_route, loop_route, args, kind, passes):
    """Run a torch.func route; where its transforms fail, the autograd loop.

    torch.func raises RuntimeError (NotImplementedError for a missing batching
    rule) on modules it cannot transform: Python control flow on tensor
    values, ``.item()``, or double-backward formulas that ``vmap`` cannot
    batch (``nn.LayerNorm`` under the Hessian's vmap over a vjp). The module
    already ran outside any transform on the probe row, so such an error is
    most likely the transform's; the loop starts over from scratch, and an
    error of the module itself is raised again there (with this one as its
    context). Running out of memory is not a transform failure.
    """
    try:
        return func_route(*args)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, NotImplementedError) as err:
        if passes > _SLOW_LOOP_PASSES:
            # The hessian loop makes its passes per batch, the others per row.
            tip = " A larger batch_size needs fewer." if kind == "hessian" else ""
            warnings.warn(
                f"torch.func cannot transform this module ({_first_sentence(err)}); "
                "computing the same exact result with a plain autograd loop "
                f"instead: {passes:,} backward passes, which may take long.{tip}",
                UserWarning,
                stacklevel=4,  # fisher_diagonal's caller
            )
        return loop_route(*args)


def _first_sentence(err, limit=200):
    text = " ".join(str(err).split())
    text = text.split(". ")[0]
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}"


def _loop_fisher(module, trainable, X, y, kind, batch_size, outputs, n_classes, w=None):
    """Per-sample gradients one row at a time with torch.autograd.grad.

    Each row gets its own forward pass: a backward pass from one row of a
    batched graph would still cost as much as the whole batch.
    """
    params = [p for _, p in trainable]
    sums = {name: _zeros_accumulator(p) for name, p in trainable}
    for xb, yb, wb in _batches(X, y, 1, w):
        with torch.enable_grad():
            out = module(xb)
            _check_scores(out, 1, n_classes, outputs)
            logp = _log_proba(out, outputs)
        if not logp.requires_grad:  # no trainable parameter reaches the output
            continue
        for losses, weights, last in _class_losses(logp, yb, kind):
            grads = torch.autograd.grad(
                losses.sum(), params, retain_graph=not last, allow_unused=True
            )
            weights = _times(weights, wb)
            for (name, _), g in zip(trainable, grads):
                if g is not None:
                    g_sq = g.square()
                    sums[name] += g_sq if weights is None else g_sq * weights
    return sums


def _loop_hessian(module, trainable, X, y, batch_size, outputs, n_classes, w=None):
    """Exact Hessian diagonal by double backward, one entry at a time.

    Rows do not interact, so the Hessian of a batch's summed loss is the sum
    of the rows' Hessians and its diagonal the sum of their diagonals: one
    Hessian-vector product e_j^T H per parameter entry j and batch, not per
    row. Entry j of that product is the diagonal element.
    """
    params = [p for _, p in trainable]
    sums = {name: _zeros_accumulator(p) for name, p in trainable}
    for xb, yb, wb in _batches(X, y, batch_size, w):
        with torch.enable_grad():
            out = module(xb)
            _check_scores(out, xb.shape[0], n_classes, outputs)
            row_losses = -_log_proba(out, outputs).gather(1, yb[:, None]).squeeze(1)
            loss = (row_losses if wb is None else row_losses * wb).sum()
            if not loss.requires_grad:  # no trainable parameter reaches it
                continue
            grads = torch.autograd.grad(
                loss, params, create_graph=True, allow_unused=True
            )
        for (name, p), g in zip(trainable, grads):
            # None, or a gradient that does not depend on any parameter:
            # the loss is at most linear in p, a zero diagonal.
            if g is None or not g.requires_grad:
                continue
            flat = g.reshape(-1)
            diag = []
            for j in range(flat.numel()):
                (row,) = torch.autograd.grad(
                    flat[j], p, retain_graph=True, allow_unused=True
                )
                diag.append(flat.new_zeros(()) if row is None else row.reshape(-1)[j])
            sums[name] += torch.stack(diag).reshape(p.shape)
    return sums
