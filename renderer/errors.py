"""The renderer's own error type, shared by its renderers."""


class RenderError(Exception):
    """Rendering a debtor's material failed (missing font, encoder error, …)."""
