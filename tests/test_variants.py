"""Every network variant trains with music-classification train and runs
from its folder alone.

labels.json names the variant, its options and every feature parameter, so
evaluate.py, predict_file.py and the realtime recognizer need no flags.
"""

import json
import os
import subprocess

import numpy as np
from numpy.testing import assert_allclose
import pytest

from conftest import cli

from music_classification import collection, load_audio, realtime, training
from music_classification.cli import train
from music_classification.features import MUSICNN_FEATURES

VARIANTS = {
    # name: train.py flags (short windows keep the test quick)
    'music_net': ['--length', '40'],
    'music_net_pool': ['--model', 'music_net_pool'],
    'wave': ['--model', 'wave', '--length', '40'],
    'small_cnn_db': ['--model', 'small_cnn', '--n-mels', '64', '--length',
                     '24', '--compression', 'db', '--normalize', 'window',
                     '--spec-augment', '--lr', '1e-3'],
    'improved': ['--recipe', 'improved'],
    'musicnn': ['--recipe', 'musicnn'],  # pretrained, its output fitted
}


@pytest.fixture(scope='module')
def runs(demo_data, tmp_path_factory):
    root = tmp_path_factory.mktemp('variants')
    out = {}
    for name, flags in VARIANTS.items():
        out[name] = str(root / name)
        train.main(['--music', demo_data.music_dir, '--other',
                    demo_data.other_dir, '--noise', demo_data.noise_path,
                    '--out', out[name], '--iterations', '2',
                    '--batch-per-song', '1', '--eval-every', '2',
                    '--snapshot-every', '0', '--no-progress'] + flags)
    return out


@pytest.mark.parametrize('name', list(VARIANTS))
def test_labels_describe_the_variant(runs, name):
    with open(os.path.join(runs[name], 'labels.json')) as f:
        labels = json.load(f)
    model, _, config = collection.load_trained(runs[name])
    assert labels['model'] == model.spec()
    assert labels['features'] == config.to_dict()
    expected = {'music_net_pool': 'music_net', 'small_cnn_db': 'small_cnn',
                'improved': 'small_cnn'}.get(name, name)
    assert labels['model']['model'] == expected
    if name == 'music_net_pool':
        assert labels['model']['pooling'] is True
    if name == 'wave':
        assert config.representation == 'wave'
        assert config.input_shape == (1, 40 * 1024)
    if name == 'small_cnn_db':
        assert (config.compression, config.normalize, config.n_mels) == \
            ('db', 'window', 64)
        assert labels['recipe']['spec_augment'] is True
    if name == 'improved':
        assert labels['recipe']['recipe'] == 'improved'
        assert config == training.feature_config(train.parse_args(
            ['--music', '.', '--other', '.', '--recipe', 'improved']))
    if name == 'musicnn':
        assert config == MUSICNN_FEATURES
        assert config.input_shape == (96, 187)


@pytest.mark.parametrize('name', list(VARIANTS))
def test_evaluate_runs_every_variant_from_its_folder(runs, demo_data, name):
    result = subprocess.run(
        [*cli('evaluate'),
         '--model', runs[name], '--music', demo_data.music_dir, '--split',
         'all', '--json'],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores['songs'] == 4 and 0 <= scores['clip_accuracy'] <= 1


@pytest.mark.parametrize('name', list(VARIANTS))
def test_realtime_recognizer_runs_every_variant(runs, demo_data, name):
    # What predict_realtime.py does with the microphone's chunks.
    model, names, config = collection.load_trained(runs[name])
    recognizer = realtime.Recognizer(model, names, config, every=0.5)
    y, _ = load_audio(demo_data.songs[demo_data.artists[0]][0])
    predictions = [p for p in (recognizer.push(y[i:i + 1024])
                               for i in range(0, 4 * 16000, 1024)) if p]
    assert len(predictions) >= 7
    last = recognizer.predict_now()  # on the window heard last
    assert_allclose(last.probs.sum(), 1.0, rtol=1e-5)
    # the same as the network on the full features of the last window
    window = recognizer.stream.window
    expected = model.predict(config(window)).array[0]
    assert_allclose(last.probs, expected, rtol=1e-4, atol=1e-5)
    assert np.isfinite(last.probs).all()
