"""Turn a low-level exception into the short reason quoted in a one-line UserError."""


def reason(exc: BaseException, limit: int = 160) -> str:
    """The first line of ``exc``'s message (or its type name), at most ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
