import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "braze"


@pytest.fixture(scope="session")
def docs_examples() -> dict:
    return json.loads((FIXTURES / "docs_examples.json").read_text())


@pytest.fixture(scope="session")
def destination_requests() -> list[dict]:
    return json.loads((FIXTURES / "segment_destination_requests.json").read_text())["requests"]
