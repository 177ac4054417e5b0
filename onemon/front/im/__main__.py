"""``python -m onemon.front.im``."""

import sys

from onemon.front.im.cli import main

sys.exit(main())
