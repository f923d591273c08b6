"""The hostile suite's own floor: garbage instead of a request is a 400 on both servers."""

import httpx

from tests.hostile.conftest import assert_error_shape, assert_healthy


def test_a_body_that_is_not_json_is_a_400_and_the_server_stays_up(hostile):
    key = hostile.one_route("openai", "gpt-smoke")

    answer = httpx.post(
        hostile.gateway.url + "/v1/messages",
        content=b"{not json",
        headers={"x-api-key": key, "content-type": "application/json"},
        timeout=10,
    )

    assert_error_shape(answer, 400, "invalid_request_error")
    assert_healthy(hostile)
