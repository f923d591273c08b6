"""What every admin API view shares: authentication, pagination, reading strict input."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import ServiceTokenAuthentication
from gateway.rest.admin.access import Caller
from gateway.rest.apis import Pagination


class AdminApi(GenericAPIView):
    # Token first: an anonymous caller gets 401 with `WWW-Authenticate: Bearer`, not 403.
    authentication_classes = [ServiceTokenAuthentication, SessionAuthentication]
    pagination_class = Pagination

    def caller(self) -> Caller:
        return Caller(self.request)

    def paginated(self, items, serializer_class) -> Response:
        page = self.paginate_queryset(items)
        return self.get_paginated_response(serializer_class(page, many=True).data)


def read(serializer_class: type[serializers.Serializer], request: Request, **kwargs) -> dict:
    """The request's body checked by a (strict) input serializer; 400 on any problem."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def secret_response(data: dict, status: int) -> Response:
    """An answer carrying a secret shown once: never stored by a cache."""
    response = Response(data, status=status)
    response["Cache-Control"] = "no-store"
    return response
