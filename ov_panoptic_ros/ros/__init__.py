"""The thin rclpy layer: node, message conversion, time sync, markers, diagnostics."""
