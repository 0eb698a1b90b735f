"""Schemathesis against the API's own OpenAPI description: generated requests, sent with an
admin key, for every operation; every answer must match what the description says (status
code, content type, body schema) and none may be a 5xx. Bounded: a few examples per
operation, no deadline (the machine may be slow), no example database.

One check is left out: that every schema-valid request is accepted. The server checks more
than a schema can say (email-validator refuses addresses at special-use domains such as
`.test`, which the generator likes), and answers those with the documented 400.

Skipped when schemathesis is not installed (it is not a test dependency)."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from digest import config  # noqa: E402
from digest.pipeline import api_keys  # noqa: E402
from digest.store.models import ApiScope  # noqa: E402
from digest.web import api, create_app  # noqa: E402
from tests.web.conftest import TOPICS, WEB, Clock  # noqa: E402


@pytest.fixture
def api_schema(make_settings: Any, factory: sessionmaker[Session], clock: Clock) -> Any:
    settings: config.Settings = make_settings(WEB + TOPICS)
    app = create_app(settings, factory=factory, clock=clock)
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def test_the_api_answers_as_its_description_says(
    api_schema: Any, factory: sessionmaker[Session]
) -> None:
    # (schemathesis's pytest plugin does not run under pytest 9: drive hypothesis directly.)
    token = api_keys.add_key(factory, "fuzz", ApiScope.ADMIN, by="cli:test").token
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                excluded_checks=[positive_data_acceptance],
            )

        check()
        checked.append(operation.label)
    # Every operation but the description itself (which schemathesis loaded it from).
    described = api.description()["paths"]
    assert sorted(checked) == sorted(
        f"{method.upper()} {path}"
        for path, operations in described.items()
        for method in operations
        if path != "/api/v1/openapi.json"
    )
