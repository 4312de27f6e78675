"""``export_onnx``: the default MLP as an ONNX graph that outputs the class
probabilities, checked against ``predict_proba`` with onnxruntime.

The graph is written with ``onnx.helper`` from the network's weights (one
``Gemm`` per linear layer, ``Relu``, ``Softmax``) rather than traced, so it
needs neither torch's exporter nor its optional dependencies, and an
ensemble's members become branches of one graph whose probabilities are
averaged, as ``predict_proba`` averages them.
"""

import json
import os
import warnings

import numpy as np
import torch

from .._atomic import write_atomically_bytes
from .._compat import to_python
from .._mlp import MLP, GeneratorDropout
from ..preprocessing import UnseenCategoryWarning

__all__ = ["INPUT_NAME", "OPSET", "OUTPUT_NAME", "SCHEMA_SUFFIX", "export_onnx"]

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
#: ONNX opset and IR version of the graph: old enough for the onnxruntime
#: of most serving systems (1.12 and later), new enough for Softmax on one
#: axis.
OPSET = 17
IR_VERSION = 8
#: The side file written next to the graph: ``model.onnx.schema.json``.
SCHEMA_SUFFIX = ".schema.json"
SCHEMA_FORMAT = "sklearn_cf.onnx-schema/1"


def _import_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            f"Exporting to ONNX needs the packages onnx and onnxruntime ({exc.name} is not "
            "installed): pip install \"sklearn-cf[onnx]\"."
        ) from None
    return onnx, onnxruntime


def _check_exportable(model):
    if not model.__sklearn_is_fitted__():
        raise ValueError("The model is not fitted; there is nothing to export.")
    module = getattr(model, "module_", None)
    if model.module is not None or not isinstance(module, MLP):
        name = type(module).__name__ if module is not None else repr(model.module)
        raise ValueError(
            f"ONNX export supports the default network (module=None, an MLP); this "
            f"model has the custom module {name}. Export it with torch.onnx.export("
            "model.module_, ...) and check its output against model.predict_proba."
        )
    if not isinstance(model.criterion_, torch.nn.CrossEntropyLoss) or \
            model.predict_nonlinearity != "auto":
        raise ValueError(
            "ONNX export writes softmax probabilities, which is what predict_proba gives "
            "only with criterion=torch.nn.CrossEntropyLoss and predict_nonlinearity='auto'; "
            f"this model has {type(model.criterion_).__name__} and "
            f"predict_nonlinearity={model.predict_nonlinearity!r}."
        )
    layers = []
    for index, layer in enumerate(module.layers):
        if isinstance(layer, torch.nn.Linear):
            layers.append(("linear", f"layers.{index}"))
        elif isinstance(layer, torch.nn.ReLU):
            layers.append(("relu", None))
        elif not isinstance(layer, GeneratorDropout):  # dropout is off in prediction
            raise ValueError(f"ONNX export does not know the layer {type(layer).__name__}.")
    return layers


def _n_inputs(model):
    """The width of the network's input: the encoded columns with a preprocessor."""
    return int(getattr(model, "n_inputs_", model.n_features_in_))


def _input_layout(model):
    """What each input of the graph is, and the standardization to fold.

    Returns ``(columns, mean, scale)``: one dict per input position for the
    schema file, and the per-input standardization ``(x - mean) / scale``
    the model applies before its network (None when it applies none).
    """
    encoder = getattr(model, "preprocessor_", None)
    if encoder is None:
        names = getattr(model, "feature_names_in_", None)
        columns = [{"index": k, "name": None if names is None else str(names[k]),
                    "kind": "number"} for k in range(_n_inputs(model))]
        return columns, None, None
    labels = getattr(encoder, "feature_names_in_", None)
    labels = [f"x{j}" for j in range(encoder.n_features_in_)] if labels is None \
        else [str(n) for n in labels]
    columns, mean, scale = [], [], []
    for j, (label, kind, levels) in enumerate(zip(labels, encoder.kinds_,
                                                   encoder.categories_)):
        if kind == "numeric":
            columns.append({"index": len(columns), "name": label, "kind": "number",
                            "column": label})
            mean.append(float(encoder.mean_[j]))
            scale.append(float(encoder.scale_[j]))
            continue
        for level in levels:
            columns.append({"index": len(columns), "name": f"{label}={level}",
                            "kind": "one-hot", "column": label, "category": level})
            mean.append(0.0)
            scale.append(1.0)
    if len(columns) != _n_inputs(model):  # pragma: no cover - the encoder sized the network
        raise ValueError("The model's preprocessor does not match its network's inputs.")
    return columns, np.asarray(mean), np.asarray(scale)


