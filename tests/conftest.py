"""Shared test settings.

DATA    the shared real data (laws as JSON and PDF); HOPRAG_DATA overrides its place
"""

from __future__ import annotations

import os
from pathlib import Path

# The repository is checked out next to shared/ (…/main and …/shared/data).
DATA = Path(os.environ.get("HOPRAG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
