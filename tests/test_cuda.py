"""GPU behaviour; runs only where CUDA is available (skipped elsewhere)."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream

import sklearn_cf
from sklearn_cf import ContinualClassifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("strategy", ["replay+ewc", "l2", "ensemble"])
def test_strategy_state_lives_on_the_gpu(strategy):
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(strategy=strategy, device="cuda", **FAST).fit(X, y, months=months)
    assert next(clf.module_.parameters()).is_cuda
    parts = getattr(clf.strategy_, "parts", [clf.strategy_])
    for part in parts:
        for name in ("anchors", "fisher_diag"):
            tensors = getattr(part, name, None)
            if tensors:
                assert all(t.is_cuda for t in tensors.values()), name
    # Snapshots and ensemble members stay in host memory.
    assert all(not t.is_cuda for s in clf.snapshots_ for st in s.states for t in st.values())


def test_gpu_and_cpu_fits_agree_closely():
    X, y, months = make_stream(n_months=2)
    gpu = ContinualClassifier(device="cuda", **FAST).fit(X, y, months=months)
    cpu = ContinualClassifier(device="cpu", **FAST).fit(X, y, months=months)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-3)


def test_gpu_model_loads_on_a_cpu_only_machine(tmp_path):
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(strategy="replay+ewc", device="cuda", **FAST).fit(X, y, months=months)
    expected = clf.predict_proba(X)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(clf))
    clf.save(tmp_path / "model.pt")
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(f"""
        import pickle, warnings, numpy as np, torch, sklearn_cf
        assert not torch.cuda.is_available()
        X = np.load({str(tmp_path / "X.npy")!r})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = pickle.loads(open({str(tmp_path / "model.pkl")!r}, "rb").read())
            b = sklearn_cf.load({str(tmp_path / "model.pt")!r})
        assert a.device == "cpu" and b.device == "cpu"
        np.save({str(tmp_path / "a.npy")!r}, a.predict_proba(X))
        np.save({str(tmp_path / "b.npy")!r}, b.predict_proba(X))
    """)
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), expected, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), expected, atol=1e-6)


def test_checkpoint_resume_on_gpu(tmp_path):
    X, y, months = make_stream(n_months=3)
    full = ContinualClassifier(strategy="replay+ewc", device="cuda", **FAST).fit(X, y, months=months)
    clf = ContinualClassifier(strategy="replay+ewc", device="cuda", **FAST)
    clf.partial_fit_month(X[months == 0], y[months == 0])
    clf.partial_fit_month(X[months == 1], y[months == 1])
    clf.save(tmp_path / "m.pt")
    loaded = sklearn_cf.load(tmp_path / "m.pt")
    loaded.partial_fit_month(X[months == 2], y[months == 2])
    np.testing.assert_allclose(loaded.predict_proba(X), full.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("strategy", ["replay", "joint", "replay+ewc"])
def test_month_on_device_gives_the_results_of_host_batches(strategy):
    X, y, months = make_stream(n_months=3)
    runs = {}
    for on_device in (True, False):
        clf = ContinualClassifier(strategy=strategy, device="cuda", month_on_device=on_device,
                                  **FAST)
        runs[on_device] = clf.fit(X, y, months=months).predict_proba(X)
    np.testing.assert_allclose(runs[True], runs[False], atol=1e-5)


def test_batches_reach_the_gpu_and_snapshots_come_back_pinned():
    from skorch.callbacks import Callback

    seen = []

    class Devices(Callback):
        def on_batch_begin(self, net, batch=None, training=False, **kwargs):
            if training:
                seen.append((batch[0].device.type, batch[1].device.type))

    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(strategy="replay", device="cuda", month_on_device=False,
                              callbacks=[Devices()], **FAST).fit(X, y, months=months)
    assert seen and set(seen) == {("cuda", "cuda")}
    assert all(t.is_pinned() for t in clf.snapshots_[-1].states[0].values())


# ----------------------------------------------------------------------
# The tight loop, the fused optimizer and compile on the GPU
# ----------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["naive", "replay+ewc"])
def test_the_tight_loop_on_the_gpu_trains_to_the_bits_of_the_per_batch_path(strategy):
    X, y, months = make_stream(n_months=3)
    fits = []
    for tight in (True, False):
        clf = ContinualClassifier(strategy=strategy, device="cuda", month_on_device=True,
                                  reg_lambda=10.0 if "ewc" in strategy else None, **FAST)
        clf._tight_loop = tight
        fits.append(clf.fit(X, y, months=months))
    for a, b in zip(fits[0].module_.parameters(), fits[1].module_.parameters()):
        assert torch.equal(a, b)
    records = [[{k: v for k, v in e.items() if k != "dur"} for e in clf.history] for clf in fits]
    assert records[0] == records[1]


def test_the_optimizer_is_fused_on_the_gpu():
    X, y, _ = make_stream(n_months=1)
    clf = ContinualClassifier(device="cuda", **FAST).fit(X, y)
    assert clf.optimizer_.defaults["fused"] is True
    kept = ContinualClassifier(device="cuda", optimizer__foreach=True, **FAST).fit(X, y)
    assert kept.optimizer_.defaults["fused"] is None and kept.optimizer_.defaults["foreach"]


def test_the_tight_loop_reads_the_loss_once_per_epoch_on_the_gpu():
    # With the month on the device, a training step waits for nothing: the
    # synchronising calls torch reports (sync debug mode "warn") are a few
    # per epoch, not one or more per batch as on skorch's per-batch path.
    import warnings

    X, y, _ = make_stream(n_months=1, n_per_month=2000)
    counts = {}
    for tight in (True, False):
        clf = ContinualClassifier(device="cuda", month_on_device=True,
                                  **{**FAST, "max_epochs": 3})
        clf._tight_loop = tight
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                clf.fit(X, y)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        counts[tight] = sum("synchroniz" in str(w.message) for w in caught)
    batches = sum(e["train_batch_count"] for e in clf.history)
    assert counts[False] >= batches
    assert counts[True] < batches / 4


def test_a_diverging_month_on_the_gpu_is_refused_at_the_end_of_its_epoch():
    from sklearn_cf.exceptions import TrainingDivergedError

    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(device="cuda", month_on_device=True, optimizer=torch.optim.SGD,
                              **{**FAST, "lr": 0.01}).fit(X[months == 0], y[months == 0])
    before = [p.detach().cpu().clone() for p in clf.module_.parameters()]
    clf.set_params(lr=1e8)
    with pytest.raises(TrainingDivergedError, match="at batch \\d+ of the epoch"):
        clf.partial_fit_month(X[months == 1] * 1e4, y[months == 1])
    assert clf.months_seen_ == [0]
    for a, b in zip(before, clf.module_.parameters()):
        assert torch.equal(a, b.detach().cpu())


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_on_the_gpu_agrees_with_eager():
    X, y, months = make_stream(n_months=2)
    eager = ContinualClassifier(device="cuda", **FAST).fit(X, y, months=months)
    compiled = ContinualClassifier(device="cuda", compile=True, **FAST).fit(X, y, months=months)
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), atol=1e-4)
