"""Regression tests for the bugs QA found behind the CLI: damaged run logs, training arguments of the
wrong type, a user's collator that fails to import, and the doctor's promise to only add report folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.errors import UserError


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- the run store skips stray lines instead of crashing on them ------------------------------------

def _events(path: Path, lines: list[object], separators: tuple[str, str] = (",", ":")) -> None:
    """events.jsonl as the writer writes it (compact), or with ``json.dumps``' default spacing."""
    path.mkdir(parents=True, exist_ok=True)
    text = "".join((x if isinstance(x, str) else json.dumps(x, separators=separators)) + "\n" for x in lines)
    (path / "events.jsonl").write_text(text)


GOOD = [{"t": 1, "step": s, "kind": "train", "loss": 3.0 / s} for s in range(1, 6)]
STRAY = [{"t": 1, "step": "x", "kind": "train", "loss": 9.0}, {"t": 1, "step": None, "kind": "eval", "eval_loss": 9.0},
         {"t": 1, "step": True, "kind": "train", "loss": 9.0}, {"t": 1, "step": 2, "kind": "train", "loss": 1.5, "epoch": "one"},
         {"t": 1, "step": 3, "kind": "finding", "probe": 1}, {"t": 1, "step": 3, "kind": "finding"}]


def test_history_and_findings_skip_malformed_event_lines(tmp_path: Path) -> None:
    from ehrdebug.findings import Finding, Severity
    from ehrdebug.runstore import open_run

    finding = {"t": 1, "step": 5, "kind": "finding",
               **Finding("curves.stalled", Severity.WARN, "Loss stalled", evidence={"drop": 0.01}).to_dict()}
    _events(tmp_path / "run", [*GOOD, *STRAY, finding])
    run = open_run(tmp_path / "run")
    history = run.history()
    assert history.train.steps == [1, 2, 3, 4, 5]
    assert history.train.values[1] == 1.5  # the stray line with a bad epoch keeps its loss, without the epoch
    assert not history.evals
    assert [f.probe for f in run.findings()] == ["curves.stalled"]


def test_a_log_written_with_json_dumps_default_spacing_is_read(tmp_path: Path) -> None:
    from ehrdebug.runstore import open_run

    _events(tmp_path / "run", GOOD, separators=(", ", ": "))
    assert open_run(tmp_path / "run").history().train.steps == [1, 2, 3, 4, 5]


def test_the_column_wise_reader_reads_json_dumps_default_spacing(tmp_path: Path) -> None:
    from ehrdebug.runstore.fastload import read_log

    status = {"t": 1, "step": 5, "kind": "status", "state": "finished"}
    _events(tmp_path, [*GOOD, status], separators=(", ", ": "))
    history, other, _ = read_log(tmp_path / "events.jsonl")
    assert history.train.steps == [1, 2, 3, 4, 5]
    assert [e["state"] for e in other] == ["finished"]


