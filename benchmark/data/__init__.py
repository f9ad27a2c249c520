"""Cohort sources and the on-disk cohort format (see :mod:`benchmark.data.cohort`)."""
