#!/usr/bin/env python
"""``music-classification train`` (see --help)."""
from music_classification.cli import run
run('train')
