"""Online EWC: one anchor, a Fisher accumulated over the months."""

from .._param_validation import Real
from ._ewc import EWC

__all__ = ["OnlineEWC"]


class OnlineEWC(EWC):
    """EWC whose Fisher accumulates over months, with a single anchor.

    ``loss += reg_lambda / 2 * sum_i F*_i (theta_i - theta_prev_i)^2`` where
    ``theta_prev`` are the weights at the end of the previous month and
    ``F*`` is updated at the end of every month ``t`` from that month's
    Fisher diagonal ``F_t`` (computed as :class:`EWC` does):
    ``F*_t = gamma * F*_{t-1} + F_t``. The state does not grow with the
    number of months (one anchor, one accumulated diagonal), unlike EWC
    with one penalty per month, and older months keep a share of the pull.

    Parameters
    ----------
    reg_lambda : float >= 0, default=1e4
        Strength of the pull (as for :class:`EWC`). With ``gamma=1`` the
        accumulated Fisher grows with every month, so the pull on old
        weights strengthens over time.
    fisher : {"empirical", "true", "hessian"}, default="empirical"
        How each month's ``F_t`` is estimated.
    gamma : float in [0, 1], default=1.0
        Decay of the accumulated Fisher: 1 keeps every month's importance
        (the sum of the Fishers), 0 is plain EWC (the last month's only).
    fisher_rows : int or None, default=None
        As for :class:`EWC`: each month's ``F_t`` over at most this many
        of its rows.

    Notes
    -----
    Schwarz et al., "Progress & Compress: A scalable framework for continual
    learning", ICML 2018 (section 3, "online EWC"); Huszár, "Note on the
    quadratic penalties in elastic weight consolidation", PNAS 2018.
    The Fisher and the penalty cost what EWC's do.

    Where ``gamma`` sits. The accumulation ``F*_t = gamma F*_{t-1} + F_t``
    is the paper's. Its penalty is
    ``1/2 ||theta - theta*_{t-1}||^2`` weighted by ``gamma F*_{t-1}`` (the
    decay applied once more inside the penalty, as in van de Ven's widely
    used implementation), times a strength ``lambda_PC``; here the penalty
    has no ``gamma``, so for ``gamma > 0``::

        reg_lambda = gamma * lambda_PC        lambda_PC = reg_lambda / gamma

    (the same at ``gamma = 1``). Avalanche's ``EWCPlugin(mode="online")``
    accumulates the same way but adds ``ewc_lambda * sum F* (theta -
    theta*)^2`` without the 1/2, so ``reg_lambda = 2 * ewc_lambda`` for the
    same ``F*``; its Fisher is squared mini-batch gradients, about the
    per-row Fisher divided by the batch size, so its useful ``ewc_lambda``
    is larger still by about the batch size. Kirkpatrick et al.'s EWC has
    the 1/2, as here. ``tests/strategies/test_online_ewc_lwf.py`` checks the
    penalty after three months against these formulas.

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
    >>> clf = ContinualClassifier(strategy="online_ewc", strategy__gamma=0.9, max_epochs=1,
    ...                           random_state=0).fit(X, y, months=months)
    >>> clf.strategy_
    OnlineEWC(reg_lambda=10000.0, fisher='empirical', gamma=0.9)
    """

    name = "online_ewc"

    _parameter_constraints = {**EWC._parameter_constraints, "gamma": Real(0, 1)}

    def __init__(self, reg_lambda=1e4, fisher="empirical", gamma=1.0, fisher_rows=None):
        super().__init__(reg_lambda=reg_lambda, fisher=fisher, fisher_rows=fisher_rows)
        self.gamma = gamma

    def end_month(self, net, X, y, sample_weight=None):
        accumulated = self.fisher_diag
        super().end_month(net, X, y, sample_weight=sample_weight)  # anchors, F_t
        if accumulated is not None:
            self.fisher_diag = {name: self.gamma * accumulated[name] + new
                                for name, new in self.fisher_diag.items()}

    def __repr__(self):
        rows = "" if self.fisher_rows is None else f", fisher_rows={self.fisher_rows}"
        return (f"OnlineEWC(reg_lambda={self.reg_lambda}, fisher={self.fisher!r}, "
                f"gamma={self.gamma}{rows})")
