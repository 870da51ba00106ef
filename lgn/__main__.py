"""``python -m lgn``: the ``lgn`` command line."""

import sys

from lgn.cli import main

sys.exit(main())
