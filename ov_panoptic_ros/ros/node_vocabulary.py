"""The vocabulary parameters' callbacks: a change is checked before it is accepted (with Vocabulary's own
reason), and every parameter request that changes it becomes exactly one new vocabulary version, embedded off
the frame path. A mixin of PanopticNode.
"""
from __future__ import annotations

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter

from ov_panoptic_ros.core.frame import Vocabulary, VocabularyError
from ov_panoptic_ros.ros import params as P


class VocabularyParameters:
    """Pre-set, on-set and post-set parameter callbacks for the vocabulary (see the module docstring)."""

    def _prepare_parameters(self, parameters: list[Parameter]) -> list[Parameter]:
        """Before validation: an integer for a double parameter sets the double (`ros2 param set NAME 50`), and a
        new vocabulary set without stuff_classes keeps the stuff classes still in it (so `ros2 param set`
        of the vocabulary alone, or SetParameters with the vocabulary first, never trips over old stuff)."""
        out = [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
               if p.name in P.DOUBLE_PARAMS and p.type_ == Parameter.Type.INTEGER else p for p in parameters]
        names = {p.name for p in out}
        if "vocabulary" in names and "stuff_classes" not in names:
            kept = self._stuff_kept(next(p.value for p in out if p.name == "vocabulary"))
            if kept is not None:
                out.append(Parameter("stuff_classes", Parameter.Type.STRING_ARRAY, kept))
        return out

    def _stuff_kept(self, classes) -> list[str] | None:
        """The current stuff classes that a new vocabulary still names; None when nothing changes."""
        try:
            names = set(Vocabulary(tuple(classes or ()), (), ()).names) | set(classes)
        except (VocabularyError, TypeError):  # validation rejects it with its reason
            return None
        stuff = self._p_list("stuff_classes")
        kept = [s for s in stuff if s in names]
        return None if kept == stuff else kept

    def _validate_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Reject an undeclared name, a non-number for a double parameter, and a vocabulary change that cannot
        be used (with Vocabulary's own reason)."""
        undeclared = self._undeclared(p.name for p in parameters)
        if undeclared:
            return SetParametersResult(successful=False, reason=f"undeclared parameter(s) {undeclared}; see the"
                                                                " README's parameter table")
        for p in parameters:
            if p.name in P.DOUBLE_PARAMS and p.type_ != Parameter.Type.DOUBLE:
                return SetParametersResult(successful=False, reason=f"{p.name} must be a number, got {p.value!r}")
        changed = {p.name: p.value for p in parameters if p.name in P.VOCABULARY_PARAMS}
        if not changed:
            return SetParametersResult(successful=True)
        values = {**self._current_vocab_values(), **{k: list(v or []) for k, v in changed.items()}}
        try:
            self._vocabulary_from(values, version=self._vocab_version + 1)
        except VocabularyError as e:
            self.stats.count("vocabulary_changes_rejected")
            self.get_logger().warning(f"vocabulary change rejected: {e}")
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def _on_vocabulary_changed(self) -> None:
        """One new vocabulary version per parameter request (see _declare_all), embedded off the frame path."""
        if not self._vocab_changed:
            return
        self._vocab_changed = False
        self._vocab_version += 1
        vocabulary = self._vocabulary_from(self._current_vocab_values(), self._vocab_version)
        if self.lifecycle_state in ("inactive", "active"):
            self._vocab_requests.put(vocabulary)  # FIFO: embedded and activated in acceptance order
        self.stats.count("vocabulary_changes_accepted")
        self.get_logger().info(f"vocabulary v{vocabulary.version} accepted: {vocabulary.names}"
                               f" (stuff: {list(vocabulary.stuff)})")

