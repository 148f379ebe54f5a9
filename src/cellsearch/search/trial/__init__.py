"""One trial: its configuration, the objective that runs it, the trainer, and its storage calls."""
