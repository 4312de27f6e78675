"""Learning without Forgetting: distil last month's network on new rows."""

import copy

import numpy as np
import torch

from .._param_validation import Real
from ._base import Strategy, attribute_savepoint
from ._growth import silent_state

__all__ = ["LwF", "distillation_loss"]


def distillation_loss(student, teacher, temperature):
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged
    over rows: Hinton et al.'s soft-target loss, which LwF adds.

    Parameters
    ----------
    student : Tensor of shape (n_rows, n_classes)
        The trained network's logits (in the autograd graph).
    teacher : Tensor of shape (n_rows, n_classes)
        The previous network's logits (constants).
    temperature : float > 0

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> float(distillation_loss(logits, logits, temperature=2.0))
    0.0
    """
    log_student = torch.log_softmax(student / temperature, dim=1)
    log_teacher = torch.log_softmax(teacher / temperature, dim=1)
    kl = (log_teacher.exp() * (log_teacher - log_student)).sum(1)
    return temperature ** 2 * kl.mean()


class LwF(Strategy):
    """Fine-tune while distilling the previous month's network on each batch.

    Every training batch of a month after the first adds
    ``alpha * T^2 * KL(softmax(z_old / T) || softmax(z / T))`` averaged over
    the batch's rows, where ``z`` are the network's logits and ``z_old`` the
    logits of the network as it was at the end of the previous month, on the
    same rows. The new month's rows thus keep the old network's answers as
    soft targets; no past row is kept.

    Parameters
    ----------
    alpha : float >= 0, default=1.0
        Weight of the distillation term. Larger: less forgetting, less
        learning of the new month; 0 is naive fine-tuning. Li & Hoiem's
        ``lambda_o`` is ``alpha * temperature**2`` (see Notes): the default
        (1.0 at T=2) is their ``lambda_o = 4``; their ``lambda_o = 1`` is
        ``alpha = 1 / T**2 = 0.25``.
    temperature : float > 0, default=2.0
        Softens both distributions (Li & Hoiem use 2).

    Attributes
    ----------
    teacher : torch.nn.Module or None
        A frozen copy of the network after the previous month, in eval mode
        (dropout off), on the training device: one extra copy of the
        weights, and one extra forward pass per batch.

    Notes
    -----
    Li and Hoiem, "Learning without Forgetting", ECCV 2016 / TPAMI 2018;
    Hinton, Vinyals and Dean, "Distilling the knowledge in a neural
    network", 2015 (the ``T^2`` factor keeps the gradient scale independent
    of ``T``).

    Li & Hoiem add ``lambda_o * L_old`` with ``L_old`` the cross-entropy
    ``-sum_c p_old,c log p_new,c`` of the temperature-scaled
    distributions, without a ``T^2`` factor. The cross-entropy is the KL
    divergence plus the teacher's entropy, a constant of the student, so
    both have the same gradient and::

        lambda_o = alpha * T**2        alpha = lambda_o / T**2

    give the same training (the losses differ by the constant
    ``lambda_o * H(p_old)``; ``tests/strategies/test_online_ewc_lwf.py``
    checks the gradients). With ``criterion=torch.nn.NLLLoss`` (a module returning
    probabilities), ``log p`` serves as the logits. The paper's separate
    old- and new-task heads are one head here; after new classes are added
    (``allow_new_classes``), the distillation covers the classes the
    teacher knew, as the paper's old-task head does. Sample weights do not
    weigh the distillation term.

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
    >>> clf = ContinualClassifier(strategy="lwf", strategy__alpha=2.0, max_epochs=1,
    ...                           random_state=0).fit(X, y, months=months)
    >>> clf.strategy_, [c["rows"] for c in clf.cost_]
    (LwF(alpha=2.0, temperature=2.0), [200, 200, 200])
    """

    name = "lwf"

    _parameter_constraints = {
        "alpha": Real(0, np.inf),
        "temperature": Real(0, np.inf, low_open=True),
    }

    def __init__(self, alpha=1.0, temperature=2.0):
        self.alpha = alpha
        self.temperature = temperature

    def start(self, net):
        self.teacher = None
        # After new classes: the number of classes the teacher knew (the
        # distillation is over those); None: all of the network's.
        self.teacher_classes = None

    def _logits(self, net, out):
        if isinstance(net.criterion_, torch.nn.NLLLoss):
            return out.clamp_min(torch.finfo(out.dtype).tiny).log()
        return out

    def batch_penalty(self, net, X, y_pred, y_true):
        if self.teacher is None or self.alpha == 0:
            return None
        with torch.no_grad():
            teacher = self.teacher(torch.as_tensor(X).to(y_pred.device))
        if self.teacher_classes is not None:
            # Classes the teacher never knew are left out of the distillation.
            y_pred = y_pred[:, :self.teacher_classes]
            teacher = teacher[:, :self.teacher_classes]
        return self.alpha * distillation_loss(
            self._logits(net, y_pred), self._logits(net, teacher), self.temperature)

    def end_month(self, net, X, y):
        teacher = copy.deepcopy(net.module_).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher = teacher
        self.teacher_classes = None

    def grow_classes(self, net, n_old, n_new):
        """The teacher keeps its outputs for the old classes; the
        distillation is over those only (Li & Hoiem's old-task outputs), so
        the new classes are learnt from their labels alone until the month
        that trains them ends. The teacher is stored at the grown size (new
        units silent) so that checkpoints load into the grown network."""
        if self.teacher is None:
            return
        teacher = copy.deepcopy(net.module_).eval()
        teacher.load_state_dict(silent_state(self.teacher.state_dict(), teacher.state_dict()))
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher = teacher
        if self.teacher_classes is None:
            self.teacher_classes = n_old

    def state_dict(self):
        if self.teacher is None:
            return {"teacher": None}
        state = {"teacher": {k: v.detach().cpu() for k, v in self.teacher.state_dict().items()}}
        if self.teacher_classes is not None:  # only after new classes
            state["teacher_classes"] = self.teacher_classes
        return state

    def load_state_dict(self, state, net):
        self.teacher_classes = state.get("teacher_classes")
        if state["teacher"] is None:
            self.teacher = None
            return
        teacher = copy.deepcopy(net.module_).eval()
        teacher.load_state_dict(state["teacher"])
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher = teacher.to(net.device)

    # end_month rebinds the teacher; nothing changes in place.
    savepoint = attribute_savepoint

    def __repr__(self):
        return f"LwF(alpha={self.alpha}, temperature={self.temperature})"
