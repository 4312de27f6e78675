"""The monthly job's progress while a month trains: one line per month on a
terminal, rewritten at the end of every epoch (epoch k/N, loss, rows/s).

A skorch callback attached to the estimator for the month only
(:func:`epoch_progress`), so that the training loop stays skorch's and a
checkpoint never holds it; with progress off nothing is attached and the
training runs exactly as without it.
"""

import contextlib
import math
import time

from skorch.callbacks import Callback

__all__ = ["EpochProgress", "epoch_progress"]


class EpochProgress(Callback):
    """Write ``month M: epoch k/N, loss L, R rows/s`` to ``stream`` after every epoch.

    On a terminal the line is rewritten in place (``\\r``), and ended when the
    month's training ends, so each month leaves one line.

    Parameters
    ----------
    month : object
        The month's label, as printed.
    epochs : int
        Epochs the month is planned to run (early stopping may end it sooner).
    stream : file-like
        Where the line goes (stderr).
    """

    def __init__(self, month, epochs, stream):
        self.month, self.epochs, self.stream = month, epochs, stream

    # Not a hyperparameter: keep it out of clone/get_params.
    def get_params(self, deep=True):
        return {}

    def on_train_begin(self, net, **kwargs):
        self.done = 0
        self.start = time.perf_counter()
        self.open = False

    def on_epoch_end(self, net, **kwargs):
        entry = net.history[-1]
        self.done += 1
        rows = sum(batch.get("train_batch_size", 0) for batch in entry.get("batches", ()))
        seconds = entry.get("dur") or 0
        rate = f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "- rows/s"
        loss = entry.get("train_loss", math.nan)
        self.stream.write(
            f"\r\x1b[Kmonth {self.month}: epoch {self.done}/{self.epochs}, loss {loss:.4f}, "
            f"{rate}, {time.perf_counter() - self.start:.1f} s"
        )
        self.stream.flush()
        self.open = True

    def on_train_end(self, net, **kwargs):
        self.finish()

    def finish(self):
        """End the month's line (once)."""
        if getattr(self, "open", False):
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def planned_epochs(clf):
    """The epochs the next month of ``clf`` runs: ``max_epochs`` for the base
    fit and for a strategy that starts a fresh model each month,
    ``finetune_epochs`` (when set) for a fine-tuning month."""
    fitted = clf.__sklearn_is_fitted__()
    fresh = fitted and getattr(clf.strategy_, "fresh_model", False)
    if fitted and not fresh and clf.finetune_epochs is not None:
        return clf.finetune_epochs
    return clf.max_epochs


@contextlib.contextmanager
def epoch_progress(clf, month, stream, enabled=True):
    """Attach an :class:`EpochProgress` to ``clf`` while the block trains a month.

    ``month`` None stands for the estimator's next integer label.

    The estimator's ``callbacks`` are put back as they were on exit, however
    the block ends; with ``enabled=False`` nothing is attached.
    """
    if not enabled:
        yield
        return
    if month is None:  # the estimator's next integer label
        seen = getattr(clf, "months_seen_", None) or []
        month = int(seen[-1]) + 1 if seen and isinstance(seen[-1], int) else len(seen)
    progress = EpochProgress(month, planned_epochs(clf), stream)
    given = clf.callbacks
    clf.callbacks = [*(given or []), ("sklearn_cf_progress", progress)]
    fitted = clf.__sklearn_is_fitted__()
    if fitted:  # a fitted net keeps its callbacks_; a first month initializes them
        clf.initialize_callbacks()
    try:
        yield
    finally:
        progress.finish()
        clf.callbacks = given
        if clf.__sklearn_is_fitted__():
            clf.initialize_callbacks()
