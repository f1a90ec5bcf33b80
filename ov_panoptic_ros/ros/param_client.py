"""What `ros2 param get/set/load/list` do, for machines with rclpy but no ros2 CLI (the pip install).

One client node in its own context calls the target node's parameter services. `set` sends every parameter
in ONE SetParameters request, as `ros2 param load` does, so the node applies a new vocabulary together with
its stuff classes.
"""
from __future__ import annotations

import time

import yaml

from ov_panoptic_ros.ros.session import RosSession


class ParamError(Exception):
    """The node is not there, or it refused; the message is for the user."""


def value_from_text(text: str):
    """A command-line value read as YAML, as ros2 param set reads it: 0.5, 50, true, [a, b], 'text'."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ParamError(f"cannot read the value {text!r} (YAML): {e}") from e


class ParamClient:
    """Parameter services of one node (e.g. '/ov_panoptic')."""

    def __init__(self, node: str, timeout_s: float = 5.0):
        from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters

        self.node, self.timeout_s = "/" + node.strip("/"), timeout_s
        self.session = RosSession("ov_panoptic_param_client")
        make = self.session.node.create_client
        self.clients = {"get": make(GetParameters, f"{self.node}/get_parameters"),
                        "set": make(SetParameters, f"{self.node}/set_parameters"),
                        "list": make(ListParameters, f"{self.node}/list_parameters")}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ParamClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, kind: str, request):
        client = self.clients[kind]
        if not client.wait_for_service(timeout_sec=self.timeout_s):
            raise ParamError(f"no node {self.node} answers (no service {client.srv_name} within "
                             f"{self.timeout_s:.0f} s): is ov_panoptic_node running, on this ROS_DOMAIN_ID?")
        future = client.call_async(request)
        deadline = time.monotonic() + self.timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise ParamError(f"{client.srv_name} did not answer within {self.timeout_s:.0f} s")
            time.sleep(0.01)
        return future.result()

    def list(self) -> list[str]:
        from rcl_interfaces.srv import ListParameters

        return sorted(self._call("list", ListParameters.Request()).result.names)

    def get(self, names: list[str]) -> dict:
        from rcl_interfaces.msg import ParameterType
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        values = self._call("get", GetParameters.Request(names=names)).values
        missing = [n for n, v in zip(names, values) if v.type == ParameterType.PARAMETER_NOT_SET]
        if missing:
            raise ParamError(f"{self.node} has no parameter(s) {missing}")
        return {n: parameter_value_to_python(v) for n, v in zip(names, values)}

    def set(self, params: dict) -> None:
        """All of `params` in one SetParameters request; ParamError lists every refusal with its reason."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        request = SetParameters.Request(parameters=[Parameter(n, value=v).to_parameter_msg() for n, v in params.items()])
        results = self._call("set", request).results
        refused = [f"{n}: {r.reason}" for n, r in zip(params, results) if not r.successful]
        if refused:
            raise ParamError(f"{self.node} refused " + "; ".join(refused))
