#!/usr/bin/env python
"""``music-classification figures`` (see --help)."""
from music_classification.cli import run
run('figures')
