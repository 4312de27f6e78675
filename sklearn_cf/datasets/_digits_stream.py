"""Permuted / rotated digits: a small classic continual-learning stream."""

from numbers import Integral, Real

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state

__all__ = ["load_digits_stream"]

_KINDS = ("permuted", "rotated")


def load_digits_stream(
    n_months=5, kind="permuted", *, max_angle=90.0, random_state=0
):
    """Load scikit-learn's digits as a stream of transformed "months".

    Every month holds the full 8x8 digits set (1797 images, bundled with
    scikit-learn, nothing is downloaded), transformed in a way that is
    fixed within the month:

    * ``"permuted"``: month 0 is the identity, every later month applies its
      own fixed random permutation of the 64 pixels (the permuted-MNIST
      continual-learning benchmark, at digits scale);
    * ``"rotated"``: month ``m`` rotates every image by
      ``m * max_angle / (n_months - 1)`` degrees (month 0 unrotated).

    Parameters
    ----------
    n_months : int, default=5
        Number of months (at least 1).
    kind : {"permuted", "rotated"}, default="permuted"
        Transformation applied from month to month.
    max_angle : float, default=90.0
        Rotation angle in degrees of the last month for ``kind="rotated"``
        (must be finite; ignored for ``"permuted"``).
    random_state : int, RandomState instance or None, default=0
        Seed of the pixel permutations (``"permuted"`` only).

    Returns
    -------
    X : ndarray of shape (n_months * 1797, 64), dtype float32
        Pixel intensities scaled to [0, 1] (the raw digits range 0..16
        divided by 16).
    y : ndarray of shape (n_months * 1797,), dtype int64
        Digit labels, equal to ``load_digits().target`` in every month.
    months : ndarray of shape (n_months * 1797,), dtype int64
        Month index ``0 .. n_months - 1``, rows grouped by month in order.

    Notes
    -----
    A permuted month is a pure column permutation of month 0, so a fully
    connected network can learn every month equally well, but the tasks
    interfere: fine-tuning on a new permutation overwrites what was learned
    on the previous ones. Rotations use :func:`scipy.ndimage.rotate` with
    ``reshape=False`` and linear interpolation, clipped back to [0, 1];
    successive rotated months are similar, so forgetting is milder.

    Examples
    --------
    >>> from sklearn_cf.datasets import load_digits_stream
    >>> X, y, months = load_digits_stream(n_months=3, random_state=0)
    >>> X.shape, X.dtype, y[:5].tolist(), months[[0, 1797, -1]].tolist()
    ((5391, 64), dtype('float32'), [0, 1, 2, 3, 4], [0, 1, 2])
    >>> X[0, :8].tolist()
    [0.0, 0.0, 0.3125, 0.8125, 0.5625, 0.0625, 0.0, 0.0]
    >>> Xr, _, _ = load_digits_stream(n_months=2, kind="rotated", max_angle=90)
    >>> Xr.shape, float(Xr.min()), float(Xr.max())
    ((3594, 64), 0.0, 1.0)
    """
    if isinstance(n_months, bool) or not isinstance(n_months, Integral):
        raise ValueError(f"n_months must be an integer, got {n_months!r}.")
    if n_months < 1:
        raise ValueError(f"n_months must be >= 1, got {n_months!r}.")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
    if (
        isinstance(max_angle, bool)
        or not isinstance(max_angle, Real)
        or not np.isfinite(max_angle)
    ):
        raise ValueError(f"max_angle must be a finite number, got {max_angle!r}.")
    n_months = int(n_months)

    digits = load_digits()
    base = (digits.data / 16.0).astype(np.float32)
    target = digits.target.astype(np.int64)
    n_samples, n_pixels = base.shape

    blocks = [base]
    if kind == "permuted":
        rng = check_random_state(random_state)
        for _ in range(1, n_months):
            blocks.append(base[:, rng.permutation(n_pixels)])
    else:
        from scipy.ndimage import rotate

        images = base.reshape(-1, 8, 8)
        for m in range(1, n_months):
            angle = float(max_angle) * m / (n_months - 1)
            rotated = rotate(
                images, angle, axes=(2, 1), reshape=False, order=1, mode="constant"
            )
            blocks.append(np.clip(rotated, 0.0, 1.0).reshape(n_samples, n_pixels))

    X = np.ascontiguousarray(np.vstack(blocks), dtype=np.float32)
    y = np.tile(target, n_months)
    months = np.repeat(np.arange(n_months, dtype=np.int64), n_samples)
    return X, y, months
