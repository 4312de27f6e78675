"""``python -m sklearn_cf compare ...``: the same as the ``sklearn-cf`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
