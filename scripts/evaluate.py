#!/usr/bin/env python
"""Score a trained model on a folder of songs (and "Other" sounds).

Windows every --hop seconds; clip accuracy over all windows, song accuracy
from the mean probability over a song's windows ("Other" left out of the
song vote), per-class precision and recall, and a confusion-matrix PNG. The
last line is machine-readable:

    clip_accuracy=0.612 song_accuracy=0.750 songs=8 clips=255
"""

import argparse
import json
import os
import sys

import chainer
import matplotlib
matplotlib.use('Agg')

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from music_classification import collection, evaluation  # NOQA: E402
from music_classification import plotting  # NOQA: E402
from music_classification.errors import MusicClassificationError  # NOQA
from music_classification.serialization import save_png  # NOQA: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', '-M', required=True,
                        help='training output folder (model.npz and '
                        'labels.json)')
    parser.add_argument('--music', '-m', required=True,
                        help='folder with one subfolder of songs per artist')
    parser.add_argument('--other', '-O', default=None,
                        help='folder of non-music sounds (class "Other")')
    parser.add_argument('--hop', type=float, default=5.0,
                        help='seconds between window starts')
    parser.add_argument('--resample', action='store_true',
                        help='resample files whose rate differs from the '
                        "model's")
    parser.add_argument('--device', '-d', default='-1',
                        help='-1 or @numpy: CPU; 0 or @cupy:0: GPU 0')
    parser.add_argument('--confusion', default=None,
                        help='confusion-matrix PNG (default: '
                        'MODEL/confusion.png)')
    parser.add_argument('--json', action='store_true',
                        help='print everything as JSON')
    args = parser.parse_args(argv)

    try:
        model, class_names, config = collection.load_trained(args.model)
        device = chainer.get_device(args.device)
        model.to_device(device)
        device.use()
        result = evaluation.evaluate(model, class_names, config, args.music,
                                     args.other, hop_seconds=args.hop,
                                     resample=args.resample)
    except MusicClassificationError as e:
        sys.exit('evaluate.py: {}'.format(e))
    png = args.confusion or os.path.join(args.model, 'confusion.png')
    image = plotting.plot_confusion(result['confusion'], class_names)
    save_png(image.figure, png)
    result['confusion_png'] = png
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for f in result['files']:
        print('{:<50} {:<16} -> {:<16} p={:.2f}'.format(
            os.path.relpath(f['path'], os.path.dirname(args.music)),
            f['true'], f['predicted'], f['probability']))
    print('{:<16} {:>9} {:>9} {:>6}'.format('class', 'precision', 'recall',
                                           'clips'))
    for name, m in result['per_class'].items():
        print('{:<16} {:>9} {:>9} {:>6}'.format(
            name, *('-' if v is None else '{:.3f}'.format(v)
                    for v in (m['precision'], m['recall'])), m['clips']))
    print('confusion matrix: {}'.format(png))
    print(evaluation.summary_line(result))


if __name__ == '__main__':
    main()
