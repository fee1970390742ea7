"""The compact reader (``runstore.compact``, what ``fastload.load`` tries first) gives exactly the History and
the other events the line reader gives (``Run.history()``, ``read_events``), on logs written by the real
RunLogger, HF logs, resumed runs, torn lines and lines with odd or missing fields; and it really is the
path taken on the writer's own logs (not a silent fall back to the slower readers)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ehrdebug.findings import Finding, Severity
from ehrdebug.runstore import RunLogger, open_run
from ehrdebug.runstore.compact import PAD, read_compact
from ehrdebug.runstore.events import encode_event
from ehrdebug.runstore.fastload import load
from ehrdebug.runstore.history import History, Series
from ehrdebug.runstore.reader import Run

OTHER = ("sample", "alert", "finding", "checkpoint", "status")


def _exact(a: list[Any], b: list[Any]) -> bool:
    """Element-wise equal, NaN equal to NaN (float lists from different readers)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y or (x is None) != (y is None):
            return False
    return True


def _same_series(fast: Series, slow: Series) -> None:
    assert fast.name == slow.name
    assert fast.steps == slow.steps
    assert _exact(fast.values, slow.values), (fast.name, fast.values[:5], slow.values[:5])
    assert _exact(fast.epochs, slow.epochs), (fast.name, fast.epochs[:5], slow.epochs[:5])


def _same_history(fast: History, slow: History, ordered: bool = True) -> None:
    _same_series(fast.train, slow.train)
    if ordered:  # the compact reader creates series in the order the line reader does
        assert list(fast.evals) == list(slow.evals) and list(fast.metrics) == list(slow.metrics)
    assert set(fast.evals) == set(slow.evals) and set(fast.metrics) == set(slow.metrics)
    for key in slow.evals:
        _same_series(fast.evals[key], slow.evals[key])
    for key in slow.metrics:
        _same_series(fast.metrics[key], slow.metrics[key])
    assert fast.meta == slow.meta


def _compare(run_dir: Path, compact: bool = True) -> tuple[History, list[dict[str, Any]]]:
    """The fast read against the line reader; ``compact``: the compact reader must have read it itself."""
    run = open_run(run_dir)
    slow = Run.history(run)  # the line reader, whatever the log's size
    slow_other = run.events(kinds=OTHER)
    path = run_dir / "events.jsonl"
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    direct = read_compact(bytearray(data[:end]) + bytearray(PAD), end, dict(slow.meta))
    assert (direct is not None) == compact
    got = load(path)
    _same_history(got.history, slow, ordered=compact)
    assert got.other == slow_other
    assert got.end == end
    return got.history, got.other


def _logger_run(path: Path) -> Path:
    """A run as the recipes write it, with everything the log can hold."""
    logger = RunLogger(path, {"max_steps": 400}, architecture="BartForConditionalGeneration")
    for step in range(1, 401):
        loss = 2.3 * math.exp(-step / 80) + 1e-4 * (step % 7)
        if step == 123:
            loss = float("nan")  # written as the string "nan"
        if step == 124:
            loss = float("inf")
        metrics: dict[str, Any] = {"loss": loss, "lr": 1e-4 * (1 - step / 401), "epoch": round(step / 80, 4)}
        if step % 3 == 0:
            metrics["grad_norm"] = 0.5 + step / 1000
            metrics["samples_per_second"] = 64.0 + step % 5
        logger.log_train(step, **metrics)
        if step % 50 == 0:
            logger.log_eval(
                step, {"eval_loss": loss + 0.1, "eval_val_loss": loss + 0.2, "eval_accuracy": 0.5}
            )
            logger.log_sample(step, prompt="56 ASIAN M <demo>", output='56 ASIAN M, "kind":"train" x')
            finding = Finding(
                "curves.overfitting", Severity.WARN, "val loss rose", evidence={"kind": "train", "x": 1}
            )
            logger.log_findings(step, [finding])
        if step % 100 == 0:
            logger.log("checkpoint", step, path=f"checkpoints/step-{step}")
    logger.finish("finished")
    return path


def test_a_runlogger_run_is_read_exactly(tmp_path: Path) -> None:
    history, other = _compare(_logger_run(tmp_path / "run"))
    assert (
        len(history.train) == 400
        and math.isnan(history.train.values[122])
        and history.train.values[123] == math.inf
    )
    assert set(history.evals) == {"eval_loss", "eval_val_loss"} and "grad_norm" in history.metrics
    assert [e["kind"] for e in other].count("sample") == 8 and other[-1]["state"] == "finished"


