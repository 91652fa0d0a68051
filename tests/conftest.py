"""Test-suite settings.

Hypothesis runs derandomized by default, so that the suite draws the same
examples on every machine and run (CI must not depend on luck). Set
``HYPOTHESIS_PROFILE=explore`` to draw new random examples instead.
"""

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
