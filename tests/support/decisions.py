"""One LLM decision through a real LLMService, its endpoint the loopback server (tests/support/fake_llm.py)."""

from __future__ import annotations

import asyncio

from arena.engine.grid import TournamentConfig
from arena.engine.records import Node, TrialSpec


def one_decision(make_service, srv, program, game, replies, fallback):
    """`program` (an LLM program) grounds once in the prisoner's dilemma `game` against itself: the server
    answers `replies` in turn, then `fallback`. The service is `make_service()`, made inside the decision's
    event loop. Returns (the move, the service's stats)."""
    async def go():
        svc = make_service()
        cfg = TournamentConfig(programs=[program.id], games=["prisoners_dilemma"], epsilons=[1.0], max_depths=[0],
                               trials=1)
        await svc.prepare([program], cfg)
        try:
            spec = TrialSpec(0, "prisoners_dilemma", program.id, program.id, 1.0, 0, None, 0, 5)
            node = Node(0, None, "row", 0, program.id, 0.5)
            return await svc.decide(program, game, program, spec, node, "ground", None), svc.stats()
        finally:
            await svc.aclose()

    from tests.support.fake_llm import Script

    srv.responder = Script(replies, fallback=fallback)
    return asyncio.run(go())
