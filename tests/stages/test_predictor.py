"""The per-request model call (stages/predictor.py) and the request batching of the model server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from stages.predictor import SMALL_BATCH_LIMIT, Predictor
from stages.serve import RequestBatcher
from tests.stages.conftest import Trained


@pytest.mark.slow
def test_padded_small_batches_and_large_batches_answer_like_the_model(random_pairs: Trained) -> None:
    from stages.model_dir import load_model_dir

    _, model = load_model_dir(random_pairs.model)
    predictor = Predictor(model, 2)
    predictor.warm_up()
    assert predictor.xla, "the sum-of-two network compiles with XLA"
    rng = np.random.default_rng(11)
    for n in (1, 2, 3, 5, 8, 31, SMALL_BATCH_LIMIT, SMALL_BATCH_LIMIT + 1, 500):
        rows = rng.uniform(0, 1000, size=(n, 2)).astype(np.float32)
        answers = predictor(rows)
        assert answers.shape == (n, 1) and answers.dtype == np.float32
        # zero rows padded up to the next compiled size never change (or leak into) an answer
        assert np.allclose(answers, model(rows, training=False).numpy(), rtol=1e-5, atol=1e-3), n


def run_together(batcher: RequestBatcher, requests: list[np.ndarray]) -> list[object]:
    async def main() -> list[object]:
        return await asyncio.gather(*(batcher(x) for x in requests), return_exceptions=True)

    return asyncio.run(main())


def test_requests_queued_together_share_model_calls_and_get_their_own_rows() -> None:
    calls: list[int] = []

    def double(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return x * 2

    batcher = RequestBatcher(double, rows_per_call=8)
    requests = [np.full((n, 2), i, np.float32) for i, n in enumerate([1, 3, 2, 6, 1, 20, 1])]
    answers = run_together(batcher, requests)
    for x, answer in zip(requests, answers, strict=True):
        assert isinstance(answer, np.ndarray) and np.array_equal(answer, x * 2)
    # greedy groups of at most 8 rows; the 20-row request is called alone
    assert calls == [6, 7, 20, 1]


def test_a_failed_call_fails_only_the_requests_in_it() -> None:
    def refuse_big(x: np.ndarray) -> np.ndarray:
        if len(x) > 4:
            raise ValueError("too many rows")
        return x + 1

    batcher = RequestBatcher(refuse_big, rows_per_call=4)
    small, big, after = np.ones((2, 2)), np.ones((9, 2)), np.zeros((1, 2))
    answers = run_together(batcher, [small, big, after])
    assert np.array_equal(answers[0], small + 1)
    assert isinstance(answers[1], ValueError)
    assert np.array_equal(answers[2], after + 1)
    # and the batcher keeps working afterwards
    assert np.array_equal(run_together(batcher, [after])[0], after + 1)


@pytest.mark.slow
def test_a_model_xla_cannot_compile_is_served_by_the_graph_function() -> None:
    """A codeset's model may hold an op without an XLA kernel (here a numpy_function): warm_up
    keeps the traced graph function for every batch size instead of failing the server."""
    import keras
    import tensorflow as tf

    def doubled(x: object) -> object:
        y = tf.numpy_function(lambda a: (a * 2).astype(np.float32), [x], tf.float32)
        y.set_shape(x.shape)  # type: ignore[attr-defined]
        return y

    inputs = keras.Input((2,))
    model = keras.Model(
        inputs, keras.layers.Dense(1, kernel_initializer="ones")(keras.layers.Lambda(doubled)(inputs))
    )
    predictor = Predictor(model, 2)
    predictor.warm_up()
    assert not predictor.xla
    rows = np.array([[1.0, 2.0], [300.0, 400.0], [0.5, 0.25]], np.float32)
    assert np.allclose(predictor(rows), (rows * 2).sum(axis=1, keepdims=True))
