"""Test seams shipped as public API: the broker-less TopologyTestDriver."""

from streamtable.testing._driver import TestInputTopic, TestOutputTopic, TopologyTestDriver

__all__ = ["TestInputTopic", "TestOutputTopic", "TopologyTestDriver"]
