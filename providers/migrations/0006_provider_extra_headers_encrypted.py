"""Provider extra headers are encrypted at rest, like the credential: existing values move from
the clear JSON column to `extra_headers_encrypted` (Fernet, TOLLGATE_ENCRYPTION_KEYS)."""

import json

from django.db import migrations, models

from providers import crypto


def encrypt_headers(apps, schema_editor):
    Provider = apps.get_model("providers", "Provider")
    for provider in Provider.objects.exclude(extra_headers={}):
        provider.extra_headers_encrypted = crypto.encrypt(json.dumps(provider.extra_headers))
        provider.save(update_fields=["extra_headers_encrypted"])


def decrypt_headers(apps, schema_editor):
    Provider = apps.get_model("providers", "Provider")
    for provider in Provider.objects.exclude(extra_headers_encrypted=""):
        provider.extra_headers = json.loads(crypto.decrypt(provider.extra_headers_encrypted))
        provider.save(update_fields=["extra_headers"])


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0005_model_output_limit"),
    ]

    operations = [
        migrations.AddField(
            model_name="provider",
            name="extra_headers_encrypted",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_headers, decrypt_headers),
        migrations.RemoveField(model_name="provider", name="extra_headers"),
    ]
