"""The notebooks run top to bottom, headless, on a fresh clone."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = ['01_mel_spectrogram.ipynb', '02_augmentation.ipynb',
             '03_training_and_evaluation.ipynb']


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook_runs(name, tmp_path_factory, monkeypatch):
    nbformat = pytest.importorskip('nbformat')
    nbclient = pytest.importorskip('nbclient')
    data = tmp_path_factory.getbasetemp() / 'notebook-demo-data'
    monkeypatch.setenv('MUSIC_CLASSIFICATION_DATA', str(data))
    monkeypatch.setenv('MUSIC_CLASSIFICATION_RUN', str(tmp_path_factory.mktemp(
        'notebook-run')))
    path = os.path.join(ROOT, 'notebooks', name)
    nb = nbformat.read(path, as_version=4)
    # Committed without outputs, so diffs stay readable. The kernel draws
    # with matplotlib's inline backend (Agg underneath): no display needed.
    assert all(not c.get('outputs') for c in nb.cells
               if c.cell_type == 'code')
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name='python3',
        resources={'metadata': {'path': os.path.join(ROOT, 'notebooks')}})
    client.execute()
    images = [o for c in nb.cells if c.cell_type == 'code'
              for o in c.outputs if 'image/png' in o.get('data', {})]
    assert images, 'the notebook drew no figure'
    errors = [o for c in nb.cells if c.cell_type == 'code'
              for o in c.outputs if o.output_type == 'error']
    assert not errors
