#!/usr/bin/env python
"""``music-classification ablate`` (see --help)."""
from music_classification.cli import run
run('ablate')
