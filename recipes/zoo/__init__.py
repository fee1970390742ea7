"""The bug zoo: small real runs that exhibit each failure of the field reports (seeds 000 and 002).

Public API::

    CASES: dict[str, Case]                   # name -> case (failure, how, probe, fix, config overrides)
    get_case(name) -> Case                   # UserError naming the closest case when unknown
    run_case(case, out) -> CaseRun           # train the broken run under out/broken and diagnose it
    fix_and_rerun(case_run, out) -> CaseRun  # apply the case's fix to the run, retrain under out/fixed

``CaseRun.fired()`` lists the findings of the case's probe that name its fix (warn or fail).
"""

from __future__ import annotations

import difflib

from ehrdebug.errors import UserError
from recipes.zoo.case import Case
from recipes.zoo.cases import CASES


def get_case(name: str) -> Case:
    if name in CASES:
        return CASES[name]
    close = difflib.get_close_matches(name, list(CASES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; cases: {', '.join(CASES)}"
    raise UserError(f"unknown zoo case {name!r}{hint}")


from recipes.zoo.runner import CaseRun, fix_and_rerun, run_case  # noqa: E402

__all__ = ["CASES", "Case", "CaseRun", "fix_and_rerun", "get_case", "run_case"]
