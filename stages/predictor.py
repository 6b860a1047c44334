"""Calling a trained Keras model per request: `model(x, training=False)` without `model.predict`
(which builds a tf.data pipeline on every call: tens of milliseconds).

Small batches, the model server's case, go through XLA-compiled functions of fixed shapes
[1, F], [2, F], [4, F] ... [SMALL_BATCH_LIMIT, F]: a request is padded with zero rows up to the
next of these sizes and the padding is cut from the answer. On a small network TensorFlow's graph
executor spends ~150 us per call on dispatch, the XLA executable ~55 us (measured on the
sum-of-two model), and fixed shapes mean XLA compiles each size once, at `warm_up`, never in the
middle of a request. Rows of a batch do not interact in inference mode (dense, normalisation,
dropout off), so padding cannot change an answer. Larger batches (evaluation) and models XLA cannot
compile use one traced graph function of shape [None, F].
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SMALL_BATCH_LIMIT = 64


class Predictor:
    """[N, F] float32 rows -> [N, T] float32 answers of a Keras model."""

    def __init__(self, model: Any, n_features: int) -> None:
        import tensorflow as tf

        self._tf = tf
        self.n_features = n_features
        self._model = model

        @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)], autograph=False)
        def graph(x: Any) -> Any:
            return model(x, training=False)

        # Calling the concrete function skips tf.function's per-call signature matching (~0.1 ms).
        self._graph = graph.get_concrete_function()
        self._compiled: dict[int, Any] = {}
        self.xla = False  # True once warm_up has compiled every small batch size

    def warm_up(self) -> None:
        """Compile the small-batch functions (~0.1 s each); keep the graph function for every size
        if XLA cannot compile this model."""
        tf = self._tf
        jitted = tf.function(lambda x: self._model(x, training=False), jit_compile=True, autograph=False)
        compiled: dict[int, Any] = {}
        size = 1
        try:
            while size <= SMALL_BATCH_LIMIT:
                function = jitted.get_concrete_function(tf.TensorSpec([size, self.n_features], tf.float32))
                function(tf.zeros([size, self.n_features], tf.float32))
                compiled[size] = function
                size *= 2
        except Exception as exc:  # an op without an XLA kernel (a custom layer): the graph path serves all
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            logger.warning("model does not compile with XLA (%s); calling its graph function", first_line)
            return
        self._compiled = compiled
        self.xla = True

    def __call__(self, x: Any) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float32)
        n = len(rows)
        if self._compiled and 0 < n <= SMALL_BATCH_LIMIT:
            size = 1 << (n - 1).bit_length()
            if size != n:
                rows = np.concatenate([rows, np.zeros((size - n, self.n_features), np.float32)])
            return self._compiled[size](self._tf.constant(rows)).numpy()[:n]
        return self._graph(self._tf.constant(rows)).numpy()