def test_a_resumed_run_keeps_the_last_write_of_each_step(tmp_path: Path) -> None:
    run = tmp_path / "resumed"
    run.mkdir()
    lines = [encode_event("status", 0, {"state": "started"}, t=1.0)]
    lines += [
        encode_event("train", s, {"loss": 1.0 / s, "lr": 0.1, "epoch": s / 10}, t=1.0 + s)
        for s in range(1, 301)
    ]
    lines.append(encode_event("status", 200, {"state": "resumed", "resumed_from_step": 200}, t=400.0))
    lines += [
        encode_event("train", s, {"loss": 2.0 / s, "lr": 0.2, "epoch": s / 10}, t=400.0 + s)
        for s in range(201, 351)
    ]
    lines += [encode_event("eval", s, {"eval_loss": 3.0 / s}, t=500.0) for s in (100, 200, 300, 200, 350)]
    (run / "events.jsonl").write_text("".join(lines))
    history, _ = _compare(run)
    assert history.train.steps == list(range(1, 351))
    assert history.train.values[249] == 2.0 / 250 and history.train.values[99] == 1.0 / 100
    assert history.evals["eval_loss"].steps == [100, 200, 300, 350]


def test_a_torn_last_line_is_left_for_the_tail(tmp_path: Path) -> None:
    run = _logger_run(tmp_path / "torn")
    with open(run / "events.jsonl", "a") as fh:
        fh.write('{"t":9.5,"step":401,"kind":"train","loss":0.1,"lr":0.')
    history, _ = _compare(run)
    assert history.train.steps[-1] == 400


def test_an_hf_trainer_log_is_read_exactly(tmp_path: Path) -> None:
    """What EhrDebugCallback writes from HF's log_history: HF key names, eval runtimes, the end summary."""
    run = tmp_path / "hf"
    logger = RunLogger(run, {"max_steps": 300})
    for step in range(10, 301, 10):
        entry = {
            "loss": 2.0 - step / 400,
            "grad_norm": 3.5 - step / 300,
            "learning_rate": 5e-05 * (1 - step / 300),
        }
        entry.update(epoch=step / 100, lr=entry["learning_rate"])
        logger.log_train(step, **entry)
        if step % 100 == 0:
            logger.log_eval(
                step,
                {
                    "eval_loss": 1.9 - step / 500,
                    "eval_runtime": 1.25,
                    "eval_samples_per_second": 80.1,
                    "eval_steps_per_second": 10.0,
                    "epoch": step / 100,
                },
            )
    logger.log_train(
        300,
        train_runtime=61.5,
        train_samples_per_second=39.0,
        train_steps_per_second=4.9,
        total_flos=123456789,
        train_loss=1.61,
        epoch=3.0,
    )
    logger.finish("finished", global_step=300)
    history, _ = _compare(run)
    assert history.meta["total_flos"] == 123456789 and history.meta["train_loss"] == 1.61
    assert history.metrics["learning_rate"].steps[-1] == 300 and "eval_runtime" in history.metrics


