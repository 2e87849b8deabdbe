"""llm/gate.py: the cap on calls in flight — FIFO hand-over, cancellation, never over capacity."""

from __future__ import annotations

import asyncio

import pytest

from arena.llm.gate import Gate


def test_at_most_slots_hold_it_and_waiters_enter_in_arrival_order():
    async def main():
        gate, held, order, peak = Gate(2), 0, [], 0
        release = asyncio.Event()

        async def call(i):
            nonlocal held, peak
            async with gate:
                held += 1
                peak = max(peak, held)
                order.append(i)
                await release.wait()
                held -= 1

        tasks = [asyncio.create_task(call(i)) for i in range(6)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert (order, gate.in_use, gate.waiting) == ([0, 1], 2, 4)
        release.set()
        await asyncio.gather(*tasks)
        assert (order, peak, gate.in_use, gate.waiting) == ([0, 1, 2, 3, 4, 5], 2, 0, 0)

    asyncio.run(main())


def test_a_waiter_cancelled_while_waiting_or_just_after_its_turn_loses_no_slot():
    async def main():
        gate = Gate(1)
        await gate.acquire()  # held by "us"
        waiting = asyncio.create_task(gate.acquire())
        handed = asyncio.create_task(gate.acquire())
        last = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        waiting.cancel()  # cancelled while queued: stays in the queue, skipped
        await asyncio.sleep(0)
        gate.release()  # our slot goes to `handed` ...
        handed.cancel()  # ... which is cancelled before it runs: it passes the slot on to `last`
        for t in (waiting, handed):
            with pytest.raises(asyncio.CancelledError):
                await t
        await last
        assert (gate.in_use, gate.waiting) == (1, 0)
        gate.release()
        assert gate.in_use == 0
        await gate.acquire()  # free again: no wait
        assert gate.in_use == 1

    asyncio.run(main())


def test_a_release_without_an_acquire_is_a_bug_said_loudly():
    gate = Gate(1)
    with pytest.raises(RuntimeError):
        gate.release()
    with pytest.raises(ValueError):
        Gate(0)
