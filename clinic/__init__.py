"""The clinic's vocabulary: the ground floor every other package stands on. It imports nothing of ours."""
