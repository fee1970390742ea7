"""The SNOMED-CT coding task of seed 003: a clinical note rendered from a stay, answered by a concept id.

The principal diagnosis of a stay (its first code, skipping liveborn status and external causes) is
mapped from ICD-9 to a real SNOMED-CT concept; stays whose principal diagnosis is not in the map
produce no example. Notes mix presentation, findings and comorbidities, and name the diagnosis only
sometimes, so the model has to read the evidence rather than copy a word.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ehrdebug.data.icd9_catalog import DX
from ehrdebug.data.records import PatientRecord

INSTRUCTION = "Read the clinical note and answer with the SNOMED-CT concept id of the primary diagnosis."


@dataclass(frozen=True)
class Concept:
    sctid: str
    name: str
    icd9: tuple[str, ...]
    presentations: tuple[str, ...]
    findings: tuple[str, ...]
    synonyms: tuple[str, ...]


CONCEPTS: tuple[Concept, ...] = (
    Concept("233604007", "Pneumonia", ("486", "4829", "481", "4821", "48241", "48242"),
            ("fever, productive cough and pleuritic chest pain", "three days of cough with rusty sputum and rigors"),
            ("Chest X-ray shows right lower lobe consolidation.", "Crackles at the left base; WBC 16.2, CRP 140."),
            ("community-acquired pneumonia", "lobar pneumonia")),
    Concept("422588002", "Aspiration pneumonia", ("5070",),
            ("a witnessed choking episode followed by hypoxia", "vomiting with a depressed level of consciousness"),
            ("New right lower lobe infiltrate after emesis.", "Food particles suctioned from the airway."),
            ("aspiration pneumonia",)),
    Concept("91302008", "Sepsis", ("0389", "03842", "03849", "03811", "03812", "99591", "99592"),
            ("fever, rigors and new confusion", "tachycardia, fever to 39.4 C and lethargy"),
            ("Lactate 4.1; blood cultures grow gram-negative rods.", "WBC 22 with bandemia; MAP 62 after fluids."),
            ("sepsis", "severe sepsis")),
    Concept("76571007", "Septic shock", ("78552",),
            ("hypotension that persisted after 3 L of crystalloid", "mottled skin and a blood pressure of 70/40"),
            ("Norepinephrine started; lactate 6.3.", "Two pressors required in the first 12 hours."),
            ("septic shock",)),
    Concept("65710008", "Acute respiratory failure", ("51881", "51884"),
            ("rapidly increasing work of breathing", "respiratory distress requiring intubation on arrival"),
            ("ABG pH 7.21, pCO2 68, pO2 52.", "SpO2 82% on a non-rebreather mask."),
            ("acute hypoxemic respiratory failure", "acute respiratory failure")),
    Concept("13645005", "Chronic obstructive lung disease", ("496", "49121", "4928"),
            ("worsening dyspnea and wheeze with increased sputum", "breathlessness after a viral illness, 50 pack-years"),
            ("Diffuse expiratory wheeze, prolonged expiration.", "Hyperinflated lungs on X-ray, FEV1 38% predicted."),
            ("COPD exacerbation", "chronic obstructive pulmonary disease")),
    Concept("195967001", "Asthma", ("49390",),
            ("episodic wheeze and chest tightness at night", "shortness of breath after exposure to cat dander"),
            ("Peak flow 45% of personal best.", "Wheeze resolving with nebulised salbutamol."),
            ("asthma exacerbation",)),
    Concept("22298006", "Myocardial infarction", ("41071", "41041", "41011"),
            ("crushing substernal chest pain radiating to the left arm", "diaphoresis and chest pressure for two hours"),
            ("Troponin 4.2; ST elevation in II, III and aVF.", "Troponin rising to 2.8 with ST depression in V4-V6."),
            ("acute myocardial infarction", "NSTEMI", "inferior STEMI")),
    Concept("53741008", "Coronary arteriosclerosis", ("41401",),
            ("exertional angina for six months", "stable chest pain on climbing stairs"),
            ("Catheterization shows three-vessel coronary disease.", "Stress test positive; LAD 90% stenosis."),
            ("coronary artery disease",)),
    Concept("42343007", "Congestive heart failure", ("4280", "42823", "42833"),
            ("orthopnea, paroxysmal nocturnal dyspnea and leg swelling", "weight gain of 4 kg and dyspnea on exertion"),
            ("BNP 2100; ejection fraction 25%.", "Bibasilar crackles, JVP raised, pitting edema to the knees."),
            ("decompensated heart failure", "congestive heart failure")),
    Concept("49436004", "Atrial fibrillation", ("42731",),
            ("palpitations and light-headedness", "an irregular pulse found at a routine visit"),
            ("ECG: irregularly irregular rhythm at 130 without P waves.", "Telemetry shows atrial fibrillation."),
            ("atrial fibrillation with rapid ventricular response",)),
    Concept("14669001", "Acute renal failure syndrome", ("5849", "5845"),
            ("poor oral intake and reduced urine output", "vomiting for three days and dizziness on standing"),
            ("Creatinine rose from 1.0 to 3.4 mg/dl.", "Oliguria; urine sediment with muddy brown casts."),
            ("acute kidney injury",)),
    Concept("709044004", "Chronic kidney disease", ("5859", "5853", "5854"),
            ("fatigue and itching", "progressive ankle swelling"),
            ("eGFR 24 ml/min, stable over a year.", "Small echogenic kidneys on ultrasound."),
            ("chronic kidney disease",)),
    Concept("46177005", "End-stage renal disease", ("5856", "40391"),
            ("a missed dialysis session and dyspnea", "shortness of breath two days after dialysis was skipped"),
            ("Potassium 6.4; on hemodialysis three times weekly.", "Fistula in the left arm, creatinine 9.8."),
            ("end-stage renal disease",)),
    Concept("44054006", "Diabetes mellitus type 2", ("25000", "25002", "25040", "25060"),
            ("polyuria, polydipsia and blurred vision", "poorly controlled sugars on metformin"),
            ("HbA1c 10.2%; glucose 320 mg/dl.", "Fasting glucose 210, no ketones."),
            ("type 2 diabetes mellitus",)),
    Concept("420422005", "Diabetic ketoacidosis", ("25013",),
            ("vomiting, abdominal pain and deep rapid breathing", "drowsiness after missing insulin doses"),
            ("Glucose 540, anion gap 28, serum ketones strongly positive.", "pH 7.08, bicarbonate 6."),
            ("diabetic ketoacidosis", "DKA")),
    Concept("68566005", "Urinary tract infectious disease", ("5990",),
            ("dysuria, frequency and suprapubic pain", "new confusion and foul-smelling urine"),
            ("Urinalysis: nitrite positive, WBC > 50.", "Urine culture grows E. coli > 100,000 cfu."),
            ("urinary tract infection",)),
    Concept("45816000", "Pyelonephritis", ("59080",),
            ("fever, flank pain and vomiting", "rigors with right costovertebral angle tenderness"),
            ("Pyuria and white cell casts.", "CT shows a swollen right kidney with perinephric stranding."),
            ("acute pyelonephritis",)),
    Concept("128045006", "Cellulitis", ("6826", "6827"),
            ("a red, hot, swollen lower leg", "spreading redness of the foot after a minor cut"),
            ("Erythema with a demarcated edge, no fluctuance.", "Tender warm skin, CRP 85."),
            ("cellulitis of the leg",)),
    Concept("59282003", "Pulmonary embolism", ("41519",),
            ("sudden pleuritic chest pain and breathlessness", "syncope with tachycardia after a long flight"),
            ("CT angiogram: filling defect in the right main pulmonary artery.", "D-dimer elevated; S1Q3T3 on ECG."),
            ("pulmonary embolism",)),
    Concept("128053003", "Deep venous thrombosis", ("45341",),
            ("a painful swollen left calf", "unilateral leg swelling after knee surgery"),
            ("Duplex shows a non-compressible femoral vein.", "Calf circumference 4 cm greater on the left."),
            ("deep vein thrombosis",)),
    Concept("274100004", "Cerebral hemorrhage", ("431",),
            ("sudden headache, vomiting and right-sided weakness", "found down with a reduced level of consciousness"),
            ("CT head: left basal ganglia hematoma with midline shift.", "Hyperdense intraparenchymal bleed on CT."),
            ("intracerebral hemorrhage",)),
    Concept("21454007", "Subarachnoid hemorrhage", ("430",),
            ("a thunderclap headache and neck stiffness", "the worst headache of life followed by collapse"),
            ("CT shows blood in the basal cisterns.", "Xanthochromia on lumbar puncture."),
            ("subarachnoid hemorrhage",)),
    Concept("230690007", "Cerebrovascular accident", ("43491", "43411"),
            ("acute left facial droop and arm weakness", "slurred speech that began on waking"),
            ("MRI diffusion restriction in the right MCA territory.", "NIHSS 9; CT angiogram shows an M1 occlusion."),
            ("ischemic stroke", "acute stroke")),
    Concept("19943007", "Cirrhosis of liver", ("5715", "5712"),
            ("abdominal distension and jaundice", "easy bruising and spider naevi"),
            ("Nodular liver with splenomegaly on ultrasound.", "Albumin 2.6, INR 1.8, platelets 70."),
            ("liver cirrhosis",)),
    Concept("13920009", "Hepatic encephalopathy", ("5722",),
            ("confusion and day-night reversal", "drowsiness and asterixis"),
            ("Ammonia 140; known cirrhosis.", "Asterixis present; improved with lactulose."),
            ("hepatic encephalopathy",)),
    Concept("197456007", "Acute pancreatitis", ("5770",),
            ("epigastric pain radiating to the back with vomiting", "severe upper abdominal pain after heavy drinking"),
            ("Lipase 2400 U/l.", "CT: peripancreatic fat stranding and fluid."),
            ("acute pancreatitis",)),
    Concept("74474003", "Gastrointestinal hemorrhage", ("5789", "5693"),
            ("melena and light-headedness", "coffee-ground vomiting and dizziness"),
            ("Hemoglobin fell from 12.1 to 7.4 g/dl.", "BUN 58; endoscopy shows a bleeding ulcer."),
            ("gastrointestinal bleeding", "upper GI bleed")),
    Concept("271594007", "Syncope", ("7802",),
            ("a brief loss of consciousness while standing in church", "collapse with rapid spontaneous recovery"),
            ("Orthostatic drop of 30 mmHg; ECG unremarkable.", "No seizure activity witnessed; telemetry quiet."),
            ("syncope",)),
    Concept("363358000", "Malignant tumor of lung", ("1629", "1623"),
            ("weight loss, hemoptysis and a persistent cough", "hoarseness and a long smoking history"),
            ("CT shows a 4 cm spiculated right upper lobe mass.", "Biopsy: adenocarcinoma."),
            ("lung cancer",)),
    Concept("186431008", "Clostridioides difficile infection", ("00845",),
            ("profuse watery diarrhea after a course of clindamycin", "abdominal cramps and ten loose stools a day"),
            ("Stool C. difficile toxin positive.", "WBC 24; colon wall thickening on CT."),
            ("C. difficile colitis",)),
    Concept("387712008", "Neonatal jaundice", ("7742", "7746"),
            ("yellow skin on day three of life", "poor feeding and jaundice in a preterm infant"),
            ("Total serum bilirubin 16 mg/dl, phototherapy started.", "Bilirubin above the phototherapy line."),
            ("neonatal jaundice",)),
    Concept("46775006", "Respiratory distress syndrome in the newborn", ("769",),
            ("grunting and retractions shortly after birth", "tachypnea and cyanosis in a premature infant"),
            ("Ground-glass lungs with air bronchograms on X-ray.", "Surfactant given; on CPAP."),
            ("respiratory distress syndrome",)),
)

# ICD-10-CM (undotted, as MIMIC-IV stores it) for MIMIC-IV and MEDS sources.
ICD10: dict[str, str] = {
    "J189": "233604007", "J181": "233604007", "J159": "233604007", "J13": "233604007", "J690": "422588002",
    "A419": "91302008", "A4151": "91302008", "R6521": "76571007", "J9600": "65710008", "J9601": "65710008",
    "J9602": "65710008", "J441": "13645005", "J449": "13645005", "J45909": "195967001", "I214": "22298006",
    "I2119": "22298006", "I213": "22298006", "I2510": "53741008", "I509": "42343007", "I5023": "42343007",
    "I5033": "42343007", "I4891": "49436004", "N179": "14669001", "N189": "709044004", "N183": "709044004",
    "N184": "709044004", "N186": "46177005", "E119": "44054006", "E1010": "420422005", "N390": "68566005",
    "N10": "45816000", "L03115": "128045006", "L03116": "128045006", "I2699": "59282003", "I619": "274100004",
    "I609": "21454007", "I639": "230690007", "K7460": "19943007", "K7030": "19943007", "K859": "197456007",
    "K922": "74474003", "R55": "271594007", "C3490": "363358000", "C3411": "363358000", "A047": "186431008",
    "A0472": "186431008", "P599": "387712008", "P220": "46775006",
}
BY_ID: dict[str, Concept] = {c.sctid: c for c in CONCEPTS}
BY_CODE: dict[tuple[str, str], Concept] = {("icd9", code): c for c in CONCEPTS for code in c.icd9}
BY_CODE.update({("icd10", code): BY_ID[sctid] for code, sctid in ICD10.items()})
_SKIP = {"icd9": ("V30", "V31", "E"), "icd10": ("Z38", "V", "W", "X", "Y")}


def _skipped(code: tuple[str, str]) -> bool:
    return code[1].startswith(_SKIP.get(code[0], ()))


def principal_concept(codes: list[tuple[str, str]]) -> Concept | None:
    """The concept of a stay's principal diagnosis (first code past liveborn/external-cause codes)."""
    for code in codes:
        if not _skipped(code):
            return BY_CODE.get(code)
    return None


