"""Run a study's job for one transfer through Dagster from the command line (`clinpipe demo`,
benchmarks): the partition is added if new, the run goes into the instance at DAGSTER_HOME
(so `clinpipe ui` shows it afterwards) or an ephemeral one, and the steps' progress lines are
printed as they come."""
import contextlib
import os
from pathlib import Path

import dagster as dg

from pipelines.common import transfers


@contextlib.contextmanager
def _out_root(out_root: Path | None):
    """The assets read the output root from CLINPIPE_OUT, as a deployed code location does."""
    before = os.environ.get("CLINPIPE_OUT")
    if out_root is not None:
        os.environ["CLINPIPE_OUT"] = str(Path(out_root).resolve())
    try:
        yield
    finally:
        if out_root is not None:
            if before is None:
                os.environ.pop("CLINPIPE_OUT", None)
            else:
                os.environ["CLINPIPE_OUT"] = before


def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def materialise(study: str, transfer: str, job: str = "submission_build", out_root: Path | None = None,
                inst: dg.DagsterInstance | None = None, quiet: bool = False) -> dg.ExecuteInProcessResult:
    """Execute `<study>_<job>` for the transfer partition in process; raises nothing on a failed
    step (the result says what failed)."""
    from pipelines.definitions import defs

    inst = inst or instance()
    name = transfers(study).name
    if transfer not in inst.get_dynamic_partitions(name):
        inst.add_dynamic_partitions(name, [transfer])
    level = "ERROR" if quiet else "INFO"
    with _out_root(out_root):
        return defs.resolve_job_def(f"{study}_{job}").execute_in_process(
            instance=inst, partition_key=transfer, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": level}}}},
            tags={"study": study, "transfer": transfer})


def failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per failed step or failed blocking check, for the command line."""
    lines = [f"{e.step_key}: {e.step_failure_data.error.message.strip() if e.step_failure_data.error else ''}"
             for e in result.all_events if e.is_step_failure]
    lines += [f"check {c.asset_key.to_user_string()} {c.check_name} failed"
              for c in result.get_asset_check_evaluations() if not c.passed]
    return lines
