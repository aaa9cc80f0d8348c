"""Reprint bench/msswift_audit/swift_checks.tsv: plan (no oracle) on each case of swift_cases.py. The verdict is
refused-on-flag when an error names the check's flag, refused-other-flag when only other flags are refused, warned
when a warning names the flag, missed otherwise. tests/test_msswift_swift_audit.py pins the table to plan."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared table
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_table import main, verdict  # noqa: E402,F401 -- verdict: the tests judge each case with it
from swift_cases import CASES, NOT_REACHABLE  # noqa: E402

if __name__ == "__main__":
    main(CASES, NOT_REACHABLE, Path(__file__).parent / "swift_checks.tsv")
