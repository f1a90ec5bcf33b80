"""The errors an evaluation run ends with, each carrying a message meant for the user."""


class ReplayError(Exception):
    """A replay that cannot start (bad config, mapping or arguments); the message is for the user."""


class LiveError(Exception):
    """Live replay or playback could not run (node did not start, no subscriber...); message is for the user."""
