"""Change report between two transfers of one study: datasets by key, ARD numbers that moved.

    report = compare_builds("RS001", Path("out/RS001/2025-02-27"), Path("out/RS001/2025-05-27"))
    write_change_report(report, Path("out/RS001/2025-05-27/reports/changes"))
    report.to_metadata()   # for Dagster
"""
from changes.compare import ChangeReport, compare_builds
from changes.write import write_change_report

__all__ = ["ChangeReport", "compare_builds", "write_change_report"]
