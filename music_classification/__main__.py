"""``python -m music_classification <command> ...``: the same as the
``music-classification`` command."""

import sys

from music_classification.cli import main

sys.exit(main())
