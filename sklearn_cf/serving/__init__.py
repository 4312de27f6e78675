"""Using a trained model outside the monthly job.

* :func:`predict_file`: class probabilities and labels for every row of a
  CSV or Parquet file, read and written chunk by chunk (``sklearn-cf
  predict``).
* :func:`export_onnx`: the network as an ONNX graph that outputs the class
  probabilities, checked against ``predict_proba`` with onnxruntime
  (``sklearn-cf export``; needs ``pip install "sklearn-cf[onnx]"``).

docs/serving.md says how a serving system loads each.
"""

from ._onnx import SCHEMA_SUFFIX, export_onnx
from ._predict_file import DEFAULT_CHUNK_ROWS, predict_file

__all__ = ["DEFAULT_CHUNK_ROWS", "SCHEMA_SUFFIX", "export_onnx", "predict_file"]
