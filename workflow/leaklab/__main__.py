"""``python -m leaklab <verb>``: the ``leaklab`` command without the installed script."""

import sys

from leaklab.commands import main

sys.exit(main())
