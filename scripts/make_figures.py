#!/usr/bin/env python
"""Write the README's figures to docs/ from the synthetic demo collection.

    python scripts/make_figures.py [--data data/demo] [--out docs]
"""

import argparse
import os
import sys

import matplotlib
matplotlib.use('Agg')

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from music_classification import (  # NOQA: E402
    READ_DATASET, demo, load_audio, log_melspectrogram, plotting)
from music_classification.serialization import save_png  # NOQA: E402


def save(artist, path):
    save_png(artist.axes.figure, path, dpi=80)
    print('wrote', path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default='data/demo',
                        help='folder of the demo collection (made if absent)')
    parser.add_argument('--out', default='docs', help='folder for the PNGs')
    args = parser.parse_args()
    data = demo.make_demo_dataset(args.data)
    song = data.songs[data.artists[2]][0]
    y, sr = load_audio(song)
    save(plotting.plot_melspectrogram(y=y[:23 * sr], sr=sr),
         os.path.join(args.out, 'mel_spectrogram.png'))
    save(plotting.plot_network_input(log_melspectrogram(y=y[:163840])),
         os.path.join(args.out, 'network_input.png'))
    clean = READ_DATASET(song, augment=False)
    noisy = READ_DATASET(song, noise=data.noise_path, rng=3)
    i = clean.n_blocks // 2
    save(plotting.plot_augmentation(clean.get_one_features(i),
                                    noisy.get_one_features(i))[0],
         os.path.join(args.out, 'augmentation.png'))


if __name__ == '__main__':
    main()
