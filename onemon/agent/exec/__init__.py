"""Exec probes: find the executables of a probe group and run them as OpenNebula does (§3.2).

Differences from OpenNebula's runner, all on its known failure modes (reference §7, §8.11):
every probe has a timeout that kills its whole process group, output is bounded, a probe's
leftover background processes are killed when it exits, and the command line is an argument
list, never a shell.
"""

from onemon.agent.exec.discover import discover, group_dir
from onemon.agent.exec.output import Parsed, to_template
from onemon.agent.exec.runner import GroupResult, ProbeRun, Span, run_group, run_probe

__all__ = [
    "GroupResult",
    "Parsed",
    "ProbeRun",
    "Span",
    "discover",
    "group_dir",
    "run_group",
    "run_probe",
    "to_template",
]
