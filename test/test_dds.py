"""The shipped Fast DDS profile: when our processes apply it, and that it delivers large best-effort messages.

The real-DDS test sends PointCloud2 messages between two processes (bench/load.py's transport rigs, on this
session's domain): with config/fastdds.xml every 700 KB and 2.2 MB message at 10 Hz arrives; with Fast DDS's
defaults (a 512 KiB shared-memory segment per participant) the 2.2 MB ones do not.
"""
import ast
import fnmatch
import os
import types
from importlib import metadata
from pathlib import Path

import pytest

from ov_panoptic_ros.ros import dds

ROOT = Path(__file__).resolve().parents[1]


def _setup_globs() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    return [n.args[0].value for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "glob" and isinstance(n.args[0], ast.Constant)]


def test_profile_is_packaged_and_enlarges_the_shared_memory_segment():
    path = dds.profile_path()
    assert path == ROOT / "config" / "fastdds.xml" and path.is_file()
    assert any(fnmatch.fnmatch("config/fastdds.xml", g) for g in _setup_globs()), "setup.py does not install it"
    assert dds.segment_bytes(path) >= 32 * 2**20  # one 6-camera 1600x900 frame: 28 MB


@pytest.mark.parametrize("environ, decided_by", [
    ({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}, "FASTDDS_DEFAULT_PROFILES_FILE='/mine.xml'"),
    ({"FASTDDS_DEFAULT_PROFILES_FILE": ""}, "FASTDDS_DEFAULT_PROFILES_FILE=''"),
    ({"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"}, "FASTRTPS_DEFAULT_PROFILES_FILE='/mine.xml'"),  # Jazzy's name
    ({"FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}, "FASTDDS_BUILTIN_TRANSPORTS='DEFAULT'"),
    ({"RMW_FASTRTPS_USE_QOS_FROM_XML": "1"}, "RMW_FASTRTPS_USE_QOS_FROM_XML='1'"),
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, "RMW_IMPLEMENTATION='rmw_cyclonedds_cpp'"),
])
def test_a_dds_setting_of_the_user_wins(environ, decided_by):
    env = dict(environ)
    assert dds.user_dds_setting(env) == decided_by
    assert dds.apply_default_profile(env) is None and env == environ


@pytest.mark.parametrize("rmw", [None, "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp"])
def test_the_profile_is_applied_when_nothing_decides_otherwise(rmw):
    env = {"PATH": "/bin"} | ({"RMW_IMPLEMENTATION": rmw} if rmw else {})
    applied = dds.apply_default_profile(env)
    assert applied == str(dds.profile_path()) and env[dds.PROFILE_ENV] == applied
    assert dds.apply_default_profile(env) is None  # applied once: now it is the environment's setting
    assert dds.startup_report(applied, env)[0] == f"DDS: Fast DDS profile {applied}"


def test_the_profile_goes_under_the_names_of_the_distros_fast_dds():
    # each Fast DDS reads only its own variable and working-directory file (Jazzy ignored the profile under
    # Fast DDS 3's name: large best-effort messages were lost), and Kilted's rmw warns about the old variable
    assert dds.fast_dds_names("7.1.6") == ("FASTRTPS_DEFAULT_PROFILES_FILE", "DEFAULT_FASTRTPS_PROFILES.xml")
    assert dds.fast_dds_names("9.1.2") == ("FASTDDS_DEFAULT_PROFILES_FILE", "DEFAULT_FASTDDS_PROFILES.xml")
    assert dds.fast_dds_names("") == dds.FAST_DDS_3_NAMES  # unknown: the current names
    # the module's names are those of the installed rclpy's Fast DDS
    assert (dds.PROFILE_ENV, dds.WORKING_DIR_PROFILE) == dds.fast_dds_names(metadata.version("rclpy"))
    assert dds.profile_env("/p.xml") == {dds.PROFILE_ENV: "/p.xml"}


def test_a_profile_in_the_working_directory_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / dds.WORKING_DIR_PROFILE).write_text("<dds/>")
    assert dds.default_profile_env({}) == {}
    assert dds.WORKING_DIR_PROFILE in dds.user_dds_setting({})


def test_without_room_in_dev_shm_fast_dds_defaults_are_kept_and_reported(monkeypatch):
    need = dds.segment_bytes(dds.profile_path()) + dds.SHM_MARGIN_BYTES

    def shm_with(free):
        monkeypatch.setattr(os, "statvfs", lambda _: types.SimpleNamespace(f_bavail=free // 4096, f_frsize=4096))

    shm_with(need - 4096)  # Docker's default /dev/shm is 64 MB
    env = {}
    assert dds.apply_default_profile(env) is None and env == {}
    line, warning = dds.startup_report(None, env)
    assert line.startswith("DDS: Fast DDS defaults") and "--shm-size" in warning
    shm_with(need)
    assert dds.apply_default_profile(env) == str(dds.profile_path())
    assert dds.startup_report(env[dds.PROFILE_ENV], env)[1] is None
    assert dds.segment_bytes(ROOT / "config" / "ov_panoptic.yaml") == 0  # not a profile: nothing to fit


@pytest.mark.slow
def test_large_best_effort_messages_arrive_with_the_shipped_profile_and_not_with_fast_dds_defaults():
    from ov_panoptic_ros.bench.load import measure_transport

    domain = int(os.environ["ROS_DOMAIN_ID"])
    shipped = measure_transport([700_000, 2_200_000], "best_effort", "shipped", count=20, domain_id=domain)
    assert all(r["sent"] == 20 and r["received"] >= 19 for r in shipped), shipped  # measured: 20 every time
    default = measure_transport([2_200_000], "best_effort", "fastdds_default", count=20, domain_id=domain)
    # Fast DDS's 512 KiB segment holds a quarter of one message: 0 of 20 on a quiet machine, 7 with a training
    # job on the second core (a slow reader leaves the segment time to drain); the shipped profile: 20 of 20
    assert default[0]["sent"] == 20 and default[0]["received"] <= 10, default
