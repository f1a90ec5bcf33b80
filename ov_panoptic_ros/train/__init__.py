"""Training code: the 3D network's trainer (`ov-panoptic train`: loop.py and the one-job modules it ties
together) and the 2D vision-language teacher's (teacher.py, teacher_data.py, teacher_eval.py)."""
