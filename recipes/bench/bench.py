"""``run_bench``: train every model a benchmark config lists on one dataset and split, then tabulate them.

    ehrdebug bench recipes/configs/bench_mortality_small.yaml out=runs/bench_small [key=value ...]

Each model's run directory is ``OUT/runs/<model>``; the table, the report and the plots are written to
``OUT`` (``recipes.bench.report``). Models train one after the other in this process (a runner looked up
per config, ``recipes.bench.runners``), measured from outside (time, peak memory). A model whose config is
missing or that crashes is recorded as failed with its error and the others go on; a model that starts
from another (``init_from: <name>``) is skipped when that one failed. Overrides: ``out``, ``data.root``,
``label_field``, ``seed``, ``threads``, ``bootstrap``, ``device``, ``only=[a, b]`` and ``<model>.<key>=value``
(passed to that model's config).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

DEFAULTS: dict[str, Any] = {"name": "benchmark", "out": "runs/bench", "data": {"root": None}, "label_field": "mortality",
                            "seed": 0, "threads": 1, "bootstrap": 200, "metric": "test_auroc", "device": None,
                            "only": None, "models": []}  # fmt: skip
MODEL_KEYS = {"name", "config", "baseline", "score", "init_from", "overrides", "optional"}


class _Skip(UserError):
    """A model that cannot start because the model it starts from did not finish."""


def _project_path(path: str) -> Path:
    """A config path as given (from the current folder), else under the installed project (shipped configs)."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    shipped = Path(__file__).resolve().parents[2] / p
    return shipped if shipped.exists() else p


def load_bench_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    from recipes.baselines.config import read_yaml
    from recipes.train.config import parse_value

    data = read_yaml(_project_path(str(path)))
    unknown = set(data) - set(DEFAULTS)
    if unknown:
        raise UserError(
            f"{path}: unknown benchmark key {sorted(unknown)[0]!r} (known: {', '.join(DEFAULTS)})"
        )
    config = copy.deepcopy(DEFAULTS)
    config.update({k: v for k, v in data.items() if k != "data"})
    config["data"].update(data.get("data") or {})
    models = config["models"]
    if not isinstance(models, list) or not models:
        raise UserError(f"{path}: `models` must list at least one {{name, config}}")
    names = set()
    for m in models:
        if not isinstance(m, dict) or "name" not in m or "config" not in m:
            raise UserError(f"{path}: every model needs a name and a config (got {m!r})")
        if set(m) - MODEL_KEYS:
            raise UserError(f"{path}: model {m['name']!r}: unknown key {sorted(set(m) - MODEL_KEYS)[0]!r}")
        if m["name"] in names:
            raise UserError(f"{path}: two models are named {m['name']!r}")
        names.add(m["name"])
        m.setdefault("overrides", [])
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"override: expected key=value, got {item!r}")
        head, _, rest = key.partition(".")
        if head in names and rest:
            next(m for m in models if m["name"] == head)["overrides"].append(f"{rest}={raw}")
        elif key == "data.root":
            config["data"]["root"] = raw
        elif key in DEFAULTS and key not in ("models", "data"):
            config[key] = parse_value(raw)
        else:
            raise UserError(f"override: unknown benchmark key {key!r} (known: out, data.root, label_field, seed, threads, "
                            f"bootstrap, device, only, or <model>.<key> for a model of: {', '.join(sorted(names))})")  # fmt: skip
    if config["only"]:
        wanted = set(config["only"]) if isinstance(config["only"], list) else {str(config["only"])}
        missing = wanted - names
        if missing:
            raise UserError(
                f"only: no model named {sorted(missing)[0]!r} (models: {', '.join(sorted(names))})"
            )
        config["models"] = [m for m in models if m["name"] in wanted]
    return config


