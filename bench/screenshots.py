"""Screenshots of the dashboard's views for docs/DASHBOARD.md (1280x800, dark scheme).

``python bench/screenshots.py [FOLDER]`` (default docs/screenshots) runs the
browser test tests/browser/test_screenshots.py with DASHBOARD_SCREENSHOTS set:
the same real stack the browser tests use (redis-server, the workers of a
small pipeline, the API under uvicorn) and Debian's chromium through
Playwright. It writes dashboard-stages.png, dashboard-running.png,
dashboard-task.png and dashboard-dlq.png. Run from a source checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/browser/test_screenshots.py"


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "docs" / "screenshots"
    env = {**os.environ, "DASHBOARD_SCREENSHOTS": str(folder.resolve())}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
                          cwd=ROOT, env=env, check=False)
    if done.returncode == 0:
        print(f"screenshots in {folder}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
