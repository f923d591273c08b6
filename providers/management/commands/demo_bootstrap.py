"""`manage.py demo_bootstrap`: the demo provider, models, tenant and a fresh key (`make run`)."""

from accounts.audit import AuditedCommand
from providers.services import DEMO_ALIASES, DEMO_MODEL, demo_bootstrap

EXAMPLES = """
Try it:

  export TOLLGATE_KEY={secret}

  curl http://{host}:{port}/v1/messages \\
    -H "x-api-key: $TOLLGATE_KEY" -H "content-type: application/json" \\
    -d '{{"model":"{model}","max_tokens":200,"messages":[{{"role":"user","content":"Hello"}}]}}'

  python -c 'import anthropic, os
  client = anthropic.Anthropic(base_url="http://{host}:{port}", api_key=os.environ["TOLLGATE_KEY"])
  print(client.messages.create(model="{model}", max_tokens=200,
        messages=[{{"role": "user", "content": "Hello"}}]).content[0].text)'

  ANTHROPIC_BASE_URL=http://{host}:{port} ANTHROPIC_AUTH_TOKEN=$TOLLGATE_KEY claude

Admin: http://{host}:{port}/admin/ (create a user with `.venv/bin/python manage.py createsuperuser`)
The quickstart key (shown once, replaced on every `make run`):"""


class Command(AuditedCommand):
    help = "Set up the built-in demo provider and a `demo` tenant; print a fresh quickstart key."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host, port, **options):
        tenant, secret = demo_bootstrap()
        models = ", ".join((DEMO_MODEL, *DEMO_ALIASES))
        self.stdout.write(f"Demo ready: tenant {tenant.name}, models {models} (where free).")
        if tenant.default_model is not None:
            self.stdout.write(
                f"Any other claude-* id (Claude Code's own) answers as {tenant.default_model}."
            )
        self.stdout.write(EXAMPLES.format(secret=secret, host=host, port=port, model=DEMO_MODEL))
        self.stdout.write(secret)