def _member_states(model):
    states = model.strategy_.predictive_states(model)
    if states is None:
        states = [model.module_.state_dict()]
    return [{k: v.detach().to("cpu", torch.float64).numpy() for k, v in state.items()}
            for state in states]


def _fold(weight, bias, mean, scale):
    """The first layer of ``W (x - mean) / scale + b`` as ``W' x + b'``."""
    if mean is None:
        return weight, bias
    folded = weight / scale[None, :]
    return folded, bias - folded @ mean


def _class_order(model):
    """The output unit of each class of ``classes_`` (the units follow
    ``output_classes_``, which differs once a month added classes)."""
    units = {to_python(c): k for k, c in enumerate(model.output_classes_)}
    return np.array([units[to_python(c)] for c in model.classes_])


def _graph(onnx, model, layers, mean, scale):
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    nodes, weights = [], []
    states = _member_states(model)
    outputs = []
    last = max(k for k, (kind, _) in enumerate(layers) if kind != "relu")
    order = _class_order(model)
    for m, state in enumerate(states):
        current, first = INPUT_NAME, True
        for k, (kind, prefix) in enumerate(layers):
            out = f"m{m}_l{k}"
            if kind == "relu":
                nodes.append(helper.make_node("Relu", [current], [out]))
            else:
                weight, bias = state[f"{prefix}.weight"], state[f"{prefix}.bias"]
                if first:
                    weight, bias = _fold(weight, bias, mean, scale)
                    first = False
                if k == last:  # outputs in the order of classes_
                    weight, bias = weight[order], bias[order]
                w_name, b_name = f"m{m}_{prefix}.weight", f"m{m}_{prefix}.bias"
                weights += [numpy_helper.from_array(weight.astype(np.float32), w_name),
                            numpy_helper.from_array(bias.astype(np.float32), b_name)]
                nodes.append(helper.make_node("Gemm", [current, w_name, b_name], [out],
                                              transB=1))
            current = out
        proba = OUTPUT_NAME if len(states) == 1 else f"m{m}_proba"
        nodes.append(helper.make_node("Softmax", [current], [proba], axis=1))
        outputs.append(proba)
    if len(states) > 1:  # an ensemble: the mean of its members' probabilities
        weights.append(numpy_helper.from_array(
            np.array(1.0 / len(states), dtype=np.float32), "inverse_members"))
        nodes.append(helper.make_node("Sum", outputs, ["proba_sum"]))
        nodes.append(helper.make_node("Mul", ["proba_sum", "inverse_members"], [OUTPUT_NAME]))
    n_in, n_out = _n_inputs(model), len(model.classes_)
    graph = helper.make_graph(
        nodes, "sklearn_cf_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT,
                                       ["batch", n_out])],
        initializer=weights,
    )
    proto = helper.make_model(graph, producer_name="sklearn_cf",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    classes = [to_python(c) for c in model.classes_]
    helper.set_model_props(proto, {"classes": json.dumps(classes),
                                   "members": str(len(states))})
    onnx.checker.check_model(proto)
    return proto


def _check_rows(model, n_rows, columns, mean, scale, random_state):
    """Rows to compare the graph with ``predict_proba`` on: ``(X, raw)``, the
    graph's input and the same rows as the model takes them.

    Numbers are standard normal in the network's input space, mapped back
    through the standardization; each categorical column takes one of its
    categories at random, or (one row in five) a value it never saw, which
    the encoder and the graph both give as all zeros.
    """
    rng = np.random.default_rng(random_state)
    X = rng.normal(size=(n_rows, _n_inputs(model)))
    if mean is not None:
        X = X * scale + mean
    encoder = getattr(model, "preprocessor_", None)
    if encoder is None:
        X = X.astype(np.float32)
        return X, _named(model, X)
    raw = {}
    for position in columns:
        name = position["column"]
        if position["kind"] == "number":
            raw[name] = X[:, position["index"]]
        elif name not in raw:
            at = [p["index"] for p in columns if p["column"] == name]
            choice = rng.integers(len(at) + 1, size=n_rows)  # len(at): unseen
            X[:, at] = choice[:, None] == np.arange(len(at))[None, :]
            raw[name] = np.asarray([p["category"] for p in columns if p["column"] == name]
                                   + ["\0unseen"], dtype=object)[choice]
    import pandas as pd

    frame = pd.DataFrame({name: raw[name] for name in dict.fromkeys(
        p["column"] for p in columns)})
    if getattr(encoder, "feature_names_in_", None) is None:
        frame.columns = range(frame.shape[1])
    return X.astype(np.float32), frame


def _named(model, X):
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def _largest_difference(onnxruntime, data, model, X, raw):
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: X})[0]
    with warnings.catch_warnings():  # the unseen values are drawn on purpose
        warnings.simplefilter("ignore", UnseenCategoryWarning)
        expected = np.asarray(model.predict_proba(raw), dtype=np.float64)
    if got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - expected)))


