"""Uploaded data sets: :mod:`.operations` (validate, store, list, delete) and
:mod:`.parsing` (uploads parsed in a child process, so the API answers meanwhile)."""
