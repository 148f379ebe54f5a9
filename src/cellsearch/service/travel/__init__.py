"""A study travels: one archive per study (export), recreated on any server (import).

- :mod:`.layout`: the archive's file names, its ``MANIFEST`` and its ``study.json``.
- :mod:`.archive`: an archive written with its checksums, and read back safely (names,
  sizes and ratios checked before anything is unpacked).
- :mod:`.optuna_file`: the archive's Optuna part, an Optuna SQLite storage holding the one
  study (optuna-dashboard opens it as it is), written and read in bulk.
- :mod:`.export`: a stored study into an archive: its spec and record, every trial, the
  report as built, its uploaded data set and its kept models.
- :mod:`.importer`: an archive into a study on this server and database, all or nothing.
- :mod:`.settings`: the limits on imported archives.
"""
