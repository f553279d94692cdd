#!/usr/bin/env python
"""``music-classification listen`` (see --help)."""
from music_classification.cli import run
run('listen')
