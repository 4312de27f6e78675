"""Tests for sklearn_cf._fisher.fisher_diagonal against a per-sample oracle."""

import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from sklearn_cf import _fisher
from sklearn_cf._fisher import fisher_diagonal
from sklearn_cf._mlp import MLP

KINDS = ("empirical", "true", "hessian")
TOL = dict(rtol=1e-5, atol=1e-10)


# --------------------------------------------------------------------------
# Oracle: one sample at a time with plain torch.autograd
# --------------------------------------------------------------------------


def _log_p(out, outputs):
    if outputs == "logits":
        return torch.log_softmax(out, dim=1)
    return out.clamp(min=torch.finfo(out.dtype).tiny).log()


def oracle(module, X, y, kind, outputs="logits"):
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    sums = {n: torch.zeros_like(p) for n, p in params}
    for i in range(X.shape[0]):
        x = X[i : i + 1]
        if kind == "hessian":
            for name, p in params:

                def loss(t, name=name, x=x, i=i):
                    out = functional_call(module, {name: t}, (x,))
                    return -_log_p(out, outputs)[0, y[i]]

                H = torch.autograd.functional.hessian(loss, p.detach())
                H = H.reshape(p.numel(), p.numel())
                sums[name] += H.diagonal().reshape(p.shape)
            continue
        logp = _log_p(module(x), outputs)[0]
        if kind == "empirical":
            classes, weights = [int(y[i])], [1.0]
        else:
            classes = range(logp.shape[0])
            weights = logp.detach().exp().tolist()
        for c, w in zip(classes, weights):
            grads = torch.autograd.grad(
                -logp[c], [p for _, p in params], retain_graph=True, allow_unused=True
            )
            for (name, p), g in zip(params, grads):
                if g is not None:
                    sums[name] += w * g.square()
    for m, flag in flags:
        m.training = flag
    return {n: s / X.shape[0] for n, s in sums.items()}


def assert_matches(result, expected):
    assert sorted(result) == sorted(expected)
    for name in expected:
        torch.testing.assert_close(result[name], expected[name], **TOL, msg=name)


# --------------------------------------------------------------------------
# Test modules
# --------------------------------------------------------------------------


def make_data(n=23, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    y[:k] = torch.arange(k)  # every class present
    return X, y


def relu_mlp(d=5, k=3, seed=0):
    torch.manual_seed(seed)
    return MLP(d, k, hidden_units=(7, 6), dropout=0.3).double()


def tanh_chain(d=5, k=3, seed=0):
    torch.manual_seed(seed)
    # Nested Sequential, several curved activations, scaled-up weights so
    # that the curvature term matters.
    net = nn.Sequential(
        nn.Linear(d, 6),
        nn.Tanh(),
        nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Dropout(0.5)),
        nn.Linear(5, 4),
        nn.ELU(),
        nn.Linear(4, k),
    ).double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    return net


class TwiceLinear(nn.Module):
    """One Linear called twice: outer products no longer give the Fisher."""

    def __init__(self, d=5, k=3):
        super().__init__()
        self.inner = nn.Linear(d, d)
        self.head = nn.Linear(d, k)

    def forward(self, X):
        return self.head(torch.tanh(self.inner(torch.tanh(self.inner(X)))))


class ScaledLinear(nn.Module):
    """A parameter outside any Linear."""

    def __init__(self, d=5, k=3):
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, d))
        self.hidden = nn.Linear(d, 6)
        self.head = nn.Linear(6, k)

    def forward(self, X):
        return self.head(torch.sigmoid(self.hidden(X * self.scale)))


class TiedLinear(nn.Module):
    """A Linear's weight also used directly (called once, but tied)."""

    def __init__(self, d=5, k=3):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.head = nn.Linear(d, k)

    def forward(self, X):
        h = self.fc(X) + nn.functional.linear(torch.tanh(X), self.fc.weight)
        return self.head(torch.relu(h))


