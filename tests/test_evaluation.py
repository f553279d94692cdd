"""predict.song_vote and evaluation.evaluate_songs with a scripted model."""

import chainer
import numpy as np
from numpy.testing import assert_allclose
import pytest
import soundfile

from music_classification import evaluation, predict
from music_classification.errors import DatasetError, ParameterError
from music_classification.features import FeatureConfig

from conftest import tone, write_float_wav

NAMES = ['Other', 'alpha', 'beta']


class ScriptedModel(object):
    """Answers each window with the next scripted probabilities."""

    xp = np

    def __init__(self, outputs):
        self.outputs = [np.asarray(o, np.float32) for o in outputs]
        self.n_classes = len(NAMES)

    def predict(self, x):
        rows = [self.outputs.pop(0) for _ in range(x.shape[0])]
        return chainer.Variable(np.stack(rows))


def test_song_vote_leaves_other_out():
    # "Other" has the highest mean probability, yet the song is an artist's.
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4], [0.6, 0.3, 0.1]])
    label, p, mean = predict.song_vote(probs)
    assert label == 1 and p == pytest.approx(0.2)
    assert_allclose(mean, [0.6, 0.2, 0.2])
    assert predict.song_vote(probs, exclude=())[0] == 0


def test_evaluate_songs_scores_a_known_confusion(tmp_path):
    files = {name: write_float_wav(tmp_path / (name + '.wav'),
                                   tone(220.0, seconds=5.0))
             for name in ('a1', 'a2', 'b1', 'o1')}
    model = ScriptedModel([
        [0.6, 0.3, 0.1],  # a1: the clip says Other, the song alpha
        [0.1, 0.2, 0.7],  # a2: beta, wrong
        [0.1, 0.1, 0.8],  # b1: beta, right
        [0.5, 0.4, 0.1],  # o1: Other, right (a sound votes among all)
    ])
    result = evaluation.evaluate_songs(
        model, NAMES, FeatureConfig(), {'alpha': [files['a1'], files['a2']],
                                        'beta': [files['b1']]},
        others=[files['o1']])
    assert not model.outputs  # one window per file
    assert result['confusion'] == [[1, 0, 0], [1, 0, 1], [0, 0, 1]]
    assert result['clip_accuracy'] == pytest.approx(2 / 4)
    assert result['song_accuracy'] == pytest.approx(2 / 3)
    assert (result['songs'], result['clips']) == (3, 4)
    per_class = result['per_class']
    assert per_class['Other'] == {'precision': 0.5, 'recall': 1.0,
                                  'clips': 1}
    assert per_class['alpha'] == {'precision': None, 'recall': 0.0,
                                  'clips': 2}
    assert per_class['beta'] == {'precision': 0.5, 'recall': 1.0,
                                 'clips': 1}
    assert [f['predicted'] for f in result['files']] == [
        'alpha', 'beta', 'beta', 'Other']
    assert evaluation.summary_line(result) == \
        'clip_accuracy=0.500 song_accuracy=0.667 songs=3 clips=4'


def test_short_window_models_average_inside_each_clip(tmp_path):
    # A model of 2.56 s windows scores a 10.24 s clip by the mean of its 7
    # windows every 1.28 s.
    path = write_float_wav(tmp_path / 's.wav', tone(seconds=10.24))
    outputs = [[0, 1, 0]] * 3 + [[0, 0, 1]] * 4
    starts, probs = predict.predict_windows(
        ScriptedModel(outputs), np.asarray(
            soundfile.read(path, dtype='float32')[0]),
        config=FeatureConfig(length=40))
    assert list(starts) == [0]
    assert_allclose(probs, [[0, 3 / 7, 4 / 7]], rtol=1e-6)


def test_the_end_of_each_clip_is_scored_too():
    # 3.07 s windows every 1.54 s from 0 stop 1 s short of a 10.24 s clip;
    # one more window ends with the clip.
    model = ScriptedModel([[0, 1, 0]] * 5 + [[0, 0, 1]])
    _, probs = predict.predict_windows(
        model, np.zeros(163840, np.float32), config=FeatureConfig(length=48))
    assert not model.outputs
    assert_allclose(probs, [[0, 5 / 6, 1 / 6]], rtol=1e-6)


def test_unknown_artist_is_refused(tmp_path):
    path = write_float_wav(tmp_path / 'x.wav', tone(seconds=1.0))
    with pytest.raises(DatasetError, match="'gamma' is not one of"):
        evaluation.evaluate_songs(ScriptedModel([]), NAMES, FeatureConfig(),
                                  {'gamma': [path]})


