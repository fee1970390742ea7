"""The probe registry: every function imports, every recipe it names is catalogued, docs/probes.md is its table."""

from __future__ import annotations

import inspect

from ehrdebug.recipe_ids import ALL
from probes.registry import DOC, INPUTS, PROBES, available, markdown_table, render_doc


def test_every_registered_function_imports_and_is_callable() -> None:
    for spec in PROBES:
        fn = spec.load()
        assert callable(fn) and inspect.isfunction(fn), spec.id


def test_ids_unique_and_needs_are_known_inputs() -> None:
    ids = [spec.id for spec in PROBES]
    assert len(ids) == len(set(ids))
    for spec in PROBES:
        assert spec.needs and set(spec.needs) <= set(INPUTS), spec.id
        assert spec.id.count(".") >= 1 and spec.summary, spec.id


def test_every_recipe_a_spec_names_is_catalogued() -> None:
    unknown = {spec.id: sorted(set(spec.recipes) - set(ALL)) for spec in PROBES if set(spec.recipes) - set(ALL)}
    assert unknown == {}


def test_available_selects_by_inputs() -> None:
    only_history = {spec.id for spec in available({"history"})}
    assert "curves.overfitting" in only_history and "model.trainable" not in only_history
    with_model = {spec.id for spec in available({"model", "tokenizer", "data"})}
    assert {"model.trainable", "generation.tf_vs_sampling"} <= with_model
    assert not any(spec.id.startswith("curves.") for spec in available({"model", "tokenizer", "data"}))
    assert available(set()) == []


def test_docs_probes_table_is_generated_from_the_registry() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render_doc(text) == text, "docs/probes.md is stale: run `python -m probes.registry`"
    assert markdown_table() in text
    for spec in PROBES:
        assert f"`{spec.id}`" in text
