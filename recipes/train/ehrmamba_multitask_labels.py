"""The tasks of a multitask EHRMamba run and where each one's 0/1 label comes from.

A config lists its tasks (``tasks:``), each with a prompt token and a label source from ``LABEL_SOURCES``:

    tasks:
      - {name: mortality, token: "[MOR]", source: field, field: mortality}
      - {name: heart_failure, token: "[HF]", source: next_visit_prefix, prefixes: ["428"]}

``field``: a 0/1 field of the record (``mortality``; ``label`` in records that ``ehrdebug data build codes
--source meds ROOT --labels TASK`` wrote). ``next_visit_prefix``: 1 when a code of the record's next visit
(``next_visit_codes``) starts with one of ``prefixes`` (the ICD chapter or category: ``428`` heart failure),
compared with and without a vocabulary prefix (``ICD9CM//428.0`` matches ``428``). A record without the label
(no such field, no next visit) gives no row for that task. A new kind of label is one entry in
``LABEL_SOURCES``; nothing branches on a task's name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


@dataclass(frozen=True)
class LabelSource:
    """How to read one task's label from a record (``None``: the record has none); ``needs``: spec keys it reads."""

    read: Callable[[Mapping[str, Any], TaskSpec], int | None]
    needs: tuple[str, ...]
    doc: str


def _field(record: Mapping[str, Any], spec: TaskSpec) -> int | None:
    value = record.get(str(spec.field))
    return int(value) if value in (0, 1, True, False) else None


def _next_visit_prefix(record: Mapping[str, Any], spec: TaskSpec) -> int | None:
    codes = record.get("next_visit_codes")
    if not codes:  # no next visit observed: unknown, not negative
        return None
    prefixes = tuple(spec.prefixes)
    return int(
        any(str(c).startswith(prefixes) or str(c).rpartition("//")[2].startswith(prefixes) for c in codes)
    )


LABEL_SOURCES: dict[str, LabelSource] = {
    "field": LabelSource(_field, ("field",), "a 0/1 field of the record (mortality, label)"),
    "next_visit_prefix": LabelSource(
        _next_visit_prefix, ("prefixes",), "1 when a next-visit code starts with one of prefixes"
    ),
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TOKEN = re.compile(r"^\[[A-Z][A-Z0-9_]*\]$")


class TaskSpec(BaseModel):
    """One binary task of a multitask run (validated when the config loads)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    token: str
    source: str
    field: str | None = None
    prefixes: list[str] = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or value == "mean":  # "mean" would collide with eval_auroc_mean
            raise ValueError(
                f"task name {value!r} must be lower-case letters, digits and _ (it names metrics)"
            )
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: str) -> str:
        from ehrdebug.codetok import SPECIAL_TOKENS
        from ehrdebug.models.cehr_inputs import CEHR_SPECIAL_TOKENS

        if not _TOKEN.match(value) or value in (*SPECIAL_TOKENS, *CEHR_SPECIAL_TOKENS):
            raise ValueError(f"task token {value!r} must be a new bracketed upper-case token such as [MOR]")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value not in LABEL_SOURCES:
            raise ValueError(f"unknown label source {value!r} (expected one of: {', '.join(LABEL_SOURCES)})")
        return value

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        if any(not p.strip() for p in value):
            raise ValueError("an empty prefix would match every code")
        return value

    @model_validator(mode="after")
    def _needs(self) -> TaskSpec:
        for key in LABEL_SOURCES[self.source].needs:
            if not getattr(self, key):
                raise ValueError(f"task {self.name!r}: source {self.source} needs {key}")
        return self

    def label(self, record: Mapping[str, Any]) -> int | None:
        return LABEL_SOURCES[self.source].read(record, self)


def _distinct(specs: list[TaskSpec]) -> list[TaskSpec]:
    for attr in ("name", "token"):
        values = [getattr(s, attr) for s in specs]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"each task needs its own {attr} ({', '.join(twice)} given twice)")
    return specs


#: the ``tasks`` config key's type: at least one task, names and tokens distinct
TaskList = Annotated[list[TaskSpec], Field(min_length=1), AfterValidator(_distinct)]


@functools.cache
def _adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(TaskList)


def task_specs(config: Mapping[str, Any]) -> list[TaskSpec]:
    """The config's tasks in order (the first is the primary one)."""
    return _adapter().validate_python(config["tasks"])


def labelled(
    records: Sequence[Mapping[str, Any]], spec: TaskSpec
) -> tuple[list[Mapping[str, Any]], list[int]]:
    """The records that have ``spec``'s label, and those labels (same order)."""
    kept, labels = [], []
    for record in records:
        y = spec.label(record)
        if y is not None:
            kept.append(record)
            labels.append(y)
    return kept, labels


DEFAULT_TASKS: list[dict[str, Any]] = [
    {"name": "mortality", "token": "[MOR]", "source": "field", "field": "mortality"},
    {"name": "heart_failure", "token": "[HF]", "source": "next_visit_prefix", "prefixes": ["428"]},
]
