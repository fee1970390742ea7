"""``RunLogger``: the writer side of the run directory, for any PyTorch loop.

Every event line is written in one ``write`` and flushed at once, so a run that dies (an evicted
pod, an OOM kill) leaves a readable log. Checkpoints are written to a temporary folder and renamed,
so a crash mid-save never leaves a half checkpoint that looks whole. Under torchrun/accelerate only
rank 0 writes; other ranks get a logger whose methods do nothing.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from ehrdebug.runstore.envinfo import environment, world_rank
from ehrdebug.runstore.events import FORMAT_VERSION, encode_event


class RunLogger:
    """Write ``run.json``, append to ``events.jsonl`` and save ``checkpoints/step-N/``.

    A new logger refuses a directory that already holds a run unless ``resume=True``: nothing the
    user had is overwritten.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        config: dict[str, Any] | None = None,
        *,
        architecture: str = "",
        size: str | None = None,
        task: str | None = None,
        base_model: str | None = None,
        tokenizer: str | None = None,
        data: Any = None,
        resume: bool = False,
        rank: int | None = None,
        extra: dict[str, Any] | None = None,
        resumed_from_step: int | None = None,
    ) -> None:
        """``resumed_from_step``: the step of the checkpoint a resumed run continues from; the ``resumed``
        status event carries it (the log may go further: steps logged after that checkpoint are replayed)."""
        self.path = Path(run_dir)
        self.rank = world_rank() if rank is None else rank
        self.active = self.rank == 0
        self._fh: Any = None
        self._finished = False
        if not self.active:
            return
        events = self.path / "events.jsonl"
        if events.exists() and not resume:
            raise UserError(f"{self.path} already holds a run; pass resume=True to append or choose a new directory")
        if events.exists() and not events.is_file():
            raise UserError(f"{events} is not a file: cannot log this run there")
        if resumed_from_step is not None and (isinstance(resumed_from_step, bool) or not isinstance(resumed_from_step, int)):
            raise UserError(f"resumed_from_step must be a whole number, got {resumed_from_step!r}")
        info_path = self.path / "run.json"
        # everything that can refuse the directory is checked before anything is written into it
        last_logged = self.last_step() if resume else 0
        info = _read_info(info_path) if resume and info_path.exists() else None
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "checkpoints").mkdir(exist_ok=True)
        (self.path / "artifacts").mkdir(exist_ok=True)
        if info is not None:
            info.setdefault("resumes", []).append({"time": time.time(), "environment": environment(),
                                                   "from_step": resumed_from_step, "last_logged_step": last_logged})
        else:
            info = {
                "format_version": FORMAT_VERSION,
                "created": time.time(),
                "architecture": architecture,
                "size": size,
                "task": task,
                "base_model": base_model,
                "tokenizer": tokenizer,
                "data": data,
                "config": config or {},
                "environment": environment(),
                **(extra or {}),
            }
        self._write_json(info_path, info)
        torn = _ends_without_newline(events)
        self._fh = open(events, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - held for the run's life
        if torn:  # a torn last line (the process died mid-write): the next event starts on a line of its own
            self._fh.write("\n")
        if resume and events.stat().st_size:
            step = resumed_from_step if resumed_from_step is not None else last_logged
            self.log("status", step, state="resumed", resumed_from_step=resumed_from_step, last_logged_step=last_logged)
        else:
            self.log("status", 0, state="started")
        atexit.register(self._at_exit)

    # -- events -------------------------------------------------------------------------------
    def log(self, kind: str, step: int, **payload: Any) -> None:
        if not self.active or self._fh is None:
            return
        self._fh.write(encode_event(kind, step, payload))
        self._fh.flush()

    def log_train(self, step: int, **metrics: Any) -> None:
        """Training metrics: ``loss``, ``lr``, ``epoch``, ``grad_norm``, ``samples_per_second`` …"""
        self.log("train", step, **metrics)

    def log_eval(self, step: int, metrics: dict[str, Any]) -> None:
        """Evaluation metrics with HF-style names: ``eval_loss``, ``eval_<set>_loss``, ``eval_accuracy`` …"""
        self.log("eval", step, **metrics)

    def log_findings(self, step: int, findings: list[Any]) -> None:
        """Probe findings; warn and fail findings also raise an alert so a live view can flag them."""
        from ehrdebug.findings import Severity

        for finding in findings:
            self.log("finding", step, **finding.to_dict())
            if finding.severity >= Severity.WARN:
                self.alert(step, finding.severity.label, finding.title, probe=finding.probe)

    def log_sample(self, step: int, prompt: str = "", output: str = "", **extra: Any) -> None:
        self.log("sample", step, prompt=prompt, output=output, **extra)

    def alert(self, step: int, severity: str, message: str, probe: str | None = None) -> None:
        self.log("alert", step, severity=severity, message=message, probe=probe)

    def last_step(self) -> int:
        """The highest integer step the log holds (events the readers would skip, e.g. ``"step": "abc"``, are
        skipped here too)."""
        from ehrdebug.runstore.events import event_step
        from ehrdebug.runstore.reader import read_events

        steps = [event_step(e) for e in read_events(self.path / "events.jsonl")]
        return max((s for s in steps if s is not None), default=0)

    # -- checkpoints --------------------------------------------------------------------------
    @property
    def artifacts_dir(self) -> Path:
        return self.path / "artifacts"

    def save_checkpoint(
        self,
        step: int,
        model: Any,
        tokenizer: Any = None,
        optimizer: Any = None,
        scheduler: Any = None,
        extra_state: dict[str, Any] | None = None,
        keep_last: int | None = None,
    ) -> Path | None:
        """Save safetensors weights, model config, tokenizer and trainer state to ``checkpoints/step-N``."""
        if not self.active:
            return None
        final = self.path / "checkpoints" / f"step-{int(step)}"
        tmp = self.path / "checkpoints" / f".tmp-step-{int(step)}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _save_model(model, tmp)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(str(tmp))
        state: dict[str, Any] = {"step": int(step), **(extra_state or {})}
        if optimizer is not None or scheduler is not None:
            import torch

            torch.save(
                {
                    "optimizer": optimizer.state_dict() if optimizer is not None else None,
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                },
                tmp / "optimizer.pt",
            )
        self._write_json(tmp / "trainer_state.json", state)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        self.log("checkpoint", step, path=str(final.relative_to(self.path)))
        if keep_last:
            self._prune(keep_last)
        return final

    def _prune(self, keep_last: int) -> None:
        from ehrdebug.runstore.reader import list_step_dirs

        dirs = list_step_dirs(self.path / "checkpoints")
        for _, path in dirs[:-keep_last]:
            shutil.rmtree(path, ignore_errors=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def finish(self, status: str = "finished", **summary: Any) -> None:
        if not self.active or self._finished or self._fh is None:
            return
        self._finished = True
        self.log("status", self.last_step(), state=status, **summary)
        self._fh.close()
        self._fh = None

    def _at_exit(self) -> None:
        if self.active and not self._finished and self._fh is not None:
            self.finish("crashed", reason="process exited before the run finished")

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finish("finished")
        else:
            self.finish("crashed", error=f"{exc_type.__name__}: {exc}"[:500])

    @staticmethod
    def _write_json(path: Path, data: dict[str, Any]) -> None:
        from ehrdebug.findings import _jsonable

        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(_jsonable(data), indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


def _read_info(path: Path) -> dict[str, Any]:
    """run.json of the run being resumed; a one-line error when it is not a JSON object."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: cannot resume, run.json is not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(info, dict):
        raise UserError(f"{path}: cannot resume, run.json is not a JSON object")
    return info


def _ends_without_newline(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


def _save_model(model: Any, directory: Path) -> None:
    """HF models via ``save_pretrained`` (safetensors); any other module as ``model.safetensors``."""
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(str(directory))
        return
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(_untie(state), str(directory / "model.safetensors"))
    config = getattr(model, "config", None)
    if config is not None:
        data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
        (directory / "config.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def _untie(state: dict[str, Any]) -> dict[str, Any]:
    """safetensors refuses shared storage; keep the first name of each tied tensor, clone the rest."""
    seen: dict[int, str] = {}
    out = {}
    for key, tensor in state.items():
        ptr = tensor.data_ptr()
        out[key] = tensor.clone() if ptr in seen else tensor
        seen.setdefault(ptr, key)
    return out
