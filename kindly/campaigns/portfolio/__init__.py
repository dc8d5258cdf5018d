"""Portfolio import: CSV or JSON in (read), validated debtors out (validate), written
all-or-nothing by default (write).

The package's public names are gathered here so that callers need not know which step
defines them.
"""

from kindly.campaigns.portfolio.read import PortfolioRejected, RowError, SourceRow, read_portfolio
from kindly.campaigns.portfolio.validate import CleanRow, validate_rows
from kindly.campaigns.portfolio.write import ImportResult, import_portfolio, write_rejects

__all__ = [
    "CleanRow", "ImportResult", "PortfolioRejected", "RowError", "SourceRow", "import_portfolio",
    "read_portfolio", "validate_rows", "write_rejects",
]  # fmt: skip
