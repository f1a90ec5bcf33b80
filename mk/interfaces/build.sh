#!/usr/bin/env bash
# Build the message packages here (tf2_msgs, vision_msgs) into a venv that has the ROS wheels but not them.
# Usage: mk/interfaces/build.sh VENV [PACKAGE...]. Installs into the venv's own prefix (lib/, share/,
# lib/pythonX.Y/site-packages), where the ROS wheels' bootstrapper already points the loader.
set -euo pipefail
venv=$(cd "$1" && pwd); shift
here=$(cd "$(dirname "$0")" && pwd)
py=$venv/bin/python
packages=("$@"); [ ${#packages[@]} -gt 0 ] || packages=(tf2_msgs vision_msgs)
export AMENT_PREFIX_PATH=$venv  # rosidl finds its generators and typesupports through the ament index
for pkg in "${packages[@]}"; do
  build=$venv/build-interfaces/$pkg
  rm -rf "$build" && mkdir -p "$build"
  # an imported geometry_msgs target names a Python include directory of the wheel's build machine: cmake
  # reports it and carries on, and the built package works, so the configure log stays in the build dir
  cmake -S "$here/$pkg" -B "$build" -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build/configure.log" 2>&1 || true
  if ! make -C "$build" -j2 install >"$build/make.log" 2>&1; then
    tail -n 40 "$build/configure.log" "$build/make.log" >&2
    echo "building the $pkg interface package failed (logs in $build)" >&2
    exit 1
  fi
done
