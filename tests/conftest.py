"""Shared fixtures: real third-party tokenizer assets (skipped when EHRDEBUG_REAL_ASSETS is unset)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"


def real_assets() -> Path | None:
    value = os.environ.get("EHRDEBUG_REAL_ASSETS")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


@pytest.fixture
def real_tokenizers() -> Path:
    root = real_assets()
    if root is None:
        pytest.skip("EHRDEBUG_REAL_ASSETS is not set (point it at shared/real)")
    return root / "tokenizers"


@pytest.fixture
def sample_data() -> Path:
    return SAMPLE_DATA
