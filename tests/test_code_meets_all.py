"""Every kind meets every kind: code programs against LLM programs (over real HTTP on 127.0.0.1) and
built-in bots, in one tournament."""

from __future__ import annotations

import asyncio
import json

from arena.engine.grid import TournamentConfig
from arena.engine.records import SIMULATED
from arena.library.programs import BuiltinProgram, CodeProgram, LLMProgram
from arena.llm.prompts import fence
from arena.llm.registry import BUILTIN
from arena.llm.service import LLMService
from arena.runner.tournament import TournamentRunner
from tests.support.fake_llm import FakeLLMServer, action_responder
from llm_policies import mirror_policy

FAIR_LLM = LLMProgram(id="fair-llm", kind="llm", model="custom/fake-8b", temperature=0.7,
                      system_prompt="You are fair: mirror what the simulated opponent did.")
SPY = CodeProgram.model_validate({"id": "spy", "kind": "code", "source": (
    "def decide(ctx):\n"
    "    print(ctx['opponent_kind'], ctx['opponent_id'])\n"
    "    print(ctx['opponent'])\n"
    "    if ctx['opponent_action'] is None:\n"
    "        return ctx['game']['default_action']\n"
    "    return ctx['opponent_action']\n")})
FAIRBOT = BuiltinProgram(id="fairbot", kind="builtin", strategy="fairbot")


def test_code_llm_and_builtin_programs_play_each_other(store, games):
    registry = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update=dict(
        base_url=None, backoff_initial=0.01, backoff_max=0.05, timeout=2.0, max_attempts=3))}
    programs = [FAIR_LLM, SPY, FAIRBOT]
    config = TournamentConfig(programs=[p.id for p in programs], games=["prisoners_dilemma"], epsilons=[0.5],
                              max_depths=[3], trials=2, seed=4, concurrency=4)
    with FakeLLMServer(action_responder(mirror_policy)) as srv:
        registry["custom"] = registry["custom"].model_copy(update={"base_url": srv.base_url})
        backend = LLMService(store, registry, {"LLM_API_KEY": "test-key-not-secret"})
        runner = TournamentRunner.create(store, config, {p.id: p for p in programs}, games, backend=backend)
        done = asyncio.run(runner.run())
    assert (done.status, done.done, done.counts) == ("finished", 18, {"ok": 18})
    # the LLM is shown the code's source, fenced as data, introduced as Python
    calls = [c for t in store.trial_rows(runner.tournament_id) if "spy" in (t["row_program"], t["col_program"])
             for c in store.calls(trial_id=t["id"])]
    vs_code = [c["messages"][1]["content"] for c in calls if fence(SPY.code) in c["messages"][1]["content"]]
    assert vs_code and all("a Python program whose function decide(ctx) chooses its action" in m for m in vs_code)
    # the code program saw the LLM's model, temperature and prompt, and the bot's YAML
    outputs = {json.loads(n["code"])["output"] for n in store.query("SELECT code FROM nodes WHERE program='spy'")}
    assert f"llm fair-llm\n{FAIR_LLM.source()}\n" in outputs
    assert "builtin fairbot\nkind: builtin\nstrategy: fairbot\n\n" in outputs
    # every pair of simulating programs cooperates (each copies the other, grounded they cooperate)
    assert {t["cooperative"] for t in store.trial_rows(runner.tournament_id)} == {1}
    modes = {n["mode"] for n in store.query("SELECT mode FROM nodes WHERE program='spy'")}
    assert SIMULATED in modes
