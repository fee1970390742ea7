"""Recipe configs: YAML files over built-in defaults, with ``key=value`` overrides from the command line.

Every knob the seed-000/002 failures and fixes turn on is a key here, so a fix-recipe is a config edit.
Unknown keys are user errors (one line naming the closest key): a typo must never silently train the
wrong model for an hour on a rented GPU.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

RECIPES = ("bart_ehrgen", "t5_diagnosis")

GENERATION_DEFAULTS: dict[str, Any] = {
    "do_sample": False,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "num_beams": 1,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "max_new_tokens": 64,
    "eos": None,  # the dataset's end token (e.g. "<END>"); None keeps the model's own EOS
    "block_pretrained_eos": False,  # bad_words_ids=[[pretrained eos]] so the model must end on `eos`
    "bad_words": [],  # more strings never to generate
    "early_stopping": False,  # beam search: stop when num_beams candidates are finished
}

DEFAULTS: dict[str, Any] = {
    "recipe": "bart_ehrgen",
    "size": "small",
    "base": "sample_data/bases/bart",  # a local dir (save_pretrained) or a hub id (facebook/bart-base)
    "out": "runs/run",
    "seed": 0,
    "device": "auto",  # auto | cuda | mps | cpu
    "fixes": [],  # written by `ehrdebug fix`: which fix-recipes changed this config, and how
    "precision": "auto",  # auto (bf16/fp16 autocast on CUDA, fp32 elsewhere) | fp32 | bf16 | fp16
    "threads": 0,  # torch CPU threads; 0 = leave torch's default
    "resume": False,  # continue from the last checkpoint in `out`
    "data": {
        "task": "seq2seq",  # ehrdebug.data.sample.load_task(task, split)
        "root": None,  # directory holding <task>/<split>.jsonl; None = the shipped sample data
        "codes": None,  # code vocabulary (codes.txt); None = <root>/seq2seq/codes.txt
        "max_train": None,  # cap on training records
        "eval_split": "validation",
        "test_split": "test",
    },
    # tokens: seed 000
    "special_tokens": ["<demo>", "<v>", "<\\v>", "<END>"],
    "register_special_tokens": True,  # add them to the tokenizer as single tokens
    "new_token_init": "mean",  # random | mean | description
    "add_code_tokens": 0,  # register the top-N most frequent codes as whole tokens
    # inputs and labels: seed 002
    "max_length": 128,
    "max_target_length": 128,
    "label_pad": -100,  # -100 (ignored by the loss) | pad (pad id: the model learns to emit padding)
    "pad_to_max_length": False,
    "drop_string_columns": True,  # only tensors reach the collator
    "task_prefix": "",  # T5: prepended to every training input
    "inference_prefix": None,  # prepended at generation; None = task_prefix
    "decoder_prompt": True,  # BART: the decoder also writes the prompt (seed 000's setup)
    # optimisation
    "model_dropout": None,  # replaces the base's dropout rate (null keeps it)
    "augment": {"copies": 1, "drop_phrases": 0.0},  # T5: extra copies of each training input with phrases dropped
    "epochs": 6,
    "max_steps": None,
    "max_minutes": None,  # stop (and checkpoint) after this much training time
    "batch_size": 16,
    "grad_accum": 1,
    "lr": 5e-4,
    "weight_decay": 0.01,
    "warmup_steps": 50,
    "scheduler": "linear",  # linear | cosine | constant
    "max_grad_norm": 1.0,
    "log_every": 10,
    "eval_every": None,  # steps between evaluations; None = once per epoch
    # patience null = off; min_epochs: never stop before this many epochs (a metric that starts at 0 must get going)
    "early_stopping": {"patience": 3, "metric": "eval_loss", "min_delta": 0.0, "min_epochs": 0},
    "keep_checkpoints": 2,
    "save_best": True,  # keep the best checkpoint by the early-stopping metric as checkpoints/best
    "num_eval_generations": 32,  # validation prompts generated at each evaluation
    "num_log_samples": 4,  # of which logged as samples
    "final_test": True,  # after training: generate on the test split with the best weights
    "num_test_generations": 64,  # test records generated at the end (null = all)
    "model_probes": False,  # probes.model_suite.run_model_probes: false | final | every_eval (tens of s each)
    "use_lora": False,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"], "modules_to_save": []},
    "generation": GENERATION_DEFAULTS,
}


def flat_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        keys.append(name)
        if isinstance(value, dict):
            keys.extend(flat_keys(value, name + "."))
    return keys


def _closest(key: str, known: list[str]) -> str:
    leaf = {k.rsplit(".", 1)[-1]: k for k in known}
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.5) or [
        leaf[m] for m in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaf), n=1, cutoff=0.6)
    ]
    return f" (did you mean {match[0]!r}?)" if match else ""


def parse_value(text: str) -> Any:
    """``1e-4`` → 1e-4, ``true`` → True, ``null`` → None, ``[a, b]`` → list; otherwise the string."""
    import yaml

    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _merge(base: dict[str, Any], update: dict[str, Any], known: list[str], where: str, prefix: str = "") -> None:
    for key, value in update.items():
        name = f"{prefix}{key}"
        if name not in known:
            raise UserError(f"{where}: unknown config key {name!r}{_closest(name, known)}")
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            _merge(base[key], value, known, where, name + ".")
        else:
            base[key] = _coerce(base.get(key), value)


def _coerce(default: Any, value: Any) -> Any:
    if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
        parsed = parse_value(value)  # YAML reads "1e-4" as a string
        return parsed if isinstance(parsed, (int, float)) else value
    return value


def apply_overrides(config: dict[str, Any], overrides: list[str], where: str = "override") -> dict[str, Any]:
    """Apply ``a.b=value`` strings; an unknown key is a UserError that names the closest one."""
    known = flat_keys(DEFAULTS) + flat_keys(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise UserError(f"{where}: expected key=value, got {item!r}")
        if key not in known:
            raise UserError(f"{where}: unknown config key {key!r}{_closest(key, known)}")
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = _coerce(node.get(parts[-1]), parse_value(raw))
    return config


def default_config(recipe: str = "bart_ehrgen") -> dict[str, Any]:
    config = copy.deepcopy(DEFAULTS)
    config["recipe"] = recipe
    if recipe == "t5_diagnosis":
        config.update(
            base="sample_data/bases/t5", special_tokens=[], register_special_tokens=False, decoder_prompt=False
        )
        config["data"]["task"] = "diagnosis"
        config["constrain_to_labels"] = False  # decode only diagnosis names seen in the training split
        config["generation"]["max_new_tokens"] = 24
        config["lora"]["target_modules"] = ["q", "v"]
    return config


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Defaults ← YAML file ← overrides. ``path`` may be None (defaults of ``recipe=`` in overrides)."""
    import yaml

    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.is_file():
            raise UserError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise UserError(f"{p}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from exc
        if not isinstance(data, dict):
            raise UserError(f"{p}: expected a mapping of config keys at the top level")
    overrides = list(overrides or [])
    recipe = data.get("recipe", "bart_ehrgen")
    for item in overrides:
        if item.startswith("recipe="):
            recipe = item.split("=", 1)[1]
    if recipe not in RECIPES:
        raise UserError(f"{where}: unknown recipe {recipe!r} (expected one of: {', '.join(RECIPES)})")
    config = default_config(recipe)
    _merge(config, data, flat_keys(config), where)
    apply_overrides(config, overrides)
    _validate(config, where)
    return config


def _validate(config: dict[str, Any], where: str) -> None:
    choices = {
        "new_token_init": ("random", "mean", "description"),
        "scheduler": ("linear", "cosine", "constant"),
        "device": ("auto", "cuda", "mps", "cpu"),
        "precision": ("auto", "fp32", "bf16", "fp16"),
    }
    for key, allowed in choices.items():
        if config[key] not in allowed:
            raise UserError(f"{where}: {key} must be one of {', '.join(allowed)} (got {config[key]!r})")
    if config["model_probes"] not in (False, True, "final", "every_eval"):
        raise UserError(f"{where}: model_probes must be false, final or every_eval (got {config['model_probes']!r})")
    if config["label_pad"] not in (-100, "pad"):
        raise UserError(f"{where}: label_pad must be -100 or pad (got {config['label_pad']!r})")
    for key in ("epochs", "batch_size", "grad_accum"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise UserError(f"{where}: {key} must be a positive integer (got {config[key]!r})")
    augment = config["augment"]
    if not isinstance(augment["copies"], int) or augment["copies"] < 1 or not 0 <= float(augment["drop_phrases"]) < 1:
        raise UserError(f"{where}: augment.copies must be a positive integer and augment.drop_phrases in [0, 1)")
    if augment["copies"] > 1 and config["recipe"] != "t5_diagnosis":
        raise UserError(f"{where}: augment is implemented for t5_diagnosis only (got recipe {config['recipe']})")
    if config["model_dropout"] is not None and not 0 <= float(config["model_dropout"]) < 1:
        raise UserError(f"{where}: model_dropout must be in [0, 1) or null (got {config['model_dropout']!r})")
    if not isinstance(config["lr"], (int, float)) or config["lr"] <= 0:
        raise UserError(f"{where}: lr must be a positive number (got {config['lr']!r})")
