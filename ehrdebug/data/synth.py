"""Deterministic synthetic MIMIC-III: PATIENTS, ADMISSIONS, DIAGNOSES_ICD and PROCEDURES_ICD CSVs.

Same seed, same bytes (``random.Random`` only, fixed column order, ``\\n`` line ends, gzip with a
zero mtime). The tables follow MIMIC-III v1.4 conventions a loader has to cope with: ICD-9 without
dots, dates shifted into 2100-2200, patients over 89 with a DOB about 300 years before their first
stay, ``DOD_HOSP``/``DOD_SSN`` that disagree, ETHNICITY strings as MIMIC writes them.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ehrdebug.data import synth_spec as spec
from ehrdebug.data.synth_outcome import reassign_last_stay_death

PATIENT_COLUMNS = ["ROW_ID", "SUBJECT_ID", "GENDER", "DOB", "DOD", "DOD_HOSP", "DOD_SSN", "EXPIRE_FLAG"]
ADMISSION_COLUMNS = [
    "ROW_ID", "SUBJECT_ID", "HADM_ID", "ADMITTIME", "DISCHTIME", "DEATHTIME", "ADMISSION_TYPE",
    "ADMISSION_LOCATION", "DISCHARGE_LOCATION", "INSURANCE", "LANGUAGE", "RELIGION", "MARITAL_STATUS",
    "ETHNICITY", "EDREGTIME", "EDOUTTIME", "DIAGNOSIS", "HOSPITAL_EXPIRE_FLAG", "HAS_CHARTEVENTS_DATA",
]
ICD_COLUMNS = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"]
TABLES = ("PATIENTS", "ADMISSIONS", "DIAGNOSES_ICD", "PROCEDURES_ICD")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEATH_INTERCEPT = -5.35  # calibrated: ~10% of multi-stay patients die in their last stay
FIRST_STAY_RISK = 1.5


@dataclass
class SynthAdmission:
    hadm_id: int
    admit: datetime
    disch: datetime
    death: datetime | None
    admission_type: str
    admission_location: str
    discharge_location: str
    insurance: str
    diagnosis: str
    dx: list[str]
    px: list[str]
    ed: tuple[datetime, datetime] | None = None
    chartevents: int = 1
    severity: float = 0.0  # the reason's severity (feeds synth_outcome; never written to a table)


@dataclass
class SynthPatient:
    subject_id: int
    gender: str
    dob: datetime
    ethnicity: str
    language: str
    religion: str
    marital: str
    age: int  # true age at first admission (may exceed 89; the DOB hides it)
    clusters: list[str] = field(default_factory=list)
    admissions: list[SynthAdmission] = field(default_factory=list)
    dod: datetime | None = None
    dod_hosp: datetime | None = None
    dod_ssn: datetime | None = None


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _draw(rng: random.Random, items: tuple[str, ...], sex: str) -> list[str]:
    """Draw ``"A|B p"`` items: with probability p, one alternative allowed for this sex."""
    out: list[str] = []
    for item in items:
        alts, prob = item.rsplit(" ", 1)
        if rng.random() >= float(prob):
            continue
        options = [c for c in alts.split("|") if spec.SEX_ONLY.get(c, sex) == sex]
        if options:
            out.append(rng.choice(options))
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _dedup(codes: list[str]) -> list[str]:
    return list(dict.fromkeys(codes))


_TAIL_CUM = list(itertools.accumulate(1.0 / (i + 1) ** 0.9 for i in range(len(spec.TAIL))))
_N_ADMISSIONS = ((1, 0.35), (2, 0.30), (3, 0.17), (4, 0.09), (5, 0.05), (6, 0.04))


def _first_age(rng: random.Random) -> int:
    u = rng.random()
    if u < 0.08:
        return 0
    if u < 0.105:
        return rng.randint(90, 97)
    return max(18, min(89, int(rng.gauss(64, 16))))


def _clusters(rng: random.Random, age: int, male: bool, minority: bool) -> list[str]:
    chosen: list[str] = []
    for c in spec.CHRONIC:
        logit = c.intercept + c.age_slope * age + c.male * male + c.minority * minority
        logit += c.age_quad * (age - c.age_center) ** 2
        if c.name == "renal_esrd" and "diabetic" in chosen:
            logit += 1.8
        if rng.random() < _sigmoid(logit):
            chosen.append(c.name)
    return chosen


def _insurance(rng: random.Random, age: int) -> str:
    if age == 0:
        return _weighted(rng, (("Private", 0.6), ("Medicaid", 0.4)))
    if age >= 65:
        return _weighted(rng, (("Medicare", 0.85), ("Private", 0.1), ("Medicaid", 0.03), ("Government", 0.02)))
    return _weighted(rng, (("Private", 0.55), ("Medicaid", 0.3), ("Medicare", 0.07), ("Government", 0.05),
                           ("Self Pay", 0.03)))


def _reason(rng: random.Random, clusters: list[str], age: int) -> spec.Reason:
    weights = []
    for r in spec.REASONS:
        w = r.weight * math.exp(r.age_slope * (age - 65))
        for c in clusters:
            w *= r.boosts.get(c, 1.0)
        weights.append(w)
    return rng.choices(spec.REASONS, weights=weights)[0]


def _adult_stay(rng: random.Random, p: SynthPatient, chronic: list[str], age: int, k: int
                ) -> tuple[list[str], list[str], str, str, bool, float]:
    reason = _reason(rng, p.clusters, age)
    dx = _draw(rng, reason.codes, p.gender) or [reason.codes[0].split(" ")[0].split("|")[0]]
    dx += [c for c in chronic if rng.random() < 0.8]
    for _ in range(_poisson(rng, 0.4 + 0.016 * age)):  # older patients carry more comorbidities
        code = rng.choices(spec.TAIL, cum_weights=_TAIL_CUM)[0]
        if spec.SEX_ONLY.get(code, p.gender) == p.gender:
            dx.append(code)
    px = _draw(rng, reason.procs, p.gender)
    severity = sum(c.severity for c in spec.CHRONIC if c.name in p.clusters)
    logit = DEATH_INTERCEPT + 0.06 * (age - 65) + 0.8 * reason.severity + 1.6 * severity + 0.35 * k
    logit += 0.7 * ("78552" in dx) + 0.5 * ("51881" in dx) + rng.gauss(0.0, 0.4)
    logit += FIRST_STAY_RISK * (k == 0)  # most MIMIC stays are single; keeps ~10% expire per stay
    died = rng.random() < _sigmoid(logit)
    if died and rng.random() < 0.3:
        dx.append("V4986")
    adm_type = reason.admission_type
    if adm_type == "EMERGENCY" and rng.random() < 0.15:
        adm_type = "URGENT"
    return _dedup(dx), _dedup(px), rng.choice(reason.text), adm_type, died, reason.severity


def _newborn_stay(rng: random.Random, sex: str) -> tuple[list[str], list[str], bool, float]:
    preterm = rng.random() < 0.3
    first = _weighted(rng, (("V3000", 0.6), ("V3001", 0.35), ("V3101", 0.05)))
    dx = [first] + _draw(rng, spec.PRETERM_CODES if preterm else spec.NEWBORN_CODES, sex)
    px = _draw(rng, spec.NEWBORN_PROCS, sex)
    if sex == "F":
        px = [c for c in px if c != "640"]
    died = rng.random() < _sigmoid(-3.8 if preterm else -7.0)
    los = rng.uniform(8, 60) if preterm else rng.lognormvariate(math.log(2.5), 0.3)
    return _dedup(dx), _dedup(px), died, los


def _patient(rng: random.Random, subject_id: int, hadm_ids: list[int]) -> SynthPatient:
    age = _first_age(rng)
    gender = "M" if rng.random() < 0.56 else "F"
    ethnicity = _weighted(rng, spec.ETHNICITIES)
    newborn = age == 0
    first = datetime(2100, 1, 1) + timedelta(days=rng.randint(0, 85 * 365), minutes=rng.randint(0, 1439))
    if newborn:
        dob = first.replace(hour=0, minute=0)
    elif age > 89:  # MIMIC-III hides ages over 89: DOB moved ~300 years before the first stay
        dob = (first - timedelta(days=int(300 * 365.25) + rng.randint(0, 200))).replace(hour=0, minute=0)
    else:
        dob = (first - timedelta(days=int(age * 365.25) + rng.randint(1, 364))).replace(hour=0, minute=0)
    p = SynthPatient(subject_id, gender, dob, ethnicity,
                     "" if newborn else _weighted(rng, spec.LANGUAGES),
                     "NOT SPECIFIED" if newborn else _weighted(rng, spec.RELIGIONS),
                     "" if newborn else _weighted(rng, spec.MARITAL), age)
    p.clusters = [] if newborn else _clusters(rng, age, gender == "M", ethnicity in spec.MINORITY)
    chronic: list[str] = []
    for c in spec.CHRONIC:
        if c.name in p.clusters:
            chronic += _draw(rng, c.codes, gender)
    chronic = _dedup(chronic)
    n = (1 if rng.random() < 0.93 else 2) if newborn else int(_weighted(rng, tuple((str(a), w) for a, w in _N_ADMISSIONS)))
    admit = first
    for k in range(n):
        cur_age = age + int((admit - first).days / 365.25)
        if newborn and k == 0:
            dx, px, died, los = _newborn_stay(rng, gender)
            diagnosis, adm_type, severity = "NEWBORN", "NEWBORN", 0.0
        else:
            dx, px, diagnosis, adm_type, died, severity = _adult_stay(rng, p, chronic, max(cur_age, 1), k)
            los = min(60.0, max(0.4, rng.lognormvariate(math.log(5), 0.7)))
        disch = admit + timedelta(minutes=int(los * 1440))
        death = None
        if died:
            death = admit + timedelta(minutes=int(los * 1440 * rng.uniform(0.2, 1.0)))
            disch = death
        location = _weighted(rng, spec.ADMIT_LOCATIONS[adm_type])
        ed = None
        if location == "EMERGENCY ROOM ADMIT":
            ed = (admit - timedelta(minutes=rng.randint(90, 600)), admit + timedelta(minutes=rng.randint(5, 60)))
        dloc = "DEAD/EXPIRED" if died else ("HOME" if newborn else _weighted(rng, spec.DISCHARGE_LOCATIONS))
        p.admissions.append(SynthAdmission(hadm_ids.pop(), admit, disch, death, adm_type, location, dloc,
                                           _insurance(rng, cur_age if not newborn else 0), diagnosis, dx, px, ed,
                                           0 if rng.random() < 0.03 else 1, severity))
        if died:
            p.dod = p.dod_hosp = death.replace(hour=0, minute=0)
            p.dod_ssn = p.dod if rng.random() < 0.7 else None
            break
        admit = disch + timedelta(minutes=int((2 + rng.expovariate(1 / 250)) * 1440))
        if admit.year >= 2199:
            break
    if p.dod is None and not newborn:
        severity = sum(c.severity for c in spec.CHRONIC if c.name in p.clusters)
        if rng.random() < _sigmoid(-3.0 + 0.04 * (age - 65) + severity):
            p.dod = p.dod_ssn = (p.admissions[-1].disch + timedelta(days=rng.randint(5, 900))).replace(hour=0, minute=0)
    return p


def generate(n_patients: int, seed: int = 0) -> list[SynthPatient]:
    """``n_patients`` synthetic patients, fully determined by ``seed``."""
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    rng = random.Random(seed)
    # MIMIC-III's id ranges (SUBJECT_ID < 100,000, HADM_ID 100,001-199,999), widened for large cohorts
    subject_ids = sorted(rng.sample(range(2, 2 + max(99_997, 3 * n_patients)), n_patients))
    hadm_ids = rng.sample(range(100_001, 100_001 + max(99_998, 12 * n_patients)), n_patients * 6)
    patients = [_patient(rng, sid, hadm_ids) for sid in subject_ids]
    outcome = random.Random(f"ehrdebug-outcome-{seed}")  # its own stream: the main draws stay as they were
    for p in patients:
        reassign_last_stay_death(p, outcome)
    return patients


def _ts(value: datetime | None) -> str:
    return value.strftime(TIME_FORMAT) if value else ""


def table_rows(patients: list[SynthPatient]) -> dict[str, list[list[object]]]:
    rows: dict[str, list[list[object]]] = {t: [] for t in TABLES}
    for p in patients:
        rows["PATIENTS"].append([len(rows["PATIENTS"]) + 1, p.subject_id, p.gender, _ts(p.dob), _ts(p.dod),
                                 _ts(p.dod_hosp), _ts(p.dod_ssn), int(p.dod is not None)])
        for a in p.admissions:
            ed = a.ed or (None, None)
            rows["ADMISSIONS"].append([
                len(rows["ADMISSIONS"]) + 1, p.subject_id, a.hadm_id, _ts(a.admit), _ts(a.disch), _ts(a.death),
                a.admission_type, a.admission_location, a.discharge_location, a.insurance, p.language, p.religion,
                p.marital, p.ethnicity, _ts(ed[0]), _ts(ed[1]), a.diagnosis, int(a.death is not None), a.chartevents])
            for table, codes in (("DIAGNOSES_ICD", a.dx), ("PROCEDURES_ICD", a.px)):
                for seq, code in enumerate(codes, 1):
                    rows[table].append([len(rows[table]) + 1, p.subject_id, a.hadm_id, seq, code])
    return rows


COLUMNS = {"PATIENTS": PATIENT_COLUMNS, "ADMISSIONS": ADMISSION_COLUMNS, "DIAGNOSES_ICD": ICD_COLUMNS,
           "PROCEDURES_ICD": ICD_COLUMNS}


def write_mimic3(patients: list[SynthPatient], out_dir: str, compress: bool = False) -> list[str]:
    """Write the four tables (``.csv`` or ``.csv.gz``, byte-reproducible); return the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for table, rows in table_rows(patients).items():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS[table])
        writer.writerows(rows)
        data = buf.getvalue().encode("utf-8")
        path = os.path.join(out_dir, f"{table}.csv" + (".gz" if compress else ""))
        if compress:
            data = gzip.compress(data, compresslevel=9, mtime=0)
        with open(path, "wb") as fh:
            fh.write(data)
        paths.append(path)
    return paths


def synthesize(out_dir: str, n_patients: int = 2000, seed: int = 0, compress: bool = False) -> list[str]:
    return write_mimic3(generate(n_patients, seed), out_dir, compress)
