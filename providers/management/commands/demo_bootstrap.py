"""`manage.py demo_bootstrap [--rotate-key]`: the demo provider, models, tenant and the
quickstart key (`make run`), with examples that work when pasted."""

import sys

from accounts.audit import AuditedCommand
from providers.services import DEMO_ALIASES, DEMO_MODEL, demo_bootstrap

EXAMPLES = """
Try it:

  export TOLLGATE_KEY={secret}

  curl http://{host}:{port}/v1/messages \\
    -H "x-api-key: $TOLLGATE_KEY" -H "content-type: application/json" \\
    -d '{{"model":"{model}","max_tokens":200,"messages":[{{"role":"user","content":"Hello"}}]}}'

  {python} - <<'PY'
import os, anthropic
client = anthropic.Anthropic(base_url="http://{host}:{port}", api_key=os.environ["TOLLGATE_KEY"])
reply = client.messages.create(
    model="{model}", max_tokens=200, messages=[{{"role": "user", "content": "Hello"}}]
)
print(reply.content[0].text)
PY

  {python} - <<'PY'
import os, openai
client = openai.OpenAI(base_url="http://{host}:{port}/v1", api_key=os.environ["TOLLGATE_KEY"])
reply = client.chat.completions.create(
    model="{model}", messages=[{{"role": "user", "content": "Hello"}}]
)
print(reply.choices[0].message.content)
PY

  ANTHROPIC_BASE_URL=http://{host}:{port} ANTHROPIC_AUTH_TOKEN=$TOLLGATE_KEY claude

Admin: http://{host}:{port}/admin/ (create a user with `{python} manage.py createsuperuser`)
The quickstart key (the same on every `make run`; `make run ROTATE_KEY=1` replaces it):"""


class Command(AuditedCommand):
    help = "Set up the built-in demo provider and a `demo` tenant; print the quickstart key."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument(
            "--rotate-key",
            action="store_true",
            help="Revoke the quickstart key and print a new one (otherwise it is kept).",
        )

    def handle(self, *args, host, port, rotate_key, **options):
        tenant, secret = demo_bootstrap(rotate=rotate_key)
        models = ", ".join((DEMO_MODEL, *DEMO_ALIASES))
        self.stdout.write(f"Demo ready: tenant {tenant.name}, models {models} (where free).")
        if tenant.default_model is not None:
            self.stdout.write(
                f"Any other claude-* id (Claude Code's own) answers as {tenant.default_model}."
            )
        example = EXAMPLES.format(
            secret=secret, host=host, port=port, model=DEMO_MODEL, python=sys.executable
        )
        self.stdout.write(example)
        self.stdout.write(secret)
