"""The evaluation bag layout: rosbag2 (MCAP or sqlite3) read and written without a ROS install.

A bag holds the LiDAR PointCloud2, per camera an Image or CompressedImage and a CameraInfo, the calibration
YAML (a latched std_msgs/String and, in MCAP, also an attachment), the ground truth as a PointCloud2 with
`label` and `instance_id` per LiDAR point, and the ground-truth class list as a latched std_msgs/String JSON.
docs/bag_layout.md is the user-facing description; `layout` names the topics, `reader` reads, `writer`
writes, `source` turns a bag into frames. rosbags reads and writes the storage; `mcap_file` adds, through
the `mcap` library, what rosbags lacks: MCAP attachments and the salvage of a file cut short.
"""
