"""Project configuration: ``[tool.ehrdebug]`` in pyproject.toml or a top-level ``ehrdebug.toml``.

CLI flags override the file. Unknown keys are an error that names the closest valid key, because
a misspelt threshold silently ignored is exactly the kind of bug this tool exists to catch.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ehrdebug.errors import UserError

DEFAULT_THRESHOLDS: dict[str, float] = {
    # tokenizer.codes: mean pieces per code above which fragmentation is a warning
    "code_pieces_warn": 1.5,
    # tokenizer.codes: unknown-token rate above which it is a failure
    "unk_rate_fail": 0.01,
    # tokenizer.roundtrip: share of examples that must round-trip exactly
    "roundtrip_min": 0.99,
    # tokenizer.lengths: share truncated above which it is a warning
    "truncated_warn": 0.01,
    # data.labels: minority share under which AUPRC is recommended
    "minority_share": 0.2,
    # model.special_token_probability: probability under which the expected token is a failure
    "expected_token_prob_fail": 0.01,
    # model.special_token_probability: share of mass on a foreign EOS that counts as dominance
    "eos_dominance": 0.5,
    # curves.memorization: train loss under which a run counts as memorising
    "near_zero_loss": 0.005,
    # curves.overfitting: relative rise of eval loss over its best that counts as overfitting
    "overfit_rise": 0.05,
    # curves.memorization: validation loss this many times the training loss warns / fails
    "memorization_gap_warn": 3.0,
    "memorization_gap_fail": 10.0,
    # curves.divergence: robust z-score of a log-loss jump that counts as a spike
    "spike_z": 6.0,
    # curves.stalled: relative drop from the initial loss under which nothing was learnt (fail / warn)
    "stall_drop_fail": 0.02,
    "stall_drop_warn": 0.05,
    # curves.undertrained: relative fall of validation loss over the last evaluations
    "still_falling": 0.02,
    # curves.undertrained: fall the fitted curve still expects over the next evaluations (as many as fitted)
    # from which training longer is advised; under it a flattening curve is only reported with its figure
    "gain_soon_warn": 0.1,
    # curves.memorization: training and validation loss both under this is suspicious (leak, target in input)
    "both_near_zero_loss": 0.01,
    # metrics.loss_vs_accuracy: loss under which the model is confident; accuracy under which it warns / fails
    "low_loss": 0.223,
    "accuracy_warn": 0.5,
    "accuracy_fail": 0.1,
}


@dataclass
class EhrDebugConfig:
    structural_tokens: list[str] = field(default_factory=list)
    end_token: str = ""
    code_systems: list[str] = field(default_factory=list)
    custom_code_systems: dict[str, str] = field(default_factory=dict)
    text_field: str = ""
    target_field: str = ""
    label_field: str = ""
    patient_field: str = ""
    max_length: int = 512
    max_target_length: int = 128
    task_prefix: str = ""
    top_n_codes: int = 1000
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))

    def threshold(self, name: str) -> float:
        return float(self.thresholds.get(name, DEFAULT_THRESHOLDS[name]))

    def with_overrides(self, **overrides: Any) -> EhrDebugConfig:
        """Return a copy with every non-None override applied (CLI flags win over the file)."""
        clean = {k: v for k, v in overrides.items() if v is not None and v != [] and v != ""}
        _check_keys(clean)
        return replace(self, **clean)


def _valid_keys() -> list[str]:
    return [f.name for f in fields(EhrDebugConfig)]


def _check_keys(data: dict[str, Any], where: str = "configuration") -> None:
    valid = _valid_keys()
    for key in data:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
            raise UserError(f"unknown key {key!r} in {where}{hint}")


_STR_KEYS = ("end_token", "text_field", "target_field", "label_field", "patient_field", "task_prefix")
_INT_KEYS = ("max_length", "max_target_length", "top_n_codes")
_LIST_KEYS = ("structural_tokens", "code_systems")


def from_mapping(data: dict[str, Any], where: str = "configuration") -> EhrDebugConfig:
    if not isinstance(data, dict):
        raise UserError(f"{where}: the ehrdebug settings must be a table, got {type(data).__name__}")
    _check_keys(data, where)
    data = dict(data)
    if "thresholds" in data:
        if not isinstance(data["thresholds"], dict):
            raise UserError(f"thresholds in {where} must be a table ([thresholds]), got {data['thresholds']!r}")
        unknown = set(data["thresholds"]) - set(DEFAULT_THRESHOLDS)
        for key in unknown:
            close = difflib.get_close_matches(key, list(DEFAULT_THRESHOLDS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserError(f"unknown threshold {key!r} in {where}{hint}")
        for key, value in data["thresholds"].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"threshold {key!r} in {where} must be a number, got {value!r}")
        data["thresholds"] = {**DEFAULT_THRESHOLDS, **data["thresholds"]}
    for key in _LIST_KEYS:
        if isinstance(data.get(key), str):
            data[key] = split_tokens(data[key])
    _check_types(data, where)
    return EhrDebugConfig(**data)


def _check_types(data: dict[str, Any], where: str) -> None:
    """A value of the wrong type is an error naming the key, not a crash or a setting silently ignored."""
    for key, value in data.items():
        if key in _STR_KEYS and not isinstance(value, str):
            raise UserError(f"{key} in {where} must be a string, got {value!r}")
        if key in _INT_KEYS and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"{key} in {where} must be a whole number of at least 1, got {value!r}")
        if key in _LIST_KEYS and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise UserError(f"{key} in {where} must be a list of strings, got {value!r}")
        if key == "custom_code_systems" and not (
                isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            raise UserError(f"{key} in {where} must be a table of name = \"regex\", got {value!r}")
    _check_code_systems(data.get("code_systems") or [], data.get("custom_code_systems") or {}, where)


def _check_code_systems(names: list[str], custom: dict[str, str], where: str) -> None:
    """Code-system names and custom regexes are checked when the file is read, not when a probe runs."""
    import re

    from ehrdebug.codes import BUILTIN

    for name, pattern in custom.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UserError(f"custom_code_systems.{name} in {where}: invalid regex: {exc}") from exc
    for name in names:
        if name not in BUILTIN and name not in custom:
            raise UserError(f"unknown code system {name!r} in {where} (built-in: {', '.join(BUILTIN)};"
                            " add your own under [custom_code_systems])")


def split_tokens(value: str) -> list[str]:
    """Parse ``'<demo>,<v>,<\\v>,<END>'`` (commas or whitespace) into a token list."""
    parts = [p.strip() for chunk in value.split(",") for p in chunk.split()]
    return [p for p in parts if p]


def _load_toml(path: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read {path}: not UTF-8 text (bad byte at offset {exc.start})") from exc


def load_config(start: str | None = None, explicit: str | None = None) -> EhrDebugConfig:
    """Load from ``explicit`` if given, else the nearest ehrdebug.toml / pyproject.toml upwards from ``start``."""
    if explicit:
        if not os.path.isfile(explicit):
            raise UserError(f"config file not found: {explicit}")
        data = _load_toml(explicit)
        tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
        section = tool.get("ehrdebug", data) if explicit.endswith("pyproject.toml") else data
        nested = isinstance(section, dict) and isinstance(section.get("ehrdebug"), dict)
        return from_mapping(section["ehrdebug"] if nested else section, explicit)
    here = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(here, "ehrdebug.toml")
        if os.path.isfile(candidate):
            data = _load_toml(candidate)
            return from_mapping(data.get("ehrdebug", data), candidate)
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            tool = _load_toml(candidate).get("tool")
            section = tool.get("ehrdebug") if isinstance(tool, dict) else None
            if section is not None:
                return from_mapping(section, candidate)
        parent = os.path.dirname(here)
        if parent == here:
            return EhrDebugConfig()
        here = parent
