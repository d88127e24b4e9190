"""Shared pytest configuration: hypothesis profiles.

    ci   (default)  25 examples per test, derandomized: the same examples on every run, so a CI
                    failure reproduces locally; no deadline (gradcheck timings vary on shared CPUs)
    dev             many more random examples, for hunting bugs locally:
                    HYPOTHESIS_PROFILE=dev pytest tests/test_ops_elementwise.py
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
