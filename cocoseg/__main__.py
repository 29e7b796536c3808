"""``python -m cocoseg``: the same command line as the ``cocoseg`` script."""

import sys

from cocoseg.cli import main

if __name__ == "__main__":
    sys.exit(main())
