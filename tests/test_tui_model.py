"""The TUI's plain logic, tested without Textual; and the core never importing Textual."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ehrdebug.tui import pieces as P
from ehrdebug.tui.comparing import config_differences, final_metrics
from ehrdebug.tui.model import LiveState, downsample, fmt_age, short_arch
from ehrdebug.tui.sampling import Settings
from ehrdebug.tui.screens.sampler import parse_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tui_simulate.py (test scaffolding)

REPO = Path(__file__).resolve().parents[1]


def test_downsample_bounds_points_and_keeps_spikes() -> None:
    xs = list(range(100_000))
    ys = [1.0] * 100_000
    ys[54_321] = 50.0  # a one-step spike
    ys[7] = float("nan")
    dx, dy = downsample(xs, ys, 100)
    assert len(dx) <= 200 and 50.0 in dy and all(v == v for v in dy)
    assert dx == sorted(dx)
    assert downsample([1, 2], [3.0, 4.0], 100) == ([1, 2], [3.0, 4.0])


def test_live_state_feed_is_incremental() -> None:
    state = LiveState(total_steps=100)
    assert state.feed([{"t": 0.0, "step": 1, "kind": "train", "loss": 2.0, "lr": 1e-4, "epoch": 0.1}])
    assert state.feed(
        [
            {"t": 10.0, "step": 11, "kind": "train", "loss": 1.0, "lr": 5e-5},
            {"t": 10.0, "step": 11, "kind": "eval", "eval_loss": 1.5},
            {"t": 10.0, "step": 11, "kind": "alert", "severity": "warn", "message": "x"},
            {"t": 11.0, "step": 11, "kind": "status", "state": "finished"},
        ]
    )
    assert state.history.train.values == [2.0, 1.0] and state.lr == 5e-5
    assert state.best_eval() == ("eval_loss", 11, 1.5)
    assert state.steps_per_second() == pytest.approx(1.0)
    assert state.eta_seconds() == pytest.approx(89.0)
    assert state.state == "finished" and len(state.alerts) == 1
    assert not state.feed(
        [{"t": 10.0, "step": 11, "kind": "alert", "severity": "warn", "message": "x"}]
    )  # a line seen twice
    labels = dict(state.summary_lines())
    assert labels["step"] == "11/100" and labels["best val"] == "1.5 @11"


def test_config_differences_and_final_metrics() -> None:
    diffs = dict(
        config_differences(
            [{"a": 1, "b": {"c": 2}, "same": 0}, {"a": 1, "b": {"c": 3}, "same": 0, "new": True}]
        )
    )
    assert diffs == {"b.c": [2, 3], "new": [None, True]}
    from ehrdebug.runstore.history import History

    history = History()
    for step, loss in ((1, 2.0), (2, 1.0)):
        history.add_log(step, {"loss": loss})
        history.add_log(step, {"eval_loss": loss + 1, "eval_accuracy": 0.5 * step})
    metrics = final_metrics(history)
    assert metrics["eval_loss (best)"] == 2.0 and metrics["eval_accuracy (last)"] == 1.0


def test_small_formatters() -> None:
    assert fmt_age(100.0, now=160.0) == "1m ago" and fmt_age(None) == "-"
    assert short_arch("BartForConditionalGeneration") == "Bart·CondGen"


def test_sampler_settings_parse_and_reject() -> None:
    s = parse_settings("n=2 temp=0.7 block_eos=yes beams=1")
    assert (s.num_samples, s.temperature, s.block_eos) == (2, 0.7, True)
    with pytest.raises(ValueError, match="unknown setting"):
        parse_settings("colour=red")
    with pytest.raises(ValueError, match="temperature"):
        Settings.parse({"temperature": "0"})


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tui_simulate import EHR_LINES

    from recipes.train.pretrain_corpus import train_bpe_tokenizer

    corpus = ["the patient was admitted with chest pain and discharged home"] * 20 + EHR_LINES * 5
    tok = train_bpe_tokenizer(corpus, 300, tmp_path_factory.mktemp("bpe"))
    tok.add_tokens(["<v>", "<\\v>", "<END>"])
    return tok


def test_pieces_flag_cut_structural_tokens_and_codes(bpe) -> None:  # type: ignore[no-untyped-def]
    text = "56 ASIAN M <demo> <v> V3001 4019 <\\v> <END>"
    result = P.inspect_text(bpe, text, ["<demo>", "<v>", "<\\v>", "<END>"], P.code_patterns(["icd9_nodot"]))
    assert "<demo>" in result.broken and len(result.broken["<demo>"]) > 1  # seed 000: not registered
    kinds = {p.piece: p.kind for p in result.pieces}
    assert kinds["<v>"] == P.STRUCTURAL and kinds["<END>"] == P.STRUCTURAL
    assert "V3001" in result.codes_cut
    assert result.pieces[0].kind == P.SPECIAL
    assert any("cut into" in line for line in result.summary())


def test_pieces_labels_show_padding_that_carries_loss(bpe) -> None:  # type: ignore[no-untyped-def]
    pad = bpe.pad_token_id
    ids = bpe("Pneumonia")["input_ids"]
    masked = P.inspect_labels(bpe, ids + [-100] * 3)
    padded = P.inspect_labels(bpe, ids + [pad] * 3)  # seed 002: padding="max_length" without -100
    assert not any(p.kind == P.PAD_LOSS for p in masked.pieces)
    assert [p.kind for p in padded.pieces].count(P.PAD_LOSS) == 3
    assert any("pad id" in n for n in padded.notes)


def test_training_example_uses_the_probes_featurisation(bpe) -> None:  # type: ignore[no-untyped-def]
    record = {"input": "Symptoms: fever, cough.", "output": "Pneumonia"}
    _, labels, notes = P.training_example(bpe, record, "seq2seq", padding="max_length")
    assert labels is not None and bpe.pad_token_id in labels and "DataCollatorForSeq2Seq" in notes[-1]
    _, labels, _ = P.training_example(bpe, record, "seq2seq", padding="none")
    assert bpe.pad_token_id not in labels
    assert (
        P.model_type_of("T5ForConditionalGeneration") == "seq2seq"
        and P.model_type_of("LlamaForCausalLM") == "causal"
    )


def test_core_never_imports_textual() -> None:
    """Every core module (ehrdebug/ outside tui and cli) imports without pulling Textual in."""
    modules = []
    for path in sorted((REPO / "ehrdebug").rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        parts = rel.parts
        if parts[1] in ("tui", "cli") or parts[-1] == "__main__":
            continue
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    code = (
        "import importlib, json, sys\n"
        f"mods = {json.dumps(modules)}\n"
        "for m in mods: importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k == 'textual' or k.startswith('textual.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert len(modules) > 10


def test_fast_log_reader_matches_the_run_store(tmp_path: Path) -> None:
    import math

    from tui_simulate import write_run

    from ehrdebug.runstore import RunLogger, open_run
    from ehrdebug.runstore.fastload import read_log
    from ehrdebug.tui.model import LiveState

    run = open_run(write_run(tmp_path / "r", steps=50, eval_every=10, alert_at=20))
    history, other, rate = read_log(run.events_path)
    ref = run.history()
    assert (history.train.steps, history.train.values, history.train.epochs) == (
        ref.train.steps,
        ref.train.values,
        ref.train.epochs,
    )
    assert {k: (s.steps, s.values) for k, s in history.evals.items()} == {
        k: (s.steps, s.values) for k, s in ref.evals.items()
    }
    assert {k: (s.steps, s.values) for k, s in history.metrics.items()} == {
        k: (s.steps, s.values) for k, s in ref.metrics.items()
    }
    assert other == run.events(kinds=("sample", "alert", "finding", "checkpoint", "status"))
    assert rate[-1][1] == 50
    # odd lines (a string where a number was, a torn last line) read exactly as the run store reads them
    with RunLogger(tmp_path / "odd", {}) as log:
        log.log_train(1, loss=1.0)
        log.log_train(2, loss="n/a")
        log.log_train(3, loss=0.5)
    with open(tmp_path / "odd" / "events.jsonl", "a") as fh:
        fh.write('{"t":1,"step":4,"kind":"train","loss":0.')
    odd = open_run(tmp_path / "odd")
    state = LiveState.from_run(odd)
    assert state.history.train.steps == odd.history().train.steps == [1, 3]
    assert not math.isnan(state.history.train.values[-1])
