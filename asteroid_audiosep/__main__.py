"""``python -m asteroid_audiosep``: the command line."""
import sys

from .cli import main

sys.exit(main())
