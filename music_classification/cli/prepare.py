"""``music-classification prepare``: convert a music collection into the
training layout (16 kHz mono WAV).

Reads WAV/FLAC/OGG/Opus/MP3 files of any rate and channel count, groups songs
by the first folder under each source folder (--group folder, the default:
Artist/Album/track.flac is Artist's), their own folder (--group parent) or
their ARTIST tag (--group tag), and writes OUT/music/<artist>/*.wav and
OUT/other/*.wav as 8-bit unsigned (the original's format) or 16-bit PCM.
Sources are never modified. The output mirrors the sources: a rerun
converts what is new, reuses what is done and removes what no source makes
any more (a song moved to another artist, or deleted); unreadable files are
reported one line each and skipped.
"""

import sys

from music_classification.cli import command_parser, describe, interrupted
from music_classification.errors import MusicClassificationError
from music_classification.prepare import prepare_collection
from music_classification.serialization import writable_folder

PROG = 'music-classification prepare'
EXAMPLES = """examples:
  # ~/Music/<artist>/<album>/<track>.flac: one class per first folder
  music-classification prepare ~/Music --other ~/sounds --out data/mine
  # artists from the files' ARTIST tags, 8-bit WAV as the original
  music-classification prepare ~/Downloads/songs --group tag --bits 8 \\
      --other ~/sounds --out data/mine"""


def main(argv=None):
    parser = command_parser(PROG, describe(__doc__), EXAMPLES)
    parser.add_argument('sources', nargs='+',
                        help='folders (searched recursively) or files')
    parser.add_argument('--out', '-o', required=True, help='output folder')
    parser.add_argument('--other', action='append', default=[],
                        help='folder or file of non-music sounds (repeatable)')
    parser.add_argument('--group', '-g', choices=['folder', 'parent', 'tag'],
                        default='folder',
                        help='artist = the first folder under the source '
                        "folder (default), the file's own folder, or its "
                        'ARTIST tag')
    parser.add_argument('--bits', '-b', type=int, choices=[8, 16], default=16,
                        help='8: unsigned like the original; 16 (the '
                        'default): signed')
    args = parser.parse_args(argv)

    def log(line):  # skipped, truncated, renamed or removed: on stderr
        print(PROG + ': ' + line, file=sys.stderr, flush=True)
    try:
        writable_folder(args.out)
        summary = prepare_collection(args.sources, args.out,
                                     group=args.group, bits=args.bits,
                                     other=args.other, log=log)
    except MusicClassificationError as e:
        sys.exit(PROG + ': {}'.format(e))
    except KeyboardInterrupt:
        # Every file is written under a temporary name and renamed: what is
        # there is whole, and a rerun goes on from it.
        interrupted(PROG + ': interrupted; the files converted so far '
                    'are complete, rerun to convert the rest')
    print('converted {converted}, already there {reused}, removed {removed}, '
          'skipped {n}'.format(n=len(summary['skipped']), **summary))
    if summary['skipped']:  # as predict and evaluate: a file not done
        sys.exit(1)

