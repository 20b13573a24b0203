from pathlib import Path

from till_common.settings import CATALOGUE

README = Path(__file__).resolve().parents[4] / "README.md"


def test_readme_configuration_table_lists_every_setting() -> None:
    text = README.read_text()
    for name, setting in CATALOGUE.items():
        assert f"| `{name}` | `{setting.default}` |" in text, f"README lacks {name}"
