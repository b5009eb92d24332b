import sys

from training.mnist.cli import main

sys.exit(main())
