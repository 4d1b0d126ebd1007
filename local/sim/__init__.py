"""A deterministic simulator of StayKey and its world (docs/simulator.md).

Importing it puts the layer on the path, as Lambda and the local stack do, so `python -m local.sim`
and `python -m local.sim.digest` run from the repository's root.
"""

import os
import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "common")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "StayKey")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