class UncalledLinear(nn.Module):
    """Uses a Linear's parameters without calling it (like MultiheadAttention)."""

    def __init__(self, d=5, k=3):
        super().__init__()
        self.fc = nn.Linear(d, 4)
        self.head = nn.Linear(4, k)

    def forward(self, X):
        h = nn.functional.linear(X, self.fc.weight, self.fc.bias)
        return self.head(torch.tanh(h))


class DoubledMLP(MLP):
    """Has a ``layers`` chain, but forward is not that chain."""

    def forward(self, X):
        return 2.0 * self.layers(X)


class SoftmaxNet(nn.Module):
    """Returns probabilities, not a Sequential."""

    def __init__(self, d=5, k=3):
        super().__init__()
        self.body = nn.Linear(d, 6)
        self.head = nn.Linear(6, k)

    def forward(self, X):
        return torch.softmax(self.head(torch.tanh(self.body(X))), dim=1)


class GuardedNet(nn.Module):
    """Python control flow on tensor values: torch.func cannot trace it."""

    def __init__(self, d=5, k=3):
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, d))
        self.body = nn.Linear(d, 4)
        self.head = nn.Linear(4, k)

    def forward(self, X):
        if bool((X.abs() > 100).any()):
            raise RuntimeError("GuardedNet: input row out of range")
        return self.head(torch.tanh(self.body(X * self.scale)))


def layer_norm_net(d=5, k=3, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(d, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, k))
    net = net.double()
    with torch.no_grad():  # move LayerNorm off its (1, 0) init
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-0.5, 0.5)
    return net


def build(cls, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(**kw).double()


# --------------------------------------------------------------------------
# Agreement with the oracle
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [2, 3])
def test_relu_mlp_matches_oracle(kind, k):
    net = relu_mlp(k=k)
    X, y = make_data(k=k)
    result = fisher_diagonal(net, X, y, kind=kind, batch_size=5)
    assert_matches(result, oracle(net, X, y, kind))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [2, 3])
def test_curved_chain_matches_oracle(kind, k):
    net = tanh_chain(k=k)
    X, y = make_data(k=k)
    result = fisher_diagonal(net, X, y, kind=kind, batch_size=5)
    assert_matches(result, oracle(net, X, y, kind))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "cls", [TwiceLinear, ScaledLinear, TiedLinear, UncalledLinear, DoubledMLP]
)
def test_fallback_modules_match_oracle(kind, cls):
    kw = dict(n_features=5, n_classes=3, hidden_units=(4,)) if cls is DoubledMLP else {}
    net = build(cls, **kw)
    X, y = make_data(n=11)
    result = fisher_diagonal(net, X, y, kind=kind, batch_size=4)
    assert_matches(result, oracle(net, X, y, kind))


@pytest.mark.parametrize("kind", KINDS)
def test_proba_outputs_match_oracle(kind):
    torch.manual_seed(0)
    chain = nn.Sequential(
        nn.Linear(5, 6), nn.Sigmoid(), nn.Linear(6, 3), nn.Softmax(dim=1)
    )
    for net in (chain.double(), build(SoftmaxNet)):
        X, y = make_data()
        expected = oracle(net, X, y, kind, outputs="proba")
        result = fisher_diagonal(net, X, y, kind=kind, batch_size=6, outputs="proba")
        assert_matches(result, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_inplace_activation_matches_oracle(kind):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 6), nn.ReLU(inplace=True), nn.Linear(6, 4), nn.ELU(inplace=True),
        nn.Linear(4, 3),
    ).double()
    X, y = make_data()
    assert_matches(fisher_diagonal(net, X, y, kind=kind), oracle(net, X, y, kind))


