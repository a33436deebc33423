"""`python -m biasbench.cli`: the same command as `biasbench`."""

import sys

from biasbench.cli import main

sys.exit(main())
