"""ament_python package: installs the Python package, its C extension, its console scripts and share/ files."""
from glob import glob

from setuptools import Extension, find_packages, setup

PACKAGE = "ov_panoptic_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["core/presets/*.yaml", "core/vision/model_configs/*.json", "train/configs/*.yaml",
                            "data/nuscenes/splits.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        (f"share/{PACKAGE}/models", glob("models/*.pt") + glob("models/*.md")),
        # colcon: <prefix>/bin is on PATH after `source install/setup.bash`, lib/<pkg> (console scripts, for
        # `ros2 run`) is not; this launcher runs lib/<pkg>/ov-panoptic. In a pip install (make venv) pip
        # writes the console script to bin/ after the data files, over this one.
        ("bin", ["bin/ov-panoptic"]),
    ],
    # plain CPython C API: gcc and the Python headers are all it needs (package.xml: python3-dev)
    ext_modules=[Extension(f"{PACKAGE}.bridge._interleave", [f"{PACKAGE}/bridge/_interleave.c"],
                           extra_compile_args=["-O3"]),
                 # _projection: sqrt without errno and selects without FP-trap concerns, so that the fisheye
                 # lens loop (sqrt, branch-free atan) is vectorized; neither flag changes a result's bits
                 *(Extension(f"{PACKAGE}.core.{name}", [f"{PACKAGE}/core/{name}.c"], extra_compile_args=["-O3", *extra],
                             depends=[f"{PACKAGE}/core/_buffers.h"])
                   for name, extra in (("_projection", ["-fno-math-errno", "-fno-trapping-math"]), ("_clustering", []),
                                       ("_boxes", []))),
                 Extension(f"{PACKAGE}.data.world._raycast", [f"{PACKAGE}/data/world/_raycast.c"],
                           extra_compile_args=["-O3"], depends=[f"{PACKAGE}/core/_buffers.h"])],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="ov_panoptic_ros maintainers",
    maintainer_email="ov-panoptic-ros@users.noreply.github.com",
    description="3D open-vocabulary panoptic segmentation of LiDAR + camera streams for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"ov_panoptic_node = {PACKAGE}.ros.node:main",
            f"ov-panoptic = {PACKAGE}.cli:main",
        ],
    },
)