ODD = [
    '{"t":5.0,"step":7,"kind":"train","loss":"nan","lr":0.1,"epoch":0.07}',  # NaN as the writer writes it
    '{"t":5.0,"step":8,"kind":"train","loss":null,"lr":0.1,"epoch":0.08}',
    '{"t":5.0,"step":9,"kind":"train","loss":true,"lr":0.1,"epoch":0.09}',
    '{"t":5.0,"step":10,"kind":"train","loss":"0.5","lr":0.1,"epoch":0.1}',  # a number as text: skipped
    '{"t":5.0,"step":11,"kind":"train","loss":[1,2],"lr":0.1,"epoch":0.11}',
    '{"t":5.0,"step":12,"kind":"train","loss":{"a":1},"lr":0.1,"epoch":0.12}',
    '{"t":5.0,"step":"13","kind":"train","loss":0.5,"lr":0.1,"epoch":0.13}',  # a step that is text: skipped
    '{"t":5.0,"step":14.0,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.14}',  # a whole float step counts
    '{"t":5.0,"step":true,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.15}',
    '{"t":5.0,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.16}',  # no step: step 0
    '{"t":5.0,"step":17,"kind":"train","loss":0.5,"lr":0.1}',  # no epoch
    '{"t":5.0,"step":18,"kind":"train","loss":0.5,"lr":0.1,"epoch":"one"}',
    '{"t":5.0,"step":19,"kind":"train","lr":0.1,"loss":0.25,"epoch":0.19}',  # keys in another order
    '{"t":5.0,"step":20,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.2,"loss":0.75}',  # a key twice: last wins
    '{"t": 5.0, "step": 21, "kind": "train", "loss": 0.5, "lr": 0.1, "epoch": 0.21}',  # json.dumps spacing
    '{"step":22,"t":5.0,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.22}',
    '{"t":"noon","step":23,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.23}',
    '{"t":5.0,"step":24,"kind":"train","loss":1e400,"lr":-0.0,"epoch":1E2}',
    '{"t":5.0,"step":25,"kind":"train","loss":NaN,"lr":Infinity,"epoch":-Infinity}',
    '{"t":5.0,"step":26,"kind":"train","loss":012,"lr":0.1,"epoch":0.26}',  # not JSON: skipped
    '{"t":5.0,"step":27,"kind":"train","loss":.5,"lr":0.1,"epoch":0.27}',
    '{"t":5.0,"step":28,"kind":"train","loss":+1,"lr":0.1,"epoch":0.28}',
    '{"t":5.0,"step":29,"kind":"train","loss":nan,"lr":0.1,"epoch":0.29}',
    '{"t":5.0,"step":30,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.3} ',  # trailing space
    '  {"t":5.0,"step":31,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.31}',
    '{"t":5.0,"step":32,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.32',  # broken mid-file
    '{"t":5.0,"step":33,"kind":"train","loss":0.5,"train_loss_step":0.6,"lr":0.1,"epoch":0.33}',
    '{"t":5.0,"step":34,"kind":"train","loss":0.5,"time":"now","split":"a:b","lr":0.1,"epoch":0.34}',
    '{"t":5.0,"step":35,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.35,"train_runtime":9}',
    '{"t":5.0,"step":36,"kind":"train","caf\\u00e9":0.5,"lr":0.1,"epoch":0.36}',
    '{"t":5.0,"step":37,"kind":"train","café":0.5,"lr":0.1,"epoch":0.37}',
    '{"t":5.0,"step":38,"kind":"finding","probe":"p","severity":"info","title":"t","loss":9.0,'
    '"evidence":{"kind":"train"}}',  # another kind with a train marker: the line reader logs its numbers
    '{"t":5.0,"step":39,"kind":"eval","eval_loss":0.4,"val_loss":0.41,"validation_loss":0.42,"eval_x_loss":0.43}',
    '{"t":5.0,"step":40,"kind":"eval","eval_loss":0.4,"epoch":0.4}',
    '{"t":5.0,"step":-3,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.0}',
    '{"t":5.0,"step":41,"kind":"train","loss":-12345678901234567890,"lr":0.1,"epoch":0.41}',
    '{"t":5.0,"step":42,"kind":"train","loss":0.30000000000000004,"lr":123456789.123,"epoch":0.42}',
    '{"t":5.0,"step":43,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.43,"nested":{"k":[1,{"kind":"eval"}]}}',
    '{"t":5.0,"step":44,"kind":"status","state":"crashed"}',
    '["not", "an", "object"]',
    '{"t":5.0,"step":45,"kind":"sample","prompt":"x","output":"y"}',
    '{"t":5.0,"step":46,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.46}\x00',
    "",
    "   ",
]


def _odd_run(path: Path, odd: list[str], repeat: int = 3) -> Path:
    """A writer's log with the odd lines among ordinary ones (so the ordinary shape is the template)."""
    path.mkdir()
    lines = [encode_event("status", 0, {"state": "started"}, t=1.0).rstrip("\n")]
    for i in range(repeat):
        for s in range(1, 60):
            lines.append(
                encode_event(
                    "train", 1000 + s + 100 * i, {"loss": 1.0 / s, "lr": 0.1, "epoch": s / 100}, t=2.0
                ).rstrip()
            )
        lines += odd
    (path / "events.jsonl").write_bytes(("\n".join(lines) + "\n").encode() + b'{"t":1,"step":\xff\xfe\n')
    return path


