#!/usr/bin/env python
"""``music-classification demo`` (see --help)."""
from music_classification.cli import run
run('demo')
