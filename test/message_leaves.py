"""Every leaf of a ROS message, for tests that compare a fast-built message with a plainly built one."""


def leaves(value, path="msg"):
    """Every leaf as (path, python type, value), recursing into sub-messages and sequences, so a numpy scalar
    where rosidl keeps a float (or any other field difference) shows up by name."""
    if hasattr(value, "get_fields_and_field_types"):
        for name in value.get_fields_and_field_types():
            yield from leaves(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, (list, tuple)) or type(value).__name__ in ("array", "ndarray"):
        yield path, type(value).__name__, len(value)
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, type(value).__name__, value


def reachable(messages) -> dict:
    """Every message and mutable sequence reachable from `messages`, by identity (id -> object): two results
    that must not share state have disjoint keys."""
    seen, stack = {}, list(messages)
    while stack:
        v = stack.pop()
        if hasattr(v, "get_fields_and_field_types"):
            seen[id(v)] = v
            stack += [getattr(v, n) for n in v.get_fields_and_field_types()]
        elif isinstance(v, list) or type(v).__name__ in ("array", "ndarray"):
            seen[id(v)] = v
            stack += [item for item in v if hasattr(item, "get_fields_and_field_types")]
    return seen
