"""``music-classification evaluate``: score a trained model on songs it did
not train on (and "Other" sounds).

By default the run's held-out songs, as its labels.json lists them
(--split val); with --music, the songs of that folder, those the model
trained on left out (--split all keeps them, with a warning: their figures
are training accuracy). Clips of 10.24 s every --hop seconds; clip accuracy
over all clips, song accuracy from the mean probability over a song's
clips ("Other" left out of the song vote), per-class precision and recall,
and a confusion-matrix PNG. Unreadable files are skipped, each with one
line on stderr, and counted apart. The last line is machine-readable:

    clip_accuracy=0.612 song_accuracy=0.750 songs=8 clips=255
"""

import json
import os
import sys

import chainer

from music_classification import audio, collection, evaluation, plotting
from music_classification.predict import check_hop
from music_classification.cli import command_parser, describe
from music_classification.errors import MusicClassificationError
from music_classification.serialization import save_png

PROG = 'music-classification evaluate'
EXAMPLES = """examples:
  # the held-out songs of the run (as its labels.json lists them)
  music-classification evaluate --model runs/mine
  # every song of another collection the model did not train on
  music-classification evaluate --model runs/mine --music data/other/music \\
      --other data/other/other --json"""


def songs_to_score(args, info):
    """``(songs, n_trained)``: artist -> paths, and how many were trained on.
    """
    trained = {os.path.realpath(p) for paths in
               info.get('train_songs', {}).values() for p in paths}
    if args.music is None:
        parts = {'val': ['val_songs'], 'train': ['train_songs'],
                 'all': ['val_songs', 'train_songs']}[args.split]
        songs = {}
        for part in parts:
            for artist, paths in info.get(part, {}).items():
                songs.setdefault(artist, []).extend(paths)
    else:
        if not os.path.isdir(args.music):
            raise MusicClassificationError('--music {}: {}'.format(
                args.music, 'not a folder' if os.path.exists(args.music)
                else 'no such folder'))
        songs = {}
        for artist in sorted(os.listdir(args.music)):
            folder = os.path.join(args.music, artist)
            if artist.startswith('.') or not os.path.isdir(folder):
                continue
            keep = [p for p in audio.list_audio_files(folder)
                    if args.split == 'all'
                    or (os.path.realpath(p) in trained) == (args.split ==
                                                            'train')]
            if keep:
                songs[artist] = keep
    if not songs:
        raise MusicClassificationError(
            'no {} songs to score{}'.format(
                {'val': 'held-out', 'train': 'training', 'all': ''}[
                    args.split], '' if args.music is None else
                ' in ' + args.music))
    n_trained = sum(os.path.realpath(p) in trained
                    for paths in songs.values() for p in paths)
    return songs, n_trained


def main(argv=None):
    parser = command_parser(PROG, describe(__doc__), EXAMPLES)
    parser.add_argument('--model', '-M', required=True,
                        help='training output folder (model.npz and '
                        'labels.json)')
    parser.add_argument('--music', '-m', default=None,
                        help='folder with one subfolder of songs per artist '
                        '(default: the songs listed in labels.json)')
    parser.add_argument('--split', choices=['val', 'train', 'all'],
                        default='val',
                        help='songs the model did not train on (default), '
                        'those it trained on, or all')
    parser.add_argument('--other', '-O', default=None,
                        help='folder of non-music sounds (class "Other") '
                        'the run has not heard (it trains on all of its own '
                        '--other folder)')
    parser.add_argument('--hop', type=float, default=5.0,
                        help='seconds between clip starts')
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

    def progress(n, total, path):
        if total > 1 and not args.json:
            print('[{}/{}] {}'.format(n, total, path), file=sys.stderr,
                  flush=True)
    try:
        model, class_names, config = collection.load_trained(args.model)
        check_hop(args.hop, config)
        info, _ = collection.load_labels(os.path.join(args.model,
                                                      'labels.json'))
        songs, n_trained = songs_to_score(args, info)
        others = None if args.other is None else \
            audio.list_audio_files(args.other)
        device = chainer.get_device(args.device)
        model.to_device(device)
        device.use()
        if n_trained:
            print(PROG + ': warning: {} of the songs scored were used in '
                  'training: their figures are training accuracy'.format(
                      n_trained), file=sys.stderr)
        trained_others = {os.path.realpath(p)
                          for p in info.get('other_sounds', [])}
        n_others = sum(os.path.realpath(p) in trained_others
                       for p in others or [])
        if n_others:
            print(PROG + ': warning: {} of the "Other" sounds scored were '
                  'used in training (a run trains on every sound of its '
                  '--other folder): score "Other" on sounds it has not '
                  'heard'.format(n_others), file=sys.stderr)
        result = evaluation.evaluate_songs(
            model, class_names, config, songs, others, hop_seconds=args.hop,
            resample=args.resample, progress=progress)
    except MusicClassificationError as e:
        sys.exit(PROG + ': {}'.format(e))
    result['trained_songs_scored'] = n_trained
    result['trained_others_scored'] = n_others
    for skipped in result['skipped']:
        print(PROG + ': skipped {path}: {error}'.format(**skipped),
              file=sys.stderr)
    png = args.confusion or os.path.join(args.model, 'confusion.png')
    # The scores first: a PNG that cannot be written loses nothing.
    if args.json:
        print(json.dumps(dict(result, confusion_png=png), indent=1))
    else:
        for f in result['files']:
            print('{:<50} {:<16} -> {:<16} p={:.2f}'.format(
                f['path'], f['true'], f['predicted'], f['probability']))
        print('{:<16} {:>9} {:>9} {:>6}'.format('class', 'precision',
                                               'recall', 'clips'))
        for name, m in result['per_class'].items():
            print('{:<16} {:>9} {:>9} {:>6}'.format(
                name, *('-' if v is None else '{:.3f}'.format(v)
                        for v in (m['precision'], m['recall'])),
                m['clips']))
        print('confusion matrix: {}'.format(png))
        print(evaluation.summary_line(result), flush=True)
    image = plotting.plot_confusion(result['confusion'], class_names)
    try:
        save_png(image.figure, png)
    except OSError as e:
        sys.exit(PROG + ': cannot write {} ({}); the scores above are '
                 'complete; choose another file with --confusion'.format(
                     png, e.strerror or e))
    if result['skipped']:
        sys.exit(1)

