"""``python -m training.anomaly``: see training/anomaly/cli.py."""

import sys

from training.anomaly.cli import main

sys.exit(main())