def test_odd_lines_are_read_as_the_line_reader_reads_them(tmp_path: Path) -> None:
    history, other = _compare(_odd_run(tmp_path / "odd", ODD))
    train = dict(zip(history.train.steps, history.train.values, strict=True))
    assert math.isnan(train[7]) and 8 not in train and 10 not in train and 13 not in train
    assert train[14] == 0.5 and train[0] == 0.5 and train[19] == 0.25 and train[20] == 0.75
    assert 26 not in train and 27 not in train and 29 not in train and 32 not in train
    assert train[33] == 0.6 and train[38] == 9.0 and train[24] == math.inf and train[-3] == 0.5
    assert history.meta["train_runtime"] == 9 and "café" in history.metrics
    assert set(history.evals) == {"eval_loss", "val_loss", "validation_loss", "eval_x_loss"}
    assert [e["kind"] for e in other].count("status") == 4  # started + 3 crashed


@pytest.mark.parametrize("line", [x for x in ODD if x.strip()])
def test_each_odd_line_alone_among_ordinary_ones(tmp_path: Path, line: str) -> None:
    """One odd line (the first of its group, so it is offered as a shape first) among writer lines."""
    run = tmp_path / "one"
    run.mkdir()
    lines = [line] + [
        encode_event("train", s, {"loss": 1.0 / s, "lr": 0.1, "epoch": s / 100}, t=2.0) for s in range(1, 40)
    ]
    (run / "events.jsonl").write_text(lines[0] + "\n" + "".join(lines[1:]))
    run_obj = open_run(run)
    slow = Run.history(run_obj)
    got = load(run / "events.jsonl")
    _same_history(got.history, slow, ordered=False)
    assert got.other == run_obj.events(kinds=OTHER)


def test_a_step_beyond_int64_goes_to_the_line_reader(tmp_path: Path) -> None:
    huge = '{"t":5.0,"step":99999999999999999999999,"kind":"train","loss":0.5,"lr":0.1,"epoch":0.0}'
    run = _odd_run(tmp_path / "huge", [huge])
    data = (run / "events.jsonl").read_bytes()
    assert read_compact(bytearray(data) + bytearray(PAD), len(data), {}) is None
    with pytest.raises(ValueError):
        load(run / "events.jsonl")  # pyarrow refuses it too: callers fall back to the line reader
    assert open_run(run).history().train.steps[-1] == 99999999999999999999999


def test_logs_it_does_not_recognise_go_to_the_other_readers(tmp_path: Path, monkeypatch: Any) -> None:
    """Spaced JSON (another tool's writer) and carriage returns: the compact reader declines, the pyarrow
    reader (or the line reader) reads them, with the same result."""
    from ehrdebug.runstore import compact

    monkeypatch.setattr(compact, "MAX_REST", 10)  # as for a log of a million such lines
    spaced = tmp_path / "spaced"
    spaced.mkdir()
    events = [{"t": 1.0, "step": s, "kind": "train", "loss": 1.0 / s, "epoch": s / 10} for s in range(1, 200)]
    (spaced / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    _compare(spaced, compact=False)
    crlf = tmp_path / "crlf"
    crlf.mkdir()
    text = "".join(
        encode_event("train", s, {"loss": 1.0 / s}, t=1.0).replace("\n", "\r\n") for s in range(1, 50)
    )
    (crlf / "events.jsonl").write_bytes(text.encode())
    assert read_compact(bytearray(text.encode()) + bytearray(PAD), len(text), {}) is None


def test_a_series_from_arrays_behaves_like_one_built_point_by_point() -> None:
    import numpy as np

    steps = np.arange(1, 1001, dtype=np.int64)
    values = 1.0 / steps
    epochs = steps / 100.0
    has = np.ones(1000, dtype=bool)
    has[::2] = False
    fast = Series.from_arrays("loss", steps, values, epochs, has)
    slow = Series("loss")
    for s, v, e, h in zip(steps.tolist(), values.tolist(), epochs.tolist(), has.tolist(), strict=True):
        slow.add(s, v, e if h else None)
    assert (
        len(fast) == 1000
        and fast.last() == (1000, 0.001, 10.0)
        and fast.best() == slow.best() == (1000, 0.001)
    )
    assert fast.best("max") == (1, 1.0) and fast.finite == slow.finite
    assert fast._base_values is not None  # nothing above built a list
    fast.add(1001, 0.5, None)  # a followed run appends without building the lists either
    slow.add(1001, 0.5, None)
    assert fast.last() == (1001, 0.5, None) and fast.arrays()[1][-1] == 0.5 and fast._base_values is not None
    fast.add(500, 7.0, 5.0)  # a replayed step: normalised, last write wins
    slow.add(500, 7.0, 5.0)
    assert fast.normalized() == slow.normalized() and fast == slow
    assert fast.steps == slow.steps and fast.epochs == slow.epochs  # the lists, built on demand