def test_unreadable_files_are_skipped_not_counted(tmp_path):
    good = write_float_wav(tmp_path / 'good.wav', tone(seconds=5.0))
    broken = tmp_path / 'broken.wav'
    broken.write_text('not audio')
    seen = []
    result = evaluation.evaluate_songs(
        ScriptedModel([[0.1, 0.8, 0.1]]), NAMES, FeatureConfig(),
        {'alpha': [str(broken), good, str(tmp_path / 'gone.wav')]},
        progress=lambda n, total, path: seen.append((n, total, path)))
    assert (result['songs'], result['clips']) == (1, 1)
    assert result['song_accuracy'] == 1.0
    assert [s['path'] for s in result['skipped']] == [
        str(broken), str(tmp_path / 'gone.wav')]
    # each reason without the path, which the entry names once
    assert result['skipped'][0]['error'].startswith('cannot decode audio: ')
    assert result['skipped'][1]['error'] == 'no such file'
    assert seen == [(1, 3, str(broken)), (2, 3, good),
                    (3, 3, str(tmp_path / 'gone.wav'))]
    assert evaluation.summary_line(result).endswith('skipped=2')
    with pytest.raises(DatasetError,
                       match=r'^no file could be scored \(1 skipped\)$'):
        evaluation.evaluate_songs(ScriptedModel([]), NAMES, FeatureConfig(),
                                  {'alpha': [str(broken)]})


@pytest.fixture
def collection_layout(tmp_path):
    """alpha: one 20.24 s song (three clips every 5 s); beta: one 5 s song
    at 8 kHz; a hidden folder and a loose file that are not artists; one
    "Other" sound."""
    music, other = tmp_path / 'music', tmp_path / 'other'
    for folder in ('alpha', 'beta', '.hidden'):
        (music / folder).mkdir(parents=True)
    other.mkdir()
    (music / 'notes.txt').write_text('not an artist')
    paths = {
        'a1': write_float_wav(music / 'alpha' / 'a1.wav',
                              tone(330.0, seconds=20.24)),
        'b1': write_float_wav(music / 'beta' / 'b1.wav',
                              tone(440.0, seconds=5.0, sr=8000), sr=8000),
        'h1': write_float_wav(music / '.hidden' / 'h1.wav',
                              tone(550.0, seconds=5.0)),
        'o1': write_float_wav(other / 'o1.wav', tone(660.0, seconds=5.0)),
    }
    return str(music), str(other), paths


def test_evaluate_reads_the_training_layout(collection_layout):
    music, other, paths = collection_layout
    model = ScriptedModel([
        [0.2, 0.7, 0.1], [0.2, 0.7, 0.1], [0.6, 0.1, 0.3],  # a1: 3 clips
        [0.1, 0.2, 0.7],  # b1, resampled to 16 kHz
        [0.3, 0.3, 0.4],  # o1: beta, wrong (a sound votes among all)
    ])
    result = evaluation.evaluate(model, NAMES, FeatureConfig(), music,
                                 other, hop_seconds=5.0, resample=True)
    assert not model.outputs
    assert result['confusion'] == [[0, 0, 1], [1, 2, 0], [0, 0, 1]]
    assert all(type(v) is int for row in result['confusion'] for v in row)
    assert (result['clips'], result['songs']) == (5, 2)
    assert result['clip_accuracy'] == pytest.approx(3 / 5)
    assert result['song_accuracy'] == 1.0
    assert result['class_names'] == NAMES and result['skipped'] == []
    assert result['files'] == [
        {'path': paths['a1'], 'true': 'alpha', 'predicted': 'alpha',
         'probability': pytest.approx(1.5 / 3), 'windows': 3},
        {'path': paths['b1'], 'true': 'beta', 'predicted': 'beta',
         'probability': pytest.approx(0.7), 'windows': 1},
        {'path': paths['o1'], 'true': 'Other', 'predicted': 'beta',
         'probability': pytest.approx(0.4), 'windows': 1}]
    assert result['per_class']['alpha'] == {
        'precision': 1.0, 'recall': pytest.approx(2 / 3), 'clips': 3}
    assert result['per_class']['beta'] == {
        'precision': 0.5, 'recall': 1.0, 'clips': 1}


def test_evaluate_defaults_hop_5_s_no_resampling_no_others(
        collection_layout):
    music, _, paths = collection_layout
    model = ScriptedModel([[0.2, 0.7, 0.1]] * 3)
    result = evaluation.evaluate(model, NAMES, FeatureConfig(), music)
    assert not model.outputs  # clips at 0, 5 and 10 s of a1 only
    assert [f['path'] for f in result['files']] == [paths['a1']]
    assert [s['path'] for s in result['skipped']] == [paths['b1']]
    assert 'sample rate is 8000 Hz' in result['skipped'][0]['error']
    assert evaluation.summary_line(result) == (
        'clip_accuracy=1.000 song_accuracy=1.000 songs=1 clips=3 skipped=1')
    # a class without clips has no recall, one never predicted no precision
    assert result['per_class']['beta'] == {'precision': None,
                                           'recall': None, 'clips': 0}


