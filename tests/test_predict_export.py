"""``sklearn-cf predict`` and ``sklearn-cf export`` (issue 21, items 2 and 3).

Oracles: the loaded model's own ``predict_proba`` on the whole frame at
once, and the class of highest probability taken with numpy; for ONNX,
onnxruntime's output against ``predict_proba``.
"""

import json
import os
import sys

import numpy as np
import pytest

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf.cli import main
from sklearn_cf.serving import export_onnx, predict_file

pd = pytest.importorskip("pandas")

FEATURES = ["size", "entropy", "imports", "sections"]
CLASSES = np.array(["benign", "malware", "pua"])


def _frame(n_rows, seed=0):
    """Rows with an id, a month and a text label in between the features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, len(FEATURES))).astype(np.float32)
    label = CLASSES[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    frame = pd.DataFrame(X, columns=FEATURES)
    frame.insert(2, "label", label)
    frame.insert(0, "row_id", np.arange(n_rows))
    frame["month"] = "2024-11"
    return frame


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A 3-class checkpoint of a model fitted on a DataFrame (it knows its
    column names), trained over two months."""
    frame = _frame(400, seed=1)
    clf = ContinualClassifier(hidden_units=(16,), max_epochs=3, batch_size=64, random_state=0)
    clf.fit(frame[FEATURES], frame["label"].to_numpy(), months=np.repeat([0, 1], 200))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    clf.save(path)
    return str(path)


def _expected(model_path, frame):
    model = sklearn_cf.load(model_path)
    proba = model.predict_proba(frame[FEATURES])
    return model, proba, model.classes_[np.argmax(proba, axis=1)]


def _assert_predictions(table, model, proba, labels):
    assert list(table.columns) == [f"proba_{c}" for c in model.classes_] + ["prediction"]
    assert len(table) == len(proba)
    # float32 written as its shortest repr reads back as the same float32
    got = table[[f"proba_{c}" for c in model.classes_]].to_numpy().astype(np.float32)
    np.testing.assert_array_equal(got, proba)
    np.testing.assert_array_equal(table["prediction"].astype(str).to_numpy(), labels)


def _spy_batches(monkeypatch):
    """Row counts of every predict_proba call."""
    sizes = []
    real = ContinualClassifier.predict_proba

    def spy(self, X):
        sizes.append(len(X))
        return real(self, X)

    monkeypatch.setattr(ContinualClassifier, "predict_proba", spy)
    return sizes


