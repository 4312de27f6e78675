"""Preparing raw table rows for the network: :class:`TableEncoder`.

The encoder is part of the model (``ContinualClassifier(preprocessor=...)``):
it is fitted on the first month's training rows, stored in every checkpoint
as plain data, and applied to every row the model trains on or predicts, so
that a loaded model takes the raw rows of a table.
"""

from ._table_encoder import ConstantFeatureWarning, TableEncoder, UnseenCategoryWarning

__all__ = ["ConstantFeatureWarning", "TableEncoder", "UnseenCategoryWarning"]
