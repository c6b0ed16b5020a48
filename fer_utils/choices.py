"""One check for every "pick one of these names" option (configs, readers, backbones, flags).

Kept in its own dependency-free module so that config, data readers, models and the
evaluation code all raise the same one-line message without importing each other.
"""
from __future__ import annotations


def check_choice(what: str, value, valid) -> None:
    """Raise ``ValueError("unknown <what> <value>; valid: a, b, c")`` unless ``value`` is in ``valid``.

    The valid names are listed sorted, so the message reads the same whatever container
    (tuple, dict of specs, set) holds them; a value that cannot even be looked up (a list
    from a YAML file tested against a dict) gets the same one-line message.
    """
    try:
        known = value in valid
    except TypeError:  # unhashable value against a dict or set
        known = False
    if not known:
        try:
            names = sorted(valid)
        except TypeError:  # mixed types
            names = sorted(valid, key=str)
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(str, names))}")