def test_hf_log_history_skips_stray_entries_and_odd_max_steps(tmp_path: Path) -> None:
    from ehrdebug.runstore import open_run

    state = {"global_step": "7", "max_steps": "many",
             "log_history": [5, None, {"step": "abc", "loss": 1.0}, {"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}]}
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text(json.dumps(state))
    run = open_run(tmp_path)
    assert run.history().train.steps == [1, 2]
    assert run.status in ("live", "stale", "finished")


def test_doctor_runs_the_curves_of_a_log_with_a_few_bad_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _events(tmp_path / "run", [*GOOD, *STRAY, "{torn"])
    code = main(["doctor", str(tmp_path / "run"), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert report["meta"]["suites"]["curves"]["ran"] is True


@pytest.mark.parametrize("content,problem", [
    (b'{"t":1,"step":1,"kind":"train","loss":1.0}\n', False),
    (b'{"t":1,"step":1,"kind":"tra', False),  # a live run's first line, half written
    (b"garbage\n" + b'{"t":1,"step":1,"kind":"train","loss":1.0}\n', False),  # one stray line
    (b"", False),
    (b"\x89PNG\r\n\x1a\nbinary\n" + b"\xff\xfe\n" * 30, True),
    (b"a,b,c\n1,2,3\n", True),
    (b"x" * (2 << 20), True),
], ids=["compact", "torn-first-line", "one-stray-line", "empty", "binary", "csv", "no-line-break"])
def test_event_log_problem(tmp_path: Path, content: bytes, problem: bool) -> None:
    from ehrdebug.runstore.reader import event_log_problem

    (tmp_path / "events.jsonl").write_bytes(content)
    assert bool(event_log_problem(tmp_path / "events.jsonl")) is problem


# -- training arguments of the wrong type ------------------------------------------------------------

def test_training_arguments_are_parsed_or_refused_by_name() -> None:
    from probes.data_coverage import plan_from_mapping

    plan = plan_from_mapping({"per_device_train_batch_size": "8", "dataloader_drop_last": "false",
                              "num_train_epochs": "2.5", "gradient_accumulation_steps": 4.0})
    assert (plan.per_device_batch, plan.drop_last, plan.epochs, plan.grad_accum) == (8, False, 2.5, 4)
    assert plan_from_mapping({"dataloader_drop_last": "True", "per_device_train_batch_size": 2}).drop_last is True
    for bad in ({"per_device_train_batch_size": "eight"}, {"per_device_train_batch_size": 2.5},
                {"per_device_train_batch_size": [8]}, {"gradient_accumulation_steps": True},
                {"dataloader_drop_last": "sometimes"}, {"per_device_train_batch_size": 8, "num_train_epochs": "x"}):
        with pytest.raises(UserError, match=next(iter(bad)) if len(bad) == 1 else "num_train_epochs"):
            plan_from_mapping(bad)


def test_doctor_on_a_run_whose_run_json_has_bad_training_arguments_skips_the_data_suite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    _events(run, GOOD)
    (run / "train.jsonl").write_text("".join(json.dumps({"text": f"a {i}"}) + "\n" for i in range(5)))
    (run / "run.json").write_text(json.dumps({"data": {"train": "train.jsonl"},
                                              "config": {"per_device_train_batch_size": "eight"}}))
    main(["doctor", str(run), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert "per_device_train_batch_size" in report["meta"]["suites"]["data"]["reason"]


# -- the user's own collator -------------------------------------------------------------------------

@pytest.mark.parametrize("source,message", [
    ("def f(:\n", "cannot import .*SyntaxError"),
    ("raise RuntimeError('boom at import')\n", "cannot import .*RuntimeError: boom at import"),
    ("class C:\n    def __init__(self, tok, model=None):\n        raise ValueError('needs more')\n",
     "cannot build the collator .*ValueError: needs more"),
])
def test_a_collator_that_fails_in_the_users_code_is_a_user_error(tmp_path: Path, source: str, message: str) -> None:
    from probes.data_suite import load_collator

    (tmp_path / "mine.py").write_text(source)
    attr = "C" if "class C" in source else "f"
    with pytest.raises(UserError, match=message):
        load_collator(f"{tmp_path / 'mine.py'}:{attr}", tokenizer=object())


# -- ehrdebug.toml -----------------------------------------------------------------------------------

def test_config_types_are_checked_and_strings_split(tmp_path: Path) -> None:
    from ehrdebug.config import from_mapping, load_config

    cfg = from_mapping({"code_systems": "icd9, icd10", "structural_tokens": "<v> <\\v>"})
    assert cfg.code_systems == ["icd9", "icd10"] and cfg.structural_tokens == ["<v>", "<\\v>"]
    for bad in ({"max_length": 0}, {"max_length": True}, {"top_n_codes": 1.5}, {"task_prefix": 3},
                {"custom_code_systems": {"x": 1}}, {"spike_z": True}):
        key = next(iter(bad))
        with pytest.raises(UserError, match=key):
            from_mapping({"thresholds": bad} if key == "spike_z" else bad)
    with pytest.raises(UserError, match="must be a table"):
        from_mapping([1, 2])  # type: ignore[arg-type]
    (tmp_path / "pyproject.toml").write_text('tool = "x"\n')
    assert load_config(str(tmp_path)).max_length == 512  # no [tool.ehrdebug]: defaults
    (tmp_path / "ehrdebug.toml").write_text("ehrdebug = 5\n")
    with pytest.raises(UserError, match="must be a table"):
        load_config(str(tmp_path))


# -- the doctor only ever adds report folders ---------------------------------------------------------

def test_doctor_never_changes_or_removes_what_the_user_had(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = {"global_step": 4, "log_history": [{"step": s, "loss": 2.0 / s} for s in range(1, 5)]}
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "trainer_state.json").write_text(json.dumps(state))
    (hf / "ehrdebug-doctor").write_text("a file of mine with the report folder's name")
    (hf / "ehrdebug-doctor-2").mkdir()
    (hf / "ehrdebug-doctor-2" / "report.json").write_text('{"meta": {"generator": "someone else"}, "findings": []}')
    run = tmp_path / "run"
    _events(run, GOOD)
    (run / "artifacts" / "doctor").mkdir(parents=True)
    (run / "artifacts" / "doctor" / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    for path in (hf, run):
        for _ in range(2):  # a second doctor reuses its own folder and adds nothing more
            assert main(["doctor", str(path)]) in (0, 1)
    capsys.readouterr()
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    added = sorted(set(after) - set(before))
    assert added == ["hf/ehrdebug-doctor-3/report.json", "hf/ehrdebug-doctor-3/report.md",
                     "run/artifacts/doctor-2/report.json", "run/artifacts/doctor-2/report.md"]


def test_data_build_refuses_to_overwrite_any_file_it_would_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "codes.txt").write_text("mine\n")
    assert main(["data", "build", "seq2seq", "--patients", "20", "--out", str(out)]) == 2
    assert "codes.txt" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["codes.txt"] and (out / "codes.txt").read_text() == "mine\n"


def test_report_refuses_a_huge_file_without_reading_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import ehrdebug.cli.report_cmd as report_cmd

    monkeypatch.setattr(report_cmd, "MAX_REPORT_BYTES", 1000)
    big = tmp_path / "model.safetensors"
    with open(big, "wb") as fh:
        fh.truncate(5000)  # sparse: no bytes written
    assert main(["report", str(big)]) == 2
    err = capsys.readouterr().err
    assert "too large to be an ehrdebug report.json" in err and len(err.splitlines()) == 1


def test_output_never_overwrites_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": f"a {i}"}) + "\n" for i in range(5)))
    run = tmp_path / "run"
    _events(run, GOOD)
    before = _snapshot(tmp_path)
    assert main(["check", "data", "--train", str(train), "--output", str(train)]) == 2
    assert main(["doctor", str(run), "--output", str(run / "events.jsonl")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("would overwrite the input" in line for line in err)
    assert _snapshot(tmp_path) == before  # refused before anything was written, report folder included
    report = run / "doctor.md"  # a report of the user's own inside the run may be rewritten, run after run
    for _ in range(2):
        assert main(["doctor", str(run), "--format", "markdown", "--output", str(report)]) in (0, 1)
    assert report.read_text().startswith("# ehrdebug report")
    assert main(["report", str(run / "artifacts" / "doctor" / "report.json"), "-o",
                 str(run / "artifacts" / "doctor" / "report.json")]) == 2


@pytest.mark.parametrize("name,content,message", [
    ("run.json", "{nope", "cannot read"),
    ("run.json", "[1, 2]", "is not a run.json"),
    ("trainer_state.json", "{nope", "cannot read"),
    ("events.jsonl", "a,b\n1,2\n3,4\n", "is not an ehrdebug event log"),
], ids=["run-json-not-json", "run-json-list", "trainer-state-not-json", "events-garbage"])
def test_tui_refuses_a_broken_run_before_the_app_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, name: str, content: str,
                                                        message: str) -> None:
    from ehrdebug.tui.app import EhrDebugApp

    def started(self: object) -> None:
        raise AssertionError("the app started on a broken run")

    monkeypatch.setattr(EhrDebugApp, "run", started)
    (tmp_path / name).write_text(content)
    assert main(["tui", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1


def test_a_csv_row_with_more_fields_than_its_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.io.tables import EXTRA_FIELDS, read_records

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\na,1,extra,more\nb\nc,0\n")
    rows = read_records(str(ragged))
    assert rows[0] == {"text": "a", "label": "1", EXTRA_FIELDS: ["extra", "more"]}
    assert all(None not in row for row in rows)
    assert main(["check", "data", "--train", str(ragged), "--validation", str(ragged), "--format", "json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["findings"]


@pytest.mark.parametrize("config", [b"\xff\xfe not utf-8", b"[1, 2]", b'{"architectures": "Bart"}'],
                         ids=["not-utf8", "list", "architectures-string"])
def test_an_hf_runs_odd_checkpoint_config_does_not_break_its_info(tmp_path: Path, config: bytes) -> None:
    from ehrdebug.runstore import open_run
    from ehrdebug.runstore.reader import check_run

    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"global_step": 2, "log_history": []}))
    (tmp_path / "checkpoint-2" / "config.json").write_bytes(config)
    run = open_run(tmp_path)
    check_run(run)
    assert isinstance(run.info["architecture"], str)


def test_the_column_wise_reader_skips_lines_that_are_not_utf8(tmp_path: Path) -> None:
    from ehrdebug.runstore.fastload import read_log

    good = b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in GOOD)
    (tmp_path / "events.jsonl").write_bytes(good + b'{"t":1,"step":9,"kind":"train","loss":\xff}\n'
                                            + b'{"t":1,"step":9,"kind":"status","state":"\xff"}\n')
    try:
        history = read_log(tmp_path / "events.jsonl")[0]
    except ValueError as exc:  # pyarrow may refuse the whole block: the documented fallback signal
        assert "pyarrow" in str(exc)
    else:
        assert history.train.steps[:5] == [1, 2, 3, 4, 5]
