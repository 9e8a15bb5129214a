"""The fault harness: randomized, oracle-checked runs of real StreamsApp processes on a real
broker (``python -m tests.chaos``, ``make chaos``). See ``runner.py`` for what one seed does, and
``service.py`` for a seed of the us-shareholders service (``python -m tests.chaos --service``)."""
