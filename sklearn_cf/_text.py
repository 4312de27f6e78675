"""Short texts shared by the command line and the monthly update's summaries."""

__all__ = ["clip", "newest"]


def newest(months, width=60):
    """The months as text; when too long, how many and the newest ones that
    fit in ``width`` (always the newest): ``"32 months: ..., 2024-11, 2024-12"``.

    Examples
    --------
    >>> from sklearn_cf._text import newest
    >>> newest([1, 2, 3])
    '1, 2, 3'
    >>> newest([f"2024-{m:02d}" for m in range(1, 13)], 32)
    '12 months: ..., 2024-11, 2024-12'
    """
    text = ", ".join(map(str, months)) or "none"
    if len(text) <= width:
        return text
    head = f"{len(months)} months: ..., "
    tail = []
    for month in reversed(months):
        candidate = [str(month), *tail]
        if tail and len(head) + len(", ".join(candidate)) > width:
            break
        tail = candidate
    return head + ", ".join(tail)


def clip(text, width):
    """``text``, cut to ``width`` characters with ``...`` when longer."""
    return text if len(text) <= width else text[: width - 3] + "..."
