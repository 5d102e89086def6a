"""``python -m hashcore.cli``: the ``hashcore`` command."""

import sys

from hashcore.cli.main import main

sys.exit(main())