def model_config_of(model: dict[str, Any], shared: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``(runner, config)`` of one listed model: its config file validated with the shared keys and its
    overrides, exactly as the benchmark trains it (the dry run checks the same)."""
    from recipes.bench.runners import runner_for

    cfg_path = _project_path(model["config"])
    if not cfg_path.is_file():
        raise UserError(f"config not found: {model['config']}")
    runner = runner_for(cfg_path)
    return runner, runner.load(cfg_path, shared, list(model["overrides"]))


def _shared(config: dict[str, Any]) -> dict[str, Any]:
    from ehrdebug.data.sample import resolve_data_path

    root = config["data"].get("root")
    return {"data_root": str(resolve_data_path(root)) if root else None, "label_field": config["label_field"],
            "seed": config["seed"], "threads": config["threads"], "bootstrap": config["bootstrap"], "device": config["device"]}  # fmt: skip


def run_bench(path: str | Path, overrides: list[str] | None = None, progress: bool = True) -> Path:
    """Train, measure and tabulate every listed model; returns the benchmark folder."""
    from recipes.bench.measure import Measure
    from recipes.bench.progress import BenchProgress
    from recipes.bench.report import write_outputs
    from recipes.bench.run_summary import write_run_summary
    from recipes.bench.table import Entry, build_rows

    config = load_bench_config(path, overrides)
    out = Path(config["out"])
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"out={out} is not empty; choose a new folder for the benchmark (nothing in it is overwritten)"
        )
    (out / "runs").mkdir(parents=True)
    shared = _shared(config)
    entries: list[Entry] = []
    finished: dict[str, Path] = {}
    started, started_cpu = time.time(), time.process_time()
    interrupted: BaseException | None = None
    with BenchProgress(len(config["models"]), enabled=progress) as view:
        for index, model in enumerate(config["models"]):
            name, run_dir = model["name"], out / "runs" / model["name"]
            entry = Entry(model=name, run_dir=None, baseline=model.get("baseline"), scored=bool(model.get("score", True)),
                          extra={"config": model["config"]})  # fmt: skip
            try:
                runner, model_config = model_config_of(model, shared)
                if model.get("init_from"):
                    if model["init_from"] not in finished:
                        raise _Skip(f"starts from {model['init_from']!r}, which did not finish")
                    model_config = runner.init_from(model_config, finished[model["init_from"]])
                view.start(index, name, runner.planned_steps(model_config), run_dir)
                entry.run_dir = run_dir
                measure = Measure()
                try:
                    with measure:
                        runner.train(model_config, run_dir)
                finally:
                    if (run_dir / "run.json").is_file():
                        measure.save(run_dir)
                runner.ensure_predictions(run_dir, model_config)
                write_run_summary(run_dir)
                finished[name] = run_dir
                test = _test_figures(run_dir)
                view.done(name, "finished", f"in {measure.result.get('wall_seconds', 0):.0f} s {test}")
            except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the others
                missing = (
                    isinstance(exc, UserError)
                    and str(exc).startswith("config not found")
                    and model.get("optional")
                )
                entry.status = "skipped" if missing or isinstance(exc, _Skip) else "failed"
                entry.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
                if entry.run_dir is not None and not (entry.run_dir / "run.json").is_file():
                    entry.run_dir = None
                view.done(name, entry.status, entry.error)
            except (
                BaseException
            ) as exc:  # Ctrl-C, SIGTERM (the loop checkpoints and exits): keep what is done
                entry.status, entry.error = "interrupted", f"{type(exc).__name__}: {exc}"
                interrupted = exc
            entries.append(entry)
            if interrupted is not None:
                break
    rows = build_rows(
        entries, bootstrap=int(config["bootstrap"]), seed=int(config["seed"]), metric=config["metric"]
    )
    meta = _meta(config, path, rows, time.time() - started)
    meta["total_cpu_seconds"] = round(time.process_time() - started_cpu, 1)
    write_outputs(out, rows, meta, f"Benchmark: {config['name']}")
    if interrupted is not None:
        raise interrupted
    return out


def _test_figures(run_dir: Path) -> str:
    from recipes.bench.runinfo import read_run

    test = read_run(run_dir).test
    shown = [
        k
        for k in ("test_auroc", "test_auprc", "test_f1", "test_aps")
        if isinstance(test.get(k), (int, float))
    ]
    return " ".join(f"{k}={test[k]:.3f}" for k in shown)


def _meta(
    config: dict[str, Any], path: str | Path, rows: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    import os
    import platform

    from recipes.bench.runinfo import read_run

    positives = n = None
    for row in rows:
        if row.get("run_dir") and row.get("test_auroc") is not None:
            preds = read_run(row["run_dir"]).predictions()
            if preds:
                n, positives = len(preds), sum(int(r["label"]) for r in preds)
                break
    return {"name": config["name"], "config": str(path), "data": config["data"].get("root") or "shipped sample_data/ehr/codes",
            "label_field": config["label_field"], "seed": config["seed"], "test_records": n, "test_positives": positives,
            "total_seconds": round(seconds, 1), "cpu_threads": config["threads"], "cpu_count": os.cpu_count(),
            "device": config["device"] or "auto", "host": platform.node(), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "models": [m["name"] for m in config["models"]]}  # fmt: skip
