"""Time a debtor may take by themselves, within the campaign's rules (kindly.rules.time):
move one instalment, change a plan's payment day (moves), ask for breathing space
(breathing). Each refusal names its reason so the page can say it in the debtor's language;
a refused request changes nothing."""

from kindly.errors import KindlyError


class Refused(KindlyError):
    """A request outside the rules: `code` names the rule, `values` fill its message."""

    def __init__(self, code: str, **values):
        self.code = code
        self.values = values
        super().__init__(f"refused: {code} {values}")
