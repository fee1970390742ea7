"""EHR data: the synthetic MIMIC-III generator, readers for MIMIC-III/IV and MEDS, task builders.

``synth`` writes the tables (``synth_outcome`` draws the last-stay death from order and timing),
``mimic``/``meds`` read sources into ``records.PatientRecord``, ``build`` turns patients into task
splits; MEDS roots are found and read by ``meds_io``, and ``meds_codes``/``meds_build`` build code
records (any code, with values) and MEDS label tasks from them. ``sample`` finds the shipped
``sample_data/ehr``; ``ship`` rebuilds it. The record format is documented in ``docs/data.md``.
"""
