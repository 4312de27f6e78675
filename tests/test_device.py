"""The device path, in the parts that run without a GPU: the one-batch-ahead
transfer order, and month_on_device's checks (tests/test_cuda.py runs the
rest where CUDA is available)."""

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream

from sklearn_cf import ContinualClassifier
from sklearn_cf._data import EpochIterator, MonthData, host_to_device, prefetch


def test_the_next_batch_is_moved_before_the_current_one_trains():
    events = []

    def move(tensor):
        events.append(("move", int(tensor[0])))
        return tensor

    batches = [(torch.tensor([k]), torch.tensor([k])) for k in range(4)]
    for X, _ in prefetch(iter(batches), move):
        events.append(("train", int(X[0])))
    trained = [k for kind, k in events if kind == "train"]
    assert trained == [0, 1, 2, 3]  # the order is kept
    for k in range(3):  # batch k+1 (X and y) is on its way before batch k trains
        assert events.index(("move", k + 1)) < events.index(("train", k))
    assert events.index(("train", 3)) == len(events) - 1


def test_on_the_cpu_nothing_is_moved_and_batches_are_unchanged():
    assert host_to_device("cpu") is None
    X, y = torch.randn(300, 3), torch.arange(300)
    data = MonthData([(X[:100], y[:100]), (X[100:], y[100:])],
                     lambda sizes, rng: rng.permutation(sum(sizes))).resample(
        np.random.default_rng(0))
    plain = list(EpochIterator(data, 32, generator=torch.Generator().manual_seed(1)))
    cpu = list(EpochIterator(data, 32, generator=torch.Generator().manual_seed(1),
                             device="cpu"))
    assert len(plain) == len(cpu) == 10
    for (a, b), (c, d) in zip(plain, cpu):
        assert torch.equal(a, c) and torch.equal(b, d)
    moved = data.to("cpu")
    assert torch.equal(moved.plan, data.plan) and moved.sizes == data.sizes


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_month_on_device_changes_nothing_on_the_cpu(value):
    X, y, months = make_stream(n_months=3)
    reference = ContinualClassifier(strategy="replay", **FAST).fit(X, y, months=months)
    clf = ContinualClassifier(strategy="replay", month_on_device=value, **FAST)
    np.testing.assert_array_equal(clf.fit(X, y, months=months).predict_proba(X),
                                  reference.predict_proba(X))


@pytest.mark.parametrize("value", [1, "yes", None])
def test_month_on_device_is_checked(value):
    X, y, _ = make_stream(n_months=1)
    with pytest.raises(ValueError, match="month_on_device=.*Valid values: 'auto', True, False"):
        ContinualClassifier(month_on_device=value, **FAST).fit(X, y)


# ----------------------------------------------------------------------
# The optimizer's multi-tensor implementation
# ----------------------------------------------------------------------
@pytest.mark.parametrize("device, expected", [("cpu", {}),
                                              ("cuda", {"fused": True}),
                                              ("cuda:1", {"fused": True}),
                                              ("mps", {})])
def test_the_optimizer_gets_its_fastest_implementation(device, expected):
    from sklearn_cf._estimator._classifier import fast_optimizer_kwargs

    for optimizer in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        assert fast_optimizer_kwargs(optimizer, {"lr": 0.1}, device) == {"lr": 0.1, **expected}
        # A choice of the user's is kept, as is an optimizer without one.
        for own in ({"foreach": False}, {"fused": False}, {"foreach": None},
                    {"differentiable": True}):
            assert fast_optimizer_kwargs(optimizer, own, device) == own
    assert fast_optimizer_kwargs(torch.optim.RMSprop, {}, device) == {}


