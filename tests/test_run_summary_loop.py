"""A plain ``ehrdebug train`` run holds ``artifacts/summary.md``: its figures, what they measure, its plots.

Two task kinds of the training loop, tiny: BEHRT mortality (one probability per record: AUROC with an
interval) and BART record generation (no AUROC: the summary says so and what scores it instead). The
summary must name every test figure the run saved, link only plots that exist, and travel in ``pack``.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from tests.baseline_fixtures import write_codes
from tests.test_train_loop import TINY as BART_TINY
from tests.test_train_loop import write_standin

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"
pytestmark = pytest.mark.slow  # two tiny runs of the real training loop (~25 s of CPU)
BEHRT_TINY = ["init_from=null", "max_steps=6", "eval_every=3", "batch_size=16", "threads=1", "bootstrap=20",
              "model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2",
              "model.intermediate_size=32", "max_minutes=null", "early_stopping.patience=null"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from recipes.train import load_recipe_config, run_training

    root = tmp_path_factory.mktemp("summary")
    codes = write_codes(root / "codes")
    behrt = load_recipe_config(
        CONFIGS / "behrt_mortality_small.yaml", [f"data.codes_dir={codes}", *BEHRT_TINY]
    )
    data = write_standin(root / "text")
    bart = load_recipe_config(CONFIGS / "bart_ehrgen_small.yaml", [*BART_TINY, f"data.root={data}"])
    return {
        "behrt": Path(run_training(behrt, root / "behrt")),
        "bart": Path(run_training(bart, root / "bart")),
    }


def _summary(run: Path) -> tuple[str, dict]:
    text = (run / "artifacts" / "summary.md").read_text(encoding="utf-8")
    return text, json.loads((run / "artifacts" / "metrics_summary.json").read_text(encoding="utf-8"))


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("name", ["behrt", "bart"])
def test_every_training_loop_run_has_a_summary_naming_its_figures_and_plots(
    runs: dict[str, Path], name: str
) -> None:
    text, summary = _summary(runs[name])
    assert text.startswith(f"# {runs[name].name}\n")
    assert summary["test"], "the tiny run measured its test split"
    for key, value in summary["test"].items():  # every test figure, with its value, on its own table row
        assert re.search(rf"^\| {key} \| {re.escape(_fmt(value))} \|", text, re.M), key
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "loss.png" in linked  # the loop's loss curves
    for png in linked:  # relative links that resolve beside summary.md (it is read off the pod alone)
        assert (runs[name] / "artifacts" / png).stat().st_size > 1000, png
    assert f"`{summary['best_checkpoint']}/`" in text and "**status**: finished" in text


def test_a_binary_run_shows_intervals_and_a_generation_run_says_what_scores_it(runs: dict[str, Path]) -> None:
    behrt, behrt_summary = _summary(runs["behrt"])
    ci = behrt_summary["test_ci"]["test_auroc"]
    assert (
        f"| test_auroc | {_fmt(behrt_summary['test']['test_auroc'])} | {ci['low']:.4f} – {ci['high']:.4f} |"
        in behrt
    )
    assert "predicts one probability per record" in behrt and "## Baselines on the same split" in behrt
    bart, bart_summary = _summary(runs["bart"])
    assert "test_auroc" not in bart and "has no AUROC, AUPRC or F1" in bart
    assert "scored by structural_validity, valid_code_rate" in bart
    assert "| share of generated records that parse as" in bart  # each figure says what it measures
    first = bart_summary["test_samples"][0]
    assert f"- input `{' '.join(first['prompt'].split())}`" in bart  # what the model generated, to read
    assert "reason: `" in bart


def test_pack_carries_the_summary_and_its_plots(runs: dict[str, Path], tmp_path: Path) -> None:
    from recipes.bench.pack import pack_path

    result = pack_path(runs["bart"], out=tmp_path / "bart.tar.gz")
    with tarfile.open(result.archive) as tar:
        names = set(tar.getnames())
        prefix = runs["bart"].name
        text = tar.extractfile(f"{prefix}/artifacts/summary.md").read().decode()  # type: ignore[union-attr]
    for png in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert f"{prefix}/artifacts/{png}" in names