def test_evaluate_passes_its_hop_on(collection_layout):
    music, _, paths = collection_layout
    model = ScriptedModel([[0.2, 0.7, 0.1]] * 2)
    result = evaluation.evaluate(model, NAMES, FeatureConfig(), music,
                                 hop_seconds=7.5)
    assert not model.outputs  # clips at 0 and 7.5 s of a1
    assert result['files'][0]['windows'] == 2


def test_evaluate_songs_defaults(collection_layout):
    _, other, paths = collection_layout
    model = ScriptedModel([[0.2, 0.7, 0.1]] * 3)
    result = evaluation.evaluate_songs(
        model, NAMES, FeatureConfig(), {'alpha': [paths['a1']],
                                        'beta': [paths['b1']]})
    assert not model.outputs  # every 5 s; b1 at 8 kHz is not resampled
    assert [s['path'] for s in result['skipped']] == [paths['b1']]
    # the config's rate and windows are the ones used
    config = FeatureConfig(sr=8000, length=40)
    model = ScriptedModel([[0.1, 0.2, 0.7]] * 3)
    result = evaluation.evaluate_songs(model, NAMES, config,
                                       {'beta': [paths['b1']]})
    assert not model.outputs  # 5 s at 8 kHz: one clip of 3 windows
    assert result['files'][0]['windows'] == 1 and not result['skipped']
    # only "Other" sounds: no song accuracy
    result = evaluation.evaluate_songs(ScriptedModel([[0.8, 0.1, 0.1]]),
                                       NAMES, FeatureConfig(), {},
                                       others=[paths['o1']])
    assert result['song_accuracy'] is None and result['songs'] == 0
    assert evaluation.summary_line(result) == \
        'clip_accuracy=1.000 song_accuracy=- songs=0 clips=1'


def test_a_folder_without_artists_is_refused(tmp_path):
    (tmp_path / '.hidden').mkdir()
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(DatasetError) as e:
        evaluation.evaluate(ScriptedModel([]), NAMES, FeatureConfig(),
                            str(tmp_path))
    assert str(e.value) == '{}: no artist folders'.format(tmp_path)


@pytest.mark.parametrize('artist', ['gamma', 'Other'])
def test_a_song_of_no_artist_of_the_model_is_refused(tmp_path, artist):
    path = write_float_wav(tmp_path / 'x.wav', tone(seconds=1.0))
    with pytest.raises(DatasetError) as e:
        evaluation.evaluate_songs(ScriptedModel([]), NAMES, FeatureConfig(),
                                  {artist: [path]})
    assert str(e.value) == ("artist {!r} is not one of the model's classes "
                            "(alpha, beta)".format(artist))


def test_summary_line_without_songs():
    result = {'clip_accuracy': 0.25, 'song_accuracy': None, 'songs': 0,
              'clips': 4}
    assert evaluation.summary_line(result) == \
        'clip_accuracy=0.250 song_accuracy=- songs=0 clips=4'


@pytest.mark.parametrize('n, window, hop, starts', [
    (9, 10, 3, [0]), (10, 10, 3, [0]), (12, 10, 3, [0]), (13, 10, 3, [0, 3]),
    (20, 4, 4, [0, 4, 8, 12, 16]), (21, 4, 4, [0, 4, 8, 12, 16])])
def test_window_starts(n, window, hop, starts):
    got = predict.window_starts(n, window, hop)
    assert got.dtype == np.int64 and got.tolist() == starts


class CountingModel(ScriptedModel):
    """A ScriptedModel that keeps each call's batch and checks its input."""

    def __init__(self, outputs, config):
        super().__init__(outputs)
        self.batches, self.config = [], config

    def predict(self, x):
        assert x.dtype == np.float32 and x.shape[1:] == (1,) + \
            self.config.input_shape
        self.batches.append(x.shape[0])
        return super().predict(x)


def test_clips_every_hop_in_batches_of_8():
    # 20.24 s: clips of 10.24 s at 0, 5 and 10 s; 2.56 s windows every
    # 1.28 s inside each (7 a clip): 21 windows in batches of 8.
    config = FeatureConfig(length=40)
    model = CountingModel([[0, 1, 0]] * 21, config)
    starts, probs = predict.predict_windows(
        model, np.zeros(323840, np.float32), config=config)
    assert starts.tolist() == [0, 80000, 160000]
    assert model.batches == [8, 8, 5] and not model.outputs
    assert probs.shape == (3, 3)
    model = CountingModel([[0, 1, 0]] * 2, FeatureConfig())
    starts, _ = predict.predict_windows(
        model, np.zeros(323840, np.float32), hop_seconds=7.5,
        batch_size=1)
    assert starts.tolist() == [0, 120000] and model.batches == [1, 1]


