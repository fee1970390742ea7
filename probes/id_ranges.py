"""data.id_ranges: ids beyond their embedding tables, and ids piled up at a table's last row.

An age of 95 with ``age_vocab_size=90`` either crashes in ``nn.Embedding`` (an index error far from its
cause, a device-side assert on CUDA) or, when the encoder clamps it, silently becomes age 89 together
with every older patient: the model cannot tell them apart. Both are read off real batches against the
table sizes the model declares (``input name -> config attribute``), never from a setting saying so.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity
from probes.codeprobe_common import as_array, batch_list, rounded

PROBE = "data.id_ranges"
# transformers' own models (BERT-style); code models declare theirs (``embedding_tables`` or the shared
# EHR embedding's STREAMS)
HF_TABLES: dict[str, str] = {
    "input_ids": "vocab_size",
    "token_type_ids": "type_vocab_size",
    "position_ids": "max_position_embeddings",
}
# a table's last row holding at least this share of real positions and this many times its neighbours'
# mean count is a pile-up: values beyond the table were clamped onto it upstream
CLAMP_SHARE = 0.02
CLAMP_RATIO = 4.0
CLAMP_MIN_COUNT = 10
NEIGHBOURS = 5
MIN_CLAMP_TABLE = 8  # tables smaller than this (segments 0/1) have no meaningful neighbourhood


def declared_tables(model_or_config: Any) -> dict[str, str]:
    """``{input name: config attribute}`` the model declares: an ``embedding_tables`` attribute on the model
    or its config, else the shared EHR embedding's streams, else transformers' BERT-style names."""
    for holder in (model_or_config, getattr(model_or_config, "config", None)):
        declared = getattr(holder, "embedding_tables", None) if holder is not None else None
        if isinstance(declared, Mapping) and declared:
            return {str(k): str(v) for k, v in declared.items()}
    try:
        from ehrdebug.models.embeddings import STREAMS
    except ImportError:  # torch missing: only the transformers names
        return dict(HF_TABLES)
    return {**HF_TABLES, **{name: attr for name, (attr, _) in STREAMS.items()}}


def _get(config: Any, attr: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(attr)
    return getattr(config, attr, None)


def resolve_table_sizes(model_config: Any = None, model: Any = None, mapping: Mapping[str, str] | None = None) -> dict[str, int]:
    """Table size per input from ``mapping`` (or the model's declaration) read on the model's config."""
    config = model_config if model_config is not None else getattr(model, "config", None)
    if config is None:
        return {}
    tables = dict(mapping) if mapping else declared_tables(model if model is not None else config)
    sizes: dict[str, int] = {}
    for name, attr in tables.items():
        value = _get(config, attr)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            sizes[name] = value
    return sizes


def probe_id_ranges(
    batches: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    model: Any = None,
    *,
    model_config: Any = None,
    mapping: Mapping[str, str] | None = None,
    table_sizes: Mapping[str, int] | None = None,
    categorical: Collection[str] = ("input_ids",),
    subject: str = "",
) -> list[Finding]:
    """Compare every id stream of real batches with its embedding table.

    Table sizes come from ``table_sizes`` when given, else from ``mapping`` (input → config attribute, or
    what the model declares) read on ``model_config`` (a config object or a config.json mapping) or ``model.config``. ``categorical`` streams (codes) skip the
    pile-up test: their last id is just another code.
    """
    items = batch_list(batches)
    sizes = dict(table_sizes) if table_sizes else resolve_table_sizes(model_config, model, mapping)
    if not items:
        return [Finding(PROBE, Severity.INFO, "no batches to check ids on", subject=subject)]
    if not sizes:
        return [Finding(PROBE, Severity.INFO, "no embedding table sizes known (pass the model, model_config= or table_sizes=)",
                        evidence={"batch_keys": sorted(map(str, items[0]))}, subject=subject)]
    findings: list[Finding] = []
    checked: dict[str, dict[str, Any]] = {}
    for name, size in sizes.items():
        present = [b for b in items if b.get(name) is not None]
        if not present:
            implicit = _implicit_positions(name, size, items, subject)
            findings += implicit
            continue
        values, real, examples = _collect(present, name, size)
        stats = _stats(values, real, size)
        checked[name] = stats
        if stats["out_of_range"]:
            crash = ("nn.Embedding raises 'index out of range in self' (CUDA: device-side assert)"
                     if stats["max"] >= size else "negative ids index from the end or crash")
            findings.append(Finding(
                PROBE, Severity.FAIL,
                f"{name}: {stats['out_of_range']} ids ({stats['out_of_range_share']:.1%} of positions) outside its table of {size} "
                f"(seen {stats['min']}..{stats['max']}): {crash}",
                evidence={"input": name, **stats},
                examples=examples,
                rule="every id must lie in 0..table size − 1",
                recipes=["grow-embedding-tables"], subject=subject,
            ))
        elif name not in categorical and stats.get("piled_up"):
            findings.append(Finding(
                PROBE, Severity.WARN,
                f"{name}: {stats['at_last_row']} ids ({stats['at_last_row_share']:.1%} of real positions) sit on the "
                f"table's last row {size - 1}, {stats['pile_up_ratio']:.0f}× its neighbours: values beyond the table were "
                "clamped onto it upstream",
                evidence={"input": name, **stats},
                rule=f"last row ≥ {CLAMP_SHARE:.0%} of real positions and ≥ {CLAMP_RATIO:g}× the mean count of the "
                     f"{NEIGHBOURS} rows below it",
                recipes=["grow-embedding-tables"], subject=subject,
            ))
    missing_tables = sorted(k for k in items[0] if str(k).endswith("_ids") and k not in sizes)
    if not findings:
        findings.append(Finding(
            PROBE, Severity.OK,
            "every id stream lies inside its embedding table: "
            + ", ".join(f"{k} max {v['max']} < {v['table_size']}" for k, v in checked.items()),
            evidence={"inputs": checked, "streams_without_table": missing_tables},
            subject=subject,
        ))
    return findings


def _collect(batches: Sequence[Mapping[str, Any]], name: str, size: int):
    import numpy as np

    values, real, examples = [], [], []
    for n, batch in enumerate(batches):
        ids = np.atleast_2d(as_array(batch[name])).astype(np.int64)
        mask = batch.get("attention_mask")
        att = np.atleast_2d(as_array(mask)).astype(bool) if mask is not None else np.ones_like(ids, dtype=bool)
        if att.shape != ids.shape:
            att = np.ones_like(ids, dtype=bool)
        values.append(ids.reshape(-1))
        real.append(att.reshape(-1))
        bad = (ids >= size) | (ids < 0)
        for r in np.nonzero(bad.any(axis=1))[0][: max(0, 3 - len(examples))]:
            row = ids[r]
            examples.append({"batch": n, "row": int(r), "bad_ids": sorted({int(v) for v in row[bad[r]]})[:8],
                             "row_max": int(row.max())})
    return np.concatenate(values), np.concatenate(real), examples


def _stats(values, real, size: int) -> dict[str, Any]:
    import numpy as np

    out = int(((values >= size) | (values < 0)).sum())
    stats: dict[str, Any] = {
        "table_size": size, "min": int(values.min()), "max": int(values.max()), "positions": int(values.size),
        "out_of_range": out, "out_of_range_share": rounded(out / max(values.size, 1)),
    }
    live = values[real]
    edge = size - 1
    at_edge = int((live == edge).sum())
    stats["at_last_row"] = at_edge
    stats["at_last_row_share"] = rounded(at_edge / max(live.size, 1))
    if size >= MIN_CLAMP_TABLE and live.size:
        below = [int((live == v).sum()) for v in range(max(0, edge - NEIGHBOURS), edge)]
        mean_below = float(np.mean(below)) if below else 0.0
        ratio = at_edge / max(mean_below, 1.0)
        stats["neighbour_mean_count"] = rounded(mean_below, 2)
        stats["pile_up_ratio"] = rounded(ratio, 2)
        stats["piled_up"] = bool(at_edge >= CLAMP_MIN_COUNT and stats["at_last_row_share"] >= CLAMP_SHARE
                                 and ratio >= CLAMP_RATIO)
    return stats


def _implicit_positions(name: str, size: int, batches: Sequence[Mapping[str, Any]], subject: str) -> list[Finding]:
    """A model that builds position ids itself (BERT) indexes its table with the sequence length."""
    if name != "position_ids" or not batches or batches[0].get("input_ids") is None:
        return []
    longest = max(int(as_array(b["input_ids"]).shape[-1]) for b in batches if b.get("input_ids") is not None)
    if longest <= size:
        return []
    return [Finding(
        PROBE, Severity.FAIL,
        f"sequences of {longest} positions but max_position_embeddings is {size}: positions past {size - 1} have no row",
        evidence={"input": "position_ids (implicit)", "table_size": size, "longest_sequence": longest},
        rule="sequence length ≤ the position table when the model numbers positions itself",
        recipes=["grow-embedding-tables"], subject=subject,
    )]
