"""Floor 2: ROS messages <-> arrays, time synchronization and frame assembly, without rclpy.

Messages are read by duck typing on their attributes, so the same code serves rclpy messages (the node)
and rosbags messages (the bag tools). `assemble_frame` is the one place matched messages become a Frame.
"""
