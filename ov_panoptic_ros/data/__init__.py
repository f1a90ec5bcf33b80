"""Floor 2: where frames come from. Every offline input is a FrameSource (source.py) picked by one factory
(factory.py): a bag in the evaluation layout (bag/), the synthetic street (synthetic.py, synthetic_drive.py)."""
