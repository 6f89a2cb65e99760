"""``python -m kit``: the same as the ``kit`` command."""

import sys

from kit.cli import main

if __name__ == "__main__":
    sys.exit(main())
