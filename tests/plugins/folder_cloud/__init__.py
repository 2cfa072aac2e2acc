"""A cloud that is a folder on disk: buckets are its subfolders, the job store is a JSON file, no
secret store, no dead letters. A cloud added to a build as this folder and one registry line
(``tests/plugins/test_new_folder_is_enough.py``)."""

from tests.plugins.folder_cloud.plugin import CLOUD

__all__ = ["CLOUD"]
