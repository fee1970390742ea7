"""Evidence a training run keeps for the doctor: a few real collated batches and per-record test predictions.

Probes judge what the run really trained on and predicted, never a setting saying so; but a run directory
alone holds only weights and curves. Training therefore keeps, under ``artifacts/evidence/``:

- ``batches-<name>/batch-N.safetensors`` + ``index.json``: the first few batches exactly as the collator
  returned them (before the model saw them, so a batch that crashes the first step is still kept), with the
  tokenizer's structural ids and the collator's settings (masking rate, replacement shares, label value
  for "no target"), so ``data.mlm_batch``/``data.id_ranges`` run even when the run died before a checkpoint;
- ``predictions-<split>.jsonl`` + ``predictions-<split>.json``: one row per test record (binary:
  ``patient_id``, ``y_true``, ``y_prob``; next visit: ``patient_id``, ``truth``, ``ranked`` codes best
  first) and a header (``kind``, ``ks``, ``train_counts``, ``threshold`` …) for ``metrics.classifier``/``next_visit``.

docs/run-format.md describes the files. Readers return None when a run kept no such evidence.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

EVIDENCE = Path("artifacts") / "evidence"
FORMAT = 1
BATCHES = 4  # the first few batches: enough positions for the masking-rate test, small on disk
KINDS = ("binary", "next_visit")


def batches_dir(run_dir: str | Path, name: str = "train") -> Path:
    """Where the kept batches of ``name`` live (``artifacts/evidence/batches-<name>/``)."""
    return evidence_dir(run_dir) / f"batches-{name}"


def evidence_dir(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / EVIDENCE


def _write_json(path: Path, data: Any) -> None:
    """Write whole or not at all (a reader never sees half a header)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a JSON object")
    return data


