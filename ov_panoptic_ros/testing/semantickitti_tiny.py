"""A tiny SemanticKITTI root in the real on-disk format, for the SemanticKITTI source's and the converter's tests
and the sources benchmark: scans of random points (point 0 at KNOWN_POINT), labels cycling through RAW, red
image_2 PNGs whose blue channel says the scan, and sequence 00's real calib.txt. `write_sequence`'s `points` and
`noise` make a sequence of a real one's size (bench/sources.py: 120,000 points per scan, PNGs of a real file's
size); the defaults are the tests' tiny one."""
import numpy as np
from PIL import Image

# KITTI odometry sequence 00's calib.txt, as distributed
P2_TEXT = ("7.188560000000e+02 0.000000000000e+00 6.071928000000e+02 4.538225000000e+01 0.000000000000e+00 "
           "7.188560000000e+02 1.852157000000e+02 -1.130887000000e-01 0.000000000000e+00 0.000000000000e+00 "
           "1.000000000000e+00 3.779761000000e-03")
TR_TEXT = ("4.276802385584e-04 -9.999672484946e-01 -8.084491683471e-03 -1.198459927713e-02 -7.210626507497e-03 "
           "8.081198471645e-03 -9.999413164504e-01 -5.403984729748e-02 9.999738645903e-01 4.859485810390e-04 "
           "-7.206933692422e-03 -2.921968648686e-01")
P0_TEXT = ("7.188560000000e+02 0.000000000000e+00 6.071928000000e+02 0.000000000000e+00 0.000000000000e+00 "
           "7.188560000000e+02 1.852157000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 "
           "1.000000000000e+00 0.000000000000e+00")
WIDTH, HEIGHT = 1241, 376  # sequence 00's image size
KNOWN_POINT = np.array([10.0, 1.5, -0.8])  # Velodyne frame: 10 m ahead, a little left, below the sensor
# raw semantic id, raw instance id -> (learning class name, thing)
RAW = [(10, 7), (252, 7), (10, 9), (0, 0), (1, 0), (40, 0), (60, 0), (13, 2), (254, 3), (30, 3), (52, 0),
       (99, 0), (123, 0), (70, 0), (15, 4), (81, 0)]
N_POINTS = 320


def calib_text(p2=P2_TEXT, tr=TR_TEXT) -> str:
    return f"P0: {P0_TEXT}\nP1: {P0_TEXT}\nP2: {p2}\nP3: {P0_TEXT}\nTr: {tr}\n"


def write_sequence(root, name, scans=3, labels=True, images=True, points=N_POINTS, noise=0):
    """ROOT/sequences/NAME with `scans` scans of `points` points (scan k's point 0 is KNOWN_POINT); images get
    uniform noise of +-`noise` levels (0: flat colour, tiny files)."""
    seq = root / "sequences" / name
    for folder in ("velodyne", "image_2") + (("labels",) if labels else ()):
        (seq / folder).mkdir(parents=True, exist_ok=True)
    (seq / "calib.txt").write_text(calib_text())
    (seq / "times.txt").write_text("".join(f"{0.1036 * k:e}\n" for k in range(scans)))
    rng = np.random.default_rng(int(name))
    grain_rng = np.random.default_rng([int(name), 1])  # apart from the points' stream
    raw = np.array(RAW, dtype=np.uint32)[np.arange(points) % len(RAW)]
    for k in range(scans):
        scan = np.column_stack([rng.uniform(-20, 20, (points, 3)), rng.uniform(0, 1, points)]).astype(np.float32)
        scan[0, :3] = KNOWN_POINT
        scan.tofile(seq / "velodyne" / f"{k:06d}.bin")
        if labels:
            (raw[:, 0] | (raw[:, 1] << 16)).astype(np.uint32).tofile(seq / "labels" / f"{k:06d}.label")
        if images:
            pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
            pixels[..., 0], pixels[..., 2] = 200, 10 + k  # red, and blue says which scan
            if noise:
                grain = grain_rng.integers(-noise, noise + 1, pixels.shape, dtype=np.int16)
                pixels = np.clip(pixels + grain, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(seq / "image_2" / f"{k:06d}.png")
    return seq
