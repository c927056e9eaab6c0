"""``python -m tests.chaos --profile full``: see tests/chaos/run.py. Exits 1 on any loss
or duplicate; writes the figures as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from tests.chaos.profiles import PROFILES
from tests.chaos.run import format_report, run_profile
from tests.support.processes import ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work_dir = ROOT / "test-artifacts" / f"chaos-{args.profile}"
    figures = asyncio.run(run_profile(PROFILES[args.profile], work_dir, seed=args.seed))
    output = args.json or work_dir / "figures.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2))
    print(format_report(figures))
    print(f"figures: {output}")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
