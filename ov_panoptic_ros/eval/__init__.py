"""Evaluation: panoptic metrics, rosbag layout, offline and live replay, reports."""
