"""Token pieces for the token inspector: what each piece is and whether it carries loss.

Seed 000's bug is a structural token (``<demo>``) and codes (``V3001``) cut into several pieces; seed
002's is labels padded with the pad id instead of -100, so padding carries loss. ``inspect_text`` and
``inspect_labels`` classify every piece so the screen can colour those cases without any logic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

IGNORE_INDEX = -100

# piece kinds, in the order the legend shows them
SPECIAL = "special"  # the tokenizer's own special tokens (<s>, </s>, <pad>)
STRUCTURAL = "structural"  # a structural token kept whole (<demo> as one id)
BROKEN = "broken"  # a piece of a structural token cut into several pieces
CODE = "code"  # a medical code kept whole
CODE_PART = "code-part"  # a piece of a code cut into several pieces
TEXT = "text"
MASKED = "masked"  # label -100: no loss
PAD_LOSS = "pad-loss"  # a pad id in the labels that is *not* -100: padding carries loss

STYLE = {
    SPECIAL: "bold magenta",
    STRUCTURAL: "bold green",
    BROKEN: "bold white on red",
    CODE: "bold cyan",
    CODE_PART: "black on yellow",
    TEXT: "",
    MASKED: "dim",
    PAD_LOSS: "bold white on red",
}

LEGEND = {
    SPECIAL: "tokenizer special",
    STRUCTURAL: "structural, whole",
    BROKEN: "structural, CUT",
    CODE: "code, whole",
    CODE_PART: "code, cut",
    MASKED: "label -100 (no loss)",
    PAD_LOSS: "pad WITH loss",
}


@dataclass
class Piece:
    index: int
    id: int
    piece: str
    kind: str = TEXT
    span: tuple[int, int] | None = None
    unit: str = ""  # the structural token or code this piece belongs to
    label: int | None = None

    @property
    def carries_loss(self) -> bool | None:
        return None if self.label is None else self.label != IGNORE_INDEX


@dataclass
class Inspection:
    """Pieces of one text plus the figures a user checks first."""

    text: str
    pieces: list[Piece] = field(default_factory=list)
    broken: dict[str, list[str]] = field(default_factory=dict)  # structural token -> its pieces
    codes_cut: dict[str, list[str]] = field(default_factory=dict)  # code -> its pieces
    codes_whole: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the notes that describe a bug (shown as such)
    pad_loss: int = 0  # label positions that carry loss on the pad id (seed 002)

    def summary(self) -> list[str]:
        lines = [f"{len(self.pieces)} pieces"]
        for token, parts in self.broken.items():
            lines.append(f"structural token {token} is cut into {len(parts)} pieces: {parts}")
        if self.codes_cut:
            shown = ", ".join(f"{c}→{p}" for c, p in list(self.codes_cut.items())[:4])
            total = len(self.codes_cut) + self.codes_whole
            lines.append(f"{len(self.codes_cut)}/{total} codes cut: {shown}")
        return lines + self.notes


def _units(
    text: str, structural: Sequence[str], code_patterns: Sequence[re.Pattern[str]]
) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, surface) of every structural token and code occurrence, structural first."""
    units: list[tuple[int, int, str, str]] = []
    taken: list[tuple[int, int]] = []
    for token in sorted(set(structural), key=len, reverse=True):
        for m in re.finditer(re.escape(token), text):
            if not any(m.start() < e and s < m.end() for s, e in taken):
                units.append((m.start(), m.end(), STRUCTURAL, token))
                taken.append((m.start(), m.end()))
    for pattern in code_patterns:
        for m in pattern.finditer(text):
            if not any(m.start() < e and s < m.end() for s, e in taken):
                units.append((m.start(), m.end(), CODE, m.group(0)))
                taken.append((m.start(), m.end()))
    return sorted(units)


def code_patterns(systems: Sequence[str] | None = None, texts: Sequence[str] = ()) -> list[re.Pattern[str]]:
    """Patterns of the named code systems, or of the systems detected in ``texts``."""
    from ehrdebug.codes import BUILTIN, detect_systems, resolve_systems

    chosen = resolve_systems(systems) if systems else detect_systems(texts) if texts else []
    if not chosen and texts:
        chosen = [BUILTIN["icd9"], BUILTIN["icd9_nodot"]]
    return [s.regex for s in chosen]


