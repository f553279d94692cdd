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


def find_audio(root, exclude=None):
    """Audio files under ``root`` (recursively), sorted.

    Hidden files and folders are left out, and so is ``exclude`` (an output
    folder inside ``root``, so that a rerun never reads its own outputs).
    Symbolic links to folders are not followed (no loops).
    """
    skip = None if exclude is None else os.path.realpath(exclude)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.') and
                         os.path.realpath(os.path.join(folder, d)) != skip)
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


def printable(path):
    """``path`` as text that can be printed and saved, whatever its bytes.

    A name that is not valid UTF-8 (a Latin-1 file name, say) shows its
    undecodable bytes as U+FFFD.
    """
    return os.fsencode(path).decode('utf-8', 'replace')


def wav_truncation(path):
    """``(declared, present)`` data bytes of a truncated WAV, else ``None``.

    libsndfile quietly reads what is there; the header's ``data`` chunk
    size says how much should have been.
    """
    if not path.lower().endswith(('.wav', '.wave')):
        return None
    with open(path, 'rb') as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b'RIFF' or head[8:12] != b'WAVE':
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            size = int.from_bytes(chunk[4:], 'little')
            if chunk[:4] == b'data':
                present = os.fstat(f.fileno()).st_size - f.tell()
                return (size, present) if present < size else None
            f.seek(size + size % 2, os.SEEK_CUR)


def _target(out_dir, source):
    stem = safe_name(os.path.splitext(os.path.basename(source))[0])
    tag = hashlib.sha1(os.fsencode(os.path.abspath(source))).hexdigest()[:6]
    return os.path.join(out_dir, '{}-{}.wav'.format(stem, tag))


def _artist_folders(artists):
    """Folder names for artist names; names that would merge are told apart.

    ``AC:DC`` and ``AC?DC`` both make ``AC_DC``: each then gets a short hash
    of its real name.
    """
    by_name = {}
    for artist in sorted(set(artists)):
        by_name.setdefault(safe_name(artist), []).append(artist)
    folders = {}
    for name, group in by_name.items():
        for artist in group:
            folders[artist] = name if len(group) == 1 else '{}-{}'.format(
                name, hashlib.sha1(artist.encode('utf-8', 'replace'))
                .hexdigest()[:6])
    return folders


