"""Files: image reading/writing with atomic renames, and batch planning over files, folders and globs."""
