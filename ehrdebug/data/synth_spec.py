"""The clinical model behind the synthetic MIMIC-III tables: chronic clusters, admission reasons, risk.

Item strings read ``"CODE|ALT|ALT p"``: with probability ``p`` one of the alternatives is written.
A patient draws chronic clusters from age/sex/ethnicity once and carries their codes to every
admission (that is what makes next-visit codes predictable); each admission has one reason whose
codes come first (SEQ_NUM 1 is the principal diagnosis) and whose severity, with the chronic
clusters, age and the number of earlier stays, drives in-hospital death (a learnable signal).
Death in the last stay of a multi-stay patient (the ``codes`` task's outcome) is redrawn from
``OUTCOME``, which adds order and timing (``synth_outcome``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chronic:
    name: str
    intercept: float
    age_slope: float
    codes: tuple[str, ...]
    severity: float
    male: float = 0.0
    age_center: float = 0.0
    age_quad: float = 0.0
    minority: float = 0.0


@dataclass(frozen=True)
class Reason:
    name: str
    weight: float
    codes: tuple[str, ...]
    severity: float
    text: tuple[str, ...]
    procs: tuple[str, ...] = ()
    boosts: dict[str, float] = field(default_factory=dict)
    age_slope: float = 0.0
    admission_type: str = "EMERGENCY"


CHRONIC: tuple[Chronic, ...] = (
    Chronic("cardiac", -4.9, 0.07, ("4019 .75", "41401 .55", "4280 .4", "42731 .4", "2724 .5", "412 .15",
            "V4581 .12", "V4582 .12", "4240 .12", "4241 .1", "V5866 .2", "4254 .06", "4439 .08",
            "42832|42822 .15", "V4501|V4502 .06"), 0.35, male=0.45),
    Chronic("diabetic", -3.7, 0.035, ("25000|25000|25000|25000|25002|25040|25060 .95", "V5867 .35", "5859|5853|5854 .3",
            "40390 .15", "3572 .1", "36201 .06", "27800|27801 .15", "2724 .3", "4019 .5"), 0.2, minority=0.6),
    Chronic("pulmonary", -5.0, 0.045, ("496|4928 .9", "V1582 .45", "3051 .3", "32723 .15", "4168 .1"), 0.45),
    Chronic("liver", -2.6, 0.0, ("5715|5712 .9", "5723 .5", "07054|07070 .35", "4561 .3", "30390|30500 .35",
            "78959 .3"), 0.95, male=0.4, age_center=55, age_quad=-0.0012),
    Chronic("oncology", -4.3, 0.03, ("1629|1623|1579|1539|185|1749|1890|20280|20300|20500 1", "1970 .2",
            "1977 .2", "1983 .08", "1985 .1", "28800 .1", "V5811 .1"), 1.25),
    Chronic("dementia", -9.0, 0.09, ("3310|2900 .9", "3320 .15", "V1588 .3", "2930 .2"), 0.6),
    Chronic("substance", -0.9, -0.035, ("30500|30390 .8", "3051 .5", "311 .2"), -0.1, male=0.5),
    Chronic("renal_esrd", -5.8, 0.02, ("5856 1", "40391 .8", "V4511 .7", "28521 .5", "V420 .05"), 0.6),
)

REASONS: tuple[Reason, ...] = (
    Reason("sepsis", 1.0, ("0389|03842|03849|03811|03812 .9", "99591|99592 .85", "78552 .35", "5849 .45",
           "51881 .3", "2762 .3", "5990 .35", "2875 .2", "2866 .05", "7907 .1", "00845 .08"), 1.55,
           ("SEPSIS", "FEVER", "HYPOTENSION", "UROSEPSIS"), ("3893 .7", "9604 .3", "9671|9672 .3", "0017 .3",
           "3891 .3", "9904 .2"), {"oncology": 1.6, "liver": 1.5, "diabetic": 1.3, "dementia": 1.6,
           "renal_esrd": 2.0}, 0.02),
    Reason("pneumonia", 1.1, ("486|4829|4821|48241|48242|481 .92", "5070 .15", "51881 .3", "2761 .15",
           "27651 .2", "5119 .15"), 0.75, ("PNEUMONIA", "SHORTNESS OF BREATH", "ALTERED MENTAL STATUS"),
           ("3893 .3", "9604 .15", "9671 .15", "3322 .1"), {"pulmonary": 2.2, "dementia": 2.0}, 0.02),
    Reason("aspiration", 0.2, ("5070 1", "51881 .5", "2930 .3"), 1.2, ("ASPIRATION PNEUMONIA",),
           ("9604 .4", "9671 .4", "9607 .3"), {"dementia": 5.0, "substance": 2.0}, 0.03),
    Reason("ami", 0.8, ("41071|41041|41011 1", "41401 .9", "4280 .3", "4111 .1", "42731 .15", "4275 .05",
           "42741 .05"), 0.7, ("ST ELEVATION MYOCARDIAL INFARCTION", "CHEST PAIN", "NON-ST SEGMENT ELEVATION MI"),
           ("3722|3723 .8", "8856 .8", "0066 .55", "3607 .5", "0045 .4", "0040 .4", "9962 .05"),
           {"cardiac": 2.5, "diabetic": 1.3}, 0.03),
    Reason("cabg", 0.5, ("41401 1", "4241|4240 .3", "9971 .25", "42731 .3", "2851 .3", "4111 .2", "99811 .05",
           "E8782 .2"), -1.3, ("CORONARY ARTERY DISEASE\\CORONARY ARTERY BYPASS GRAFT /SDA",
           "AORTIC STENOSIS\\AORTIC VALVE REPLACEMENT /SDA"), ("3961 1", "3615 .8", "3612|3613 .7", "3522 .2",
           "3893 .5", "9604 .2"), {"cardiac": 3.0, "diabetic": 1.4}, 0.02, "ELECTIVE"),
    Reason("chf", 0.7, ("42823|42833 .7", "4280 1", "5849 .3", "2767 .15", "4168 .15", "2761 .1", "78605 .05"),
           0.6, ("CONGESTIVE HEART FAILURE", "SHORTNESS OF BREATH"), ("3893 .2",), {"cardiac": 3.5,
           "renal_esrd": 1.5}, 0.03),
    Reason("gi_bleed", 0.6, ("5789|5781|5693 .75", "4560 .2", "2851 .7", "E9342 .1", "2859 .2", "56210 .1"), 0.45,
           ("GASTROINTESTINAL BLEED", "UPPER GI BLEED", "LOWER GI BLEED"), ("9904 .8", "4513|4516 .6",
           "4443 .2", "4233 .1"), {"liver": 3.0, "cardiac": 1.3}, 0.02),
    Reason("liver_failure", 0.25, ("5722 .6", "78959 .6", "5723 .4", "2875 .5", "5849 .3", "2761 .3"), 1.35,
           ("LIVER FAILURE", "HEPATIC ENCEPHALOPATHY", "ASCITES"), ("5491 .5", "9907 .2"), {"liver": 8.0}),
    Reason("stroke", 0.5, ("431|430|4321|43491|43411 1", "3485 .3", "78039 .15", "7843 .2", "3481 .05"), 1.45,
           ("INTRACRANIAL HEMORRHAGE", "STROKE", "SUBARACHNOID HEMORRHAGE"), ("8703 .5", "9604 .3", "9671 .3",
           "0331 .05"), {"cardiac": 1.4}, 0.035),
    Reason("trauma", 0.55, ("85221|85220|8600|80703|82021|8208 1", "E8889|E8859|E8120 .9", "2851 .3",
           "E8490|E8497 .3"), 0.1, ("S/P FALL", "MOTOR VEHICLE ACCIDENT", "HIP FRACTURE"), ("7935 .2",
           "3404 .2", "8703 .3", "8151 .1"), {"dementia": 2.0, "substance": 1.8}),
    Reason("copd", 0.35, ("49121 .7", "51881|51884 .6", "496 .5", "4168 .2", "2762 .1"), 0.7,
           ("COPD EXACERBATION", "SHORTNESS OF BREATH"), ("9390 .4", "9604 .2", "9671 .2"), {"pulmonary": 7.0}),
    Reason("dka", 0.15, ("25013 1", "2762 .9", "27651 .7", "2767 .3", "5849 .2"), -1.0,
           ("DIABETIC KETOACIDOSIS", "HYPERGLYCEMIA"), (), {"diabetic": 5.0}, -0.04),
    Reason("pancreatitis", 0.25, ("5770 1", "30500|30390 .3", "2762 .2", "5849 .2"), -0.2, ("PANCREATITIS",),
           ("9915 .1",), {"substance": 3.0, "liver": 1.5}),
    Reason("renal", 0.4, ("5849|5845 .9", "2767 .4", "2762 .3", "40391|40390 .3", "28521 .2"), 0.35,
           ("ACUTE RENAL FAILURE", "HYPERKALEMIA"), ("3995 .4", "3895 .2"), {"diabetic": 2.0, "renal_esrd": 4.0}),
    Reason("pe_dvt", 0.3, ("41519 .7", "45341 .5", "V1251 .2", "4168 .1"), 0.45, ("PULMONARY EMBOLISM",
           "LEFT LEG SWELLING"), ("3893 .2",), {"oncology": 3.0}),
    Reason("cancer", 0.25, ("V5811 .3", "28800 .3", "1970|1977|1985|1983 .6", "2875 .3", "2639 .3", "V667 .2",
           "V4986 .3"), 1.4, ("MALIGNANT NEOPLASM", "FEVER, NEUTROPENIA", "FAILURE TO THRIVE"), ("9904 .4",
           "9915 .2", "3404 .2"), {"oncology": 12.0}),
    Reason("infection", 0.6, ("5990|59080|6826|6827 1", "0414|04111|0417 .4", "27651 .2", "2930 .15"), -0.5,
           ("URINARY TRACT INFECTION", "CELLULITIS", "PYELONEPHRITIS"), (), {"diabetic": 1.6, "dementia": 1.8}),
    Reason("alcohol", 0.2, ("29181 .8", "30390 .8", "2761 .2", "2752 .3"), -0.4, ("ALCOHOL WITHDRAWAL",
           "ETOH WITHDRAWAL"), (), {"substance": 6.0, "liver": 2.0}, -0.02),
    Reason("syncope", 0.35, ("7802 1", "4589|4580 .4", "42789 .2", "27651 .2"), -1.2, ("SYNCOPE",), (),
           {"cardiac": 1.5}, 0.02),
)

# Comorbidities and status codes coded on any adult stay: a long tail with Zipf-like weights
# (repeating an alternative in "A|A|B" weights it).
TAIL: tuple[str, ...] = (
    "53081", "2859", "2449", "2720", "311", "4019", "V1582", "2724", "2875", "5119", "2768", "3051", "2752",
    "2761", "4589", "32723", "V5861", "2749", "73300", "V5869", "30000", "2930", "27800", "2639", "5180",
    "78097", "V4986", "60000", "2809", "28529", "7140", "56210", "V1254", "2760", "27541", "2763", "99812",
    "4439", "V1588", "5849", "42789", "4400", "4414", "V4582", "2512", "78820", "7907", "00845", "E8497",
    "45829", "4580", "4271", "42732", "4160", "4233", "V433", "V1011", "V1046", "V103", "5609", "99662",
    "4210", "2869", "51882", "7991", "99731", "3314", "34590", "49390", "V5866", "4139", "4011", "25001",
    "V427", "44101", "78551", "5845", "V667", "7843", "4561", "07070", "78650", "V1251", "0417", "04111",
)

# Codes that only one sex can carry.
SEX_ONLY: dict[str, str] = {"185": "M", "60000": "M", "V1046": "M", "1749": "F", "V103": "F"}

NEWBORN_CODES: tuple[str, ...] = ("V053 .85", "V290 .45", "V502 .25", "7746 .15", "V293 .06", "7793 .08")
PRETERM_CODES: tuple[str, ...] = ("76519|76518|76517|76516|76515 .95", "76528|76527|76526|76525 .95",
                                  "7742 .7", "7706|769 .5", "77081|77082 .35", "7793 .4", "7470 .15",
                                  "7455|7454 .1", "7766 .2", "7756 .15", "77181 .05", "7707 .08",
                                  "V290 .5", "V053 .5")
NEWBORN_PROCS: tuple[str, ...] = ("9955 .85", "9983 .3", "640 .15")

ETHNICITIES: tuple[tuple[str, float], ...] = (
    ("WHITE", 0.69), ("BLACK/AFRICAN AMERICAN", 0.09), ("UNKNOWN/NOT SPECIFIED", 0.075),
    ("HISPANIC OR LATINO", 0.035), ("ASIAN", 0.03), ("OTHER", 0.025), ("UNABLE TO OBTAIN", 0.015),
    ("PATIENT DECLINED TO ANSWER", 0.01), ("ASIAN - CHINESE", 0.01), ("HISPANIC/LATINO - PUERTO RICAN", 0.01),
    ("WHITE - RUSSIAN", 0.006), ("BLACK/CAPE VERDEAN", 0.005),
)
MINORITY = ("BLACK/AFRICAN AMERICAN", "HISPANIC OR LATINO", "HISPANIC/LATINO - PUERTO RICAN", "BLACK/CAPE VERDEAN")
LANGUAGES = (("ENGL", 0.6), ("", 0.3), ("SPAN", 0.04), ("RUSS", 0.02), ("PTUN", 0.02), ("CANT", 0.02))
RELIGIONS = (("CATHOLIC", 0.35), ("NOT SPECIFIED", 0.2), ("UNOBTAINABLE", 0.13), ("PROTESTANT QUAKER", 0.12),
             ("JEWISH", 0.08), ("OTHER", 0.05), ("EPISCOPALIAN", 0.02), ("", 0.05))
MARITAL = (("MARRIED", 0.45), ("SINGLE", 0.25), ("WIDOWED", 0.13), ("DIVORCED", 0.06), ("SEPARATED", 0.01),
           ("UNKNOWN (DEFAULT)", 0.01), ("", 0.09))
ADMIT_LOCATIONS = {
    "EMERGENCY": (("EMERGENCY ROOM ADMIT", 0.7), ("TRANSFER FROM HOSP/EXTRAM", 0.2),
                  ("CLINIC REFERRAL/PREMATURE", 0.07), ("TRANSFER FROM SKILLED NUR", 0.03)),
    "ELECTIVE": (("PHYS REFERRAL/NORMAL DELI", 1.0),),
    "URGENT": (("TRANSFER FROM HOSP/EXTRAM", 0.8), ("CLINIC REFERRAL/PREMATURE", 0.2)),
    "NEWBORN": (("PHYS REFERRAL/NORMAL DELI", 0.7), ("CLINIC REFERRAL/PREMATURE", 0.3)),
}
DISCHARGE_LOCATIONS = (("HOME", 0.3), ("HOME HEALTH CARE", 0.25), ("SNF", 0.2), ("REHAB/DISTINCT PART HOSP", 0.12),
                       ("LONG TERM CARE HOSPITAL", 0.04), ("HOSPICE-HOME", 0.02), ("LEFT AGAINST MEDICAL ADVI", 0.01),
                       ("SHORT TERM HOSPITAL", 0.03))


@dataclass(frozen=True)
class Outcome:
    """Weights of the last-stay death logit (``synth_outcome``); codes are undotted ICD-9 prefixes."""

    intercept: float
    age: float  # per year over 65
    chronic: float  # per unit of summed chronic-cluster severity
    last_reason: float  # the last stay's own reason severity: not visible in the history
    earlier_stays: float  # per stay before the last one
    recent_high_risk: float  # a high-risk code in the most recent earlier stay
    older_high_risk: float  # high-risk codes only in older stays
    cardiac_then_infection: float  # a cardiac stay followed within window_days by an infection stay
    noise: float
    window_days: int = 180
    # sepsis, severe sepsis, septic shock, intracranial bleeds, hepatic coma, metastases, acute respiratory failure
    high_risk: tuple[str, ...] = ("038", "99592", "78552", "430", "431", "432", "5722", "1970", "1977", "1983",
                                  "1985", "51881")
    first: tuple[str, ...] = ("410", "428", "42731")  # AMI, heart failure, atrial fibrillation
    # sepsis, pneumonia, aspiration, urinary tract infection, cellulitis, pyelonephritis
    then: tuple[str, ...] = ("038", "99591", "99592", "486", "481", "482", "5070", "5990", "6826", "6827", "59080")


# calibrated on 20,000 patients: ~11% of multi-stay patients die in their last stay
OUTCOME = Outcome(intercept=-5.5, age=0.06, chronic=1.6, last_reason=0.8, earlier_stays=0.35, recent_high_risk=2.4,
                  older_high_risk=0.0, cardiac_then_infection=2.2, noise=0.3)
