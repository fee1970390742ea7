"""Issue 15, item by item, through the real console entry (``ehrdebug.cli.app.main``).

Each case asserts the exit code, exactly one stderr line (``ehrdebug: error: ...``, no traceback) and that
every input is byte-identical afterwards (sha256 before and after). Training configs: every bad value of
the issue on the BART recipe and on each code-model recipe family (BEHRT, CEHR-BERT, EHRMamba, the Llama
coding adapter) is refused by the one schema before ``run_training`` is reached (it is replaced by a
function that fails the test). Resume, doctor and fix cases run on one tiny real BEHRT run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from ehrdebug.cli.app import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
BART = CONFIGS / "bart_ehrgen_small.yaml"
BEHRT = CONFIGS / "behrt_mlm_small.yaml"
CODE_MODELS = ["behrt_mlm_small", "behrt_mortality_small", "behrt_mortality_lora_small", "behrt_nextvisit_small",
               "cehrbert_mlm_small", "cehrbert_mortality_small", "ehrmamba_pretrain_small", "ehrmamba_mortality_small",
               "llama_coding_lora_small"]  # fmt: skip
TINY = ["model.hidden_size=32", "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=64",
        "data.max_train=96", "batch_size=16", "log_every=1", "threads=1", "warmup_steps=2", "eval_batch_size=64",
        "final_test=false", "early_stopping.patience=null", "keep_checkpoints=0", "device=cpu"]  # fmt: skip


def _hashes(*roots: Path) -> dict[str, str]:
    files = [p for r in roots for p in ([r] if r.is_file() else sorted(r.rglob("*"))) if p.is_file()]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _one_error_line(capsys: pytest.CaptureFixture[str], fragment: str) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ehrdebug: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reaching the loop at all (where the model loads) fails the test: the schema must refuse first."""
    import recipes.train.loop

    def reached(*args: object, **kwargs: object) -> None:
        raise AssertionError("run_training was reached: the config was not refused before the model loads")

    monkeypatch.setattr(recipes.train.loop, "run_training", reached)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# -- every bad override of the issue, one line and exit 2 before anything runs ------------------------------
ISSUE_OVERRIDES = [
    ("lr=nan", "lr: must be a finite number"), ("lr=inf", "lr: must be a finite number"),
    ("max_steps=abc", "max_steps"), ("warmup_steps=abc", "warmup_steps"), ("log_every=0", "log_every"),
    ("early_stopping.patience=abc", "early_stopping.patience"), ("max_minutes=abc", "max_minutes"),
    ("seed=abc", "seed"), ("threads=-1", "threads"), ("max_steps=-5", "max_steps"),
    ("warmup_steps=-10", "warmup_steps"), ("keep_checkpoints=-1", "keep_checkpoints"),
    ("no_such_key=1", "unknown config key 'no_such_key'"),
]  # fmt: skip
BART_ONLY = [("special_tokens=5", "special_tokens"), ("generation.temperature=-1", "generation.temperature"),
             ("generation.top_k=abc", "generation.top_k"), ("max_length=0", "max_length")]  # fmt: skip
TRAIN_CASES = [(BART, o, f) for o, f in ISSUE_OVERRIDES + BART_ONLY] + [
    (CONFIGS / f"{name}.yaml", o, f) for name in CODE_MODELS for o, f in ISSUE_OVERRIDES
] + [(BEHRT, "max_length=0", "max_length")]


@pytest.mark.parametrize(("config", "override", "fragment"), TRAIN_CASES,
                         ids=[f"{c.stem}-{o}" for c, o, _ in TRAIN_CASES])  # fmt: skip
