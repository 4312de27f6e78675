"""Cross-validation for continual (monthly) training."""

from ._split import SequentialSplit

__all__ = ["SequentialSplit"]
