"""Curve and metric probes never crash and always explain themselves, whatever a log holds."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ehrdebug.findings import Severity
from ehrdebug.recipe_ids import ALL
from ehrdebug.runstore.history import History
from probes.curves import run_curve_probes
from probes.metrics import loss_vs_accuracy

values = st.one_of(
    st.floats(min_value=-1e4, max_value=1e6, allow_nan=False),
    st.sampled_from([0.0, float("nan"), float("inf"), float("-inf"), 1e-9]),
)
entries = st.lists(
    st.tuples(st.integers(min_value=0, max_value=60), st.sampled_from(["loss", "eval_loss", "eval_b_loss", "eval_accuracy"]),
              values),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(entries)
def test_probes_survive_any_log(log: list[tuple[int, str, float]]) -> None:
    h = History()
    for step, key, value in log:  # unsorted, repeated steps, NaN/inf, zero and negative losses
        h.add_log(step, {key: value})
    findings = run_curve_probes(h) + loss_vs_accuracy(h)
    assert findings
    for f in findings:
        assert isinstance(f.severity, Severity) and f.title
        assert set(f.recipes) <= set(ALL)
        json.dumps(f.to_dict())
