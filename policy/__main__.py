"""Serves the pack to the Pulumi CLI (`--policy-pack policy`). Constructing `PolicyPack` blocks
forever, so nothing may import this module: the rules live in `policies.py`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack("agent-deploy", POLICIES, EnforcementLevel.ADVISORY)
