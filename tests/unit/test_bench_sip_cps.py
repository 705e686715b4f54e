"""bench.sip_cps `--rounds`: each (target, rate) is reported as the median of its rounds, clean only if every
round was, with the spread of the per-round engine / engine-base ratios."""

from __future__ import annotations

from bench.sip_cps import Step, merge_rounds, report, round_ratios


def step(target: str, rate: int, cpu_ms: float, *, failed: int = 0) -> Step:
    calls = rate * 4
    return Step(target=target, rate=rate, calls=calls, successful=calls - failed, failed=failed,
                achieved_cps=rate * 0.97, p50_ms=1.0, p99_ms=cpu_ms * 10, max_ms=cpu_ms * 20,
                uas_cpu_pct=cpu_ms * rate / 10, sipp_rc=1 if failed else 0, cpu_ms_per_call=cpu_ms)


ROUNDS = [
    step("engine", 400, 1.40), step("engine-base", 400, 1.50),
    step("engine", 400, 1.20), step("engine-base", 400, 1.60),
    step("engine", 400, 1.30), step("engine-base", 400, 1.30),
    step("engine", 600, 1.10), step("engine-base", 600, 1.20, failed=3),
]


def test_rounds_become_one_row_each_with_the_median_and_the_sums() -> None:
    merged = {(s.target, s.rate): s for s in merge_rounds(ROUNDS)}
    engine = merged["engine", 400]
    assert (engine.rounds, engine.cpu_ms_per_call, engine.calls, engine.max_ms) == (3, 1.30, 4800, 28.0)
    assert engine.clean
    assert not merged["engine-base", 600].clean  # one round with failed calls makes the row fail
    assert [(s.target, s.rate) for s in merge_rounds(ROUNDS)] == [
        ("engine", 400), ("engine-base", 400), ("engine", 600), ("engine-base", 600)]


def test_ratios_pair_the_rounds_in_order() -> None:
    assert [round(r, 3) for r in round_ratios(ROUNDS, "engine", "engine-base", 400)] == [0.933, 0.75, 1.0]


def test_the_report_names_the_rounds_and_the_spread_of_the_ratio() -> None:
    text = report(ROUNDS, [("engine", "this tree"), ("engine-base", "the tree before")], [], "python -m bench.sip_cps")
    assert "- rounds: 3 per rate, each row the median of its rounds (failed and calls summed)" in text
    assert "400 cps 1.30 / 1.50 ms = **0.87** (rounds 0.75-1.00)" in text
    assert "| engine-base | 600 | 2400 | 3 |" in text
