"""The MIMIC-IV cohort: ICU stays, the 17 mimic3-benchmark variables per day, mortality and readmission.

MIMIC-IV is credentialed (PhysioNet data use agreement): the tables are read from the user's own copy,
whose path is a param (``datasets.mimic_iv.path``, set by ``eagrl configure --mimic-iv PATH`` or
``make repro MIMIC=PATH``). Nothing of it is written outside ``data/``: the cohort folder holds the
patient-level arrays, and logs / provenance carry counts and item ids only. Parser messages of malformed
files are withheld because they may quote a row.

Two inputs
----------
* **Raw tables** of MIMIC-IV v2.2 or v3.x (``PATH/hosp`` and ``PATH/icu``, ``.csv.gz`` or ``.csv``):
  ``patients``, ``admissions``, ``icustays``, ``chartevents``, ``labevents``, ``d_items``, ``d_labitems``.
  The two event tables (tens of GB) are streamed in blocks with pyarrow, filtered by item id and stay /
  subject first, and reduced to one partial aggregate per (stay, day, variable) per block, so memory grows
  with the cohort, not with the tables (a full v2.2 chartevents stays far below 24 GiB).
* **The paper group's preprocessed parquet** (yhzhu99/ehr-llm-benchmark, ``my_datasets/mimic-iv``): one
  row per record and day with ``RecordID``, ``RecordTime``, ``Outcome``, ``LOS``, ``Readmission``,
  ``Sex``, ``Age`` and the 17 variables. Chosen when the path is a ``.parquet`` file or
  ``input_format: parquet``; extraction is skipped and the values are used as they are (each record is one
  patient, as in their code).

Extraction from the raw tables (the paper group's MIMIC-IV port of mimic3-benchmarks, yhzhu99/ehr-datasets,
plus their day-level preprocessing)
-------------------------------------------------------------------------------------------------------
1. **Labels on every ICU stay** (before any filter, so that later stays count):

   * ``mortality`` — in-hospital death: ``admissions.hospital_expire_flag`` = 1 for the stay's admission
     (the port tests whether ``deathtime`` or ``dod`` falls between ``admittime`` and ``dischtime``; the
     flag is MIMIC-IV's own record of the same event and does not depend on the date-only ``dod``).
   * ``readmission`` — 30-day readmission: another ICU stay of the same patient whose ``intime`` lies in
     (0, 30] days after discharge, **or** death within 30 days of discharge with no such stay, i.e. a death
     time <= discharge + 30 days (this includes deaths in hospital). Discharge is the stay's ICU ``outtime``
     (``readmission_anchor: hospital_dischtime`` uses the admission's ``dischtime``). The death time is the
     admission's ``deathtime`` when the patient died in hospital, else ``patients.dod`` (a date, read as
     00:00 of that day; MIMIC-IV records out-of-hospital deaths up to one year after the last discharge).
2. **Candidate stays** (mimic3-benchmarks' filters, as in the port): age at ICU admission >= 18, with age =
   ``anchor_age + year(intime) - anchor_year`` (MIMIC-IV's documented rule; the port used ``anchor_age``
   alone); no care-unit transfer (``first_careunit == last_careunit``); admissions with exactly one ICU
   stay left. Sex is 1 = male, 0 = female.
3. **Events**: chartevents by ``stay_id``, labevents by ``subject_id`` and time, both kept only between
   ``intime`` and ``outtime``. Item ids → variables from ``resources/mimic_iv_items.yaml`` (mimic3-benchmarks'
   map restricted to ids that exist in MIMIC-IV, plus MIMIC-IV equivalents; see its header). Value: the
   categorical text table first (GCS, capillary refill), else ``valuenum``, else the number in ``value``.
4. **Units** (per item, documented in the YAML): °F → °C; Celsius items with values >= 79 were charted in
   °F and are converted (mimic3-benchmarks' rule); inch → cm; lb → kg; FiO2 > 1 is a percentage → /100;
   saturation <= 1 is a fraction → x100. Converted values are rounded to 2 decimals.
5. **Outliers**: values outside a variable's plausible ``bounds`` (YAML) are dropped (missing), not clipped.
6. **GCS**: the eye / verbal / motor scores are kept as ordinal categories (kind ``categorical``). MIMIC-IV
   charts no GCS total, so the total is derived as the sum of the three components charted at the same time.
7. **Days**: day ``d`` of a stay is ``floor((charttime - intime) / 24 h)``; the day's value is the last
   observation of that day (``aggregate: mean`` averages numeric variables; categories always take the
   last). Only the last ``window_days`` (7) days of the stay are kept: days ``d > last_day - 7``, with
   ``last_day`` the day of ``outtime``. Visit times are these day numbers.
8. **Patients**: stays with at least ``min_time_points`` (2) days carrying a value are eligible; one stay per
   patient (``stay_selection``: the first by default) keeps splits patient-level.

Split (as in the paper group's ``preprocess_mimic.py``)
------------------------------------------------------
200 test patients stratified by the outcome (in-hospital mortality), seed 42 — the exact
``train_test_split`` call of their code over records in ascending id order; then 10,000 of the rest sampled
stratified, split 7/8 train and 1/8 validation stratified. Patients not sampled are left out of the cohort
(their count is in the provenance). Normalisation and imputation: :mod:`benchmark.data.preprocess`.

Modules
-------
``config`` (settings, constants, :class:`~benchmark.data.mimic_iv.config.MimicIVError`), ``items`` (the
item-id map), ``tables`` (finding and reading the raw tables), ``labels`` (labels and candidate stays),
``events`` (event aggregation and the raw-table extraction), ``parquet`` (the preprocessed file), ``split``
(the paper group's split) and ``build`` (eligibility, the cohort arrays and :func:`build_mimic_iv`).
"""

from benchmark.data.mimic_iv.build import build_mimic_iv
from benchmark.data.mimic_iv.config import VARIABLES, MimicIVConfig
from benchmark.data.mimic_iv.tables import check_input

__all__ = ["VARIABLES", "MimicIVConfig", "build_mimic_iv", "check_input"]
