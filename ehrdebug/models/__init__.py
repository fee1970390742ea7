"""EHR code-sequence models, registered with transformers' Auto classes on import.

``import ehrdebug.models`` (it pulls torch and transformers) makes ``AutoConfig``/``AutoModel``/
``AutoModelForMaskedLM``/``AutoModelForSequenceClassification`` read any checkpoint these modules wrote.
Heads that no Auto class covers (next-visit) are found through ``ARCHITECTURES`` (class name, as
``config.json``'s ``architectures`` records it) or ``HEADS[model_type][task]``; ``load_pretrained`` reads
a checkpoint directory whatever head it holds. A new architecture is one module with ``CONFIG``,
``HEADS`` and ``AUTO`` plus its name in ``_FAMILIES``: nothing here or in a caller branches on names.
"""

from __future__ import annotations

import importlib
from typing import Any

_FAMILIES = ("ehrdebug.models.behrt",)
_FAMILIES += ("ehrdebug.models.cehrbert", "ehrdebug.models.ehrmamba")  # CEHR-BERT/BigBird, EHRMamba (issue 12)
_AUTO_CLASSES = ("AutoModel", "AutoModelForMaskedLM", "AutoModelForSequenceClassification")

CONFIGS: dict[str, type] = {}  # model_type -> config class
HEADS: dict[
    str, dict[str, type]
] = {}  # model_type -> task ("base", "mlm", "next_visit", "classification") -> class
ARCHITECTURES: dict[str, type] = {}  # class name -> class


def _register(module_name: str) -> None:
    import transformers

    module = importlib.import_module(module_name)
    heads: dict[str, type] = module.HEADS
    config_cls = next(iter(heads.values())).config_class
    model_type = config_cls.model_type
    CONFIGS[model_type] = config_cls
    HEADS[model_type] = dict(heads)
    ARCHITECTURES.update({cls.__name__: cls for cls in heads.values()})
    transformers.AutoConfig.register(model_type, config_cls, exist_ok=True)
    for auto_name, model_cls in module.AUTO.items():
        getattr(transformers, auto_name).register(config_cls, model_cls, exist_ok=True)


for _name in _FAMILIES:
    _register(_name)


def head_class(model_type: str, task: str) -> type:
    """The class for ``task`` of ``model_type``; a ValueError lists what exists."""
    if model_type not in HEADS:
        raise ValueError(f"no EHR model family {model_type!r} (known: {', '.join(HEADS)})")
    if task not in HEADS[model_type]:
        raise ValueError(f"{model_type} has no {task!r} head (heads: {', '.join(HEADS[model_type])})")
    return HEADS[model_type][task]


def load_pretrained(path: str, **kwargs: Any) -> Any:
    """Load a checkpoint directory as the class its ``config.json`` names (any head, Auto class or not)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    names = list(getattr(config, "architectures", None) or [])
    cls = next((ARCHITECTURES[n] for n in names if n in ARCHITECTURES), None)
    if cls is None:
        cls = HEADS.get(config.model_type, {}).get("base")
    if cls is None:
        raise ValueError(f"{path}: model type {config.model_type!r} is not an ehrdebug EHR model")
    return cls.from_pretrained(path, local_files_only=True, **kwargs)


__all__ = ["ARCHITECTURES", "CONFIGS", "HEADS", "head_class", "load_pretrained"]
