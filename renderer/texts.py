"""Localised texts for the renderers, kept as JSON beside each template family."""

from __future__ import annotations

import json
from functools import cached_property, lru_cache
from pathlib import Path
from string import Formatter

from kindly.infra.paths import TEMPLATES

FALLBACK_LANG = "en"
LANGUAGES = ("de", "en", "it", "es", "fr")
"""The languages every template family has texts for."""
LOCALES = ("de-DE", "en-GB", "it-IT", "es-ES", "fr-FR")
"""A campaign's default locale: one per language."""


class Texts:
    """The texts of one template family (site, letter, video) in every language it has."""

    def __init__(self, by_lang: dict[str, dict[str, str]]):
        self._by_lang = by_lang

    def languages(self) -> list[str]:
        """The languages this family has texts for (tone variants are "<lang>@<tone>")."""
        return sorted(key for key in self._by_lang if "@" not in key)

    def for_lang(
        self,
        lang: str,
        tone: str | None = None,
        overrides: dict[str, dict[str, dict[str, str]]] | None = None,
    ) -> dict[str, str]:
        """All texts for one language and tone; English fills gaps, a campaign's own win.

        `overrides` is a campaign's {tone: {lang: {key: text}}}, with "*" for every tone.
        """
        merged = dict(self._by_lang.get(FALLBACK_LANG, {}))
        merged.update(self._by_lang.get(lang, {}))
        if tone:
            merged.update(self._by_lang.get(f"{lang}@{tone}", {}))
        for scope in ("*", tone or ""):
            own = ((overrides or {}).get(scope) or {}).get(lang) or {}
            # one saved before overrides were checked must not break every page: it is skipped
            merged.update((k, v) for k, v in own.items() if self.override_error(k, v) is None)
        return merged

    @cached_property
    def placeholders(self) -> dict[str, frozenset[str]]:
        """The `{fields}` each key's own texts use, in any language or tone."""
        found: dict[str, set[str]] = {}
        for texts in self._by_lang.values():
            for key, text in texts.items():
                names = found.setdefault(key, set())
                if isinstance(text, str):
                    names.update(name for _, name, _, _ in Formatter().parse(text) if name)
        return {key: frozenset(names) for key, names in found.items()}

    def override_error(self, key: str, text: object) -> str | None:
        """Why `text` cannot replace `key` (it is filled with the key's own fields), or None."""
        if not isinstance(text, str):
            return "must be text"
        return _format_error(text, self.placeholders.get(key, frozenset()))

    def get(self, lang: str, key: str, **values: str) -> str:
        """One text, with `{placeholders}` filled from `values`."""
        text = self.for_lang(lang)[key]
        return text.format(**values) if values else text


def one_stop(texts: dict, **values: str) -> dict:
    """The texts with the full stop after `{name}` dropped where the value already ends in one.

    "… with {creditor}." filled with "Aguas de Ejemplo S.A." reads "S.A.", not "S.A..".
    Nested dictionaries (a letter's tone variants) are handled too.
    """
    ending = [name for name, value in values.items() if value and value.endswith(".")]
    if not ending:
        return texts

    def mend(text):
        if isinstance(text, dict):
            return {key: mend(value) for key, value in text.items()}
        if isinstance(text, str):
            for name in ending:
                text = text.replace(f"{{{name}}}.", f"{{{name}}}")
        return text

    return {key: mend(value) for key, value in texts.items()}


@lru_cache(maxsize=1024)
def _format_error(text: str, allowed: frozenset[str]) -> str | None:
    """Why `text` does not format with exactly the fields `allowed`, or None."""
    takes = ", ".join(f"{{{name}}}" for name in sorted(allowed)) or "no placeholders"
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in Formatter().parse(text)]
    except ValueError:
        return f"a stray {{ or }} (this text takes {takes}; write a literal brace as {{{{ or }}}})"
    for name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed:
            return f"unknown placeholder {{{name}}} (this text takes {takes})"
        if spec or conversion:
            return f"write the placeholder as just {{{name}}}, without ! or :"
    return None


@lru_cache(maxsize=16)
def load_texts(family: str) -> Texts:
    """Load a family's texts once per process: its gettext catalogues
    (`templates/<family>/locale/<lang>/LC_MESSAGES/<family>.po`, one msgid per text key, the
    tone as msgctxt) or, for families with a structure of their own, `texts.json`."""
    folder: Path = TEMPLATES / family / "locale"
    if folder.is_dir():
        return Texts(_read_catalogues(folder, family))
    path: Path = TEMPLATES / family / "texts.json"
    return Texts(json.loads(path.read_text(encoding="utf-8")))


def _read_catalogues(folder: Path, family: str) -> dict[str, dict[str, str]]:
    """{lang: {key: text}, "lang@tone": {key: text}} from the .po files, with Babel."""
    from babel.messages.pofile import read_po

    by_lang: dict[str, dict[str, str]] = {}
    for po in sorted(folder.glob(f"*/LC_MESSAGES/{family}.po")):
        lang = po.parent.parent.name
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=lang, domain=family)
        for message in catalog:
            if not message.id or not message.string or message.fuzzy:
                continue
            scope = f"{lang}@{message.context}" if message.context else lang
            by_lang.setdefault(scope, {})[str(message.id)] = str(message.string)
    return by_lang