def test_train_refuses_a_bad_value_before_the_model_loads(config: Path, override: str, fragment: str, tmp_path: Path,
                                                          no_training: None, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "run"
    before = _hashes(config)
    assert main(["train", str(config), override, f"out={out}"]) == 2
    line = _one_error_line(capsys, fragment)
    assert str(config) in line or "override" in line
    assert _hashes(config) == before and not out.exists()


@pytest.mark.parametrize("config", [BART, *(CONFIGS / f"{n}.yaml" for n in CODE_MODELS)], ids=lambda p: p.stem)
def test_dry_run_uses_the_same_schema(config: Path, no_training: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(config), "--dry-run", "lr=nan"]) == 2
    _one_error_line(capsys, "lr: must be a finite number")
    assert main(["train", str(config), "--dry-run"]) == 0  # the shipped config itself validates
    capsys.readouterr()


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_refuses_lr_nan_in_one_line(config: Path, no_training: None, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Whatever recipe a config names (a baseline's schema has no ``lr``: an unknown key), never a run."""
    before = _hashes(config)
    assert main(["train", str(config), "lr=nan", f"out={tmp_path / 'run'}"]) == 2
    _one_error_line(capsys, "unknown config key" if config.stem.startswith("bench_") else "lr")  # bench: its own command
    assert _hashes(config) == before and not (tmp_path / "run").exists()


def test_device_cuda_without_cuda_is_one_line(no_training: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for config in (BART, CONFIGS / "ehrmamba_pretrain_small.yaml"):
        assert main(["train", str(config), "device=cuda", f"out={tmp_path / 'run'}"]) == 2
        _one_error_line(capsys, "device=cuda but CUDA is not available")
    assert not (tmp_path / "run").exists()


# -- out= folders: refused before the model is loaded, nothing in them touched --------------------------------
@pytest.mark.parametrize("contents", [{"run.json": "{}"}, {"config.json": "{}", "model.safetensors": "x"},
                                      {"notes.txt": "mine"}], ids=["run-json-only", "hf-output-dir", "any-file"])
@pytest.mark.parametrize("resume", ["false", "true"])
def test_train_into_a_used_folder_is_refused(contents: dict[str, str], resume: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    out.mkdir()
    for name, text in contents.items():
        (out / name).write_text(text)
    before = _hashes(out)
    # init_from points nowhere: were the folder checked after the model, that error would come first
    argv = ["train", str(BEHRT), *TINY, f"out={out}", f"init_from={tmp_path / 'missing'}", f"resume={resume}"]
    assert main(argv) == 2
    _one_error_line(capsys, "not empty")
    assert _hashes(out) == before and sorted(p.name for p in out.iterdir()) == sorted(contents)


@pytest.mark.parametrize(("overrides", "fragment"), [
    (["model.hidden_size=30", "model.num_attention_heads=4"], "cannot build the behrt_mlm model from this config"),
    (["use_lora=true", "lora.target_modules=[nope]"], "use_lora: No modules were targeted"),
], ids=["heads-do-not-divide-hidden", "lora-targets-nothing"])  # fmt: skip
def test_a_model_config_the_library_refuses_is_one_line(overrides: list[str], fragment: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Values each valid alone but not together: refused when the model is built, before the run is written."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    assert main(["train", str(BEHRT), *TINY, *overrides, "max_steps=2", f"out={out}"]) == 2
    _one_error_line(capsys, fragment)
    assert not out.exists()


# -- one tiny real run, copied for every case that breaks it ---------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run = tmp_path_factory.mktemp("issue15") / "run"
    assert main(["train", str(BEHRT), *TINY, "max_steps=2", "eval_every=2", f"out={run}"]) == 0
    assert (run / "checkpoints" / "step-2" / "model.safetensors").is_file()
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def _break(ckpt: Path, how: str) -> None:
    weights = ckpt / "model.safetensors"
    if how == "junk-weights":
        weights.write_bytes(b"not a safetensors file at all")
    elif how == "empty-weights":
        weights.write_bytes(b"")
    elif how == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    elif how == "junk-tokenizer":
        (ckpt / "tokenizer.json").write_text("{bad")
    elif how == "list-tokenizer":
        (ckpt / "tokenizer.json").write_text("[1, 2]")
    elif how == "junk-config":
        (ckpt / "config.json").write_text("{bad")
    elif how == "state-empty-object":
        (ckpt / "trainer_state.json").write_text("{}")
    elif how == "state-nan":
        state = json.loads((ckpt / "trainer_state.json").read_text())
        (ckpt / "trainer_state.json").write_text(json.dumps(state).replace('"step": 2', '"step": NaN', 1))
    elif how == "state-not-json":
        (ckpt / "trainer_state.json").write_text("not json")
    elif how == "junk-optimizer":
        (ckpt / "optimizer.pt").write_bytes(b"junk")
    elif how == "no-optimizer":
        (ckpt / "optimizer.pt").unlink()
    else:
        raise AssertionError(how)


RESUME_BREAKS = [("junk-weights", "model.safetensors is unreadable"), ("empty-weights", "model.safetensors is unreadable"),
                 ("truncated-weights", "model.safetensors is unreadable"), ("junk-tokenizer", "tokenizer.json is unreadable"),
                 ("list-tokenizer", "tokenizer.json is unreadable"), ("junk-config", "config.json is unreadable"),
                 ("state-empty-object", "holds no loop state"), ("state-nan", "trainer_state.json is unreadable"),
                 ("state-not-json", "trainer_state.json is unreadable"), ("junk-optimizer", "not a plain optimizer state"),
                 ("no-optimizer", "no optimizer.pt")]  # fmt: skip


@pytest.mark.parametrize(("how", "fragment"), RESUME_BREAKS, ids=[b[0] for b in RESUME_BREAKS])
def test_resume_from_a_broken_checkpoint_is_one_line_and_writes_nothing(tiny_run: Path, tmp_path: Path, how: str,
                                                                         fragment: str, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run = _copy(tiny_run, tmp_path)
    _break(run / "checkpoints" / "step-2", how)
    before = _hashes(run)
    assert main(["train", str(BEHRT), *TINY, "max_steps=4", "eval_every=2", f"out={run}", "resume=true"]) == 2
    line = _one_error_line(capsys, fragment)
    assert "cannot resume" in line
    assert _hashes(run) == before  # events.jsonl and run.json untouched, nothing added


def test_resume_event_torn_line_and_stray_step(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Killed after the step-2 checkpoint, with steps 3-5 logged, a stray non-integer step and a torn last line:
    resume writes ``resumed`` (carrying the checkpoint's step 2) on a fresh line and replays steps 3-4."""
    from ehrdebug.runstore.reader import read_events

    run = _copy(tiny_run, tmp_path)
    log = run / "events.jsonl"
    kept = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    kept = [e for e in kept if not (e["kind"] == "status" and e.get("state") == "finished")]
    extra = [{"t": 1, "step": s, "kind": "train", "loss": 9.0} for s in (3, 4, 5)] + [{"t": 1, "step": "abc", "kind": "alert"}]
    log.write_text("".join(json.dumps(e) + "\n" for e in kept + extra) + '{"t":1,"step":6,"kind":"tr')
    assert main(["train", str(BEHRT), *TINY, "max_steps=4", "eval_every=2", f"out={run}", "resume=true"]) == 0
    capsys.readouterr()
    lines = log.read_text().splitlines()
    assert '{"t":1,"step":6,"kind":"tr' in lines  # the fragment alone on its line, the next event on a fresh one
    events = read_events(log)
    resumed = [e for e in events if e.get("state") == "resumed"]
    assert len(resumed) == 1 and resumed[0]["step"] == 2 and resumed[0]["resumed_from_step"] == 2
    assert resumed[0]["last_logged_step"] == 5
    after = events[events.index(resumed[0]):]
    assert [e["step"] for e in after if e["kind"] == "train"] == [3, 4]
    assert after[-1]["kind"] == "status" and after[-1]["state"] == "finished"
    info = json.loads((run / "run.json").read_text())
    assert [r["from_step"] for r in info["resumes"]] == [2]


# -- the doctor on a run whose checkpoint is broken -------------------------------------------------------------
DOCTOR_BREAKS = [("junk-weights", "cannot load the model"), ("empty-weights", "cannot load the model"),
                 ("truncated-weights", "cannot load the model"), ("junk-tokenizer", "cannot load a tokenizer"),
                 ("junk-config", "config")]  # fmt: skip


@pytest.mark.parametrize(("how", "fragment"), DOCTOR_BREAKS, ids=[b[0] for b in DOCTOR_BREAKS])
@pytest.mark.parametrize("whole_run", [True, False], ids=["run", "checkpoint"])
def test_doctor_on_a_broken_checkpoint_is_exit_2(tiny_run: Path, tmp_path: Path, how: str, fragment: str, whole_run: bool,
                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run = _copy(tiny_run, tmp_path)
    _break(run / "checkpoints" / "step-2", how)
    before = _hashes(run)
    assert main(["doctor", str(run if whole_run else run / "checkpoints" / "step-2")]) == 2
    _one_error_line(capsys, fragment)
    assert _hashes(run) == before  # no report folder was added either


def test_doctor_on_weights_missing(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint with no weights is exit 2; a run whose checkpoints were stripped of weights still gets its
    curves judged, the model suites skipped with the reason."""
    run = _copy(tiny_run, tmp_path)
    (run / "checkpoints" / "step-2" / "model.safetensors").unlink()
    before = _hashes(run)
    assert main(["doctor", str(run / "checkpoints" / "step-2")]) == 2
    _one_error_line(capsys, "cannot load the model")
    assert _hashes(run) == before
    assert main(["doctor", str(run), "--format", "json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert report["meta"]["suites"]["curves"]["ran"] is True
    assert report["meta"]["suites"]["model"]["ran"] is False and "model.safetensors" in report["meta"]["suites"]["model"]["reason"]


def test_doctor_output_unwritable_keeps_the_saved_report(tiny_run: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run = _copy(tiny_run, tmp_path)
    assert main(["doctor", str(run)]) in (0, 1)
    assert (run / "artifacts" / "doctor" / "report.json").is_file()
    capsys.readouterr()
    before = _hashes(run)
    assert main(["doctor", str(run), "--output", "/proc/ehrdebug-nope/r.md"]) == 2
    _one_error_line(capsys, "cannot write --output")
    assert _hashes(run) == before


# -- pickle: refused by the doctor and the TUI's sampler, and never executed --------------------------------------
def _pickle_checkpoint(tmp_path: Path, marker: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    class Payload:  # unpickling calls Path.touch(marker): code execution
        def __reduce__(self):
            return (Path.touch, (marker,))

    ckpt = tmp_path / "old"
    config = GPT2Config(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(ckpt)
    (ckpt / "model.safetensors").unlink()
    torch.save({"payload": Payload()}, ckpt / "pytorch_model.bin")
    return ckpt


def test_pickle_only_weights_are_refused_and_never_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.errors import UserError
    from ehrdebug.tui.sampling import load_model

    marker = tmp_path / "pwned"
    ckpt = _pickle_checkpoint(tmp_path, marker)
    capsys.readouterr()
    before = _hashes(ckpt)
    assert main(["doctor", str(ckpt)]) == 2
    line = _one_error_line(capsys, "pickle")
    assert "--allow-pickle" in line
    with pytest.raises(UserError, match="pickle"):
        load_model(str(ckpt))  # the TUI's sampler goes through the same refusal
    assert not marker.exists() and _hashes(ckpt) == before


# -- fix: a config it is given, and the one it would write, are validated first -----------------------------------
def test_fix_refuses_a_config_with_an_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(BART.read_text() + "bogus_key: 3\n")
    before = _hashes(tmp_path)
    assert main(["fix", str(config), "--recipe", "register-structural-tokens", "--out", str(tmp_path / "fixed")]) == 2
    _one_error_line(capsys, "unknown config key 'bogus_key'")
    assert _hashes(tmp_path) == before and not (tmp_path / "fixed").exists()


def test_fix_refuses_to_write_a_config_train_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recipes.train.config import load_recipe_config

    config = tmp_path / "behrt.yaml"
    shutil.copy(BEHRT, config)
    before = _hashes(tmp_path)
    # register-structural-tokens writes special_tokens, a key of the BART/T5 recipes only
    assert main(["fix", str(config), "--recipe", "register-structural-tokens", "--out", str(tmp_path / "fixed")]) == 2
    _one_error_line(capsys, "special_tokens")
    assert _hashes(tmp_path) == before and not (tmp_path / "fixed").exists()
    bart = tmp_path / "bart.yaml"
    shutil.copy(BART, bart)
    assert main(["fix", str(bart), "--recipe", "lower-temperature", "--out", str(tmp_path / "ok")]) == 0
    capsys.readouterr()
    load_recipe_config(tmp_path / "ok" / "config.yaml")  # what fix wrote trains


# -- numbers so large the step arithmetic overflows ---------------------------------------------------------------
@pytest.mark.parametrize("source", ["flag", "training-args"])
def test_epochs_too_large_to_count_steps_is_one_line(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    Path("ok.jsonl").write_text("".join(json.dumps({"patient_id": i, "text": f"a {i}", "label": i % 2}) + "\n" for i in range(8)))
    Path("args.json").write_text(json.dumps({"per_device_train_batch_size": 2, "num_train_epochs": 1e308}))
    before = _hashes(tmp_path)
    extra = ["--epochs", "1e308"] if source == "flag" else ["--training-args", "args.json"]
    assert main(["check", "data", "--train", "ok.jsonl", *extra]) == 2
    _one_error_line(capsys, "epochs must be at most 1,000,000")
    assert _hashes(tmp_path) == before


def test_doctor_on_weights_of_another_size_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """transformers logs a tens-of-lines LOAD REPORT before refusing: the doctor still says it in one line."""
    ckpt = tmp_path / "ck"
    shutil.copytree(REPO / "sample_data" / "bases" / "bart", ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["d_model"] *= 2
    (ckpt / "config.json").write_text(json.dumps(config))
    before = _hashes(ckpt)
    assert main(["doctor", str(ckpt), "--output", str(tmp_path / "r.md")]) == 2
    _one_error_line(capsys, "its weights do not match its config.json")
    assert _hashes(ckpt) == before and not (tmp_path / "r.md").exists()


@pytest.mark.parametrize(("report", "fragment"), [
    ({"subject": "x", "meta": [], "findings": []}, "meta must be a dict"),
    ({"subject": 5, "findings": []}, "subject must be a str"),
    ({"findings": [5]}, "findings[0] must be an object"),
    ({"findings": [{"probe": "a", "title": "t"}]}, "findings[0] has no severity"),
    ({"findings": [{"probe": 5, "severity": "ok", "title": "t"}]}, "findings[0].probe must be a str"),
    ({"findings": [{"probe": "a", "severity": "ok", "title": None}]}, "findings[0].title must be a str"),
    ({"findings": [{"probe": "a", "severity": "ok", "title": "t", "evidence": "x"}]}, "evidence must be a dict"),
    ({"findings": [{"probe": "a", "severity": "ok", "title": "t", "recipes": [1]}]}, "recipes must be a list of strings"),
    ({"findings": [{"probe": "a", "severity": "bogus", "title": "t"}]}, "unknown severity 'bogus'"),
], ids=["meta-list", "subject-int", "finding-int", "no-severity", "probe-int", "title-null", "evidence-str",
        "recipes-ints", "severity-bogus"])  # fmt: skip
@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_report_of_the_wrong_shape_is_one_line(report: dict, fragment: str, fmt: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    before = _hashes(tmp_path)
    assert main(["report", str(path), "--format", fmt]) == 2
    _one_error_line(capsys, fragment)
    assert _hashes(tmp_path) == before


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_output_through_a_link_to_the_input_is_refused(link: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import os

    monkeypatch.chdir(tmp_path)
    Path("ok.jsonl").write_text("".join(json.dumps({"patient_id": i, "text": f"a {i}"}) + "\n" for i in range(8)))
    (os.link if link == "hard" else os.symlink)("ok.jsonl", "other-name.jsonl")
    before = _hashes(tmp_path / "ok.jsonl")
    assert main(["check", "data", "--train", "ok.jsonl", "--output", "other-name.jsonl"]) == 2
    _one_error_line(capsys, "would overwrite the input ok.jsonl")
    assert _hashes(tmp_path / "ok.jsonl") == before


@pytest.mark.parametrize("name", ["logreg_mortality_small", "xgboost_mortality_small", "lstm_mortality_small",
                                  "med2vec_nextvisit_small"])  # fmt: skip
def test_keys_on_a_baseline_config_lists_them_and_trains_nothing(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from recipes.baselines.registry import baseline_name, get_baseline

    monkeypatch.chdir(tmp_path)  # the configs' out= is relative: a run would appear here
    config = CONFIGS / f"{name}.yaml"
    assert main(["train", str(config), "--keys"]) == 0
    listed = capsys.readouterr().out
    assert all(key in listed for key in get_baseline(baseline_name(config)).KEYS)
    assert list(tmp_path.iterdir()) == []
