"""
The Bandai-Namco Research Motion dataset 1, read from its archive through our BVH loader.

BVH, 30 fps; CC BY-NC 4.0, Bandai Namco Research Inc.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
import re
import tarfile

from emorec_ros.gesture.bvh import parse_bvh
import numpy as np

ARCHIVE = 'bandai_ds1_bvh.tar.xz'
#: The movements every style performs; the few others (call, dance, kick, punch, respond, slash)
#: exist in the normal style only.
MAIN_MOVEMENTS: tuple[str, ...] = ('walk', 'bow', 'bye', 'byebye', 'dash', 'guide', 'run',
                                   'walk-back', 'walk-left', 'walk-right')
_NAME = re.compile(r'dataset-1_(?P<movement>[a-z-]+)_(?P<style>[a-z-]+)_(?P<take>\d+)')


@dataclass(frozen=True, eq=False)
class MocapClip:
    """
    One take of the dataset.

    ``world``: joint positions (frames, len(JOINTS), 3) in metres, +Y up, at ``fps``.
    """

    name: str
    movement: str
    style: str
    world: np.ndarray
    fps: float


def read_clips(data: Path) -> list[MocapClip]:
    """
    Read every BVH take of ``data/bandai_ds1_bvh.tar.xz``, sorted by name.

    Raises OSError when the archive is missing and BvhError for a take that does not parse.
    """
    clips = []
    with tarfile.open(Path(data) / ARCHIVE) as archive:
        for member in archive.getmembers():
            name = PurePosixPath(member.name)
            match = _NAME.fullmatch(name.stem)
            if not member.isfile() or name.suffix != '.bvh' or match is None:
                continue
            motion = parse_bvh(archive.extractfile(member).read().decode('utf-8'))
            clips.append(
                MocapClip(
                    name.stem,
                    match['movement'],
                    match['style'],
                    motion.skeleton_positions(),
                    motion.fps,
                )
            )
    return sorted(clips, key=lambda c: c.name)
