"""
Install the ROS-free core of emorec_ros with pip, to train and evaluate models without ROS.

The ROS package itself is built by colcon from package.xml and CMakeLists.txt (build type
ament_cmake); colcon does not use this file.

    pip install .            # core: detection, tracking, classification with LiteRT
    pip install '.[train]'   # plus TensorFlow, to train the face model
    pip install '.[pose]'    # plus MediaPipe, for body pose
    pip install '.[gesture]' # plus tslearn and scikit-learn, for gesture templates

The versions pinned to resolve together are in requirements.txt (what the nodes need) and
requirements-train.txt (what training adds).
"""
from pathlib import Path
import re

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def package_xml_version() -> str:
    """Return the version from package.xml, so that it is written in one place only."""
    text = (HERE / 'package.xml').read_text(encoding='utf-8')
    match = re.search(r'<version>\s*([^<\s]+)\s*</version>', text)
    if match is None:
        raise RuntimeError('package.xml has no <version>')
    return match.group(1)


setup(
    name='emorec_ros',
    version=package_xml_version(),
    description='Emotion recognition for robots (the ROS-free core of emorec_ros)',
    license='Apache-2.0',
    packages=find_packages(include=['emorec_ros', 'emorec_ros.*']),
    python_requires='>=3.10',
    install_requires=[
        'numpy',
        # The contrib build: mediapipe requires it, and two OpenCV wheels would share one cv2.
        'opencv-contrib-python<5',  # OpenCV 5 ships no Haar cascades
        'ai-edge-litert',
    ],
    extras_require={
        'train': ['tensorflow-cpu', 'keras', 'matplotlib'],
        # mediapipe 0.10.30 and later have no mediapipe.solutions; requirements.txt pins 0.10.21.
        'pose': ['mediapipe<0.10.30'],
        # Gesture templates: DTW (tslearn), the classifier over them (scikit-learn), and the
        # evaluation's confusion matrices (matplotlib).
        'gesture': ['tslearn', 'scikit-learn', 'matplotlib'],
    },
    entry_points={
        'console_scripts': [
            'emorec-train-face=emorec_ros.cli.train_face:main',
            'emorec-evaluate-face=emorec_ros.cli.evaluate_face:main',
        ],
    },
)
