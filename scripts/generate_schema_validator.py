"""Regenerate controller/spec/schema_validator.py after changing the workflow JSON Schema.

`tests/spec/test_examples.py` fails while the generated validator is stale.
"""

from pathlib import Path

from controller.spec.schema import GENERATED_VALIDATOR, generated_validator_code

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    (ROOT / GENERATED_VALIDATOR).write_text(generated_validator_code())
    print(f"wrote {GENERATED_VALIDATOR}")
