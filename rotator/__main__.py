"""``python -m rotator``: the same entry point as the ``rotator`` console script."""

import sys

from rotator.cli import main

if __name__ == "__main__":
    sys.exit(main())
