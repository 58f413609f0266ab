"""Helpers for testing an integration without a network.

Scripted conversations (:func:`run_script`) run a recorded conversation through the driver with
a fake link and a virtual clock, and report what the driver sent.
"""

from ._scripted import ScriptResult, is_script, run_script

__all__ = ["ScriptResult", "is_script", "run_script"]