@pytest.mark.parametrize("optimizer, kwargs", [
    (torch.optim.Adam, {}),
    (torch.optim.AdamW, {"optimizer__weight_decay": 0.1}),
    (torch.optim.SGD, {"optimizer__momentum": 0.9, "optimizer__nesterov": True, "lr": 0.05}),
])
def test_foreach_on_the_cpu_trains_to_the_bits_of_the_per_parameter_loop(optimizer, kwargs):
    # On the CPU the default is torch's per-parameter loop (foreach cost
    # more per step with a small network); a user's foreach=True is kept
    # and trains to the same bits.
    X, y, months = make_stream(n_months=2)
    fits = []
    for foreach in (None, True):
        extra = {} if foreach is None else {"optimizer__foreach": foreach}
        clf = ContinualClassifier(strategy="replay+ewc", reg_lambda=10.0, optimizer=optimizer,
                                  **{**FAST, **kwargs, **extra}).fit(X, y, months=months)
        fits.append(clf)
    assert fits[0].optimizer_.defaults["foreach"] is None
    assert fits[1].optimizer_.defaults["foreach"] is True
    for a, b in zip(fits[0].module_.parameters(), fits[1].module_.parameters()):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------
# compile=True
# ----------------------------------------------------------------------
class CompileSpy:
    """Stands in for torch.compile: records what it compiles and every call
    of the compiled module (which runs the module itself)."""

    def __init__(self):
        self.compiled, self.calls = [], []

    def __call__(self, module, **kwargs):
        self.compiled.append((module, kwargs))

        def forward(x):
            self.calls.append(len(x))
            return module(x)

        return forward


def test_compile_trains_every_batch_through_the_compiled_module(monkeypatch):
    spy = CompileSpy()
    monkeypatch.setattr(torch, "compile", spy)
    X, y, months = make_stream(n_months=3)
    reference = ContinualClassifier(strategy="replay", **FAST).fit(X, y, months=months)
    clf = ContinualClassifier(strategy="replay", compile=True, compile__mode="reduce-overhead",
                              **FAST).fit(X, y, months=months)
    # Once for the three months, of the plain module (which module_ stays),
    # with the compile__ options; every training row went through it.
    assert len(spy.compiled) == 1
    assert all(module is clf.module_ and kwargs == {"mode": "reduce-overhead"}
               for module, kwargs in spy.compiled)
    assert type(clf.module_) is type(reference.module_)
    assert sum(spy.calls) == sum(c["rows"] for c in clf.cost_) > 0
    assert not any(isinstance(v, CompileSpy) for v in vars(clf).values())
    # A new module (a strategy that starts each month afresh) is compiled anew.
    spy.compiled.clear()
    fresh = ContinualClassifier(strategy="joint", compile=True, **FAST).fit(X, y, months=months)
    assert len(spy.compiled) == 3 and spy.compiled[-1][0] is fresh.module_
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))


def test_compile_is_checked_and_needs_torch_compile(monkeypatch):
    X, y, months = make_stream(n_months=2)
    with pytest.raises(ValueError, match="compile=1.*Valid values: False, True"):
        ContinualClassifier(compile=1, **FAST).fit(X, y)
    clf = ContinualClassifier(compile=True, **FAST)
    monkeypatch.delattr(torch, "compile")
    with pytest.raises(RuntimeError, match="compile=True needs torch.compile.*compile=False"):
        clf.partial_fit_month(X[months == 0], y[months == 0])


@pytest.mark.slow
# torch's compiler imports torch.jit.script_method, deprecated by torch itself.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_a_compiled_month_agrees_with_the_eager_one_and_is_saved(tmp_path):
    import sklearn_cf

    X, y, months = make_stream(n_months=2)
    eager = ContinualClassifier(strategy="replay+ewc", reg_lambda=10.0, **FAST)
    compiled = ContinualClassifier(strategy="replay+ewc", reg_lambda=10.0, compile=True, **FAST)
    for clf in (eager, compiled):
        clf.fit(X, y, months=months)
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), atol=1e-5)
    compiled.save(tmp_path / "m.pt")
    assert sklearn_cf.load(tmp_path / "m.pt").compile is True
