"""Shared, cached pipeline runs for the ADaM tests: building SDTM and ADaM takes seconds, so
each (study, subjects, seed) is built once per test session and shared read-only."""
from __future__ import annotations

import pytest

from clinpipe.paths import study_out


@pytest.fixture(scope="session")
def simulated_adam(tmp_path_factory):
    """`simulated_adam(study, n, seed)` -> (SimulatedStudy, AdamRun, sdtm folder): the study
    simulated, exported as CSV, mapped to SDTM and analysed (full run_adam)."""
    from adam.run import run_adam
    from sdtm.run import run_sdtm
    from simulate.run import deliver, simulate_study

    cache = {}

    def build(study: str, n: int, seed: int):
        key = (study, n, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"sim_{study}_{n}_{seed}")
            sim = simulate_study(study, n, seed)
            deliver(sim, "csv", out / "raw")
            run_sdtm(study, out / "raw", out, progress=lambda m: None)
            run = run_adam(study, study_out(study, "sdtm", out), out, progress=lambda m: None)
            cache[key] = (sim, run, study_out(study, "sdtm", out))
        return cache[key]

    return build


@pytest.fixture(scope="session")
def sample_adam(sample_build):
    """{study: AdamRun} for the committed sample transfers (CSV form), SDTM and ADaM built once."""
    return {s: b.adam_run for s, b in sample_build.items()}
