"""Errors that stop the gate with one line naming the file, key or value at fault."""


class XaigateError(Exception):
    """Base class: the message is one line that names the file, key or value at fault."""


class UsageError(XaigateError):
    """The gate was set up wrongly: a thresholds file, model card, probe set or option."""


class ModelError(XaigateError):
    """A model misbehaves on the probes: NaN output, a wrong shape, a wrong class count."""
