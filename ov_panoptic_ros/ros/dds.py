"""The package's Fast DDS profile (config/fastdds.xml), and when a process of ours applies it to itself.

Why: with Fast DDS's default 512 KiB shared-memory segment, best-effort clouds and images larger than about
half a megabyte are lost between processes on one host (docs/dds.md has the measurements). The profile
enlarges the segment. Fast DDS reads FASTDDS_DEFAULT_PROFILES_FILE when a process creates its first
participant, so entry points call `apply_default_profile()` before rclpy.init. That is Fast DDS 3's name
(Kilted); Jazzy's Fast DDS 2 reads FASTRTPS_DEFAULT_PROFILES_FILE instead (`fast_dds_names`).

A setting the user made wins: a profile file of their own (under either name), FASTDDS_BUILTIN_TRANSPORTS
(our profile would silently replace the built-in transports it selects; FASTDDS_BUILTIN_TRANSPORTS=DEFAULT
is how to ask for Fast DDS's defaults), XML QoS for the rmw, a DEFAULT_FASTDDS_PROFILES.xml (Jazzy:
DEFAULT_FASTRTPS_PROFILES.xml) in the working directory (Fast DDS loads that one too), or another RMW
implementation.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import MutableMapping
from importlib import metadata
from pathlib import Path

from ov_panoptic_ros.core.assets import package_file

FAST_DDS_3_NAMES = ("FASTDDS_DEFAULT_PROFILES_FILE", "DEFAULT_FASTDDS_PROFILES.xml")
FAST_DDS_2_NAMES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "DEFAULT_FASTRTPS_PROFILES.xml")


def fast_dds_names(rclpy_version: str | None = None) -> tuple[str, str]:
    """(profile variable, working-directory profile file) of the Fast DDS that comes with this ROS 2 install.

    The one distro branch of the package, unavoidable: each Fast DDS reads only its own names (Jazzy's Fast
    DDS 2 ignores FASTDDS_DEFAULT_PROFILES_FILE), and Kilted's rmw_fastrtps logs a deprecation warning in
    every process where FASTRTPS_DEFAULT_PROFILES_FILE is set, so the two cannot simply both be set. Told by
    rclpy's version, which ROS installs and the pip wheels both record without importing it: Jazzy's is 7,
    Kilted's 9 (Fast DDS 3 since rmw_fastrtps 9); when unknown, the current names."""
    if rclpy_version is None:
        try:
            rclpy_version = metadata.version("rclpy")
        except metadata.PackageNotFoundError:
            return FAST_DDS_3_NAMES
    major = rclpy_version.split(".")[0]
    return FAST_DDS_2_NAMES if major.isdigit() and int(major) < 8 else FAST_DDS_3_NAMES


PROFILE_ENV, WORKING_DIR_PROFILE = fast_dds_names()  # the names this install's Fast DDS reads
PROFILE_NAME = "fastdds.xml"
# a profile of the user's own under either name (Kilted's rmw also passes on the old one, with a warning)
USER_SETTINGS = (FAST_DDS_3_NAMES[0], FAST_DDS_2_NAMES[0], "FASTDDS_BUILTIN_TRANSPORTS",
                 "RMW_FASTRTPS_USE_QOS_FROM_XML")
FAST_DDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
SHM_DIR = "/dev/shm"
SHM_MARGIN_BYTES = 4 << 20  # beside the segment: the process's port queues and Fast DDS's lock files


def profile_path() -> Path:
    """config/fastdds.xml where the package is installed (colcon, pip) or checked out: core.assets."""
    return package_file(f"config/{PROFILE_NAME}")


def user_dds_setting(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """What the user set that decides the DDS configuration instead of our profile, or None."""
    for name in USER_SETTINGS:
        if name in environ:
            return f"{name}={environ[name]!r}"
    rmw = environ.get("RMW_IMPLEMENTATION", "")
    if rmw and rmw not in FAST_DDS_RMWS:
        return f"RMW_IMPLEMENTATION={rmw!r}"
    if Path(WORKING_DIR_PROFILE).exists():
        return f"{WORKING_DIR_PROFILE} in {Path.cwd()}"
    return None


def profile_env(profile: str | Path) -> dict[str, str]:
    """The environment that points a process of this ROS install at `profile` ({PROFILE_ENV: profile})."""
    return {PROFILE_ENV: str(profile)}


def default_profile_env(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """`profile_env(our profile)` for a process started with `environ`, or {} when the user decided
    otherwise (see `user_dds_setting`)."""
    return {} if user_dds_setting(environ) is not None else profile_env(profile_path())


def apply_default_profile(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Point this process (and the children it starts) at our profile unless the user decided otherwise or
    /dev/shm has no room for its segment (Fast DDS would then run without shared memory at all, worse than
    its defaults); call before rclpy.init. Returns the profile applied, or None."""
    env = default_profile_env(environ)
    if env and shm_shortfall(env[PROFILE_ENV]) is not None:
        return None
    environ.update(env)
    return env.get(PROFILE_ENV)


def segment_bytes(profile: str | Path) -> int:
    """The largest shared-memory segment_size a Fast DDS profile file configures (0: none, or unreadable)."""
    try:
        root = ET.parse(profile).getroot()
    except (OSError, ET.ParseError):
        return 0
    sizes = [int(e.text) for e in root.iter() if e.tag.rpartition("}")[2] == "segment_size" and (e.text or "").isdigit()]
    return max(sizes, default=0)


def shm_shortfall(profile: str | Path, shm_dir: str = SHM_DIR) -> str | None:
    """Why /dev/shm cannot hold one more process's segment of this profile (Docker gives a container 64 MB),
    or None. Fast DDS touches the whole segment when a process starts; without room it logs errors and
    that process sends nothing through shared memory."""
    segment = segment_bytes(profile)
    try:
        st = os.statvfs(shm_dir)
    except OSError:
        return None
    free, need = st.f_bavail * st.f_frsize, segment + SHM_MARGIN_BYTES
    if segment and free < need:
        return (f"{shm_dir} has {free / 2**20:.0f} MB free, a process with the Fast DDS profile {profile} needs"
                f" {need / 2**20:.0f} MB (docker: --shm-size=1g or --ipc=host; see docs/dds.md)")
    return None


def startup_report(applied: str | None, environ: MutableMapping[str, str] = os.environ) -> tuple[str, str | None]:
    """The node's start-up log line about its DDS configuration, and a warning when /dev/shm is short:
    for this process (then it runs on Fast DDS's defaults) or for a driver beside it."""
    setting = user_dds_setting(environ)
    if applied:
        line = f"DDS: Fast DDS profile {applied}"
    elif setting:
        line = f"DDS: configured by the environment ({setting})"
    else:
        line = f"DDS: Fast DDS defaults, the profile {profile_path()} does not fit in {SHM_DIR}"
    active = applied or environ.get(PROFILE_ENV) or (None if setting else profile_path())
    return line, shm_shortfall(active) if active else None
