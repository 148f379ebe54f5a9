"""What a study asks for (spec, limits) and how its search runs (samplers, pruners, allocation)."""
