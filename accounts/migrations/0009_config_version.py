from django.db import migrations, models


class Migration(migrations.Migration):
    """ConfigVersion, moved from the gateway app: same table, so no database change."""

    dependencies = [
        ("accounts", "0008_invitations"),
        ("gateway", "0010_config_version_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ConfigVersion",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("version", models.PositiveBigIntegerField(default=0)),
                        ("changed_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={"db_table": "gateway_configversion"},
                ),
            ],
        ),
    ]
