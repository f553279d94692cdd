"""Turn a music collection into the training layout at 16 kHz mono.

:func:`prepare_collection` reads any files :func:`~music_classification.
audio.load_audio` reads (WAV, FLAC, OGG, Opus, MP3; any rate; stereo), groups
them by their folder or by their ARTIST tag, and writes
``OUT/music/<artist>/<name>.wav`` (and ``OUT/other/<name>.wav``) as 8-bit
unsigned (the original's format) or 16-bit PCM. Sources are only read. Each
output is written under a temporary name and renamed, and
``OUT/prepared.json`` records where it came from, so a rerun skips what is
done and an interrupted run resumes.
"""

import hashlib
import json
import os
import re

import numpy as np

from music_classification import audio
from music_classification.errors import AudioFileError, ParameterError
from music_classification.serialization import save_json, save_wav

SUBTYPES = {8: 'PCM_U8', 16: 'PCM_16'}


def find_audio(root):
    """Audio files under ``root`` (recursively), sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        found += [os.path.join(folder, f) for f in sorted(files)
                  if f.lower().endswith(audio.AUDIO_EXTENSIONS)
                  and not f.startswith('.')]
    return found


def artist_tag(path):
    """The file's ARTIST tag as libsndfile reads it, or ``None``.

    Raises:
        AudioFileError: the file cannot be decoded.
    """
    import soundfile
    try:
        with soundfile.SoundFile(path) as f:
            return (f.artist or '').strip() or None
    except RuntimeError as e:
        raise AudioFileError('{}: cannot decode audio: {}'.format(
            path, e)) from None


def safe_name(text):
    """A file or folder name made of ``text`` (no separators or dots first)."""
    name = re.sub(r'[^\w\-. ]+', '_', text, flags=re.UNICODE).strip(' ._')
    return name or '_'


def _target(out_dir, source):
    stem = safe_name(os.path.splitext(os.path.basename(source))[0])
    tag = hashlib.sha1(os.path.abspath(source).encode()).hexdigest()[:6]
    return os.path.join(out_dir, '{}-{}.wav'.format(stem, tag))


def prepare_collection(sources, out, *, group='folder', bits=16, other=None,
                       sr=16000, log=print):
    """Convert ``sources`` (folders or files) into ``out``'s training layout.

    Args:
        sources (list of str): folders searched recursively, or files.
        out (str): output root; ``out/music/<artist>/`` and ``out/other/``.
        group (str): ``'folder'``: the artist is the file's folder name;
            ``'tag'``: the file's ARTIST tag (files without one are skipped).
        bits (int): 8 (unsigned, the original's) or 16.
        other (list of str or None): folders or files of non-music sounds.
        sr (int): output sample rate.
        log (callable): receives one line per skipped file.

    Returns:
        dict: ``converted``, ``reused`` and ``skipped`` (path -> reason).
    """
    if group not in ('folder', 'tag'):
        raise ParameterError("group must be 'folder' or 'tag', got {!r}"
                             .format(group))
    if bits not in SUBTYPES:
        raise ParameterError('bits must be 8 or 16, got {!r}'.format(bits))
    manifest_path = os.path.join(out, 'prepared.json')
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
    jobs = []
    for kind, roots in (('music', sources), ('other', other or [])):
        for root in roots:
            files = [root] if os.path.isfile(root) else find_audio(root)
            if not os.path.exists(root):
                log('skipped {}: no such file or folder'.format(root))
            jobs += [(kind, path) for path in files]
    summary = {'converted': 0, 'reused': 0, 'skipped': {}}
    for kind, path in jobs:
        if kind == 'music':
            try:
                artist = (os.path.basename(os.path.dirname(
                    os.path.abspath(path))) if group == 'folder'
                    else artist_tag(path))
            except AudioFileError as e:
                summary['skipped'][path] = str(e)
                log('skipped {}'.format(e))
                continue
            if not artist:
                summary['skipped'][path] = 'no ARTIST tag'
                log('skipped {}: no ARTIST tag'.format(path))
                continue
            folder = os.path.join(out, 'music', safe_name(artist))
        else:
            folder = os.path.join(out, 'other')
        target = _target(folder, path)
        stat = os.stat(path)
        source = {'source': os.path.abspath(path), 'size': stat.st_size,
                  'mtime': stat.st_mtime, 'bits': bits, 'sr': sr}
        key = os.path.relpath(target, out)
        if manifest.get(key) == source and os.path.exists(target):
            summary['reused'] += 1
            continue
        try:
            y, _ = audio.load_audio(path, sr=sr, resample=True)
        except AudioFileError as e:
            summary['skipped'][path] = str(e)
            log('skipped {}'.format(e))
            continue
        save_wav(target, np.clip(y, -1.0, 1.0), sr, SUBTYPES[bits])
        manifest[key] = source
        save_json(manifest_path, manifest)
        summary['converted'] += 1
    return summary
