"""A progress bar over strategies x splits x months (tqdm, on stderr)."""

from skorch.callbacks import Callback


class _MonthProgress(Callback):
    """Advance a tqdm bar by one at the end of every trained month."""

    def __init__(self, bar):
        self.bar = bar

    def on_train_end(self, net, **kwargs):
        self.bar.update(1)

    # The bar is not a hyperparameter: keep it out of clone/get_params.
    def get_params(self, deep=True):
        return {}


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def _make_bar(total, progress):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="month", desc="compare", dynamic_ncols=True, leave=False)
