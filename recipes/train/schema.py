"""One declared schema for every training config: the shared loop keys plus each task's own keys.

A key is declared once, as ``dotted.name -> Key(type, default, doc)``; the pydantic v2 model that
validates a config, the defaults ``load_recipe_config`` starts from and the key docs
(``ehrdebug train --keys``) are all assembled from those declarations. Why one place: checks scattered
through the loop let ``lr=nan`` or ``max_steps=-5`` train (or crash) long after the command returned.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from ehrdebug.errors import UserError

try:  # pydantic is a declared dependency; only its types are needed at import time
    from pydantic import Field
except ImportError:  # pragma: no cover - the error surfaces when a config is validated
    Field = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Key:
    """One config key: its pydantic type (constraints included), its default and one line of doc."""

    type: Any
    default: Any
    doc: str = ""


PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
UnitInterval = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]

SHARED: dict[str, Key] = {
    "recipe": Key(str, "bart_ehrgen", "which registered task trains (recipes.train.task.TASKS)"),
    "size": Key(Literal["tiny", "small", "medium", "large"], "small", "size tier (for run.json and the zoo)"),
    "base": Key(str | None, None, "a local save_pretrained dir or a hub id the task starts from"),
    "init_from": Key(str | None, None, "a run or checkpoint whose weights (and tokenizer) the model starts from"),
    "out": Key(str, "runs/run", "run directory; must be new or empty unless resume=true"),
    "seed": Key(NonNegInt, 0, "seeds torch, numpy, python random and the data order"),
    "device": Key(Literal["auto", "cuda", "mps", "cpu"], "auto", "auto = cuda > mps > cpu"),
    "precision": Key(Literal["auto", "fp32", "bf16", "fp16"], "auto", "autocast on CUDA (auto: bf16 where supported); fp32 elsewhere"),
    "threads": Key(NonNegInt, 0, "torch CPU threads; 0 = torch's default"),
    "resume": Key(bool, False, "continue from the latest checkpoint in out (optimizer, scheduler, RNG and data order)"),
    "fixes": Key(list[dict[str, Any]], [], "written by `ehrdebug fix`: which fix-recipes changed this config"),
    "data.root": Key(str | None, None, "data root; null = the shipped sample"),
    "data.max_train": Key(PosInt | None, None, "cap on training records"),
    "data.eval_split": Key(str, "validation", "split evaluated during training"),
    "data.test_split": Key(str, "test", "split measured once at the end with the best weights"),
    "epochs": Key(PosInt, 6, "passes over the training data (unless max_steps)"),
    "max_steps": Key(PosInt | None, None, "optimizer steps; null = epochs x steps per epoch"),
    "max_minutes": Key(PosFloat | None, None, "stop (and checkpoint) after this much training time"),
    "batch_size": Key(PosInt, 16, "records per optimizer micro-batch (split across processes under DDP)"),
    "grad_accum": Key(PosInt, 1, "micro-batches per optimizer step"),
    "lr": Key(PosFloat, 5e-4, "AdamW learning rate"),
    "weight_decay": Key(NonNegFloat, 0.01, "AdamW weight decay"),
    "warmup_steps": Key(NonNegInt, 50, "linear warmup steps"),
    "scheduler": Key(Literal["linear", "cosine", "constant"], "linear", "learning-rate schedule after warmup"),
    "max_grad_norm": Key(PosFloat, 1.0, "gradient clipping norm"),
    "log_every": Key(PosInt, 10, "steps between train events"),
    "eval_every": Key(PosInt | None, None, "steps between evaluations; null = once per epoch"),
    "early_stopping.patience": Key(PosInt | None, 3, "evaluations without improvement before stopping; null = off"),
    "early_stopping.metric": Key(str, "eval_loss", "metric early stopping and the best checkpoint follow"),
    "early_stopping.min_delta": Key(NonNegFloat, 0.0, "smallest change that counts as an improvement"),
    "early_stopping.min_epochs": Key(NonNegFloat, 0, "never stop before this many epochs"),
    "keep_checkpoints": Key(NonNegInt, 2, "step-N checkpoints kept (0 = all); the best one is kept besides"),
    "save_best": Key(bool, True, "keep the best checkpoint and reload it for the final test"),
    "final_test": Key(bool, True, "after training: measure the best weights on the test split"),
    "model_probes": Key(bool | Literal["final", "every_eval"], False, "probes.model_suite: false | final | every_eval"),
    "use_lora": Key(bool, False, "train LoRA adapters only (peft)"),
    "lora.r": Key(PosInt, 8, "LoRA rank"),
    "lora.alpha": Key(PosFloat, 16, "LoRA alpha"),
    "lora.dropout": Key(Fraction, 0.05, "LoRA dropout"),
    "lora.target_modules": Key(list[str], ["q_proj", "v_proj"], "modules that get adapters"),
    "lora.modules_to_save": Key(list[str], [], "modules trained in full and saved with the adapter"),
    "distributed.fsdp": Key(bool, False, "shard the model with FSDP when launched on several GPUs (large tiers)"),
    "distributed.fsdp_min_params": Key(PosInt, 1_000_000, "FSDP auto-wrap: smallest module size wrapped on its own"),
}


def defaults_of(keys: dict[str, Key], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The nested default config of ``keys``, with a task's ``overrides`` (dotted keys) applied."""
    tree: dict[str, Any] = {}
    for name, key in keys.items():
        _put(tree, name, copy.deepcopy(key.default))
    for name, value in (overrides or {}).items():
        if name not in keys:
            raise KeyError(f"default for an undeclared key {name!r}")
        _put(tree, name, copy.deepcopy(value))
    return tree


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def model_for(name: str, keys: dict[str, Key]) -> Any:
    """A pydantic model (nested for dotted keys, unknown keys forbidden) over ``keys``."""
    from pydantic import ConfigDict, create_model

    groups: dict[str, dict[str, Key]] = {}
    fields: dict[str, Any] = {}
    for dotted, key in keys.items():
        head, _, rest = dotted.partition(".")
        if rest:
            groups.setdefault(head, {})[rest] = key
        else:
            fields[head] = (key.type, key.default)
    for head, sub in groups.items():
        sub_model = model_for(f"{name}.{head}", sub)
        fields[head] = (sub_model, Field(default_factory=sub_model))
    return create_model(name.replace(".", "_"), __config__=ConfigDict(extra="forbid"), **fields)


def validate(config: dict[str, Any], keys: dict[str, Key], where: str) -> dict[str, Any]:
    """``config`` checked against ``keys`` and returned with values in their declared types.

    The first problem is a one-line ``UserError``: ``where: lr: must be a finite number > 0 (got nan)``.
    """
    from pydantic import ValidationError

    model = model_for("TrainConfig", keys)
    try:
        checked = model.model_validate(config)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"] if not isinstance(p, int) or len(error["loc"]) == 1)
        got = error.get("input")
        shown = f" (got {got!r})" if not isinstance(got, dict) else ""
        raise UserError(f"{where}: {loc}: {_message(error)}{shown}".replace("\n", " ")) from None
    return checked.model_dump()


def _message(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "finite_number" or isinstance(error.get("input"), float) and not math.isfinite(error["input"]):
        return "must be a finite number"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    return error["msg"].lower().removeprefix("input ")


def key_docs(keys: dict[str, Key]) -> list[tuple[str, str, str]]:
    """(dotted key, default, doc) for every key: what ``ehrdebug train --keys`` prints."""
    return [(name, repr(key.default), key.doc) for name, key in keys.items()]
