"""The standalone fuzz target (``bench/fuzz_decode.py``) works and holds on its seeds."""

from __future__ import annotations

from bench import fuzz_decode


def test_fuzz_target_accepts_its_seeds_and_their_truncations() -> None:
    for seed in fuzz_decode.seeds():
        fuzz_decode.test_one_input(seed)
        for cut in range(0, len(seed), max(1, len(seed) // 50)):
            fuzz_decode.test_one_input(seed[:cut])


def test_fuzz_target_runs_under_hypothesis() -> None:
    fuzz_decode.run_hypothesis(200, derandomize=True)