@pytest.mark.parametrize("kind", KINDS)
def test_frozen_parameters_are_skipped(kind):
    net = relu_mlp()
    net.layers[0].weight.requires_grad_(False)
    net.layers[3].bias.requires_grad_(False)
    X, y = make_data()
    result = fisher_diagonal(net, X, y, kind=kind)
    assert "layers.0.weight" not in result and "layers.3.bias" not in result
    assert_matches(result, oracle(net, X, y, kind))
    assert not net.layers[0].weight.requires_grad


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 12),
    d=st.integers(1, 4),
    k=st.integers(2, 4),
    batch_size=st.integers(1, 13),
    seed=st.integers(0, 1000),
    kind=st.sampled_from(KINDS),
)
def test_random_shapes_match_oracle(n, d, k, batch_size, seed, kind):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(d, 3), nn.Tanh(), nn.Linear(3, k)).double()
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    result = fisher_diagonal(net, X, y, kind=kind, batch_size=batch_size)
    assert_matches(result, oracle(net, X, y, kind))


# --------------------------------------------------------------------------
# Routes: the fast paths are taken where they apply, and only there
# --------------------------------------------------------------------------


@pytest.fixture
def func_calls(monkeypatch):
    calls = []
    for name in ("_func_fisher", "_func_hessian", "_loop_fisher", "_loop_hessian"):
        original = getattr(_fisher, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(_fisher, name, spy)
    return calls


@pytest.mark.parametrize("kind", KINDS)
def test_fast_routes_used_for_chains(kind, func_calls):
    X, y = make_data()
    fisher_diagonal(relu_mlp(), X, y, kind=kind)
    fisher_diagonal(tanh_chain(), X, y, kind=kind)
    assert func_calls == []


@pytest.mark.parametrize("cls", [TwiceLinear, ScaledLinear, TiedLinear, UncalledLinear])
def test_fallback_used_when_hooks_inexact(cls, func_calls):
    X, y = make_data(n=6)
    fisher_diagonal(build(cls), X, y, kind="empirical")
    assert func_calls == ["_func_fisher"]


def test_fallback_used_when_forward_is_not_the_chain(func_calls):
    X, y = make_data(n=6)
    net = build(DoubledMLP, n_features=5, n_classes=3, hidden_units=(4,))
    fisher_diagonal(net, X, y, kind="hessian")
    assert func_calls == ["_func_hessian"]


# --------------------------------------------------------------------------
# Properties of the estimators
# --------------------------------------------------------------------------


def test_hessian_sign_relu_vs_curved():
    X, y = make_data(n=40)
    relu = fisher_diagonal(relu_mlp(), X, y, kind="hessian")
    assert all((v >= 0).all() for v in relu.values())
    curved = fisher_diagonal(tanh_chain(), X, y, kind="hessian")
    assert any((v < 0).any() for v in curved.values())


def test_relu_hessian_equals_true_fisher():
    # Piecewise-linear network: Hessian = Gauss-Newton = Fisher (softmax).
    X, y = make_data(n=40)
    net = relu_mlp()
    assert_matches(
        fisher_diagonal(net, X, y, kind="hessian"),
        fisher_diagonal(net, X, y, kind="true"),
    )


def test_squared_minibatch_gradient_is_not_the_result():
    X, y = make_data(n=64)
    net = relu_mlp()
    net.eval()
    result = fisher_diagonal(net, X, y, kind="empirical", batch_size=16)
    wrong = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for start in range(0, 64, 16):
        rows = slice(start, start + 16)
        loss = nn.functional.cross_entropy(net(X[rows]), y[rows])
        grads = torch.autograd.grad(loss, list(net.parameters()))
        for (n, _), g in zip(net.named_parameters(), grads):
            wrong[n] += g.square() / 4
    total_right = sum(v.sum() for v in result.values())
    total_wrong = sum(v.sum() for v in wrong.values())
    # Averaging gradients before squaring cancels most of them.
    assert total_wrong < 0.5 * total_right


@pytest.mark.parametrize("kind", KINDS)
def test_result_does_not_depend_on_batch_size(kind):
    net = tanh_chain()
    X, y = make_data(n=37)
    reference = fisher_diagonal(net, X, y, kind=kind, batch_size=37)
    for batch_size in (1, 8, 1000):
        result = fisher_diagonal(net, X, y, kind=kind, batch_size=batch_size)
        assert_matches(result, reference)


def test_true_fisher_is_deterministic_and_nonnegative():
    net = tanh_chain()
    X, y = make_data()
    a = fisher_diagonal(net, X, y, kind="true")
    b = fisher_diagonal(net, X, y, kind="true")
    for name in a:
        assert torch.equal(a[name], b[name])
        assert (a[name] >= 0).all()


def test_true_fisher_does_not_depend_on_labels():
    net = relu_mlp()
    X, y = make_data()
    other = (y + 1) % 3
    assert_matches(
        fisher_diagonal(net, X, y, kind="true"),
        fisher_diagonal(net, X, other, kind="true"),
    )


# --------------------------------------------------------------------------
# Inputs, outputs and side effects
# --------------------------------------------------------------------------


def test_numpy_inputs_and_result_dtype():
    torch.manual_seed(0)
    net = MLP(4, 3, hidden_units=(5,))  # float32
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 4))  # float64 array, converted to float32
    y = rng.integers(0, 3, size=10)
    result = fisher_diagonal(net, X, y, kind="empirical")
    for name, p in net.named_parameters():
        assert result[name].shape == p.shape
        assert result[name].dtype == p.dtype
        assert result[name].device == p.device
        assert not result[name].requires_grad
    X_t = torch.as_tensor(X, dtype=torch.float32)
    expected = oracle(net, X_t, torch.as_tensor(y), "empirical")
    for name in expected:
        torch.testing.assert_close(result[name], expected[name], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_training_flags_and_grads_restored(kind):
    net = relu_mlp()
    net.train()
    net.layers[2].eval()  # a mixed state must come back as it was
    flags = [m.training for m in net.modules()]
    params = list(net.parameters())
    params[0].grad = torch.full_like(params[0], 3.0)
    params[1].grad = torch.ones_like(params[1])
    saved = [p.grad for p in params]
    saved_values = [None if g is None else g.clone() for g in saved]
    requires = [p.requires_grad for p in params]
    X, y = make_data()
    fisher_diagonal(net, X, y, kind=kind)
    assert [m.training for m in net.modules()] == flags
    assert [p.requires_grad for p in params] == requires
    for p, g, value in zip(params, saved, saved_values):
        assert p.grad is g
        if value is not None:
            assert torch.equal(p.grad, value)


def test_dropout_is_off_during_computation():
    net = relu_mlp()
    net.train()
    X, y = make_data()
    a = fisher_diagonal(net, X, y, kind="empirical")
    b = fisher_diagonal(net, X, y, kind="empirical")
    for name in a:
        assert torch.equal(a[name], b[name])


def test_no_trainable_parameters_gives_empty_dict():
    net = relu_mlp().requires_grad_(False)
    X, y = make_data()
    assert fisher_diagonal(net, X, y) == {}


@pytest.mark.parametrize(
    "kwargs, X_y, match",
    [
        (
            dict(kind="sampled"),
            None,
            "Unknown kind 'sampled'.*'empirical', 'true', 'hessian'",
        ),
        (dict(outputs="log"), None, "Unknown outputs 'log'"),
        (dict(batch_size=0), None, "batch_size must be an integer >= 1"),
        (dict(batch_size=2.5), None, "batch_size must be an integer >= 1"),
        ({}, "mismatch", "different lengths: 23 rows in X, 22 labels"),
        ({}, "empty", "X is empty"),
        ({}, "high", r"class indices in \[0, 3\).*got labels in \[0, 3\]"),
        ({}, "negative", r"class indices in \[0, 3\).*got labels in \[-1, 2\]"),
        ({}, "float_labels", "integer class indices"),
        ({}, "1d_X", "X must be 2-D"),
        ({}, "nan_X", r"X contains NaN or infinite values \(2 entries\)"),
    ],
)
def test_bad_inputs_raise(kwargs, X_y, match):
    net = relu_mlp()
    X, y = make_data()
    if X_y == "mismatch":
        y = y[:-1]
    elif X_y == "empty":
        X, y = X[:0], y[:0]
    elif X_y == "high":
        y = y.clone()
        y[-1] = 3
    elif X_y == "negative":
        y = y.clone()
        y[-1] = -1
    elif X_y == "float_labels":
        y = y.double() + 0.5
    elif X_y == "1d_X":
        X = X[:, 0]
    elif X_y == "nan_X":
        X = X.clone()
        X[3, 1], X[7, 0] = float("nan"), float("-inf")
    with pytest.raises(ValueError, match=match):
        fisher_diagonal(net, X, y, **kwargs)


def test_module_with_wrong_output_shape_raises():
    net = nn.Sequential(nn.Linear(5, 3), nn.Flatten(0)).double()
    X, y = make_data()
    with pytest.raises(ValueError, match="must map"):
        fisher_diagonal(net, X, y)


@pytest.mark.parametrize("kind", KINDS)
def test_proba_underflow_rows_are_clamped_like_the_oracle(kind):
    # Class 2 always has p < tiny while classes 0 and 1 share the mass: for
    # rows labelled 2 the clamped log-probability is flat (zero gradient and
    # curvature), although the softmax itself still curves there.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3), nn.Softmax(dim=1))
    net = net.double()
    with torch.no_grad():
        net[2].bias[2] = -1000.0
    X, y = make_data(n=30)
    with torch.no_grad():
        p_y = net(X).gather(1, y[:, None]).squeeze(1)
    flat = y == 2
    assert flat.any() and (p_y[flat] == 0).all() and (p_y[~flat] > 1e-3).all()
    if kind == "hessian":
        # Autograd's double backward can give nan on the flat rows (the clamp
        # mask times 1 / tiny**2 = inf; not with torch 2.13), so the oracle
        # sees the other rows only.
        expected = oracle(net, X[~flat], y[~flat], kind, outputs="proba")
        expected = {n: v * (~flat).sum() / len(X) for n, v in expected.items()}
    else:
        expected = oracle(net, X, y, kind, outputs="proba")
    assert_matches(fisher_diagonal(net, X, y, kind=kind, outputs="proba"), expected)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("maker", [tanh_chain, lambda: build(ScaledLinear)])
def test_memory_budget_chunking_keeps_results(kind, maker, monkeypatch):
    # A tiny budget splits batches into single rows and the torch.func
    # Hessian into one tangent at a time; the result must not change.
    net = maker()
    X, y = make_data(n=9)
    expected = oracle(net, X, y, kind)
    monkeypatch.setattr(_fisher, "_MAX_TEMP_ELEMENTS", 8)
    assert_matches(fisher_diagonal(net, X, y, kind=kind, batch_size=4), expected)


# --------------------------------------------------------------------------
# Modules torch.func cannot transform: the exact autograd loop
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_layer_norm_matches_oracle(kind):
    # vmap cannot batch LayerNorm's double backward: the Hessian used to
    # crash in torch.func.
    net = layer_norm_net()
    X, y = make_data(n=7)
    result = fisher_diagonal(net, X, y, kind=kind, batch_size=4)
    assert_matches(result, oracle(net, X, y, kind))


@pytest.mark.parametrize(
    "kind, routes",
    [
        ("empirical", ["_func_fisher"]),
        ("true", ["_func_fisher"]),
        ("hessian", ["_func_hessian", "_loop_hessian"]),
    ],
)
def test_layer_norm_routes(kind, routes, func_calls):
    X, y = make_data(n=7)
    fisher_diagonal(layer_norm_net(), X, y, kind=kind)
    assert func_calls == routes


@pytest.mark.parametrize("kind", KINDS)
def test_data_dependent_control_flow_matches_oracle(kind, func_calls):
    net = build(GuardedNet)
    X, y = make_data(n=9)
    result = fisher_diagonal(net, X, y, kind=kind, batch_size=4)
    assert_matches(result, oracle(net, X, y, kind))
    loop = "_loop_hessian" if kind == "hessian" else "_loop_fisher"
    assert func_calls[-1] == loop


@pytest.fixture
def func_routes_fail(monkeypatch, func_calls):
    """Make both torch.func routes fail the way an untraceable module does."""

    def fail(*args, **kwargs):
        raise RuntimeError("vmap: data-dependent control flow is not supported")

    monkeypatch.setattr(_fisher, "_func_fisher", fail)
    monkeypatch.setattr(_fisher, "_func_hessian", fail)
    return func_calls


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cls", [ScaledLinear, TiedLinear, UncalledLinear])
def test_autograd_loop_matches_oracle(kind, cls, func_routes_fail):
    net = build(cls)
    X, y = make_data(n=11)
    result = fisher_diagonal(net, X, y, kind=kind, batch_size=4)
    assert_matches(result, oracle(net, X, y, kind))
    loop = "_loop_hessian" if kind == "hessian" else "_loop_fisher"
    assert func_routes_fail == [loop]


@pytest.mark.parametrize("kind", KINDS)
def test_autograd_loop_proba_underflow_rows_are_flat(kind, func_routes_fail):
    # As test_proba_underflow_rows_are_clamped_like_the_oracle, for the loop:
    # rows with p_y < tiny add nothing (and no NaN) to the double backward.
    # A parameter outside any Linear, so that no route bypasses the loop.
    net = nn.Sequential(build(ScaledLinear), nn.Softmax(dim=1))
    with torch.no_grad():
        net[0].head.bias[2] = -1000.0
    X, y = make_data(n=30)
    flat = y == 2
    with torch.no_grad():
        assert (net(X)[flat, 2] == 0).all()
    expected = oracle(net, X[~flat], y[~flat], kind, outputs="proba")
    expected = {n: v * (~flat).sum() / len(X) for n, v in expected.items()}
    if kind != "hessian":  # first derivatives are fine on the flat rows too
        expected = oracle(net, X, y, kind, outputs="proba")
    result = fisher_diagonal(net, X, y, kind=kind, batch_size=8, outputs="proba")
    assert_matches(result, expected)
    assert func_routes_fail[-1].startswith("_loop_")


def test_slow_autograd_loop_warns(monkeypatch):
    X, y = make_data(n=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 91 entries x 1 batch: quiet
        quiet = fisher_diagonal(layer_norm_net(), X, y, kind="hessian")
    monkeypatch.setattr(_fisher, "_SLOW_LOOP_PASSES", 90)
    match = r"torch.func cannot transform.*autograd loop instead: 91 backward passes"
    with pytest.warns(UserWarning, match=match):
        loud = fisher_diagonal(layer_norm_net(), X, y, kind="hessian")
    assert_matches(loud, quiet)


def test_module_errors_are_raised_not_hidden_by_the_loop():
    # Row 0 (the probe) is fine; a later row makes the module itself fail,
    # under torch.func and again in the loop, which reports it.
    net = build(GuardedNet)
    X, y = make_data(n=9)
    X[5, 0] = 1000.0
    for kind in KINDS:
        with pytest.raises(RuntimeError, match="GuardedNet: input row out of range"):
            fisher_diagonal(net, X, y, kind=kind)


def test_out_of_memory_is_not_retried_in_the_loop(monkeypatch, func_calls):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("out of memory")

    monkeypatch.setattr(_fisher, "_func_hessian", oom)
    X, y = make_data(n=7)
    with pytest.raises(torch.OutOfMemoryError):
        fisher_diagonal(layer_norm_net(), X, y, kind="hessian")
    assert "_loop_hessian" not in func_calls


# --------------------------------------------------------------------------
# outputs="proba" must be probabilities
# --------------------------------------------------------------------------


def log_softmax_net(last=None):
    torch.manual_seed(0)
    last = nn.LogSoftmax(dim=1) if last is None else last
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3), last).double()


