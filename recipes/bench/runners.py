"""How the benchmark trains a model from its config file, whoever wrote the recipe: looked up, not named.

``RUNNERS`` is tried in order; the first whose ``accepts(path)`` is true trains that config.
``baseline``: the configs ``recipes.baselines.registry`` knows (``recipe: logreg|xgboost|lstm|med2vec``).
``loop``: every other recipe config, through the training layer's public entry points
(``recipes.train.load_recipe_config`` and ``recipes.train.run_training``): BEHRT, and any code model
that registers a task there. Each runner maps the benchmark's shared settings (data root, label,
seed, threads) onto its own config keys, so one dataset and split reach every model. ``dry_run(config)``
reports a model's parameter counts without training (``ehrdebug bench --dry-run``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

#: model-config keys that fix an encoder's shape (a fine-tuned model takes its init_from's at train time)
SHAPE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "state_size", "d_model",
              "num_layers", "n_layer", "max_position_embeddings")  # fmt: skip


class BaselineRunner:
    name = "baseline"

    def accepts(self, path: Path) -> bool:
        from recipes.baselines.registry import baseline_name

        return baseline_name(path) is not None

    def load(self, path: Path, shared: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
        from recipes.baselines.registry import load_baseline_config

        config = load_baseline_config(path, overrides)  # validates the model's own overrides
        settings = [f"{k}={v}" for k, v in (("data.root", shared.get("data_root")), ("seed", shared.get("seed")),
                                               ("threads", shared.get("threads")), ("bootstrap", shared.get("bootstrap"))) if v is not None]  # fmt: skip
        if shared.get("label_field") and config["task"] == "mortality":
            settings.append(f"label_field={shared['label_field']}")
        return load_baseline_config(path, [*settings, *overrides])

    def init_from(self, config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        raise UserError(f"baseline {config['recipe']!r} does not start from another run (init_from)")

    def planned_steps(self, config: dict[str, Any]) -> int:
        from recipes.baselines.registry import get_baseline

        return get_baseline(config["recipe"]).planned_steps(config)

    def train(self, config: dict[str, Any], out_dir: Path) -> Path:
        from recipes.baselines.registry import train_baseline

        return train_baseline(config, out_dir)

    def ensure_predictions(self, run_dir: Path, config: dict[str, Any]) -> None:
        return None  # the baselines write artifacts/test_predictions.jsonl themselves

    def dry_run(self, config: dict[str, Any]) -> dict[str, Any]:
        """Parameters without training (``bench --dry-run``): the baseline's own ``size(config)``."""
        from recipes.baselines.registry import get_baseline

        baseline = get_baseline(config["recipe"])
        return {"architecture": baseline.ARCHITECTURE, "tier": config["size"], **baseline.size(config)}


class LoopRunner:
    """A config of the training layer (``recipes.train``); its keys are the loop's."""

    name = "loop"

    def accepts(self, path: Path) -> bool:
        return path.suffix in (".yaml", ".yml")

    def _keys(self, recipe: str) -> set[str]:
        from recipes.train.config import recipe_keys

        return set(recipe_keys(recipe))

    def load(self, path: Path, shared: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
        from recipes.baselines.config import read_yaml
        from recipes.train import load_recipe_config

        recipe = next(
            (o.split("=", 1)[1] for o in overrides if o.startswith("recipe=")),
            read_yaml(path).get("recipe", ""),
        )
        keys = self._keys(str(recipe))
        wanted = {"data.codes_dir": shared.get("data_root"), "label_field": shared.get("label_field"),
                  "seed": shared.get("seed"), "threads": shared.get("threads"), "bootstrap": shared.get("bootstrap"),
                  "device": shared.get("device")}  # fmt: skip
        settings = [f"{k}={v}" for k, v in wanted.items() if v is not None and k in keys]
        return load_recipe_config(path, [*settings, *overrides])

    def init_from(self, config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        return {**config, "init_from": str(run_dir)}

    def planned_steps(self, config: dict[str, Any]) -> int:
        import math

        from recipes.train.task import get_task

        if config.get("max_steps"):
            return int(config["max_steps"])
        try:
            n = len(get_task(config["recipe"]).records(config, "train"))
        except (UserError, NotImplementedError, KeyError):
            return 0
        return int(config["epochs"]) * math.ceil(
            math.ceil(n / int(config["batch_size"])) / int(config["grad_accum"])
        )

    def train(self, config: dict[str, Any], out_dir: Path) -> Path:
        from recipes.train import run_training

        return Path(run_training(config, out_dir))

    def ensure_predictions(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Test predictions from the run's best checkpoint, when the loop did not write them itself."""
        from recipes.bench.predict import loop_test_predictions

        loop_test_predictions(run_dir, config)

    def dry_run(self, config: dict[str, Any]) -> dict[str, Any]:
        """The task builds its model on the meta device (shapes, no memory, no weights read; ``init_from``
        left out) and LoRA wraps it as training would: its parameter counts without training."""
        import torch

        from recipes.train import engine as E
        from recipes.train.task import get_task

        task = get_task(config["recipe"])
        with torch.device("meta"):
            model, _, _ = task.build({**config, "init_from": None}, None)
            model_config = getattr(model, "config", None)
            shape = {k: getattr(model_config, k) for k in SHAPE_KEYS if hasattr(model_config, k)}
            if config["use_lora"]:
                model = E.apply_lora(model, config, task)
        share = E.trainable_share(model)
        return {"architecture": task.ARCHITECTURE, "tier": config["size"], "parameters": share["total"],
                "trainable_parameters": share["trainable"], "shape": shape}  # fmt: skip


RUNNERS: list[Any] = [BaselineRunner(), LoopRunner()]


def runner_for(path: Path) -> Any:
    for runner in RUNNERS:
        if runner.accepts(path):
            return runner
    raise UserError(f"{path}: not a recipe config this benchmark can train")
