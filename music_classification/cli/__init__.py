"""The ``music-classification`` command and its subcommands.

One module per job; each has ``main(argv=None)`` and a ``--help`` with a
worked example. ``music-classification <command> ...``, ``python -m
music_classification <command> ...`` and ``scripts/<name>.py ...`` all run
the same ``main``.
"""

import argparse
import importlib
import os
import signal
import sys
import warnings

#: command -> (module of music_classification.cli, what it does).
COMMANDS = {
    'demo': ('demo', 'synthesise a small collection, train the three '
             'recipes, name its held-out songs'),
    'prepare': ('prepare', 'convert a music collection to the training '
                'layout, 16 kHz WAV'),
    'train': ('train', 'train a model: the article\'s recipe, --recipe '
              'improved, or fit --recipe musicnn'),
    'evaluate': ('evaluate', 'score a trained model on held-out songs'),
    'predict': ('predict', 'name the artist of audio files and folders'),
    'listen': ('listen', 'name the artist playing into the microphone, live'),
    'figures': ('figures', 'write the README\'s figures'),
    'ablate': ('ablate', 'the ablation study: train and score each variant'),
}

PROG = 'music-classification'

EXAMPLES = """examples:
  music-classification demo
  music-classification prepare ~/Music --other ~/sounds --out data/mine
  music-classification train --recipe improved --music data/mine/music \\
      --other data/mine/other --out runs/mine --time-budget 20
  music-classification evaluate --model runs/mine
  music-classification predict --model runs/mine ~/Music/new_song.flac
  music-classification listen --model runs/mine

'music-classification <command> --help' shows each command's options."""


def describe(doc):
    """A command's ``--help`` text: its module docstring, without the
    leading ``music-classification <command>``: name."""
    text = doc.strip().split(':', 1)[1].strip() if doc.startswith('``') \
        else doc.strip()
    return text[0].upper() + text[1:]


def command_parser(prog, description, examples):
    """The ``argparse`` parser of one command: ``--help`` shows
    ``description`` and ends with the worked ``examples``, as written."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter)


def fail(prog, error):
    """Exit with one line, ``prog: error``, on stderr (status 1)."""
    sys.exit('{}: {}'.format(prog, error))


def interrupted(line):
    """After Ctrl-C: print ``line`` on stderr, then end as an interrupted
    program does, by SIGINT (so that a shell loop or ``make`` stops too;
    status 130 where there are no signals)."""
    print(line, file=sys.stderr, flush=True)
    if os.name == 'posix':
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.exit(130)


def run(command, argv=None):
    """Run one command's ``main`` with ``argv`` (default: ``sys.argv[1:]``).

    Figures are written without a display (matplotlib's Agg backend), except
    by ``listen``, whose live window needs one. A warning is one line,
    ``music-classification <command>: warning: ...`` (the category named
    unless a ``UserWarning``), while the command runs. Ctrl-C ends the
    command with one line, ``music-classification <command>:
    interrupted``, and then by SIGINT (:func:`interrupted`); files are
    written under a temporary name and renamed, so an interrupted command
    leaves none half-written. (``listen`` stops on Ctrl-C as it should.)
    """
    if command != 'listen':
        import matplotlib
        matplotlib.use('Agg')

    def one_line(message, category, filename, lineno, line=None):
        # as the command's other notices: no source file or line
        return '{} {}: warning: {}{}\n'.format(
            PROG, command, '' if issubclass(category, UserWarning)
            else category.__name__ + ': ', message)
    format_before, warnings.formatwarning = warnings.formatwarning, one_line
    try:
        module = importlib.import_module(
            'music_classification.cli.' + COMMANDS[command][0])
        return module.main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        interrupted('{} {}: interrupted'.format(PROG, command))
    finally:
        warnings.formatwarning = format_before


def main(argv=None):
    """``music-classification <command> [options]``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = 'commands:\n' + '\n'.join(
        '  {:<10}{}'.format(name, text) for name, (_, text) in
        COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=PROG, description='Which artist is playing? Train MUSIC_NET '
        'or a small CNN on your music and name the artist of songs it has '
        'never heard.', epilog=commands + '\n\n' + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version',
                        version='%(prog)s ' + _version())
    parser.add_argument('command', choices=list(COMMANDS), metavar='command',
                        help='the job (listed below)')
    parser.add_argument('options', nargs=argparse.REMAINDER,
                        help='the command\'s options (see <command> --help)')
    if argv and argv[0] in COMMANDS:  # the command parses its own --help
        args = argparse.Namespace(command=argv[0], options=argv[1:])
    else:
        args = parser.parse_args(argv)
    run(args.command, args.options)
    return 0


def _version():
    from music_classification import __version__
    return __version__
