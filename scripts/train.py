#!/usr/bin/env python
"""Train MUSIC_NET with the original recipe, or --recipe improved; see --help.

    python scripts/train.py --music data/demo/music --other data/demo/other \
        --out runs/x --device -1 --iterations 20
    python scripts/train.py --recipe improved --music data/demo/music \
        --other data/demo/other --out runs/y --iterations 200
"""

import os
import sys

import matplotlib
matplotlib.use('Agg')  # PlotReport's PNGs, no display needed

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from music_classification.train import main  # NOQA: E402

if __name__ == '__main__':
    main()
