"""Thin rclpy nodes around the ROS-free core."""
