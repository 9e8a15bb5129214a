"""The fault harness: randomized, oracle-checked runs of real StreamsApp processes on a real
broker (``python -m tests.chaos``, ``make chaos``). See ``runner.py`` for what one seed does."""
