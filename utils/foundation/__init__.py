"""The ground floor: what models/ and everything above build on. Skeleton layouts and their
graphs, metrics, crash-safe files, checkpoints, the shared epoch loop, the user's errors.
Imports nothing of this project outside utils/foundation/."""
