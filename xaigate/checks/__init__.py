"""Checks, registered by name in `CHECKS`."""

from xaigate.checks.registry import CHECKS, CheckSpec, Direction, register_check
from xaigate.registry import Registry


def builtin_checks() -> Registry[CheckSpec]:
    """The registry with the built-in checks registered.

    Imported on demand because the check modules use the gate context, which itself reads
    thresholds: registering at package import would be circular.
    """
    from xaigate.checks import (  # noqa: F401 - each registers its checks on import
        contrast,
        drift,
        faithfulness,
        intervention,
        latency,
        localisation,
        precondition,
        randomisation,
        robustness,
        stability,
    )

    return CHECKS


__all__ = ["CHECKS", "CheckSpec", "Direction", "builtin_checks", "register_check"]
