#!/usr/bin/env python
"""``music-classification prepare`` (see --help)."""
from music_classification.cli import run
run('prepare')
