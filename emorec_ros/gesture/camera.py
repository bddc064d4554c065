"""
A pinhole camera that films 3-D skeletons from in front.

Templates recorded with motion capture then look like skeletons that MediaPipe finds in camera
images.
"""
from __future__ import annotations

from dataclasses import dataclass

from emorec_ros.gesture.skeleton import JOINT_INDEX
import numpy as np

_HIPS = (JOINT_INDEX['left_hip'], JOINT_INDEX['right_hip'])
_SHOULDERS = (JOINT_INDEX['left_shoulder'], JOINT_INDEX['right_shoulder'])


@dataclass(frozen=True)
class PinholeCamera:
    """
    An ideal camera of ``width`` x ``height`` pixels and the given horizontal field of view.

    The principal point is at the image centre; pixels are square.
    """

    width: int = 640
    height: int = 480
    horizontal_fov_deg: float = 60.0

    @property
    def focal_px(self) -> float:
        return self.width / 2 / np.tan(np.radians(self.horizontal_fov_deg) / 2)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        Project points (..., 3) in the camera frame to pixels (..., 2).

        The camera frame has x right, y down, z forward, in metres; pixels have x right, y down
        and the origin top-left. Returns the pixels and whether each point lies in front of the
        camera and inside the image (...,).
        """
        z = points[..., 2]
        in_front = z > 1e-6
        safe_z = np.where(in_front, z, 1.0)
        pixels = np.stack([self.focal_px * points[..., 0] / safe_z + self.width / 2,
                           self.focal_px * points[..., 1] / safe_z + self.height / 2], axis=-1)
        inside = ((pixels[..., 0] >= 0) & (pixels[..., 0] < self.width)
                  & (pixels[..., 1] >= 0) & (pixels[..., 1] < self.height))
        return pixels, in_front & inside


def front_view(
    world: np.ndarray,
    distance_m: float = 3.0,
    yaw_deg: float = 0.0,
    height_m: float = 1.2,
    camera: PinholeCamera = PinholeCamera(),
) -> tuple[np.ndarray, np.ndarray]:
    """
    Film skeletons from ``distance_m`` in front of the person at ``height_m``.

    The skeletons are (frames, len(JOINTS), 3), world metres with +Y up and the floor at y = 0.
    The camera is turned ``yaw_deg`` about the vertical (positive: it moves towards the
    person's left).

    "In front" is the person's median facing over the clip (from the shoulder and hip lines);
    the camera pans with the person, keeping the hip midpoint at ``distance_m`` horizontally, as
    a robot that tracks the person would. Returns pixels (frames, J, 2) and visibility
    (frames, J) in {0, 1} (1: in front of the camera and inside the image).
    """
    up = np.array([0.0, 1.0, 0.0])
    left = ((world[:, _SHOULDERS[0]] - world[:, _SHOULDERS[1]])
            + (world[:, _HIPS[0]] - world[:, _HIPS[1]]))
    left = np.median(left, axis=0) * [1.0, 0.0, 1.0]
    if np.linalg.norm(left) < 1e-9:
        raise ValueError(
            'cannot tell which way the person faces (shoulders and hips on top of each other)'
        )
    left /= np.linalg.norm(left)
    forward = np.cross(left, up)
    yaw = np.radians(yaw_deg)
    towards_camera = np.cos(yaw) * forward + np.sin(yaw) * left
    # Camera axes in world coordinates: x right in the image, y down, z along the view.
    z_axis = -towards_camera
    x_axis = np.cross(z_axis, up)
    rotation = np.stack([x_axis, -up, z_axis])
    hips = world[:, _HIPS].mean(axis=1)
    centre = hips * [1.0, 0.0, 1.0] + towards_camera * distance_m + up * height_m
    in_camera = np.einsum('ij,fkj->fki', rotation, world - centre[:, None, :])
    pixels, visible = camera.project(in_camera)
    return pixels, visible.astype(np.float64)
