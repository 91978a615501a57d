"""Print the README's configuration table from `app.config.Settings` (or check it is current).

python scripts/settings_table.py            # print the table
python scripts/settings_table.py --check    # exit 1 when README.md's table is stale
python scripts/settings_table.py --write    # rewrite the table in README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.cli import flag_name
from app.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- settings-table:begin -->", "<!-- settings-table:end -->"
SECRETS = {"api_key", "admin_api_key", "feedback_api_key"}


def render() -> str:
    rows = ["| env var | flag | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "computed"
        elif name in SECRETS or field.default is None:
            default = "unset"
        else:
            default = f"`{field.default}`"
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `SENTIMENT_{name.upper()}` | `{flag_name(name)}` | {default} | {meaning} |")
    return "\n".join(rows)


def readme_table() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def write() -> None:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    README.write_text(f"{head}{BEGIN}\n{render()}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")


def main() -> int:
    if "--write" in sys.argv[1:]:
        write()
        return 0
    if "--check" in sys.argv[1:]:
        if readme_table() != render():
            print(
                "README.md configuration table is stale: run python scripts/settings_table.py --write", file=sys.stderr
            )
            return 1
        return 0
    print(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