class ExpScores(nn.Module):
    """Positive scores that are not normalized (exp of logits)."""

    def __init__(self, d=5, k=3):
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, d))
        self.head = nn.Linear(d, k)

    def forward(self, X):
        return self.head(X * self.scale).exp()


class LogProbaOnSomeRows(SoftmaxNet):
    """Probabilities, except log-probabilities for rows with X[:, 0] > 2."""

    def forward(self, X):
        p = super().forward(X)
        return torch.where(X[:, :1] > 2.0, p.log(), p)


@pytest.mark.parametrize("kind", KINDS)
def test_log_probabilities_as_proba_raise(kind):
    # They used to give an all-zero result: log(clamp(p, tiny)) is flat for p < 0.
    X, y = make_data()
    with pytest.raises(
        ValueError,
        match=r"outputs='proba' but the module returns values outside \[0, 1\] "
        r"\(min -[0-9.]+\): it looks like log-probabilities.*Use outputs='logits'",
    ):
        fisher_diagonal(log_softmax_net(), X, y, kind=kind, outputs="proba")


@pytest.mark.parametrize("kind", KINDS)
def test_log_softmax_with_logits_equals_softmax_with_proba(kind):
    log_net = log_softmax_net()
    proba_net = copy.deepcopy(log_net)
    proba_net[3] = nn.Softmax(dim=1)
    X, y = make_data()
    assert_matches(
        fisher_diagonal(log_net, X, y, kind=kind, outputs="logits"),
        fisher_diagonal(proba_net, X, y, kind=kind, outputs="proba"),
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: build(ExpScores), r"outside \[0, 1\] \(max [0-9.]+\).*unnormalized"),
        (
            lambda: log_softmax_net(last=nn.Sigmoid()),
            r"rows do not sum to 1 \(row [0-9]+ of a batch sums to [0-9.]+\)",
        ),
    ],
    ids=["exp-scores", "sigmoid"],
)
def test_unnormalized_scores_as_proba_raise(kind, make, match):
    X, y = make_data()
    with pytest.raises(ValueError, match=match):
        fisher_diagonal(make(), X, y, kind=kind, outputs="proba")


