from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from django.conf import settings

        from core import state

        # Read at every use: tests (and `override_settings`) change REDIS_URL at run time.
        state.configure(
            lambda: state.Settings(
                url=settings.REDIS_URL,
                max_connections=settings.TOLLGATE["REDIS_MAX_CONNECTIONS"],
                timeout=settings.TOLLGATE["REDIS_TIMEOUT"],
            )
        )
