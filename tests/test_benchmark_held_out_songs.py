"""benchmarks/held_out_songs.py: the table of songs, the accuracies, and how
far the artist of a song that no run names is from being named."""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import held_out_songs  # noqa: E402

NAMES = ['Other', 'Ann', 'Bo', 'Cy']


def clips(*rows):
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize('probs, label, expected', [
    # Other is left out of the places, however likely it is
    (clips([0.6, 0.1, 0.2, 0.1]), 1, (2, 0.1, 2, 0.2)),
    (clips([0.1, 0.5, 0.3, 0.1], [0.1, 0.1, 0.2, 0.6]), 1, (2, 0.3, 3, 0.35)),
    (clips([0.0, 0.2, 0.5, 0.3]), 1, (3, 0.2, 2, 0.5)),
    (clips([0.0, 0.2, 0.5, 0.3]), 2, (1, 0.5, 2, 0.5)),
    # a tie goes to the artist first in order, as the vote
    (clips([0.0, 0.4, 0.4, 0.2]), 2, (2, 0.4, 1, 0.4)),
    (clips([0.0, 0.4, 0.4, 0.2]), 1, (1, 0.4, 1, 0.4)),
])
def test_place_of_the_artist_among_the_artists(probs, label, expected):
    at, p, named, q = held_out_songs.place(probs, label)
    assert (at, named) == (expected[0], expected[2])
    np.testing.assert_allclose([p, q], [expected[1], expected[3]])


def test_report_of_two_runs_and_a_song_no_run_names():
    group = [('runs/a', NAMES, None, {}), ('runs/b', NAMES, None, {})]
    songs = [
        # named by run a alone: the runs together name it too
        ('music/Ann/one.wav', 1, [clips([0, .7, .2, .1], [0, .6, .3, .1]),
                                  clips([0, .3, .6, .1], [0, .4, .5, .1])]),
        # named by no run: Cy is 3rd of 3 together, Bo named
        ('music/Cy/two.wav', 3, [clips([0, .5, .4, .1]),
                                 clips([0, .3, .6, .1])]),
    ]
    out = held_out_songs.report(group, songs)
    assert '| one.wav | Ann | **Ann** | Bo | **Ann** |' in out
    assert '| two.wav | Cy | Ann | Bo | Bo |' in out
    assert '| run 1: runs/a | 0.667 | 1 of 2 |' in out
    assert '| run 2: runs/b | 0.000 | 0 of 2 |' in out
    assert '| the runs together | 0.667 | 1 of 2 |' in out
    assert out.endswith('Named by no run: two.wav (Cy 3rd of 3, 0.10; '
                        'Bo named, 0.50).')


def test_report_of_one_run_names_the_place_in_that_run():
    group = [('runs/a', NAMES, None, {})]
    songs = [('music/Bo/x.wav', 2, [clips([0.5, .3, .2, 0])]),
             ('music/Ann/y.wav', 1, [clips([0, .6, .3, .1])])]
    out = held_out_songs.report(group, songs)
    assert 'the runs together' not in out
    assert out.endswith('Named by no run: x.wav (Bo 2nd of 3, 0.20; '
                        'Ann named, 0.30).')


def test_songs_the_runs_name_only_together_and_two_missed():
    group = [('runs/a', NAMES, None, {}), ('runs/b', NAMES, None, {})]
    songs = [
        # a says Ann, b says Cy, together Bo: named by no run alone
        ('music/Bo/p.wav', 2, [clips([0, .5, .4, .1]),
                               clips([0, .1, .4, .5])]),
        ('music/Cy/q.wav', 3, [clips([0, .5, .4, .1]),
                               clips([0, .3, .6, .1])]),
    ]
    out = held_out_songs.report(group, songs)
    assert '| the runs together | 0.500 | 1 of 2 |' in out
    assert out.endswith(
        'Named by no run: p.wav (Bo 1st of 3, 0.40; named by the runs '
        'together); q.wav (Cy 3rd of 3, 0.10; Bo named, 0.50).')


def test_every_song_named():
    group = [('runs/a', NAMES, None, {})]
    songs = [('music/Ann/y.wav', 1, [clips([0, .6, .3, .1])])]
    assert held_out_songs.report(group, songs).endswith(
        'Named by no run: none.')


@pytest.mark.parametrize('n, word', [(1, '1st'), (2, '2nd'), (3, '3rd'),
                                     (4, '4th'), (11, '11th'), (12, '12th'),
                                     (13, '13th'), (21, '21st'), (22, '22nd'),
                                     (23, '23rd'), (111, '111th')])
def test_ordinals(n, word):
    assert held_out_songs._ordinal(n) == word
