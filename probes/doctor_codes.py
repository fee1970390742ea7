"""The doctor's code-model probes, run on the evidence a run directory holds (the run directory is the contract).

``data.mlm_batch``, ``data.causal_labels`` (token-level non-MLM batches with an attention mask),
``model.pooling`` (one label per row, with the loaded classifier) and ``data.id_ranges`` read the batches
training kept (``ehrdebug.runstore.evidence``: the first batches the collator returned, with the tokenizer's
structural ids and the collator's settings);
``data.label_leakage`` reads the training records run.json names, minus the codes the run excluded
(``data.exclude_codes``), against the label the run learns (``label_field``); ``metrics.classifier`` and
``metrics.next_visit`` read the per-record test predictions the final test kept (else a MEDS predictions file
under ``artifacts/predictions/``). Which probes ran, and why the others did not, goes into the doctor's
coverage notes. Nothing here imports the recipes that wrote the run.

Also here: whether the text-generation probes apply to a model at all (an encoder such as BEHRT has no
``generate``), so the doctor skips them with that reason instead of letting them crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.errors import UserError
from ehrdebug.findings import Finding
from probes.doctor_run import RunRecord

CODE_PROBES = (
    "data.mlm_batch",
    "data.causal_labels",
    "model.pooling",
    "data.id_ranges",
    "data.label_leakage",
    "metrics.classifier",
    "metrics.next_visit",
)
HF_IGNORE_INDEX = -100  # the label value transformers' losses skip (what the model's loss ignores)
MAX_LEAKAGE_RECORDS = 200_000


class NotApplicable(UserError):
    """No code probe applies to this target (the doctor records the reason as the suite's skip)."""


def code_inputs(run_dir: str | Path | None) -> set[str]:
    """The registry inputs (``batches``, ``predictions``) the run's kept evidence provides."""
    from ehrdebug.runstore.evidence import batches_dir, evidence_dir

    if run_dir is None:
        return set()
    folder = evidence_dir(run_dir)
    have = set()
    if (batches_dir(run_dir) / "index.json").is_file():
        have.add("batches")
    if (folder / "predictions-test.jsonl").is_file() or any(
        (Path(run_dir) / "artifacts" / "predictions").glob("*.parquet")
    ):
        have.add("predictions")
    return have


def text_probes_skip_reason(model: Any) -> str | None:
    """Why the generation, special-token-probability, task-prefix and attribution probes (which read a
    generated continuation) do not apply to ``model``: it cannot generate (an encoder); None when they do."""
    can = getattr(model, "can_generate", None)
    generates = bool(can()) if callable(can) else callable(getattr(model, "generate", None))
    if generates or getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        return None
    return (
        f"{type(model).__name__} has no generate() (an encoder or a classification head): the generation, "
        "special-token-probability, task-prefix and attribution probes judge generated text and do not apply "
        "(the code-model probes do)"
    )


def timeline_layout(record: RunRecord, tokenizer: Any, cfg: EhrDebugConfig | None) -> Any:
    """The run's timeline layout: its ``max_length`` and ``task_token``, and a [CLS] prefix when the batches it
    kept start with one (judged on the evidence: a causal timeline model starts at its first [VS])."""
    from ehrdebug.runstore.evidence import load_batches
    from probes.timeline_lm import Layout

    length = record.config.get("max_length") or (cfg.max_length if cfg is not None else None) or 256
    task = record.config.get("task_token")
    add_cls = False
    try:
        saved = load_batches(record.path, "train")
    except UserError:
        saved = None
    cls_id = getattr(tokenizer, "cls_token_id", None)
    if saved is not None and saved.batches and cls_id is not None and "input_ids" in saved.batches[0]:
        add_cls = bool((saved.batches[0]["input_ids"][:, :2] == int(cls_id)).any(dim=1).all())
    known = isinstance(task, str) and task in tokenizer.get_vocab()  # a prompt token the tokenizer lacks: none
    return Layout(max_length=int(length), task_token=task if known else None, add_cls=add_cls)


def timeline_findings(model: Any, tokenizer: Any, records: list[dict[str, Any]], record: RunRecord,
                      cfg: EhrDebugConfig | None, code_vocabulary: set[str] | None = None, *,
                      generations: int = 16, notes: list[str] | None = None) -> list[Finding]:  # fmt: skip
    """``model.special_token_probability``, ``generation.tf_vs_sampling`` and ``generation.degeneration`` on a causal
    LM over code timelines: the run's own layout, one set of continued timelines feeding both generation probes."""
    from probes.degeneration import degeneration
    from probes.timeline_generation import continue_timelines, timeline_tf_vs_sampling
    from probes.timeline_lm import Kinds, timeline_special_tokens

    layout = timeline_layout(record, tokenizer, cfg)
    seed = int(record.config.get("seed") or 0)
    findings = timeline_special_tokens(model, tokenizer, records, layout, cfg)
    sample = records[:generations]
    settings = {k: v for k, v in (record.generation or {}).items() if k in ("do_sample", "temperature", "top_k")}
    continued = continue_timelines(model, tokenizer, sample, layout, seed=seed, **settings)
    source = "the run's config (run.json generation)" if settings else "the probe's timeline sampler (sampling, T=1)"
    findings += timeline_tf_vs_sampling(model, tokenizer, sample, layout, continued=continued, code_vocabulary=code_vocabulary,
                                        max_records=generations, decoding_source=source)  # fmt: skip
    kinds = Kinds(tokenizer)
    def text(ids: list[int]) -> str:  # [PAD] dropped, as the text probes drop it (all-PAD is judged on the ids)
        return " ".join(kinds.tokens.get(t, "?") for t in ids if t != kinds.pad)

    prompts, texts = [text(p) for p in continued.prompts], [text(ids) for ids in continued.ids]
    findings += degeneration(prompts, texts, output_ids=continued.ids, pad_token_id=kinds.pad, check_echo=False)
    if notes is not None:
        notes.append(f"code timelines: special-token probability on {min(len(records), 64)} timelines, generation and "
                     f"degeneration on {len(continued.ids)} continued timelines (layout {vars(layout)}; the text "
                     "generation probes judge text and were not run)")  # fmt: skip
    return findings


def code_findings(
    record: RunRecord,
    loaded: Callable[[], tuple[Any, Any] | None] | None = None,
    *,
    cfg: EhrDebugConfig | None = None,
    notes: list[str] | None = None,
) -> list[Finding]:
    """Every code-model probe the run's evidence supports. ``loaded`` returns the checkpoint's (model,
    tokenizer) or None (the doctor's own, loaded once for every suite); ``notes`` receives one line per probe (ran, or
    why not). A NotApplicable (a UserError) when none applies."""
    status: dict[str, str] = {}
    findings: list[Finding] = []
    model, tokenizer = _model(loaded, status)
    subject = f"run {record.path.name}"
    steps = ((_batch_probes, CODE_PROBES[:4]), (_leakage, CODE_PROBES[4:5]), (_predictions, CODE_PROBES[5:]))
    for step, probes in steps:
        try:
            findings += step(record, model, tokenizer, cfg, status, subject)
        except UserError as exc:  # unreadable evidence: say so, keep the other probes
            for pid in probes:
                status.setdefault(pid, f"not run: {exc}")
    lines = [f"{pid}: {status.get(pid, 'not run')}" for pid in CODE_PROBES]
    if notes is not None:
        notes.extend(f"code probes: {line}" for line in lines)
    if not findings:
        raise NotApplicable("no code-model evidence: " + "; ".join(lines))
    return findings


def _model(loaded: Callable[[], tuple[Any, Any] | None] | None, status: dict[str, str]) -> tuple[Any, Any]:
    if loaded is None:
        return None, None
    try:
        pair = loaded()
    except UserError as exc:
        status["data.id_ranges"] = f"not run: the checkpoint did not load ({exc})"
        return None, None
    return pair if pair is not None else (None, None)


def _is_mlm(saved: Any, tokenizer: Any) -> str | None:
    """None when the saved batches are masked-LM batches, else why not (judged on the batches: token-level
    integer labels beside input_ids, and a masking setting or [MASK] ids in the inputs)."""
    batch = saved.batches[0] if saved.batches else {}
    ids, labels = batch.get("input_ids"), batch.get("labels")
    if (
        ids is None
        or labels is None
        or tuple(labels.shape) != tuple(ids.shape)
        or labels.dtype.is_floating_point
    ):
        return "the saved batches carry no token-level labels (not a masked-LM run)"
    mask_id = (
        getattr(tokenizer, "mask_token_id", None)
        if tokenizer is not None
        else saved.tokenizer.get("mask_token_id")
    )
    masked = mask_id is not None and any(
        bool((b["input_ids"] == int(mask_id)).any()) for b in saved.batches if "input_ids" in b
    )
    if "mlm_probability" not in saved.collator and not masked:
        return "token-level labels but no masking setting and no [MASK] in the inputs (a causal or seq2seq batch)"
    return None


def _batch_probes(record: RunRecord, model: Any, tokenizer: Any, cfg: EhrDebugConfig | None, status: dict[str, str],
                  subject: str) -> list[Finding]:  # fmt: skip
    from ehrdebug.runstore.evidence import load_batches

    saved = load_batches(record.path, "train")
    if saved is None or not saved.batches:
        reason = "not run: the run kept no training batches under artifacts/evidence/"
        for pid in CODE_PROBES[:4]:
            status.setdefault(pid, reason)
        return []
    where = f"{len(saved.batches)} saved training batches ({saved.folder.relative_to(record.path)})"
    found: list[Finding] = []
    why_not = _is_mlm(saved, tokenizer)
    if why_not is None:
        found += _mlm(saved, tokenizer, subject)
        status["data.mlm_batch"] = f"ran on {where}"
    else:
        status["data.mlm_batch"] = f"not run: {why_not}"
    found += _causal_or_pooling(saved, model, tokenizer, status, subject, where, mlm=why_not is None)
    if model is not None:
        from probes.id_ranges import probe_id_ranges

        found += probe_id_ranges(saved.batches, model, subject=subject)
        status["data.id_ranges"] = f"ran on {where} against {type(model).__name__}'s tables"
    else:
        status.setdefault("data.id_ranges", "not run: no checkpoint to read the embedding table sizes from")
    return found


def _causal_or_pooling(saved: Any, model: Any, tokenizer: Any, status: dict[str, str], subject: str, where: str,
                       *, mlm: bool) -> list[Finding]:  # fmt: skip
    """``data.causal_labels`` on token-level non-MLM batches with an attention mask (padding carrying loss;
    the loss share with the model when loaded); ``model.pooling`` on sequence-level (one label per row) batches
    with an attention mask and a loaded model (does the head read padding)."""
    batch = saved.batches[0]
    ids, labels, mask = batch.get("input_ids"), batch.get("labels"), batch.get("attention_mask")
    token_level = ids is not None and labels is not None and tuple(labels.shape) == tuple(ids.shape)
    per_row = ids is not None and labels is not None and labels.ndim == 1 and labels.shape[0] == ids.shape[0]
    if mlm:
        status["data.causal_labels"] = "not run: the saved batches are masked-LM batches"
    elif not token_level or mask is None:
        status["data.causal_labels"] = (
            "not run: the saved batches carry no token-level labels with an attention_mask"
        )
    if not per_row or mask is None:
        status["model.pooling"] = (
            "not run: the saved batches are not classification batches (one label per row)"
        )
    elif model is None:
        status["model.pooling"] = "not run: no checkpoint to score the saved classification batches with"
    if not mlm and token_level and mask is not None:
        from probes.causal_batch import PROBE, probe_causal_labels

        facts = saved.tokenizer
        pad = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else facts.get("pad_token_id")
        with_loss = f" with {type(model).__name__}'s loss" if model is not None else ""
        return _guarded(PROBE, f"ran on {where}{with_loss}", status, probe_causal_labels, saved.batches, tokenizer,
                        model=model, pad_token_id=pad, subject=subject)  # fmt: skip
    if per_row and mask is not None and model is not None:
        from probes.pooling import PROBE, probe_pooling

        ran = f"ran on {where} with {type(model).__name__}"
        return _guarded(PROBE, ran, status, probe_pooling, model, saved.batches, subject=subject)
    return []


def _guarded(probe: str, ran: str, status: dict[str, str], fn: Callable[..., list[Finding]], *args: Any,
             **kwargs: Any) -> list[Finding]:  # fmt: skip
    """A probe on saved evidence that cannot take the other code probes down: its crash becomes the note."""
    try:
        found = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - evidence from any run; say why, keep the other probes
        status[probe] = f"not run: {type(exc).__name__}: {exc}"
        return []
    status[probe] = ran
    return found


def _mlm(saved: Any, tokenizer: Any, subject: str) -> list[Finding]:
    """``data.mlm_batch`` against the masking rate the run asked for (the probe also flags a rate outside the
    usual range) and BERT's 80/10/10 replacement, never the run's own shares: a config without 80/10/10 must
    not bless itself. Structural ids from the checkpoint's tokenizer, else from the batch index (a run that
    died before its first checkpoint)."""
    from probes.mlm_batch import probe_mlm_batch

    settings = saved.collator
    kwargs: dict[str, Any] = {
        "mlm_probability": float(settings.get("mlm_probability", 0.15)),
        "loss_ignore_index": HF_IGNORE_INDEX,
        "subject": subject,
    }
    if tokenizer is None:
        facts = saved.tokenizer
        unk = facts.get("unk_token_id")
        kwargs.update(
            special_ids={k: int(v) for k, v in (facts.get("special_ids") or {}).items() if v != unk},
            mask_token_id=facts.get("mask_token_id"),
            pad_token_id=facts.get("pad_token_id"),
            vocab_size=facts.get("vocab_size"),
        )
    return probe_mlm_batch(saved.batches, tokenizer, **kwargs)


def _data(record: RunRecord) -> Mapping[str, Any]:
    data = record.config.get("data")
    return data if isinstance(data, Mapping) else {}


def _leakage(record: RunRecord, model: Any, tokenizer: Any, cfg: EhrDebugConfig | None, status: dict[str, str],
             subject: str) -> list[Finding]:  # fmt: skip
    """The training records as the run read them (its ``max_train`` first records, its excluded codes gone)."""
    from ehrdebug.io.tables import read_records
    from probes.data_suite import data_sources
    from probes.leakage import probe_label_leakage

    label = record.config.get("label_field") or (cfg.label_field if cfg is not None else "")
    if not label:
        status["data.label_leakage"] = "not run: the run learns no binary label (no label_field)"
        return []
    train = data_sources(record.info.get("data"), str(record.path)).get("train")
    if train is None:
        status["data.label_leakage"] = "not run: run.json names no training data file"
        return []
    limit = _data(record).get("max_train")
    records = read_records(
        train, limit=int(limit) if isinstance(limit, int) and limit > 0 else MAX_LEAKAGE_RECORDS
    )
    exclude = [str(c) for c in _data(record).get("exclude_codes") or []]
    status["data.label_leakage"] = (
        f"ran on {len(records)} training records of {Path(train).name}, label {label!r}"
        + (f", {len(exclude)} excluded codes removed" if exclude else "")
    )
    return probe_label_leakage(records, label_field=str(label), exclude_codes=exclude, subject=subject)


def _predictions(record: RunRecord, model: Any, tokenizer: Any, cfg: EhrDebugConfig | None, status: dict[str, str],
                 subject: str) -> list[Finding]:  # fmt: skip
    from ehrdebug.runstore.evidence import load_predictions
    from probes.task_metrics import probe_classifier, probe_meds_predictions, probe_next_visit

    seed = int(record.config.get("seed") or 0)
    kept = load_predictions(record.path, "test")
    if kept is None:
        meds = sorted((record.path / "artifacts" / "predictions").glob("*.parquet"))
        status["metrics.next_visit"] = "not run: the run kept no next-visit test predictions"
        if meds:
            status["metrics.classifier"] = f"ran on {meds[0].relative_to(record.path)} (MEDS predictions)"
            return probe_meds_predictions(str(meds[0]), seed=seed, subject=subject)
        status["metrics.classifier"] = (
            "not run: the run kept no test predictions (artifacts/evidence/predictions-test.jsonl)"
        )
        return []
    where = f"{len(kept.rows)} test predictions ({kept.path.relative_to(record.path) if kept.path else 'evidence'})"
    if kept.kind == "binary":
        status["metrics.classifier"] = f"ran on {where}"
        status["metrics.next_visit"] = "not run: the test predictions are binary (a classifier)"
        rows = [r for r in kept.rows if r.get("y_true") is not None and r.get("y_prob") is not None]
        return probe_classifier(
            [r["y_true"] for r in rows],
            [float(r["y_prob"]) for r in rows],
            seed=seed,
            split=kept.meta.get("split", "test"),
            subject=subject,
        )
    status["metrics.next_visit"] = f"ran on {where}"
    status["metrics.classifier"] = (
        "not run: the test predictions rank next-visit codes (not a binary classifier)"
    )
    ks = tuple(int(k) for k in kept.meta.get("ks") or (10, 20))
    counts = {str(k): int(v) for k, v in (kept.meta.get("train_counts") or {}).items()}
    return probe_next_visit(
        [r.get("truth") or [] for r in kept.rows],
        [r.get("ranked") or [] for r in kept.rows],
        counts,
        ks=ks,
        seed=seed,
        split=kept.meta.get("split", "test"),
        subject=subject,
    )