def _schema(model, columns, folded):
    return {
        "format": SCHEMA_FORMAT,
        "input": {"name": INPUT_NAME, "dtype": "float32",
                  "shape": ["batch", _n_inputs(model)]},
        "output": {"name": OUTPUT_NAME, "dtype": "float32",
                   "shape": ["batch", len(model.classes_)],
                   "meaning": "probability of each class, in the order of 'classes'"},
        "classes": [to_python(c) for c in model.classes_],
        "columns": columns,
        "scaling": ("folded into the first layer: feed the raw values" if folded
                    else "none: feed the values the model was trained on"),
        "one_hot": "a 'one-hot' input is 1.0 when the row's 'column' equals its "
                   "'category' (as text), else 0.0; a value not listed, or a missing "
                   "one, gives 0.0 in all of that column's inputs",
        "months_seen": [to_python(m) for m in model.months_seen_],
        "opset": OPSET,
    }


def export_onnx(model, path, *, atol=1e-5, check_rows=512, random_state=0):
    """Write the model's network as an ONNX graph of its class probabilities.

    The graph takes one float32 input, ``"features"`` of shape
    ``(batch, n_features)``, and gives ``"probabilities"`` of shape
    ``(batch, n_classes)``, one column per class in the order of
    ``model.classes_`` (also in the side file and the graph's metadata
    ``classes``). A standardization the model applies to its inputs is
    folded into the first layer, so the graph takes the values as they come.
    An ensemble's members are averaged inside the graph. Before anything is
    written, the graph is run with onnxruntime on ``check_rows`` rows and
    compared with ``model.predict_proba``.

    Next to ``path``, ``path + ".schema.json"`` describes the input: one entry
    per input position (its column name, and for a one-hot position the
    column and category it stands for), the classes and the scaling. See
    docs/serving.md.

    Parameters
    ----------
    model : ContinualClassifier
        A fitted model with the default network (``module=None``).
    path : str or path-like
        The ``.onnx`` file to write (atomically, as its side file).
    atol : float, default=1e-5
        The largest absolute difference from ``predict_proba`` accepted.
    check_rows : int, default=512
        Rows drawn (standard normal in the network's input space) for the
        check.
    random_state : int, default=0
        Seed of those rows.

    Returns
    -------
    float
        The largest absolute difference found by the check.

    Raises
    ------
    ImportError
        Without onnx or onnxruntime (``pip install "sklearn-cf[onnx]"``).
    ValueError
        For a custom module, a criterion other than cross-entropy, an
        unfitted model, or a graph that differs from ``predict_proba`` by
        more than ``atol`` (then nothing is written).
    """
    onnx, onnxruntime = _import_onnx()
    layers = _check_exportable(model)
    columns, mean, scale = _input_layout(model)
    proto = _graph(onnx, model, layers, mean, scale)
    data = proto.SerializeToString()
    X, raw = _check_rows(model, check_rows, columns, mean, scale, random_state)
    difference = _largest_difference(onnxruntime, data, model, X, raw)
    if not difference <= atol:
        raise ValueError(
            f"The exported graph's probabilities differ from predict_proba by up to "
            f"{difference:.3g} (more than {atol:g}); nothing was written."
        )
    path = os.fspath(path)
    schema = _schema(model, columns, folded=mean is not None)
    write_atomically_bytes(path + SCHEMA_SUFFIX,
                           (json.dumps(schema, indent=2) + "\n").encode("utf-8"))
    write_atomically_bytes(path, data)
    return difference
