"""`python -m tglite ...` is the same as the `tglite ...` console script."""
import sys

from .cli import main

sys.exit(main())
