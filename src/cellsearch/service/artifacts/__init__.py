"""What a search trains, kept: checkpoints of running trials and the best models.

- :mod:`.settings`: where the artifact store is (a directory, or an S3-compatible bucket)
  and the retention knobs (checkpoint interval, models kept per cell type, bytes per study).
- :mod:`.store`: the store itself, Optuna's ``FileSystemArtifactStore`` or
  ``Boto3ArtifactStore``, built from the settings.
- :mod:`.index`: the service's record of every artifact (``cellsearch_artifacts``), the
  worker's side of :class:`cellsearch.search.trial.keeping.ArtifactIndex`.
- :mod:`.operations`: what the API does with them: a study's bytes, downloads, deletion
  with a study, and the sweep of artifacts whose study is gone.
"""
