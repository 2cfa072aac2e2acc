"""Echo: a speech service that hears how long a WAV lasts and says so in the profile's words, calling
back when it is done. A provider added to a build as this folder and one registry line
(``tests/plugins/test_new_folder_is_enough.py``)."""

from tests.plugins.echo_provider.plugin import PLUGINS

__all__ = ["PLUGINS"]
