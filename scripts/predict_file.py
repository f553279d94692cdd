#!/usr/bin/env python
"""``music-classification predict`` (see --help)."""
from music_classification.cli import run
run('predict')
