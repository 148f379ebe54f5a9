"""The worker runtime: claim, run, recover, beat (see :mod:`.loop`)."""
