"""Where the tests find the project and the shared test data (the PEC samples beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def _pec_samples() -> Path:
    """The shared PEC samples: beside the checkout (../shared), or where SPORTELLO_SHARED_DIR says, or the
    workplace's copy. They are external test data, never copied into the project."""
    candidates = [Path(os.environ["SPORTELLO_SHARED_DIR"])] if os.environ.get("SPORTELLO_SHARED_DIR") else []
    candidates += [SHARED, Path("/work/shared")]
    for base in candidates:
        if (base / "pec-samples").is_dir():
            return base / "pec-samples"
    return SHARED / "pec-samples"


PEC_SAMPLES = _pec_samples()
