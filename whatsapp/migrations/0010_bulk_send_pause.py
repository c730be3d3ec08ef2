from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("whatsapp", "0009_bulk_send_statement_period"),
    ]

    operations = [
        migrations.AddField(
            model_name="bulksend",
            name="paused_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="paused at"),
        ),
        migrations.AddField(
            model_name="bulksend",
            name="pause_reason",
            field=models.TextField(blank=True, verbose_name="pause reason"),
        ),
    ]
