"""
The Bandai-Namco Research Motion dataset 1, read from its archive through our BVH loader.

BVH, 30 fps; CC BY-NC 4.0, Bandai Namco Research Inc.
"""
from __future__ import annotations

from pathlib import Path

from emorec_ros.gesture.mocap import find_clips, load_clips, MocapClip

ARCHIVE = 'bandai_ds1_bvh.tar.xz'
#: The movements every style performs; the few others (call, dance, kick, punch, respond, slash)
#: exist in the normal style only.
MAIN_MOVEMENTS: tuple[str, ...] = ('walk', 'bow', 'bye', 'byebye', 'dash', 'guide', 'run',
                                   'walk-back', 'walk-left', 'walk-right')
#: What must be stated next to anything derived from the dataset (templates, weights).
LICENCE = ('Derived from the Bandai-Namco-Research-Motiondataset (dataset 1), '
           '(c) Bandai Namco Research Inc., licensed under CC BY-NC 4.0 '
           '(https://creativecommons.org/licenses/by-nc/4.0/): attribution required, '
           'non-commercial use only.')


def read_clips(data: Path, pattern: str = '*') -> list[MocapClip]:
    """
    Read the BVH takes of ``data/bandai_ds1_bvh.tar.xz`` whose name matches ``pattern``.

    Sorted by name; only the clips asked for are parsed. Raises MocapError (a BvhError) when
    the archive is missing or unreadable, or a take does not parse.
    """
    files = [f for f in find_clips([Path(data) / ARCHIVE], pattern) if f.movement_and_style[0]]
    return load_clips(files)
