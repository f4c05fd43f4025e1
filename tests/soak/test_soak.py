"""The convergence soak, short and with a fixed seed (``make soak`` runs it longer, with a random seed).

``SOAK_SEED`` replays a seed (``random``: a new one), ``SOAK_SECONDS`` sets how long the users edit, ``SOAK_SIZE``
how many records of each kind each system starts with, ``SOAK_WEIGHTS`` changes how often users do what
(``new_person_without_address=2,switch_type=0``; names in :data:`tests.soak.users.WEIGHTS`), ``SOAK_PAGE_SIZE``
the listings' page size (20; 0: the hooks' own), and ``SOAK_STRICT=1`` fails on edits lost in a write race too
(see :data:`tests.soak.check.RACE`).
"""
from __future__ import annotations

import os
import random

import pytest

from tests.soak.soak import run_soak

FIXED_SEED = 20261129
SHORT_SECONDS = 30


def soak_seed() -> int:
    wanted = os.environ.get("SOAK_SEED", "").strip()
    if wanted.lower() == "random":
        return random.SystemRandom().randrange(1, 2**31)
    return int(wanted) if wanted else FIXED_SEED


@pytest.mark.integration
def test_users_editing_both_systems_during_runs_under_faults_lose_and_duplicate_nothing(stack, capsys):
    seed = soak_seed()
    seconds = float(os.environ.get("SOAK_SECONDS") or SHORT_SECONDS)

    def log(line: str) -> None:
        """The seed and the counts reach the terminal even with output captured (``make soak``)."""
        with capsys.disabled():
            print(line, flush=True)

    weights = {k.strip(): float(v) for k, v in (kv.split("=") for kv in os.environ.get("SOAK_WEIGHTS", "").split(",")
                                                if kv.strip())}
    page_size = int(os.environ.get("SOAK_PAGE_SIZE") or 20)  # 0: the hooks' own page sizes (5,000 and 100)
    result = run_soak(stack, seed, seconds, size=int(os.environ.get("SOAK_SIZE") or 25), page_size=page_size or None,
                      weights=weights, log=log)
    assert result.users.edits, f"seed {seed}: the users made no edit, so the soak proved nothing"
    problems = result.verdict.problems + (result.verdict.races if os.environ.get("SOAK_STRICT") == "1" else [])
    assert not problems, (
        f"seed {seed} (replay: SOAK_SEED={seed} SOAK_SECONDS={seconds:g} make soak)\n{result.summary()}\n  "
        + "\n  ".join(problems[:40]))