@pytest.mark.parametrize("kind", KINDS)
def test_every_batch_of_proba_outputs_is_checked(kind):
    # Row 0 (the probe) and the first batches are probabilities; only the
    # last batch holds a row of log-probabilities.
    net = build(LogProbaOnSomeRows)
    X, y = make_data(n=20)
    X[:, 0] = X[:, 0].clamp(max=1.0)
    X[-1, 0] = 3.0
    with pytest.raises(ValueError, match="outputs='proba'.*log-probabilities"):
        fisher_diagonal(net, X, y, kind=kind, batch_size=6, outputs="proba")
    fisher_diagonal(net, X[:-1], y[:-1], kind=kind, batch_size=6, outputs="proba")


# --------------------------------------------------------------------------
# Non-finite results
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_overflowing_forward_pass_raises_floating_point_error(kind):
    torch.manual_seed(0)
    net = MLP(5, 3, hidden_units=(8,))  # float32: max about 3.4e38
    X, y = make_data()
    X = X.float() * 1e37  # finite; times weights of order 10, it is not
    with torch.no_grad():
        net.layers[0].weight.mul_(100.0)
        assert not torch.isfinite(net(X)).all()
    with pytest.raises(
        FloatingPointError,
        match=r"Fisher diagonal \(kind=.*\) is not finite.*features on a very "
        r"large scale\? Standardize them",
    ):
        fisher_diagonal(net, X, y, kind=kind)


def test_features_beyond_the_module_dtype_are_a_scale_problem():
    # Finite in float64, inf once cast to the module's float32.
    torch.manual_seed(0)
    net = MLP(5, 3, hidden_units=(8,))
    X, y = make_data()
    X = X.numpy() * 1e39
    with pytest.raises(FloatingPointError, match="Standardize them"):
        fisher_diagonal(net, X, y)


@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_parameters_raise_floating_point_error(kind):
    net = relu_mlp()
    with torch.no_grad():
        net.layers[0].weight[0, 0] = float("nan")
    X, y = make_data()
    with pytest.raises(FloatingPointError, match="parameters hold NaN or inf"):
        fisher_diagonal(net, X, y, kind=kind)
