"""``ehrdebug demo --t5``: seed 002's T5 diagnosis story on the shipped vignettes, on a CPU (its own file so
the two long stories run on different pytest-xdist workers)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_t5_prefix_and_decoding_fixes_beat_the_broken_run(tmp_path):
    """Seed 002: the doctor reads the failures off the broken run; after its fixes plus the prefix and the
    label-constrained decoding, held-out accuracy beats the broken run and the majority-answer baseline."""
    from recipes.demo import run_t5_story, t5_markdown

    t5 = run_t5_story(tmp_path / "t5", log=lambda _: None)
    seen = {(f["probe"], f["title"]) for f in t5["findings_before"]}
    assert any(p == "generation.degeneration" and "same output for every input" in t for p, t in seen), seen
    assert any(p == "data.collator" and "pad id" in t for p, t in seen), seen
    assert {"add-task-prefix", "constrain-to-labels", "mask-label-padding"} <= set(t5["fixes"])
    before, after = t5["before"]["accuracy"], t5["after"]["accuracy"]
    assert t5["before"]["n_held_out"] == t5["after"]["n_held_out"] == 37  # every held-out vignette
    assert after > before and after > t5["majority_baseline"], (before, after, t5["majority_baseline"])
    assert not any("same output for every input" in f["title"] for f in t5["findings_after"])
    assert f"{before:.1%} → {after:.1%}" in t5_markdown(t5)


def test_t5_retrain_takes_the_fixed_configs_schedule() -> None:
    from recipes.demo import T5_BROKEN, T5_FIXED, T5_SCHEDULE, _load, t5_schedule

    fixed, broken = _load(T5_FIXED, []), _load(T5_BROKEN, [])
    retrain = _load(T5_BROKEN, t5_schedule())
    assert any(broken[k] != fixed[k] for k in T5_SCHEDULE)  # the overrides really change something
    assert all(retrain[k] == fixed[k] for k in T5_SCHEDULE)
