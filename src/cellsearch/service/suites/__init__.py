"""Suites: many tasks, one study template.

- :mod:`.spec`: the suite spec, checked whole before anything is made.
- :mod:`.operations`: create, list, lifecycle, delete, report.
- :mod:`.page`: the cross-task report as an HTML page.
"""
