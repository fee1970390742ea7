"""The task interface every recipe implements, and the registry the loop looks tasks up in.

A task says how to build its model, batch its data, compute its loss and evaluate (torchtune's recipe
interface is the model); ``recipes.train.loop`` does everything else the same way for every task. The
loop, the config loader and the schema never branch on a recipe's name: they call ``get_task(name)``.

Adding a recipe: write a module with a ``Task`` subclass (``NAME``, ``ARCHITECTURE``, ``TASK``, ``keys``,
``defaults`` and the methods below), add one ``"name": "module:attribute"`` line to ``TASKS``, and ship
``recipes/configs/<name>_<size>.yaml``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ehrdebug.errors import UserError

#: recipe name → ``"module:attribute"`` of its task object (imported only when used: ``--help`` stays instant)
TASKS: dict[str, str] = {
    "bart_ehrgen": "recipes.train.bart_ehrgen:TASK_OBJECT",
    "t5_diagnosis": "recipes.train.t5_diagnosis:TASK_OBJECT",
    "behrt_mlm": "recipes.train.behrt_tasks:MLM",
    "behrt_nextvisit": "recipes.train.behrt_tasks:NEXT_VISIT",
    "behrt_classify": "recipes.train.behrt_tasks:CLASSIFY",
    "cehrbert_mlm": "recipes.train.cehrbert_tasks:MLM",  # CEHR-BERT / BigBird (issue 12)
    "cehrbert_classify": "recipes.train.cehrbert_tasks:CLASSIFY",
    "ehrmamba_pretrain": "recipes.train.ehrmamba_tasks:PRETRAIN",  # EHRMamba (issue 12)
    "ehrmamba_classify": "recipes.train.ehrmamba_tasks:CLASSIFY",
    "ehrmamba_multitask": "recipes.train.ehrmamba_multitask:MULTITASK",  # EHRMamba MPF, several tasks (issue 12)
    "llama_coding": "recipes.train.causal_coding:TASK_OBJECT",
}


@dataclass
class Datasets:
    """What ``Task.datasets`` returns: features the collator batches, and the eval records behind them."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    eval_records: list[dict[str, Any]] = field(default_factory=list)


@runtime_checkable
class TaskProtocol(Protocol):
    """The declared interface (``Task`` below gives the optional parts a default)."""

    NAME: str
    ARCHITECTURE: str
    TASK: str
    keys: dict[str, Any]  # the task's own config keys: dotted name -> schema.Key
    defaults: dict[str, Any]  # dotted name -> default, for shared keys the task sets differently

    def build(self, config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any]]:
        """(model, tokenizer, info): the model to train (weights from ``checkpoint`` when resuming)."""

    def datasets(self, config: dict[str, Any], tokenizer: Any) -> Datasets:
        """Training and evaluation features (lists of dicts the collator takes)."""

    def collator(self, tokenizer: Any, model: Any, config: dict[str, Any], train: bool) -> Any:
        """A callable list[feature] -> dict of tensors (``train=False``: deterministic, for evaluation)."""

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        """The scalar training loss of one batch."""

    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 *, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        """Task metrics named ``<prefix>_*`` on ``records`` and samples to log."""

    def records(self, config: dict[str, Any], split: str) -> list[dict[str, Any]]:
        """The raw records of ``split`` (the final test reads ``data.test_split``)."""

    def probe_config(self, config: dict[str, Any]) -> Any:
        """The ``EhrDebugConfig`` the probes and ``ehrdebug doctor RUN`` read (written as ehrdebug.toml)."""


class Task:
    """Base class with the defaults a task may keep: final test, data files, loss-weighting, LoRA saving."""

    NAME = ""
    ARCHITECTURE = ""
    TASK = ""
    keys: dict[str, Any] = {}
    defaults: dict[str, Any] = {}

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        return model(**batch).loss

    def data_files(self, config: dict[str, Any]) -> dict[str, Any]:
        """What run.json's ``data`` says (absolute split paths, so the doctor can read the data)."""
        return {}

    def final_test(self, model: Any, tokenizer: Any, config: dict[str, Any], device: Any, run_dir: Path) -> dict[str, Any]:
        """Summary entries from the test split: ``test`` (``test_*`` metrics) and ``test_samples``."""
        try:
            records = self.records(config, config["data"]["test_split"])
        except UserError:
            records = []
        if not records:
            return {}
        metrics, samples = self.evaluate(model, tokenizer, records, config, device, prefix="test")
        return {"test": metrics, "test_samples": samples[:8]}

    def probe_inputs(self, config: dict[str, Any], model: Any, tokenizer: Any) -> dict[str, Any] | None:
        """Keyword arguments for ``probes.model_suite.run_model_probes`` (``model_probes``); None: the
        suite does not apply to this task (the doctor runs the probes that do)."""
        return None

    def prompt_format(self, config: dict[str, Any], tokenizer: Any) -> dict[str, Any] | None:
        """How the task turns a record into its prompt and response at inference, for run.json
        (``prompt_format``: ``prompt`` with ``{instruction}``/``{input}`` slots, ``response`` with ``{target}``,
        the record fields and ``default_instruction``), so the doctor's generation probes see what the model
        saw; None when the model reads the record's text as it is."""
        return None

    def modules_to_save(self, model: Any) -> list[str]:
        """Modules LoRA must train in full and save (new heads, custom embeddings)."""
        return []

    # the rest is the protocol; a subclass that forgets one fails loudly
    def build(self, config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any]]:
        raise NotImplementedError

    def datasets(self, config: dict[str, Any], tokenizer: Any) -> Datasets:
        raise NotImplementedError

    def collator(self, tokenizer: Any, model: Any, config: dict[str, Any], train: bool) -> Any:
        raise NotImplementedError

    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 *args: Any, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        raise NotImplementedError

    def records(self, config: dict[str, Any], split: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def probe_config(self, config: dict[str, Any]) -> Any:
        raise NotImplementedError


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> Any:
    """The registered task object for recipe ``name``; an unknown name is a one-line UserError."""
    target = TASKS.get(name)
    if target is None:
        raise UserError(f"unknown recipe {name!r} (expected one of: {', '.join(TASKS)})")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def task_module(config: dict[str, Any]) -> Any:
    """The task of ``config["recipe"]`` (kept under its old name for callers outside the loop)."""
    return get_task(config["recipe"])
