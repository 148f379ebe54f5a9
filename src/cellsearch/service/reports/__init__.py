"""The comparison report of a stored study, as JSON and as a page.

- :mod:`.study`: the report of a study in its current state, built once per change.
- :mod:`.page`: the HTML page; :mod:`.sections` (tables, banners) and :mod:`.figures`
  (plotly figure specs) are its parts; :mod:`.assets` serves plotly.js and ``static/``.
"""
