"""
Body-language (gesture) emotion.

Skeletons from MediaPipe pose or BVH motion capture, window features, DTW against stored
templates, and a classifier over the template labels. No ROS is imported here.
"""
