"""EHR data: the synthetic MIMIC-III generator, readers for MIMIC-III/IV and MEDS, task builders.

``synth`` writes the tables, ``mimic``/``meds`` read sources into ``records.PatientRecord``, ``build``
turns patients into task splits, ``sample`` finds the shipped ``sample_data/ehr``; ``ship`` rebuilds it.
"""
