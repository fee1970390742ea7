"""In-hospital death in a synthetic patient's last stay: a risk that depends on order and timing.

The ``codes`` task predicts death in the last stay from the stays before it. A bag of codes sees which
codes occurred; this outcome also depends on *where* and *when* they occurred, so a sequence model has
something to find that a bag of codes cannot (see ``synth_spec.OUTCOME`` for the weights):

- recency: a high-risk code (sepsis, septic shock, intracranial bleed, hepatic coma, metastases, acute
  respiratory failure) in the most recent earlier stay raises the risk a lot; the same codes only in
  older stays do not raise it at all;
- a code followed by another within a window: a cardiac stay (AMI, heart failure, atrial fibrillation)
  followed within 180 days by an infection stay (sepsis, pneumonia, aspiration, UTI, cellulitis)
  raises it; the reverse order, or a longer gap, does not;
- plus the generator's earlier death model, which a bag of codes does see (age, the chronic clusters'
  severity, as their codes recur, and the number of earlier stays) and an unobserved part (the last
  stay's own reason severity, noise).

Only patients with two or more stays are touched (single stays keep the generator's own outcome), and
the draws come from a separate seeded stream, so every other table value, and every other task built
from the tables, is exactly what the generator wrote before this model existed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ehrdebug.data import synth_spec as spec

if TYPE_CHECKING:
    from ehrdebug.data.synth import SynthPatient

Stay = tuple[int, frozenset[str]]  # day of admission since the first stay, undotted ICD-9 codes


def _has(codes: frozenset[str], prefixes: tuple[str, ...]) -> bool:
    return any(c.startswith(prefixes) for c in codes)


def history_features(stays: Sequence[Stay]) -> dict[str, float]:
    """The order/timing facts the outcome uses, from the stays before the predicted one."""
    o = spec.OUTCOME
    if not stays:
        return {"recent_high_risk": 0.0, "older_high_risk": 0.0, "cardiac_then_infection": 0.0}
    recent = _has(stays[-1][1], o.high_risk)
    older = any(_has(codes, o.high_risk) for _, codes in stays[:-1])
    followed = any(_has(ci, o.first) and _has(cj, o.then) and 0 < dj - di <= o.window_days
                   for i, (di, ci) in enumerate(stays) for dj, cj in stays[i + 1:])
    return {"recent_high_risk": float(recent), "older_high_risk": float(older and not recent),
            "cardiac_then_infection": float(followed)}


def record_stays(record: dict[str, Any]) -> list[Stay]:
    """A ``codes`` record's history as stays (codes undotted), for checking the signal from outside."""
    stays: dict[int, tuple[int, set[str]]] = {}
    for code, visit, day in zip(record["codes"], record["visits"], record["days"], strict=True):
        stays.setdefault(visit, (day, set()))[1].add(code.replace(".", ""))
    return [(day, frozenset(codes)) for _, (day, codes) in sorted(stays.items())]


def _logit(p: SynthPatient, rng: random.Random) -> float:
    o = spec.OUTCOME
    first = p.admissions[0].admit
    stays = [((a.admit - first).days, frozenset(a.dx)) for a in p.admissions[:-1]]
    f = history_features(stays)
    last = p.admissions[-1]
    age = p.age + (last.admit - first).days / 365.25
    chronic = sum(c.severity for c in spec.CHRONIC if c.name in p.clusters)
    return (o.intercept + o.age * (age - 65) + o.chronic * chronic + o.last_reason * last.severity
            + o.earlier_stays * len(stays)
            + o.recent_high_risk * f["recent_high_risk"] + o.older_high_risk * f["older_high_risk"]
            + o.cardiac_then_infection * f["cardiac_then_infection"] + rng.gauss(0.0, o.noise))


def reassign_last_stay_death(p: SynthPatient, rng: random.Random) -> None:
    """Redraw death in the last stay of a multi-stay patient and make the death fields agree with it."""
    if len(p.admissions) < 2:
        return
    died = rng.random() < 1.0 / (1.0 + math.exp(-_logit(p, rng)))
    last = p.admissions[-1]
    if died == (last.death is not None):
        return
    if died:
        minutes = (last.disch - last.admit).total_seconds() / 60
        last.death = last.admit + timedelta(minutes=int(minutes * rng.uniform(0.2, 1.0)))
        last.disch = last.death
        last.discharge_location = "DEAD/EXPIRED"
        p.dod = p.dod_hosp = last.death.replace(hour=0, minute=0)
        p.dod_ssn = p.dod if rng.random() < 0.7 else None
        return
    last.death = None
    last.discharge_location = rng.choices([d for d, _ in spec.DISCHARGE_LOCATIONS],
                                          weights=[w for _, w in spec.DISCHARGE_LOCATIONS])[0]
    p.dod = p.dod_hosp = p.dod_ssn = None
    chronic = sum(c.severity for c in spec.CHRONIC if c.name in p.clusters)
    later = 1.0 / (1.0 + math.exp(3.0 - 0.04 * (p.age - 65) - chronic))  # the generator's death after discharge
    if p.age > 0 and rng.random() < later:
        p.dod = p.dod_ssn = (last.disch + timedelta(days=rng.randint(5, 900))).replace(hour=0, minute=0)
