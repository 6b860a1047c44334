"""The operator's background loops: a round every interval, a failed round logged and survived,
cancellation ends the loop quietly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from controller.operator.periodic import every

LOG = logging.getLogger("sluice.test.periodic")


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout=5)


async def test_rounds_repeat_and_a_failing_round_does_not_end_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[int] = []

    async def flaky() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise RuntimeError("API unreachable")

    with caplog.at_level(logging.WARNING, logger=LOG.name):
        loop = asyncio.create_task(every(0.01, flaky, LOG, "test round"))
        await until(lambda: len(rounds) >= 4)  # rounds go on after the failed second one
        loop.cancel()
        await loop  # cancelling ends it without raising
    assert not loop.cancelled()
    assert [r.getMessage() for r in caplog.records] == ["test round failed: API unreachable"]


async def test_a_plain_function_is_a_round_too() -> None:
    calls: list[None] = []
    loop = asyncio.create_task(every(0.01, lambda: calls.append(None), LOG, "plain round"))
    await until(lambda: len(calls) >= 2)
    loop.cancel()
    await loop
