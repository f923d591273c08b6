# A per-search price for models whose providers search the web (web_search server tool).


from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0008_provider_credential_env"),
    ]

    operations = [
        migrations.AddField(
            model_name="model",
            name="price_web_search",
            field=models.DecimalField(
                decimal_places=6,
                default=Decimal("0"),
                help_text="USD per 1,000 searches the provider ran for an answer (web_search "
                "tool), billed as usage.server_tool_use.web_search_requests (Anthropic: 10).",
                max_digits=12,
                verbose_name="price per 1,000 web searches",
            ),
        ),
    ]
