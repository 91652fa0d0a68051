"""Run the exercise tools as ``python -m rnnrec.exercises strip ...``."""

import sys

from rnnrec.exercises.strip import main

sys.exit(main())
