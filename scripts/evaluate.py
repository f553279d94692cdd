#!/usr/bin/env python
"""``music-classification evaluate`` (see --help)."""
from music_classification.cli import run
run('evaluate')
