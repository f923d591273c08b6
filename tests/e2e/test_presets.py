"""OpenAI-compatible presets and Azure OpenAI, through the fake upstream."""

ASK = {"model": "claude-test", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]}


def one_provider(stage, provider: dict, upstream_model: str) -> str:
    stage.apply(
        providers=[provider],
        models=[
            stage.model(
                "claude-test", [{"provider": provider["name"], "upstream_model": upstream_model}]
            )
        ],
        tenants=[{"name": "acme"}],
    )
    return stage.tenant_key("acme")


def test_azure_deployment_url_api_version_and_api_key_header(stage):
    key = one_provider(
        stage,
        {
            "name": "azure-east",
            "preset": "azure",
            "base_url": stage.upstream.url,
            "api_key": "az-secret",
        },
        "my-gpt-deployment",
    )
    message = stage.client(key).messages.create(**ASK)
    assert message.content[0].text == "echo: x"
    sent = stage.upstream.requests("my-gpt-deployment")[-1]
    assert sent["path"] == "/openai/deployments/my-gpt-deployment/chat/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}
    assert sent["headers"]["api-key"] == "<redacted>"
    assert "authorization" not in sent["headers"]
    assert sent["body"]["max_completion_tokens"] == 20


def test_vllm_preset_forwards_top_k_and_uses_max_tokens(stage):
    key = one_provider(
        stage,
        {
            "name": "local-vllm",
            "preset": "vllm",
            "base_url": stage.upstream.url + "/v1",
            "api_key": "none",
        },
        "qwen-local",
    )
    response = stage.client(key).messages.with_raw_response.create(**ASK, extra_body={"top_k": 7})
    assert "tollgate-warnings" not in response.headers  # vLLM honours top_k: nothing dropped
    body = stage.upstream.requests("qwen-local")[-1]["body"]
    assert body["top_k"] == 7 and body["max_tokens"] == 20
