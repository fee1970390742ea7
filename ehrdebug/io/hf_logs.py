"""transformers' loading report held back while a model loads, so a refusal stays one line.

transformers 5 logs a LOAD REPORT (a table of every mismatched, missing or unexpected tensor, tens of lines)
as a warning and only then raises "look at the above report". The doctor and the TUI sampler answer a
checkpoint they cannot load with one line naming the reason; the report is replayed when the load succeeds
(missing keys are worth seeing) and dropped when it fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

MARK = "LOAD REPORT"


class _Hold(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if MARK in str(record.msg):
            self.held.append(record)
            return False
        return True


@contextmanager
def held_load_report() -> Iterator[list[logging.LogRecord]]:
    """Within the block, transformers' load reports are held (yielded list); replayed only if it succeeds."""
    from transformers.utils import logging as hf_logging

    handlers = list(hf_logging.get_logger().handlers)  # the library's root logger: every module propagates to it
    hold = _Hold()
    for handler in handlers:
        handler.addFilter(hold)
    ok = False
    try:
        yield hold.held
        ok = True
    finally:
        for handler in handlers:
            handler.removeFilter(hold)
        if ok:
            for record in hold.held:
                logging.getLogger(record.name).handle(record)


def mismatch_reason(exc: BaseException) -> str | None:
    """The one-line reason for transformers' "look at the above report" errors, None for any other error."""
    text = str(exc)
    if "ignore_mismatched_sizes" in text or "size mismatch" in text:
        return "its weights do not match its config.json (tensors of another size)"
    if "automatic conversion of the weights" in text:
        return "its weights could not be converted to this transformers version"
    return None