def prepare_collection(sources, out, *, group='folder', bits=16, other=None,
                       sr=16000, log=print):
    """Convert ``sources`` (folders or files) into ``out``'s training layout.

    The output mirrors the sources: a rerun converts what is new or
    changed, reuses what is done, and removes outputs whose source is gone
    or now belongs to another artist (the sources are never touched). A
    file that cannot be read (a dangling link, a link loop, a name that is
    not valid UTF-8, a broken file) is reported in one line and the run
    goes on; a truncated WAV is converted with a warning.

    Args:
        sources (list of str): folders searched recursively, or files.
        out (str): output root; ``out/music/<artist>/`` and ``out/other/``.
            An output folder inside a source folder is never read.
        group (str): where the artist's name comes from: ``'folder'`` (the
            default): the first folder under the source folder, so
            ``Artist/Album/track.flac`` is Artist's (a file directly in the
            source folder is the source folder's); ``'parent'``: the file's
            own folder; ``'tag'``: the file's ARTIST tag (files without one
            are skipped). Names that differ only in characters unsafe in
            file names (``AC:DC``, ``AC?DC``) get folders of their own.
        bits (int): 8 (unsigned, the original's) or 16.
        other (list of str or None): folders or files of non-music sounds.
        sr (int): output sample rate.
        log (callable): receives one line per skipped, truncated or removed
            file.

    Returns:
        dict: ``converted``, ``reused``, ``removed`` (counts) and
        ``skipped`` (path -> reason).
    """
    if group not in ('folder', 'parent', 'tag'):
        raise ParameterError("group must be 'folder', 'parent' or 'tag', "
                             "got {!r}".format(group))
    if bits not in SUBTYPES:
        raise ParameterError('bits must be 8 or 16, got {!r}'.format(bits))
    manifest_path = os.path.join(out, 'prepared.json')
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
    summary = {'converted': 0, 'reused': 0, 'removed': 0, 'skipped': {}}

    def skip(path, reason):
        summary['skipped'][printable(path)] = reason
        log('skipped {}: {}'.format(printable(path), reason))

    jobs = []  # (kind, path, artist or None)
    for kind, roots in (('music', sources), ('other', other or [])):
        for root in roots:
            if not os.path.exists(root):
                skip(root, 'no such file or folder')
                continue
            files = [root] if os.path.isfile(root) else find_audio(root,
                                                                   out)
            for path in files:
                try:
                    path.encode('utf-8')
                except UnicodeEncodeError:
                    skip(path, 'the file name is not valid UTF-8; rename it '
                         '(e.g. convmv -f latin1 -t utf8)')
                    continue
                try:
                    artist = None if kind == 'other' else _artist(
                        path, root, group)
                except AudioFileError as e:
                    skip(path, str(e).split(': ', 1)[-1])
                    continue
                if kind == 'music' and not artist:
                    skip(path, 'no ARTIST tag')
                    continue
                jobs.append((kind, path, artist))
    folders = _artist_folders(a for _, _, a in jobs if a)
    for artist, folder in sorted(folders.items()):
        if folder != safe_name(artist):
            log('artist {!r} goes to music/{} (another artist\'s name makes '
                'the same folder name)'.format(artist, folder))
    done = set()
    for kind, path, artist in jobs:
        folder = os.path.join(out, 'music', folders[artist]) if artist \
            else os.path.join(out, 'other')
        target = _target(folder, path)
        key = os.path.relpath(target, out)
        try:
            stat = os.stat(path)
            truncated = wav_truncation(path)
        except OSError as e:  # a dangling link, a link loop, unreadable
            skip(path, e.strerror or str(e))
            continue
        source = {'source': printable(os.path.abspath(path)),
                  'size': stat.st_size, 'mtime': stat.st_mtime,
                  'bits': bits, 'sr': sr}
        done.add(key)
        if manifest.get(key) == source and os.path.exists(target):
            summary['reused'] += 1
            continue
        try:
            y, _ = audio.load_audio(path, sr=sr, resample=True)
        except (AudioFileError, OSError) as e:
            done.discard(key)
            skip(path, str(e).split(': ', 1)[-1])
            continue
        if truncated:
            declared, present = truncated
            log('warning: {} is truncated: its header announces {} bytes '
                'of audio, the file holds {} ({:.2f} s); converted what is '
                'there'.format(printable(path), declared, present,
                               len(y) / sr))
        save_wav(target, np.clip(y, -1.0, 1.0), sr, SUBTYPES[bits])
        manifest[key] = source
        save_json(manifest_path, manifest)
        summary['converted'] += 1
    # Mirror the sources: what no source makes any more goes.
    for key in sorted(set(manifest) - done):
        target = os.path.join(out, key)
        if os.path.exists(target):
            os.remove(target)
        parent = os.path.dirname(target)
        if os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)
        log('removed {}: its source {} is gone or belongs elsewhere now'
            .format(key, manifest[key]['source']))
        del manifest[key]
        summary['removed'] += 1
    if summary['removed']:
        save_json(manifest_path, manifest)
    return summary


def _artist(path, root, group):
    """The artist of ``path`` found under the source ``root``."""
    if group == 'tag':
        return artist_tag(path)
    if group == 'parent' or os.path.isfile(root):
        return printable(os.path.basename(os.path.dirname(
            os.path.abspath(path))))
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    parts = rel.split(os.sep)
    return printable(parts[0] if len(parts) > 1 else os.path.basename(
        os.path.abspath(root)))
