import sys

from edge_ae.cli.main import main

sys.exit(main())
