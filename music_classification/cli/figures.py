"""``music-classification figures``: the README's figures, from the
synthetic demo collection (made under --data if absent), into --out."""

import os

from music_classification import (
    READ_DATASET, load_audio, log_melspectrogram, plotting, synthetic)
from music_classification.cli import command_parser
from music_classification.serialization import save_png

PROG = 'music-classification figures'
EXAMPLES = """example:
  music-classification figures --data data/demo --out docs"""


def save(artist, path):
    save_png(artist.axes.figure, path, dpi=80)
    print('wrote', path)


def main(argv=None):
    parser = command_parser(
        PROG, 'Write the README\'s figures (PNG) from the synthetic '
        'demo collection.',
        EXAMPLES)
    parser.add_argument('--data', default='data/demo',
                        help='folder of the demo collection (made if absent)')
    parser.add_argument('--out', default='docs', help='folder for the PNGs')
    args = parser.parse_args(argv)
    data = synthetic.make_demo_dataset(args.data)
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

