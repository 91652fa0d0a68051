"""Run the ``rnnrec`` command as ``python -m rnnrec``."""

import sys

from rnnrec.cli import main

sys.exit(main())
