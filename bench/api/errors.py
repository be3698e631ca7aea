"""The one error a plugin, or a user's request of one, raises."""


class PluginError(ValueError):
    """A plugin, or a user's request of one, is not valid. The message is one line for the user."""