# -- batches ------------------------------------------------------------------------------------------
def tokenizer_facts(tokenizer: Any) -> dict[str, Any]:
    """The ids a batch probe needs to tell structure from codes: every special token, mask, pad, unk, size."""
    if tokenizer is None:
        return {}
    special: dict[str, int] = {}
    for token in list(getattr(tokenizer, "all_special_tokens", None) or []):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid >= 0:
            special[str(token)] = tid
    for tid, token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items():
        if getattr(token, "special", False):
            special.setdefault(str(token), int(tid))
    facts: dict[str, Any] = {"special_ids": special, "vocab_size": len(tokenizer)}
    for name in ("mask_token_id", "pad_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        facts[name] = int(value) if isinstance(value, int) else None
    return facts


def mlm_settings(block: Mapping[str, Any] | None) -> dict[str, Any]:
    """A masked-LM config block (``probability``, ``mask_share``, ``random_share``, ``ignore_index``,
    ``mask_special_tokens``) in the names the batch probe takes; {} when the run has none."""
    if not isinstance(block, Mapping) or block.get("probability") is None:
        return {}
    out: dict[str, Any] = {"mlm_probability": float(block["probability"])}
    if block.get("mask_share") is not None and block.get("random_share") is not None:
        mask, rand = float(block["mask_share"]), float(block["random_share"])
        out["replace_probs"] = [mask, rand, round(max(0.0, 1.0 - mask - rand), 6)]
    for key in ("ignore_index", "mask_special_tokens"):
        if key in block:
            out[key] = block[key]
    return out


def _tensors(batch: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The batch's tensors (contiguous, on the CPU) and the names of what is not a tensor (not saved)."""
    tensors, dropped = {}, []
    for key, value in batch.items():
        if hasattr(value, "detach") and hasattr(value, "shape"):
            tensors[str(key)] = value.detach().cpu().contiguous()
        else:
            dropped.append(str(key))
    return tensors, dropped


class BatchRecorder:
    """Keeps the first ``limit`` batches handed to ``add`` (then costs one comparison per call).

    Each batch is written as it arrives, so the evidence survives a crash in the very step that reads it.
    ``enabled=False`` (another rank, a resumed run) records nothing.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        name: str = "train",
        *,
        tokenizer: Any = None,
        settings: Mapping[str, Any] | None = None,
        limit: int = BATCHES,
        enabled: bool = True,
    ) -> None:
        self.folder = batches_dir(run_dir, name)
        self.limit = limit if enabled else 0
        self.index: dict[str, Any] = {
            "format": FORMAT,
            "name": name,
            "created": time.time(),
            "batches": [],
            "tokenizer": tokenizer_facts(tokenizer),
            "collator": dict(settings or {}),
            "source": "the first batches the collator returned, before the model",
        }
        self.count = 0

    def add(self, batch: Mapping[str, Any]) -> None:
        if self.count >= self.limit:
            return
        from safetensors.torch import save_file

        tensors, dropped = _tensors(batch)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"batch-{self.count}.safetensors"
        tmp = self.folder / f".{name}.tmp"
        save_file(tensors, str(tmp))
        tmp.replace(self.folder / name)
        self.index["batches"].append(
            {
                "file": name,
                "shapes": {k: list(v.shape) for k, v in tensors.items()},
                "dtypes": {k: str(v.dtype).removeprefix("torch.") for k, v in tensors.items()},
                "not_saved": dropped,
            }
        )
        self.count += 1
        _write_json(self.folder / "index.json", self.index)


def save_batches(
    run_dir: str | os.PathLike[str],
    name: str,
    batches: Iterable[Mapping[str, Any]],
    *,
    tokenizer: Any = None,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``batches`` (dicts of tensors, as a collator returns them) with their index; the folder."""
    items = list(batches)
    recorder = BatchRecorder(run_dir, name, tokenizer=tokenizer, settings=settings, limit=len(items))
    for batch in items:
        recorder.add(batch)
    if not items:
        recorder.folder.mkdir(parents=True, exist_ok=True)
        _write_json(recorder.folder / "index.json", recorder.index)
    return recorder.folder


@dataclass
class SavedBatches:
    """What ``load_batches`` returns: the batches (dicts of tensors) and their index (tokenizer, collator)."""

    batches: list[dict[str, Any]]
    index: dict[str, Any]
    folder: Path

    @property
    def tokenizer(self) -> dict[str, Any]:
        return self.index.get("tokenizer") or {}

    @property
    def collator(self) -> dict[str, Any]:
        return self.index.get("collator") or {}


def load_batches(run_dir: str | os.PathLike[str], name: str = "train") -> SavedBatches | None:
    """The batches a run kept under ``name``; None when it kept none; a UserError when they are unreadable."""
    folder = batches_dir(run_dir, name)
    if not (folder / "index.json").is_file():
        return None
    from safetensors.torch import load_file

    index = _read_json(folder / "index.json")
    batches = []
    for entry in index.get("batches") or []:
        path = folder / str(entry.get("file", ""))
        try:
            batches.append(load_file(str(path)))
        except (OSError, ValueError, RuntimeError) as exc:  # safetensors raises its own error subclasses
            raise UserError(
                f"cannot read saved batch {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from exc
    return SavedBatches(batches=batches, index=index, folder=folder)


# -- predictions --------------------------------------------------------------------------------------
def _kind(rows: Sequence[Mapping[str, Any]]) -> str:
    first = rows[0] if rows else {}
    if "y_prob" in first:
        return "binary"
    if "ranked" in first:
        return "next_visit"
    raise UserError("prediction rows need y_true/y_prob (binary) or truth/ranked (next visit)")


def save_predictions(
    run_dir: str | os.PathLike[str],
    split: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    kind: str | None = None,
    **meta: Any,
) -> Path:
    """Write one JSON line per record and a header (``kind``, ``rows``, and ``meta``: ``ks``, ``train_counts``,
    ``threshold``, ``label_field`` …); the JSONL path."""
    from ehrdebug.runstore.envinfo import world_rank

    kind = kind or _kind(rows)
    if kind not in KINDS:
        raise UserError(f"unknown prediction kind {kind!r} (expected one of: {', '.join(KINDS)})")
    folder = evidence_dir(run_dir)
    path = folder / f"predictions-{split}.jsonl"
    if world_rank() != 0:  # every rank runs the final test; only rank 0 writes the run
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(dict(row), default=str) + "\n")
    tmp.replace(path)
    _write_json(
        folder / f"predictions-{split}.json",
        {"format": FORMAT, "kind": kind, "split": split, "rows": len(rows), "created": time.time(), **meta},
    )
    return path


def save_binary_predictions(
    run_dir: str | os.PathLike[str],
    split: str,
    y_true: Sequence[Any],
    y_prob: Sequence[float],
    ids: Sequence[Any] | None = None,
    **meta: Any,
) -> Path:
    """Per-record labels and predicted probabilities of a binary task (``ids``: patient ids, same order)."""
    probs = [float(p) for p in (y_prob.tolist() if hasattr(y_prob, "tolist") else y_prob)]
    if len(y_true) != len(probs):
        raise ValueError(f"{len(y_true)} labels but {len(probs)} probabilities")
    ids = list(ids) if ids is not None else [None] * len(probs)
    rows = [
        {"patient_id": pid, "y_true": int(y), "y_prob": p}
        for pid, y, p in zip(ids, y_true, probs, strict=True)
    ]
    return save_predictions(run_dir, split, rows, kind="binary", **meta)


def top_k(scores: Any, vocab: Sequence[str], k: int, exclude: Iterable[str] = ()) -> list[list[str]]:
    """Each row's ``k`` highest-scoring vocabulary entries, best first, ``exclude`` (special tokens) left out."""
    import numpy as np

    matrix = np.asarray(scores.detach().cpu().numpy() if hasattr(scores, "detach") else scores, dtype=float)
    drop = set(exclude)
    keep = np.array([v not in drop for v in vocab], dtype=bool)
    names = np.asarray(list(vocab), dtype=object)[keep]
    order = np.argsort(-matrix[:, keep], axis=1, kind="stable")[:, :k]
    return [names[row].tolist() for row in order]


def save_next_visit_predictions(run_dir: str | os.PathLike[str], split: str, truth: Sequence[Sequence[str]], scores: Any,
                                vocab: Sequence[str], train_targets: Sequence[Sequence[str]], *, ids: Sequence[Any] | None = None,
                                ks: Sequence[int] = (10, 20), exclude: Iterable[str] = (), **meta: Any) -> Path:  # fmt: skip
    """Per-patient next-visit codes and the model's top ``max(ks)`` codes, with the training targets' code
    counts (patients whose next visit holds each code) for the popularity baseline."""
    k = max(int(x) for x in ks)
    ranked = top_k(scores, vocab, k, exclude)
    if len(ranked) != len(truth):
        raise ValueError(f"{len(truth)} next visits but {len(ranked)} score rows")
    ids = list(ids) if ids is not None else [None] * len(truth)
    counts = Counter(c for codes in train_targets for c in set(codes))
    rows = [
        {"patient_id": pid, "truth": list(t), "ranked": r}
        for pid, t, r in zip(ids, truth, ranked, strict=True)
    ]
    return save_predictions(
        run_dir,
        split,
        rows,
        kind="next_visit",
        ks=[int(x) for x in ks],
        train_counts=dict(counts.most_common()),
        **meta,
    )


@dataclass
class Predictions:
    """What ``load_predictions`` returns: ``kind`` (binary | next_visit), the rows and the header."""

    kind: str
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def load_predictions(run_dir: str | os.PathLike[str], split: str = "test") -> Predictions | None:
    """The predictions a run kept for ``split``; None when it kept none; a UserError when unreadable."""
    folder = evidence_dir(run_dir)
    path = folder / f"predictions-{split}.jsonl"
    if not path.is_file():
        return None
    header = folder / f"predictions-{split}.json"
    meta = _read_json(header) if header.is_file() else {}
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise UserError(f"{path}:{lineno}: not valid JSON") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{lineno}: not a JSON object")
            rows.append(row)
    kind = str(meta.get("kind") or (_kind(rows) if rows else "binary"))
    if kind not in KINDS:
        raise UserError(f"{header}: unknown prediction kind {kind!r}")
    return Predictions(kind=kind, rows=rows, meta=meta, path=path)
