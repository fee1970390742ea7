"""``EhrDebugCallback``: add one line to an existing HF Trainer script to write an ehrdebug run.

    trainer = Trainer(..., callbacks=[EhrDebugCallback("runs/bart-ehr")])

Probes are passed in (the core never imports ``probes``): each is a callable taking keyword
arguments ``model``, ``tokenizer``, ``step`` and ``metrics`` and returning findings; they run after
every evaluation and their findings (and alerts for warn/fail) go into the event log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from transformers import TrainerCallback

from ehrdebug.runstore.writer import RunLogger

Probe = Callable[..., list[Any]]


class EhrDebugCallback(TrainerCallback):
    def __init__(
        self,
        run_dir: str | os.PathLike[str] | None = None,
        probes: Sequence[Probe] = (),
        architecture: str | None = None,
        size: str | None = None,
        task: str | None = None,
        data: Any = None,
    ) -> None:
        self.run_dir = run_dir
        self.probes = list(probes)
        self.architecture = architecture
        self.size = size
        self.task = task
        self.data = data
        self.logger: RunLogger | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        run_dir = self.run_dir or os.path.join(args.output_dir, "ehrdebug")
        config = getattr(model, "config", None)
        arch = self.architecture or ((getattr(config, "architectures", None) or [""])[0] if config is not None else "")
        resume = os.path.exists(os.path.join(run_dir, "events.jsonl"))
        self.logger = RunLogger(
            run_dir,
            config={"training_args": args.to_dict(), "model_config": config.to_dict() if config is not None else {}},
            architecture=arch or type(model).__name__,
            size=self.size,
            task=self.task,
            base_model=getattr(config, "_name_or_path", None) if config is not None else None,
            data=self.data,
            resume=resume,
            rank=0,
        )

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.logger is None or not logs:
            return
        entry = {k: v for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if state.epoch is not None:
            entry.setdefault("epoch", state.epoch)
        if any(k.startswith("eval_") for k in entry):
            self.logger.log_eval(state.global_step, entry)
        else:
            if "learning_rate" in entry:
                entry["lr"] = entry["learning_rate"]
            self.logger.log_train(state.global_step, **entry)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.logger is None or not self.probes:
            return
        model = kwargs.get("model")
        tokenizer = kwargs.get("processing_class")
        for probe in self.probes:
            try:
                findings = probe(model=model, tokenizer=tokenizer, step=state.global_step, metrics=metrics or {})
            except Exception as exc:  # noqa: BLE001 - a broken probe must not kill a training run
                self.logger.alert(state.global_step, "warn", f"probe {getattr(probe, '__name__', probe)!s} failed: {exc}")
                continue
            self.logger.log_findings(state.global_step, findings)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.logger is not None:
            path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            self.logger.log("checkpoint", state.global_step, path=os.path.abspath(path), format="hf")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.logger is not None:
            self.logger.finish("finished", global_step=state.global_step)