def inspect_text(
    tokenizer: Any,
    text: str,
    structural: Sequence[str] = (),
    patterns: Sequence[re.Pattern[str]] = (),
    add_special_tokens: bool = True,
) -> Inspection:
    """Tokenise ``text`` and classify every piece (needs offsets: a fast tokenizer)."""
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    result = Inspection(text=text)
    units = _units(text, structural, patterns)
    owners: dict[int, list[int]] = {}
    for i, (tid, tok, (start, end)) in enumerate(zip(ids, tokens, offsets, strict=False)):
        piece = Piece(i, int(tid), str(tok), span=(start, end))
        if tid in special_ids and start == end:
            piece.kind = SPECIAL
        else:
            for u, (us, ue, _kind, _surface) in enumerate(units):
                if start < ue and us < end:
                    owners.setdefault(u, []).append(i)
                    break
        result.pieces.append(piece)
    for u, members in owners.items():
        us, ue, kind, surface = units[u]
        # whole when one piece covers the unit (a leading space or 'Ġ' in the piece is fine)
        whole = len(members) == 1
        for i in members:
            piece = result.pieces[i]
            piece.unit = surface
            if kind == STRUCTURAL:
                piece.kind = STRUCTURAL if whole else BROKEN
            else:
                piece.kind = CODE if whole else CODE_PART
        parts = [result.pieces[i].piece for i in members]
        if kind == STRUCTURAL and not whole:
            result.broken.setdefault(surface, parts)
        elif kind == CODE:
            if whole:
                result.codes_whole += 1
            else:
                result.codes_cut.setdefault(surface, parts)
    return result


def inspect_labels(
    tokenizer: Any, labels: Sequence[int], input_ids: Sequence[int] | None = None
) -> Inspection:
    """Pieces of a training example's labels: which positions carry loss, and padding that does.

    For a decoder-only model ``input_ids`` aligns with ``labels``; for a seq2seq model the labels are
    their own sequence, so the pieces shown are the label ids themselves (-100 shown as masked).
    """
    pad_id = getattr(tokenizer, "pad_token_id", None)
    source = list(input_ids) if input_ids is not None and len(input_ids) == len(labels) else None
    result = Inspection(text="")
    pad_loss = 0
    for i, label in enumerate(labels):
        label = int(label)
        tid = (
            source[i]
            if source is not None
            else (label if label != IGNORE_INDEX else (pad_id if pad_id is not None else 0))
        )
        tok = tokenizer.convert_ids_to_tokens([int(tid)])[0]
        piece = Piece(i, int(tid), str(tok), label=label)
        if label == IGNORE_INDEX:
            piece.kind = MASKED
        elif pad_id is not None and label == pad_id:
            piece.kind = PAD_LOSS
            pad_loss += 1
        result.pieces.append(piece)
    with_loss = sum(1 for p in result.pieces if p.carries_loss)
    result.pad_loss = pad_loss
    result.notes.append(f"{with_loss}/{len(labels)} label positions carry loss")
    if pad_loss:
        problem = f"{pad_loss} of them are the pad id {pad_id}: padding is trained on (mask it with -100: mask-label-padding)"
        result.notes.append(problem)
        result.problems.append(problem)
    return result


def example_fields(record: dict[str, Any], text_field: str = "", target_field: str = "") -> tuple[str, str]:
    """The input text and target of a data record, guessing common field names when not configured."""

    def pick(name: str, guesses: Sequence[str]) -> str:
        if name and isinstance(record.get(name), str):
            return record[name]
        for key in guesses:
            if isinstance(record.get(key), str):
                return record[key]
        return ""

    text = pick(text_field, ("text", "input", "source", "prompt", "sequence", "note"))
    target = pick(target_field, ("target", "output", "label_text", "answer", "completion"))
    return text, target


def model_type_of(architecture: str, task: str = "") -> str:
    """seq2seq / causal / mlm from an architecture name (what the collator and labels depend on)."""
    name = f"{architecture} {task}".lower()
    if any(k in name for k in ("conditionalgeneration", "seq2seq", "t5", "bart")):
        return "seq2seq"
    if any(k in name for k in ("maskedlm", "mlm", "behrt", "bert", "pretraining")):
        return "mlm"
    return "causal"


def training_example(
    tokenizer: Any,
    record: dict[str, Any],
    model_type: str,
    *,
    config: Any = None,
    padding: str = "none",
) -> tuple[list[int], list[int] | None, list[str]]:
    """``(input_ids, labels, notes)`` of one record as the data probes build it and the standard collator
    batches it: the same path ``ehrdebug check data`` takes, so what is shown is what is trained on."""
    from probes.data_collator import standard_collator
    from probes.data_suite import build_features

    kwargs: dict[str, Any] = {"padding": padding}
    if config is not None:
        kwargs.update(
            input_field=config.text_field or None,
            target_field=config.target_field or None,
            max_length=config.max_length,
            max_target_length=config.max_target_length,
            task_prefix=config.task_prefix,
        )
    feats, _plens, notes = build_features([record], tokenizer, model_type, **kwargs)
    collator, name = standard_collator(tokenizer, model_type, feats)
    clean = [
        {k: v for k, v in f.items() if isinstance(v, (list, tuple)) or hasattr(v, "shape")} for f in feats
    ]
    batch = collator(clean)
    input_ids = [int(x) for x in batch["input_ids"][0]]
    labels = [int(x) for x in batch["labels"][0]] if "labels" in batch else None
    return input_ids, labels, [*notes, f"batched by {name}"]