def render_note(rng: random.Random, concept: Concept, age: int, sex: str, others: list[str]) -> str:
    who = "newborn" if age == 0 else f"{age}-year-old {'man' if sex == 'M' else 'woman' if sex == 'F' else 'patient'}"
    opening = rng.choice(("presented with", "was admitted with", "came to the emergency department with",
                          "was transferred for"))
    parts = [f"{who[0].upper()}{who[1:]} {opening} {rng.choice(concept.presentations)}."]
    history = [DX[c].lower() for c in others if c in DX][:3]
    if history:
        parts.append(rng.choice(("Other problems: ", "Also noted: ", "Active issues include ")) + "; ".join(history) + ".")
    parts.append(rng.choice(concept.findings))
    if rng.random() < 0.5:
        parts.append(f"{rng.choice(('Assessment:', 'Impression:', 'Working diagnosis:'))} {rng.choice(concept.synonyms)}.")
    return " ".join(parts)


def coding_records(patients: list[PatientRecord], seed: int = 0, per_patient: int = 1) -> list[dict[str, object]]:
    """One example per stay whose principal ICD-9 diagnosis has a SNOMED-CT concept (the latest
    ``per_patient`` such stays of each patient; 0 keeps all)."""
    out: list[dict[str, object]] = []
    for p in patients:
        kept = 0
        for v in reversed(p.visits):
            if per_patient and kept >= per_patient:
                break
            concept = principal_concept(v.codes)
            if concept is None:
                continue
            rng = random.Random(f"{seed}:{p.patient_id}:{v.visit_id}")
            others = [raw for system, raw in v.codes
                      if system == "icd9" and BY_CODE.get((system, raw)) is not concept and not _skipped((system, raw))]
            out.append({"patient_id": p.patient_id, "instruction": INSTRUCTION,
                        "input": render_note(rng, concept, v.age, p.sex, others[1:] if rng.random() < 0.3 else others),
                        "output": concept.sctid, "label": concept.name})
            kept += 1
    return out
