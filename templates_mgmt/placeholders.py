"""Reading ``{{…}}`` placeholders in template text, the way Meta reads them.

The builder writes NAMED placeholders (``{{customer_name}}``); templates created on Meta's side
may be POSITIONAL (``{{1}}``). Validation, the Meta payload and rendering all find variables
through these functions, so they can never disagree about what a variable is.
"""

import re
from typing import Final

#: Any ``{{…}}`` span, whatever is inside (validation reports the malformed ones).
ANY_PLACEHOLDER: Final = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
NAMED: Final = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
POSITIONAL: Final = re.compile(r"\{\{\s*(\d+)\s*\}\}")

PARAMETER_FORMAT_NAMED: Final = "NAMED"
PARAMETER_FORMAT_POSITIONAL: Final = "POSITIONAL"


def placeholder_names(text: str) -> list[str]:
    """Every placeholder's inner text, in order, repeats included (``{{ a }}`` gives ``a``)."""
    return [match.group(1) for match in ANY_PLACEHOLDER.finditer(text or "")]


def variables(text: str, parameter_format: str) -> list[str]:
    """The distinct variables of ``text`` in the order Meta expects their parameters.

    NAMED: order of first appearance. POSITIONAL: by number, because Meta fills ``{{n}}`` with the
    n-th parameter whatever order the text shows them in.
    """
    if parameter_format == PARAMETER_FORMAT_NAMED:
        seen: list[str] = []
        for match in NAMED.finditer(text or ""):
            if match.group(1) not in seen:
                seen.append(match.group(1))
        return seen
    numbers = sorted({int(match.group(1)) for match in POSITIONAL.finditer(text or "")})
    return [str(number) for number in numbers]


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace each placeholder whose inner text is a key of ``values``; leave the others as typed."""
    return ANY_PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text or "")