class TestPredict:
    def test_csv_of_two_and_a_half_chunks(self, model_path, tmp_path, capsys, monkeypatch):
        frame = _frame(250, seed=2)
        data, out = tmp_path / "rows.csv", tmp_path / "pred.csv"
        frame.to_csv(data, index=False)
        model, proba, labels = _expected(model_path, frame)
        assert len(set(labels)) > 1 and len(np.unique(proba[:, 0])) == len(frame)
        sizes = _spy_batches(monkeypatch)
        code = main(["predict", "--model", model_path, "--data", str(data), "--out", str(out),
                     "--target", "label", "--chunk-rows", "100"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert sizes == [100, 100, 50]  # never more than a chunk in memory
        assert "Wrote 250 rows" in captured.out
        assert captured.err == ""  # stderr is not a terminal: no progress bar
        _assert_predictions(pd.read_csv(out), model, proba, labels)
        assert sorted(os.listdir(tmp_path)) == ["pred.csv", "rows.csv"]

    def test_shuffled_rows_keep_their_order(self, model_path, tmp_path):
        frame = _frame(230, seed=3).sample(frac=1.0, random_state=0)
        data, out = tmp_path / "rows.tsv", tmp_path / "pred.tsv"
        frame.to_csv(data, index=False, sep="\t")
        model, proba, labels = _expected(model_path, frame)
        assert predict_file(model, data, out, target="label", chunk_rows=64) == 230
        _assert_predictions(pd.read_csv(out, sep="\t"), model, proba, labels)

    def test_parquet_in_and_out(self, model_path, tmp_path, monkeypatch):
        pytest.importorskip("pyarrow")
        frame = _frame(250, seed=4)
        data, out = tmp_path / "rows.parquet", tmp_path / "pred.parquet"
        frame.to_parquet(data, index=False, row_group_size=120)
        model, proba, labels = _expected(model_path, frame)
        sizes = _spy_batches(monkeypatch)
        assert main(["predict", "--model", model_path, "--data", str(data), "--out", str(out),
                     "--chunk-rows", "100", "--quiet"]) == 0
        assert max(sizes) <= 100 and sum(sizes) == 250
        table = pd.read_parquet(out)
        assert table["proba_benign"].dtype == np.float32
        _assert_predictions(table, model, proba, labels)

    def test_csv_in_parquet_out_and_back(self, model_path, tmp_path):
        pytest.importorskip("pyarrow")
        frame = _frame(120, seed=5)
        frame.to_csv(tmp_path / "rows.csv.gz", index=False)
        model, proba, labels = _expected(model_path, frame)
        predict_file(model, tmp_path / "rows.csv.gz", tmp_path / "p.parquet", chunk_rows=50)
        _assert_predictions(pd.read_parquet(tmp_path / "p.parquet"), model, proba, labels)

    def test_a_model_store(self, tmp_path, capsys):
        """A store written by ``update`` (arrays, no column names): every column
        but --target is a feature, in the file's order."""
        frame = _frame(300, seed=6).drop(columns=["row_id", "month"])
        frame.to_csv(tmp_path / "month.csv", index=False)
        store = tmp_path / "store"
        assert main(["update", "--model", str(store), "--data", str(tmp_path / "month.csv"),
                     "--target", "label", "--strategy", "naive", "--epochs", "1",
                     "--hidden-units", "8", "--scale", "none", "--quiet"]) == 0
        capsys.readouterr()
        out = tmp_path / "pred.csv"
        assert main(["predict", "--model", str(store), "--data", str(tmp_path / "month.csv"),
                     "--out", str(out), "--target", "label", "--chunk-rows", "70"]) == 0
        model = sklearn_cf.load(store)
        proba = model.predict_proba(frame[FEATURES].to_numpy())
        _assert_predictions(pd.read_csv(out), model, proba,
                            model.classes_[np.argmax(proba, axis=1)])

    def test_progress_bar_on_a_terminal_only(self, model_path, tmp_path, capsys, monkeypatch):
        _frame(150, seed=7).to_csv(tmp_path / "rows.csv", index=False)
        args = ["predict", "--model", model_path, "--data", str(tmp_path / "rows.csv"),
                "--out", str(tmp_path / "p.csv"), "--chunk-rows", "50"]
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        assert main(args) == 0
        assert "predict" in capsys.readouterr().err
        assert main(args + ["--quiet"]) == 0
        assert capsys.readouterr().err == ""

    def test_a_failure_midway_leaves_no_file(self, model_path, tmp_path, monkeypatch):
        _frame(250, seed=8).to_csv(tmp_path / "rows.csv", index=False)
        out = tmp_path / "pred.csv"
        calls = []
        real = ContinualClassifier.predict_proba

        def failing(self, X):
            calls.append(len(X))
            if len(calls) == 2:
                raise RuntimeError("disk on fire")
            return real(self, X)

        monkeypatch.setattr(ContinualClassifier, "predict_proba", failing)
        model = sklearn_cf.load(model_path)
        with pytest.raises(RuntimeError, match="disk on fire"):
            predict_file(model, tmp_path / "rows.csv", out, chunk_rows=100)
        assert sorted(os.listdir(tmp_path)) == ["rows.csv"]  # no P, no temporary file
        out.write_text("yesterday's predictions\n")
        calls.clear()
        with pytest.raises(RuntimeError):
            predict_file(model, tmp_path / "rows.csv", out, chunk_rows=100)
        assert out.read_text() == "yesterday's predictions\n"
        assert sorted(os.listdir(tmp_path)) == ["pred.csv", "rows.csv"]

    @pytest.mark.parametrize("change, words", [
        ({"--data": "missing.csv"}, ["--data", "missing.csv", "no such file"]),
        ({"--model": "no-model"}, ["--model", "no-model", "no such"]),
        ({"--target": "labl"}, ["--target", "'labl'", "did you mean 'label'"]),
        ({"--out": "nowhere/p.csv"}, ["--out", "does not exist"]),
        ({"--out": "p.json"}, ["--out", ".parquet"]),
        ({"--chunk-rows": "0"}, ["--chunk-rows", ">= 1"]),
        ({"drop": "entropy"}, ["lacks the feature column(s) 'entropy'"]),
    ])
    def test_errors_exit_2_in_cli_terms(self, change, words, model_path, tmp_path, capsys):
        frame = _frame(20)
        if "drop" in change:
            frame = frame.drop(columns=[change.pop("drop")])
        frame.to_csv(tmp_path / "rows.csv", index=False)
        options = {"--model": model_path, "--data": "rows.csv", "--out": "p.csv",
                   "--target": "label", **change}
        args = ["predict"]
        for key, value in options.items():
            if key in ("--data", "--out") or (key == "--model" and value == "no-model"):
                value = str(tmp_path / value)
            args += [key, value]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("sklearn-cf: error: ") and err.count("\n") == 1, err
        for word in words:
            assert word in err
        assert not (tmp_path / "p.csv").exists()

    def test_unnamed_model_and_a_label_column_name_the_target(self, tmp_path, capsys):
        frame = _frame(120, seed=9)[FEATURES + ["label"]]
        clf = ContinualClassifier(hidden_units=(8,), max_epochs=1, random_state=0)
        clf.fit(frame[FEATURES].to_numpy(), frame["label"].to_numpy()).save(tmp_path / "m.pt")
        frame.to_csv(tmp_path / "rows.csv", index=False)
        assert main(["predict", "--model", str(tmp_path / "m.pt"), "--data",
                     str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv")]) == 2
        err = capsys.readouterr().err
        assert "has 5 column(s)" in err and "takes 4 features" in err and "--target" in err


def _raw_rows(n_rows, seed=0):
    """Raw table rows: numbers at mixed scales, a text column, a code column
    whose values look like numbers ("07"), a label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "size": rng.normal(5e4, 2e4, n_rows),
        "packer": rng.choice(["upx", "none", "aspack"], n_rows),
        "region": rng.choice(["07", "12", "x9"], n_rows),
        "entropy": rng.uniform(0, 8, n_rows),
    })
    frame["label"] = np.where((frame["size"] > 5e4) ^ (frame["packer"] == "upx"),
                              "malware", "goodware")
    return frame


@pytest.fixture(scope="module")
def encoded_model(tmp_path_factory):
    """A checkpoint of a model that carries its TableEncoder (one-hot and
    standardization), fitted on raw rows over three months."""
    from sklearn_cf.preprocessing import TableEncoder

    frame = _raw_rows(600, seed=20)
    clf = ContinualClassifier(preprocessor=TableEncoder(), hidden_units=(16,), max_epochs=3,
                              random_state=0)
    clf.fit(frame.drop(columns="label"), frame["label"].to_numpy(),
            months=np.repeat([1, 2, 3], 200))
    path = tmp_path_factory.mktemp("encoded") / "model.pt"
    clf.save(path)
    return str(path)


class TestPredictRawRows:
    def test_categorical_columns_read_as_text_in_every_chunk(self, encoded_model, tmp_path):
        frame = _raw_rows(250, seed=21)
        # the first chunk's codes all look like numbers, the second's are all missing
        frame.loc[:99, "region"] = "07"
        frame.loc[100:199, "region"] = None
        frame.loc[5, "packer"] = "mpress"  # a category the model never saw
        frame = frame[["label", "entropy", "region", "packer", "size"]]  # another order
        frame.to_csv(tmp_path / "rows.csv", index=False)
        model = sklearn_cf.load(encoded_model)
        whole = pd.read_csv(tmp_path / "rows.csv", dtype={"region": str, "packer": str})
        with pytest.warns(UserWarning, match="mpress"):
            proba = model.predict_proba(whole.drop(columns="label"))
            n = predict_file(model, tmp_path / "rows.csv", tmp_path / "p.csv",
                             target="label", chunk_rows=100)
        assert n == 250
        _assert_predictions(pd.read_csv(tmp_path / "p.csv"), model, proba,
                            model.classes_[np.argmax(proba, axis=1)])


class TestExport:
    def _onnxruntime(self):
        return pytest.importorskip("onnxruntime")

    def _run(self, path, X):
        session = self._onnxruntime().InferenceSession(str(path),
                                                      providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["features"]
        return session.run(["probabilities"], {"features": X.astype(np.float32)})[0]

    def test_cli_export_matches_predict_proba(self, model_path, tmp_path, capsys):
        self._onnxruntime()
        out = tmp_path / "model.onnx"
        assert main(["export", "--model", model_path, "--format", "onnx",
                     "--out", str(out)]) == 0
        assert "checked against predict_proba" in capsys.readouterr().out
        model = sklearn_cf.load(model_path)
        frame = _frame(300, seed=10)
        got = self._run(out, frame[FEATURES].to_numpy())
        np.testing.assert_allclose(got, model.predict_proba(frame[FEATURES]), atol=1e-5,
                                   rtol=0)
        schema = json.loads((tmp_path / "model.onnx.schema.json").read_text())
        assert schema["classes"] == list(CLASSES)
        assert [c["name"] for c in schema["columns"]] == FEATURES
        assert schema["input"]["name"] == "features"

    @pytest.mark.parametrize("strategy", ["ensemble", "replay+ewc"])
    def test_strategies_with_dropout(self, strategy, tmp_path):
        self._onnxruntime()
        rng = np.random.default_rng(11)
        X = rng.normal(size=(300, 5)).astype(np.float32) * [1, 10, 0.1, 100, 1]
        y = (X[:, 0] > 0).astype(int)
        clf = ContinualClassifier(strategy=strategy, hidden_units=(12, 6), dropout=0.2,
                                  max_epochs=2, random_state=0)
        clf.fit(X, y, months=np.repeat([0, 1, 2], 100))
        export_onnx(clf, tmp_path / "m.onnx")
        np.testing.assert_allclose(self._run(tmp_path / "m.onnx", X), clf.predict_proba(X),
                                   atol=1e-5, rtol=0)

    def test_custom_module_is_refused(self, tmp_path):
        self._onnxruntime()
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(3, 2)

            def forward(self, X):
                return self.linear(X)

        X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
        clf = ContinualClassifier(module=Net, max_epochs=1, random_state=0)
        clf.fit(X, (X[:, 0] > 0).astype(int))
        with pytest.raises(ValueError, match="custom module Net.*torch.onnx.export"):
            export_onnx(clf, tmp_path / "m.onnx")
        assert os.listdir(tmp_path) == []

    def test_a_mismatch_fails_and_writes_nothing(self, model_path, tmp_path, monkeypatch,
                                                 capsys):
        self._onnxruntime()
        real = ContinualClassifier.predict_proba
        monkeypatch.setattr(ContinualClassifier, "predict_proba",
                            lambda self, X: real(self, X)[:, ::-1])
        assert main(["export", "--model", model_path, "--out",
                     str(tmp_path / "m.onnx")]) == 2
        assert "differ from predict_proba" in capsys.readouterr().err
        assert os.listdir(tmp_path) == []

    def test_missing_extra_exits_2(self, model_path, tmp_path, monkeypatch, capsys):
        monkeypatch.setitem(sys.modules, "onnxruntime", None)
        assert main(["export", "--model", model_path, "--out", str(tmp_path / "m.onnx")]) == 2
        err = capsys.readouterr().err
        assert 'pip install "sklearn-cf[onnx]"' in err and err.count("\n") == 1
        assert os.listdir(tmp_path) == []

    def test_preprocessor_folded_and_one_hot_from_the_schema(self, encoded_model, tmp_path):
        """A serving system encodes raw rows from the schema file alone
        (numbers as they are, one-hot 1.0 where the category matches) and
        gets predict_proba's numbers on the raw rows, unseen category included."""
        self._onnxruntime()
        out = tmp_path / "model.onnx"
        assert main(["export", "--model", encoded_model, "--out", str(out)]) == 0
        schema = json.loads((tmp_path / "model.onnx.schema.json").read_text())
        assert schema["scaling"].startswith("folded")
        kinds = [(c["column"], c["kind"], c.get("category")) for c in schema["columns"]]
        assert kinds == [("size", "number", None), ("packer", "one-hot", "aspack"),
                         ("packer", "one-hot", "none"), ("packer", "one-hot", "upx"),
                         ("region", "one-hot", "07"), ("region", "one-hot", "12"),
                         ("region", "one-hot", "x9"), ("entropy", "number", None)]
        rows = _raw_rows(300, seed=22).drop(columns="label")
        rows.loc[:9, "packer"] = "mpress"
        X = np.zeros((len(rows), len(schema["columns"])), dtype=np.float32)
        for column in schema["columns"]:
            values = rows[column["column"]]
            X[:, column["index"]] = (values.to_numpy(dtype=float) if column["kind"] == "number"
                                     else values.astype(str) == column["category"])
        model = sklearn_cf.load(encoded_model)
        with pytest.warns(UserWarning, match="mpress"):
            expected = model.predict_proba(rows)
        np.testing.assert_allclose(self._run(out, X), expected, atol=1e-5, rtol=0)


def test_export_of_a_model_whose_classes_grew_follows_classes_order(tmp_path):
    """A month added a class that sorts first: the output units are in the
    order the classes arrived, predict_proba's columns in classes_ order,
    and so must the graph's be."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from sklearn_cf import ContinualClassifier
    from sklearn_cf.serving import export_onnx

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = np.where(X[:, 0] > 0, 2, 1)
    clf = ContinualClassifier(max_epochs=2, hidden_units=(8,), random_state=0).fit(X, y)
    y_new = np.where(X[:, 1] > 1, 0, y)  # class 0 appears, and sorts first
    clf.partial_fit_month(X, y_new, allow_new_classes=True)
    assert list(clf.classes_) == [0, 1, 2] and list(clf.output_classes_) == [1, 2, 0]
    path = tmp_path / "grown.onnx"
    export_onnx(clf, path)
    session = onnxruntime.InferenceSession(str(path))
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(got, clf.predict_proba(X), atol=1e-5)
