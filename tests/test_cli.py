"""The music-classification command: one entry point, a subcommand per job,
the same commands as ``python -m music_classification`` and scripts/*.py."""

import os
import subprocess
import sys

import pytest

from music_classification.cli import COMMANDS

from conftest import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: scripts/<name>.py -> the command it is the face of.
SCRIPTS = {'demo.py': 'demo', 'prepare_data.py': 'prepare',
           'train.py': 'train', 'evaluate.py': 'evaluate',
           'predict_file.py': 'predict', 'predict_realtime.py': 'listen',
           'make_figures.py': 'figures', 'ablate.py': 'ablate'}


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_help_lists_every_job():
    result = run(cli('--help')[:1] + ['--help'])
    assert result.returncode == 0
    for name in ('demo', 'prepare', 'train', 'evaluate', 'predict',
                 'listen', 'figures', 'ablate'):
        assert '\n  {:<10}'.format(name) in result.stdout, name
    assert set(COMMANDS) == {'demo', 'prepare', 'train', 'evaluate',
                             'predict', 'listen', 'figures', 'ablate'}


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_every_help_shows_a_worked_example(command):
    result = run(cli(command) + ['--help'])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        'usage: music-classification {} '.format(command))
    example = result.stdout.split('example')[1]
    assert '\n  music-classification {} '.format(command) in example


def test_python_dash_m_and_the_scripts_run_the_same_commands():
    entry = run(cli('train') + ['--help']).stdout
    module = run([sys.executable, '-m', 'music_classification', 'train',
                  '--help']).stdout
    script = run([sys.executable, os.path.join(ROOT, 'scripts', 'train.py'),
                  '--help']).stdout
    assert entry == module == script and 'examples:' in entry


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_scripts_are_faces_without_path_edits(script):
    with open(os.path.join(ROOT, 'scripts', script)) as f:
        text = f.read()
    assert 'sys.path' not in text
    assert "run('{}')".format(SCRIPTS[script]) in text
    assert len([line for line in text.splitlines()
                if line and not line.startswith(('#', '"""'))]) == 2


def test_an_unknown_command_is_one_usage_error():
    result = run(cli('nope'))
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr
    assert 'Traceback' not in result.stderr


def test_errors_name_the_command():
    result = run(cli('evaluate') + ['--model', '/nonexistent/run'])
    assert result.returncode == 1
    assert result.stderr.startswith('music-classification evaluate: ')
    assert 'Traceback' not in result.stderr


def test_run_puts_the_warning_format_back():
    # the one-line format is the command's, not the caller's for good
    import warnings
    from music_classification import cli as package_cli
    before = warnings.formatwarning
    with pytest.raises(SystemExit):
        package_cli.run('evaluate', ['--help'])
    assert warnings.formatwarning is before
