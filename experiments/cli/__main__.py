"""``python -m experiments.cli ...``: the same as ``neurodrive ...``."""

import sys

from experiments.cli import main

sys.exit(main())
