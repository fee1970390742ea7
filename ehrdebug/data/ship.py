"""Regenerate everything under ``sample_data/ehr`` (``python -m ehrdebug.data.ship``).

Synthesizes MIMIC-III tables (2,000 patients, seed 0) into ``mimic3/`` and builds every task from
them with the default options, overwriting only the sample data's own files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ehrdebug.data.build import build_task
from ehrdebug.data.sample import sample_data_dir
from ehrdebug.data.synth import synthesize

PATIENTS = 2000
SEED = 0


def ship(root: Path | None = None, patients: int = PATIENTS, seed: int = SEED) -> dict[str, Any]:
    root = Path(root) if root is not None else sample_data_dir()
    mimic3 = root / "mimic3"
    synthesize(str(mimic3), patients, seed)
    summary: dict[str, Any] = {}
    for task in ("seq2seq", "codes", "coding"):
        summary[task] = build_task(task, "synthetic", str(mimic3), str(root / task), force=True, seed=seed)
    summary["diagnosis"] = build_task("diagnosis", out=str(root / "diagnosis"), force=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="output folder (default: sample_data/ehr)")
    parser.add_argument("--patients", type=int, default=PATIENTS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    print(json.dumps(ship(args.root, args.patients, args.seed), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