def test_an_odd_window_is_scored_every_half_window_rounded_down():
    # window 2001 samples: inside a clip of 7002, windows at 0, 1000, ...,
    # 5000 and the one ending with the clip, at 5001: 7 in all
    config = FeatureConfig(chunk=3, length=667, n_fft=512, n_mels=16)
    assert config.window_samples == 2001
    model = CountingModel([[0, 1, 0]] * 7, config)
    starts, probs = predict.predict_windows(
        model, np.zeros(7002, np.float32), config=config,
        clip_seconds=7002 / 16000, batch_size=100)
    assert starts.tolist() == [0] and model.batches == [7]


def test_a_window_of_three_samples_is_scored_every_sample():
    # half a window rounds down to 1: windows at 0..4 inside a 7-sample clip
    config = FeatureConfig(chunk=3, length=1, representation='wave')
    model = CountingModel([[0, 1, 0]] * 5, config)
    starts, _ = predict.predict_windows(
        model, np.zeros(7, np.float32), config=config,
        clip_seconds=7 / 16000)
    assert starts.tolist() == [0] and model.batches == [5]


def test_a_short_recording_is_padded_with_zeros_at_its_end():
    # 3 s of float32 audio make one 10.24 s clip, the rest silence
    config = FeatureConfig()
    seen = []

    class Spy(CountingModel):
        def predict(self, x):
            seen.append(x.copy())
            return super().predict(x)
    y = tone(440.0, seconds=3.0)
    starts, _ = predict.predict_windows(Spy([[1, 0, 0]], config), y,
                                        config=config)
    assert starts.tolist() == [0]
    padded = np.concatenate([y, np.zeros(163840 - len(y), np.float32)])
    assert_allclose(seen[0], config(padded[None]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('seconds, hop, starts', [
    (12.0, 5.0, [0]), (20.0, 5.0, [0, 80000]),
    (24.0, 5.0, [0, 80000, 160000]),
    (3.0, 5.0, [0]), (11.0, 0.5, [0, 8000])])
def test_clip_windows_lays_out_clips_and_their_windows(seconds, hop,
                                                       starts):
    # 10.24 s clips every hop; inside each, windows every half window and
    # one ending with the clip.
    config = FeatureConfig(length=48, n_mels=16)
    window, clip = config.window_samples, 163840
    y = np.ones(int(seconds * 16000), np.float32)
    padded, got, every = predict.clip_windows(
        y, config=config, hop_seconds=hop)
    assert got.tolist() == starts
    assert len(padded) == max(len(y), clip)
    assert_allclose(padded[len(y):], 0)
    inside = list(range(0, clip - window + 1, window // 2))
    if inside[-1] != clip - window:
        inside.append(clip - window)
    assert every.tolist() == [s + i for s in starts for i in inside]


@pytest.mark.parametrize('model_name, n_mels, length', [
    ('small_cnn', 16, 8), ('music_net', 64, 20)])
def test_predict_windows_is_the_mean_of_its_windows_predictions(
        model_name, n_mels, length):
    # Clips every hop (here one frame: 4 clips), each scored by the mean of
    # model.predict (no dropout, batch-norm statistics) over its windows
    # every half window and the one ending with the clip.
    from music_classification.net import build_model
    config = FeatureConfig(length=length, n_mels=n_mels, compression='db',
                           normalize='window')
    window = config.window_samples
    np.random.seed(0)
    model = build_model(model_name, n_classes=3,
                        input_shape=config.input_shape)
    rng = np.random.default_rng(1)
    clip, hop = int(2.7 * window), config.hop_length
    y = rng.standard_normal(clip + 3 * hop).astype(np.float32) * 0.1
    starts, probs = predict.predict_windows(
        model, y, config=config, hop_seconds=hop / config.sr,
        clip_seconds=clip / config.sr, batch_size=5)
    assert starts.tolist() == [0, hop, 2 * hop, 3 * hop]
    inside = [0, window // 2, window, 3 * window // 2, clip - window]
    with chainer.using_config('train', False):
        expected = [np.mean([model.predict(config(
            y[s + i:s + i + window][None])).array[0] for i in inside], 0)
            for s in starts]
    assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('hop', [0.0, -1.0, float('nan'), float('inf'),
                                 1e-9, 0.031])
def test_clip_windows_refuses_a_hop_shorter_than_a_frame(hop):
    # a hop of 0, or of a few samples, would lay out clips without end
    with pytest.raises(ParameterError, match=r'the hop between clips must be '
                       r'finite and at least one feature frame \(0.032 s\)'):
        predict.clip_windows(np.ones(200000, np.float32),
                             config=FeatureConfig(), hop_seconds=hop)
    predict.clip_windows(np.ones(200000, np.float32),  # one frame: fine
                         config=FeatureConfig(), hop_seconds=0.032)
