"""The model a store holds or starts from: an existing store, a new model,
an import of a checkpoint file, and the checks of options against them."""

import os

from .._eval_store import EvalStore
from ..store import ModelStore


def _existing_store(model):
    model = os.fspath(model)
    if os.path.isfile(model):
        raise ValueError(_checkpoint_file_message(model))
    if not ModelStore.is_store(model):
        raise ValueError(f"--model {model!r} is not a model store (no such folder, or no "
                         "CURRENT file in it).")
    return ModelStore(model)


def _checkpoint_file_message(model):
    return (
        f"--model {model!r} is a single checkpoint file; `sklearn-cf update` keeps a model "
        "as a store of generations (a folder). Start one from it with `sklearn-cf update "
        f"--model NEW_FOLDER --init-from {model} --data ...`."
    )


def _start(writer, model, strategy, estimator_params, random_state, init_from, memory_on_disk,
           scale=None):
    """The model and evaluation store a new store starts from.

    A new model carries its encoder of raw rows,
    ``TableEncoder(standardize=scale == "first-month")``, fitted by its first
    month's training rows; its evaluation store keeps raw rows. A checkpoint
    (``init_from``) keeps its own: raw rows when it has a preprocessor,
    else the encoded, scaled rows of its evaluation store (if any)."""
    if init_from is not None:
        from .._estimator import load

        if strategy is not None or estimator_params or memory_on_disk:
            raise ValueError("--init-from starts from a checkpoint's own settings; drop "
                             "--strategy and the network options.")
        clf = load(init_from)
        legacy = f"{init_from}.eval.npz"  # written next to checkpoints before stores
        store = (EvalStore.read(legacy) if os.path.exists(legacy)
                 else EvalStore(raw=getattr(clf, "preprocessor_", None) is not None))
        return clf, store
    if strategy is None:
        raise ValueError(
            f"--model {model!r} does not exist; give --strategy (e.g. replay) to start "
            "a new model."
        )
    from ..preprocessing import TableEncoder

    params = dict(estimator_params)
    if memory_on_disk:
        params["memory_dir"] = writer.memory_dir
    params.setdefault("preprocessor", TableEncoder(standardize=scale == "first-month"))
    return _new_model(strategy, params, random_state), EvalStore(raw=True)


def _new_model(spec, estimator_params, random_state):
    from ..compare import build_estimator

    return build_estimator(spec, estimator_params, random_state)


def _check_strategy_matches(clf, spec, model):
    """Refuse ``--strategy`` when it differs from the checkpoint's."""
    from ..compare import parse_strategy

    parsed = parse_strategy(spec)
    have = clf.get_params(deep=False)
    differ = [] if parsed.strategy == have["strategy"] else [
        f"strategy {have['strategy']!r} (not {parsed.strategy!r})"]
    differ += [f"{k}={have.get(k)!r} (not {v!r})" for k, v in parsed.params.items()
               if have.get(k) != v and not (isinstance(v, tuple) and tuple(have.get(k)) == v)]
    if differ:
        raise ValueError(
            f"--strategy {spec!r} differs from the model {model!r}, trained with "
            f"{'; '.join(differ)}. Drop --strategy to update it as it was trained, or "
            "give a new --model path to start another model."
        )


def _imported_from(writer, checkpoint):
    """Whether a kept generation of the store is an import of ``checkpoint``
    as it is now (same bytes)."""
    from .._atomic import file_sha256

    digest = file_sha256(checkpoint)
    return any(gen.kind == "import" and (gen.source or {}).get("sha256") == digest
               for gen in writer.store.generations())

