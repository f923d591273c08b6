from django.db import migrations


class Migration(migrations.Migration):
    """ConfigVersion moved to accounts (the table stays, see accounts 0009)."""

    dependencies = [
        ("gateway", "0009_alerts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ConfigVersion")],
        ),
    ]
