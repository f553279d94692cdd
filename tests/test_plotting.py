import io

from matplotlib.figure import Figure
import numpy as np
import pytest

from music_classification import log_melspectrogram, plotting
from music_classification.features import FeatureConfig

from conftest import tone


def png_pixels(fig):
    """Render to PNG and return the image as an array (height, width, 4)."""
    import matplotlib.image
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=50)
    buf.seek(0)
    return matplotlib.image.imread(buf, format='png')


def assert_not_blank(fig):
    pixels = png_pixels(fig)
    assert pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert pixels[..., :3].std() > 0.05  # more than a flat background


@pytest.fixture(scope='module')
def song():
    t = np.arange(163840) / 16000
    return (0.4 * np.sin(2 * np.pi * (200 + 100 * t) * t)
            + tone(1000.0, seconds=10.24, amp=0.2)).astype(np.float32)


def test_article_melspectrogram(song):
    image = plotting.plot_melspectrogram(y=song[:5 * 16000])
    ax = image.axes
    assert ax.get_xlabel() == 'Time' and ax.get_ylabel() == 'Hz'
    assert image.get_array().size == 128 * (1 + 5 * 16000 // 512)
    cbar = image.colorbar
    assert cbar.formatter(-20, 0) == '-20 dB'  # the article's '%+2.0f dB'
    assert np.isclose(image.get_array().max(), 0.0)  # ref=np.max
    assert_not_blank(ax.figure)


def test_network_input_axes_in_seconds_and_hz(song):
    x = log_melspectrogram(y=song)
    image = plotting.plot_network_input(x)
    ax = image.axes
    assert image.get_array().size == 256 * 321
    assert ax.get_xlim()[1] == pytest.approx(321 * 512 / 16000, rel=0.01)
    assert ax.get_ylabel() == 'Hz'
    assert 'log(1 + mel power)' in ax.get_title()
    assert_not_blank(ax.figure)


def test_draws_on_a_given_axes(song):
    fig = Figure()
    ax = fig.subplots()
    image = plotting.plot_network_input(log_melspectrogram(y=song),
                                        config=FeatureConfig(), ax=ax)
    assert image.axes is ax


def test_augmentation_pair(song):
    clean = log_melspectrogram(y=song)[0, 0]
    loud = log_melspectrogram(y=song * 0.3 + 0.05)[0, 0]
    images = plotting.plot_augmentation(clean, loud)
    assert len(images) == 2
    assert images[0].get_clim() == images[1].get_clim()
    assert_not_blank(images[0].axes.figure)


def test_training_curves():
    log = [{'iteration': i, 'main/loss': 2.0 / i, 'main/accuracy': 1 - 1.0 / i}
           for i in range(1, 11)]
    log[-1]['validation/main/loss'] = 0.5
    lines = plotting.plot_training_curves(log)
    assert [line.get_label() for line in lines] == [
        'main/loss', 'validation/main/loss', 'main/accuracy']
    assert list(lines[0].get_xdata()) == list(range(1, 11))
    assert_not_blank(lines[0].axes.figure)


def test_confusion_matrix():
    image = plotting.plot_confusion([[5, 1], [0, 4]], ['Other', 'a'])
    assert image.get_array().shape == (2, 2)
    np.testing.assert_allclose(image.get_array(), [[5 / 6, 1 / 6], [0, 1]])
    texts = [t.get_text() for t in image.axes.texts]
    assert texts == ['5', '1', '0', '4']
    assert [t.get_text() for t in image.axes.get_xticklabels()] == \
        ['Other', 'a']
    assert_not_blank(image.axes.figure)


def test_timeline():
    probs = np.array([[0.1, 0.9], [0.5, 0.5], [0.8, 0.2]])
    areas = plotting.plot_timeline([0, 5, 10], probs, ['Other', 'a'])
    assert len(areas) == 2
    assert areas[0].axes.get_ylim() == (0, 1)
    single = plotting.plot_timeline([0], probs[:1], ['Other', 'a'])
    assert len(single) == 2
    assert_not_blank(areas[0].axes.figure)
