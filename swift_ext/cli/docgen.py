"""The tables in docs/ that are generated from the code: `python -m swift_ext.cli.docgen` rewrites them,
`--check` says which drifted (tests/test_docs.py runs it). Each table sits between markers:

    <!-- BEGIN GENERATED: NAME -->
    ...
    <!-- END GENERATED: NAME -->

codes (docs/codes.md): spec/codes.py; recipe-fields (docs/recipes.md): spec/recipe.py's models;
rules (docs/preflight.md): spec/ruleset.py, each rule with its evidence and scope.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def codes_table() -> str:
    from swift_ext.spec.codes import CODES, FAMILIES

    parts = []
    for family, what in FAMILIES.items():
        rows = [(code, c) for code, c in CODES.items() if c.family == family]
        parts.append(f"**{family}** — {what}\n\n| code | severity | what |\n|---|---|---|\n" + "\n".join(
            f"| `{code}` | {c.severity} | {_cell(c.title)} |" for code, c in rows))
    return "\n\n".join(parts)


def recipe_fields_table() -> str:
    from swift_ext.spec.recipe import describe_fields

    rows = ["| field | type | default | what |", "|---|---|---|---|"]
    rows += [f"| `{name}` | {_cell(kind)} | {_cell(default)} | {_cell(text)} |"
             for name, kind, default, text in describe_fields()]
    return "\n".join(rows)


def rules_table() -> str:
    from swift_ext.spec.ruleset import rules_table_markdown

    return rules_table_markdown()


TABLES = {"codes": ("codes.md", codes_table), "recipe-fields": ("recipes.md", recipe_fields_table),
          "rules": ("preflight.md", rules_table)}


def render(text: str, name: str, table: str) -> str:
    pattern = re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(name)} -->\n).*?(<!-- END GENERATED: {re.escape(name)} -->)",
                         re.S)
    if not pattern.search(text):
        raise ValueError(f"no GENERATED markers for {name!r}")
    return pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text, count=1)


def drifted(docs: Path = DOCS) -> list[str]:
    """Names of the tables whose text in docs/ differs from what the code generates now."""
    out = []
    for name, (page, make) in TABLES.items():
        text = (docs / page).read_text(encoding="utf-8")
        if render(text, name, make()) != text:
            out.append(f"{page}: {name}")
    return out


def write(docs: Path = DOCS) -> None:
    for name, (page, make) in TABLES.items():
        path = docs / page
        path.write_text(render(path.read_text(encoding="utf-8"), name, make()), encoding="utf-8")


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        stale = drifted()
        print("\n".join(f"stale: {s} (run: python -m swift_ext.cli.docgen)" for s in stale) or "docs up to date")
        sys.exit(1 if stale else 0)
    write()
