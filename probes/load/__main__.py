import sys

from probes.load.cli import main

sys.exit(main())
